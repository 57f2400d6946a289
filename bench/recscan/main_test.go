package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// recLines are a device's .rec files: locations, lines the Recorder's
// answer leaves out, and one location per month around the range.
var recLines = map[string]string{
	"2024-12.rec": `2024-12-31T23:59:59Z	*                 	{"_type":"location","lat":1,"lon":2,"tst":1735689599}
`,
	"2025-01.rec": `2025-01-01T00:00:00Z	*                 	{"_type":"location","tid":"ab","lat":48.8566,"lon":2.3522,"tst":1735689600,"batt":90}
2025-01-01T00:00:05Z	lwt               	{"_type":"lwt","tst":1735689605}
2025-01-01T00:00:06Z	event             	{"_type":"transition","event":"enter","lat":1,"lon":2,"tst":1735689606}
2025-01-01T00:00:07Z	*                 	{"_type":"card","name":"A \"quoted\" name"}
2025-01-01T00:00:08Z	*                 	not json
2025-01-15T12:00:00Z	*                 	{"_type":"location","lat":-33.5,"lon":151.25,"tst":1736942400,"inregions":["home","w\u00f6rk"],"m":null,"x":true}
2025-01-31T23:59:59Z	*                 	{"_type":"location","lat":0.000001,"lon":-0.5,"tst":1738367999}
`,
	"2025-02.rec": `2025-02-01T00:00:00Z	*                 	{"_type":"location","lat":3,"lon":4,"tst":1738368000}
`,
	"notes.txt": "2025-01-02T00:00:00Z\t*                 \t{\"_type\":\"location\",\"lat\":5,\"lon\":6,\"tst\":1}\n",
}

func TestScanAnswer(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "rec", "alice", "phone")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range recLines {
		if err := os.WriteFile(filepath.Join(dev, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, from, to string
		want           []int64 // tst of the locations answered
	}{
		{"the month, inclusive", "2025-01-01T00:00:00", "2025-01-31T23:59:59", []int64{1735689600, 1736942400, 1738367999}},
		{"across months", "2024-12-31T23:59:59Z", "2025-02-01", []int64{1735689599, 1735689600, 1736942400, 1738367999, 1738368000}},
		{"one day", "2025-01-15", "2025-01-15T23:59:59", []int64{1736942400}},
		{"nothing", "2025-03", "2025-03-31", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run([]string{"-dir", dir, "-user", "alice", "-device", "phone", "-from", tt.from, "-to", tt.to}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v (stderr %s)", err, stderr.String())
			}
			var ans struct {
				Count  int              `json:"count"`
				Data   []map[string]any `json:"data"`
				Status int              `json:"status"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &ans); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, stdout.String())
			}
			if ans.Count != len(tt.want) || len(ans.Data) != len(tt.want) || ans.Status != 200 {
				t.Fatalf("count %d, %d data, status %d; want %d: %s", ans.Count, len(ans.Data), ans.Status, len(tt.want), stdout.String())
			}
			for i, d := range ans.Data {
				if tst := int64(d["tst"].(float64)); tst != tt.want[i] {
					t.Errorf("data[%d] tst = %d, want %d", i, tst, tt.want[i])
				}
				for _, k := range []string{"isorcv", "isotst", "disptst"} {
					if _, ok := d[k].(string); !ok {
						t.Errorf("data[%d] has no %s: %v", i, k, d)
					}
				}
			}
			if want := "RESULT count=" + strconv.Itoa(len(tt.want)) + " "; !strings.HasPrefix(stderr.String(), want) {
				t.Errorf("stderr %q, want it to start with %q", stderr.String(), want)
			}
		})
	}
}

func TestScanKeepsPayloads(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "rec", "alice", "phone")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "2025-01.rec"), []byte(recLines["2025-01.rec"]), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-dir", dir, "-user", "alice", "-device", "phone", "-from", "2025-01-15", "-to", "2025-01-16"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	want := `{"count":1,"data":[{"_type":"location","lat":-33.5,"lon":151.25,"tst":1736942400,"inregions":["home","wörk"],"m":null,"x":true,` +
		`"isorcv":"2025-01-15T12:00:00Z","isotst":"2025-01-15T12:00:00Z","disptst":"2025-01-15 12:00:00"}],"status":200}` + "\n"
	if got := stdout.String(); got != want {
		t.Fatalf("answer\n%s\nwant\n%s", got, want)
	}
}
