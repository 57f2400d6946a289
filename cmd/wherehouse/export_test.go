package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exportCLI runs "wherehouse export" with args and returns its stdout and
// stderr apart, and its error.
func exportCLI(t *testing.T, dir string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"export", "--data", dir}, args...)...)
	// The race runtime waits a second at exit by default; there are many runs.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=50"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// exportFormats are the formats the CLI test compares in both modes.
var exportFormats = [][]string{
	{"--format", "json"},
	{"--format", "geojson"},
	{"--format", "geojsonpoi"},
	{"--format", "linestring", "--gap", "600"},
	{"--format", "gpx"},
	{"--format", "gpx", "--gap", "600"},
	{"--format", "kml"},
	{"--format", "csv"},
	{"--format", "csv", "--fields", "tst,lat,lon,poi"},
	{"--format", "xml"},
	{"--format", "rec"},
	{"--format", "json", "--from", "2024-05-01T07:05:00", "--to", "1714547700"},
	{"--format", "rec", "--from", "2024-05-01", "--to", "2024-05-01"},
}

// TestExportCLI publishes a day over MQTT, exports it in every format
// while the server runs (over the control socket) and again after it
// stopped (from the store directly), and wants the same bytes; rec lines
// read back to the messages sent.
func TestExportCLI(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-1")
	c := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-1")
	const day = 1714546800 // 2024-05-01T07:00:00Z
	sent := []struct{ topic, payload string }{
		{"owntracks/alice/phone", location(52.52, 13.40, day, "ph")},
		{"owntracks/alice/phone", `{"_type":"location","lat":52.521,"lon":13.41,"tst":1714547100,"tid":"ph","poi":"Café <Einstein>","addr":"Unter den Linden 1"}`},
		{"owntracks/alice/phone/event", `{"_type":"transition","tid":"ph","tst":1714547160,"wtst":1714000000,"lat":52.5215,"lon":13.4125,"acc":8,"event":"enter","desc":"Office","t":"c"}`},
		{"owntracks/alice/phone", location(52.5225, 13.415, 1714547400, "ph")},
		{"owntracks/alice/phone", location(52.523, 13.4175, 1714547700, "ph")},
		{"owntracks/alice/phone/info", `{"_type":"card","name":"Alice","tid":"ph","tst":1714548000}`},
		{"owntracks/alice/phone", `{"_type":"lwt","tst":1714550400}`},
		{"owntracks/alice/phone", location(52.53, 13.42, 1714555800, "ph")},
		{"owntracks/alice/phone", location(52.531, 13.421, 1714555860, "ph")},
		{"owntracks/alice/tablet", location(48.1, 11.5, 1714546900, "tb")}, // another device: never in the export
	}
	for _, m := range sent {
		publish(t, c, m.topic, 1, false, m.payload) // acknowledged once stored
	}
	if n := s.locations("alice", "alice-pass-1", "alice", "phone").Count; n != 6 {
		t.Fatalf("%d locations stored, want 6", n)
	}

	running := make([][]byte, len(exportFormats))
	for i, args := range exportFormats {
		out, errOut, err := exportCLI(t, dir, append([]string{"--user", "Alice", "--device", "phone"}, args...)...)
		if err != nil {
			t.Fatalf("export %v while serving: %v\n%s", args, err, errOut)
		}
		running[i] = out
	}
	s.stop()
	if _, err := exec.Command(binary, "user", "list", "--data", dir).CombinedOutput(); err != nil {
		t.Fatalf("the store does not open without the server: %v", err)
	}
	for i, args := range exportFormats {
		out, errOut, err := exportCLI(t, dir, append([]string{"--user", "alice", "--device", "phone"}, args...)...)
		if err != nil {
			t.Fatalf("export %v from the store: %v\n%s", args, err, errOut)
		}
		if !bytes.Equal(out, running[i]) {
			t.Errorf("export %v differs between the running server and the store:\n%s\n---\n%s", args, running[i], out)
		}
		if len(out) == 0 {
			t.Errorf("export %v wrote nothing", args)
		}
	}

	byArgs := func(args ...string) []byte {
		for i, a := range exportFormats {
			if strings.Join(a, " ") == strings.Join(args, " ") {
				return running[i]
			}
		}
		t.Fatalf("no export with %v", args)
		return nil
	}
	t.Run("json", func(t *testing.T) {
		var r struct {
			Count int
			Data  []struct{ TST int64 }
		}
		if err := json.Unmarshal(byArgs("--format", "json"), &r); err != nil || r.Count != 6 {
			t.Fatalf("json export: %v, %d points, want 6", err, r.Count)
		}
		if err := json.Unmarshal(byArgs("--format", "json", "--from", "2024-05-01T07:05:00", "--to", "1714547700"), &r); err != nil ||
			r.Count != 3 || r.Data[0].TST != 1714547100 || r.Data[2].TST != 1714547700 {
			t.Errorf("json export of 07:05 to 07:15: %v, %+v; want the three fixes of it, bounds included", err, r)
		}
	})
	t.Run("gpx segments", func(t *testing.T) {
		var doc struct {
			Segments []struct {
				Points []struct{} `xml:"trkpt"`
			} `xml:"trk>trkseg"`
		}
		if err := xml.Unmarshal(byArgs("--format", "gpx", "--gap", "600"), &doc); err != nil || len(doc.Segments) != 2 ||
			len(doc.Segments[0].Points) != 4 || len(doc.Segments[1].Points) != 2 {
			t.Errorf("gpx with --gap 600: %v, %+v; want segments of 4 and 2 points", err, doc)
		}
	})
	t.Run("rec", func(t *testing.T) {
		lines := strings.SplitAfter(string(byArgs("--format", "rec")), "\n")
		lines = lines[:len(lines)-1] // after the last line break
		if len(lines) != len(sent)-1 {
			t.Fatalf("%d rec lines, want %d:\n%s", len(lines), len(sent)-1, strings.Join(lines, ""))
		}
		want := map[string]string{} // payload -> topic column
		for _, m := range sent[:len(sent)-1] {
			rel := strings.TrimPrefix(strings.TrimPrefix(m.topic, "owntracks/alice/phone"), "/")
			switch {
			case strings.Contains(m.payload, `"lwt"`):
				rel = "lwt"
			case rel == "":
				rel = "*"
			}
			want[m.payload] = rel
		}
		var prev time.Time
		for _, line := range lines {
			cols := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
			if len(cols) != 3 || len(cols[1]) != 18 {
				t.Fatalf("rec line %q: want time, topic padded to 18, payload", line)
			}
			tm, err := time.Parse("2006-01-02T15:04:05Z", cols[0])
			if err != nil || tm.Before(prev) {
				t.Errorf("rec line %q: time %v (%v), before %v", line, tm, err, prev)
			}
			prev = tm
			var p struct{ TST int64 }
			if err := json.Unmarshal([]byte(cols[2]), &p); err != nil || p.TST != tm.Unix() {
				t.Errorf("rec line %q: payload %v, tst %d; want JSON with the line's time", line, err, p.TST)
			}
			rel, ok := want[cols[2]]
			if !ok {
				t.Errorf("rec line %q: payload not one that was sent", line)
			} else if got := strings.TrimRight(cols[1], " "); got != rel {
				t.Errorf("rec line %q: topic %q, want %q", line, got, rel)
			}
			delete(want, cols[2])
		}
		if len(want) > 0 {
			t.Errorf("not exported: %v", want)
		}
		if got := byArgs("--format", "rec", "--from", "2024-05-01", "--to", "2024-05-01"); !bytes.Equal(got, byArgs("--format", "rec")) {
			t.Errorf("rec of 2024-05-01 differs from rec of everything (all of it is that day)")
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			dir  string
			args []string
			want string
		}{
			{dir, []string{"--user", "alice", "--device", "phone", "--format", "pdf"}, "unsupported format"},
			{dir, []string{"--user", "alice"}, "--user and --device"},
			{dir, []string{"--user", "alice", "--device", "phone", "--from", "yesterday"}, "--from"},
			{dir, []string{"--user", "alice", "--device", "phone", "--format", "csv", "--fields", ","}, "fields"},
			{filepath.Join(dir, "nowhere"), []string{"--user", "alice", "--device", "phone"}, "no wherehouse store"},
		} {
			out, errOut, err := exportCLI(t, tc.dir, tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(string(errOut), tc.want) || len(out) > 0 {
				t.Errorf("export %v: %v, stderr %q, stdout %q; want a failure saying %q and no output", tc.args, err, errOut, out, tc.want)
			}
		}
		if fileExists(filepath.Join(dir, "nowhere")) {
			t.Error("export created a data directory")
		}
	})
}

// TestExportCLIRefusedWhileServing checks that the control socket reports
// bad options as the direct path does.
func TestExportCLIRefusedWhileServing(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "alice", "--device", "phone", "--format", "pdf"}, "unsupported format"},
		{[]string{"--user", "alice", "--device", "phone", "--format", "xml", "--fields", ","}, "fields"},
	} {
		out, errOut, err := exportCLI(t, dir, tc.args...)
		if err == nil || !strings.Contains(string(errOut), tc.want) || len(out) > 0 {
			t.Errorf("export %v: %v, stderr %q, stdout %q; want a failure saying %q", tc.args, err, errOut, out, tc.want)
		}
	}
	// A device without data: an empty document, not an error.
	out, errOut, err := exportCLI(t, dir, "--user", "nobody", "--device", "none", "--format", "geojson")
	if err != nil || string(out) != `{"type":"FeatureCollection","features":[]}` {
		t.Errorf("export of nothing: %v %s, %q", err, errOut, out)
	}
}
