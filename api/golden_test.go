package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// exportFixture is one day of alice/phone (and a little around it).
const exportFixture = "../fixtures/export/alice-phone.jsonl"

// The day of the fixture, as /api/0/locations and Export take it.
const (
	goldenDay  = "from=2024-05-01&to=2024-05-01"
	goldenFrom = 1714521600 // 2024-05-01T00:00:00Z
	goldenTo   = goldenFrom + 86400 - 1
)

// loadExportFixture stores the fixture's messages as the ingest pipeline
// parses them.
func loadExportFixture(t testing.TB, store storage.Messages) {
	t.Helper()
	f, err := os.Open(exportFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []storage.Message
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Topic    string          `json:"topic"`
			Received int64           `json:"received"`
			Payload  json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v in %s", exportFixture, err, sc.Bytes())
		}
		payload := []byte(line.Payload)
		if payload[0] == '"' { // a payload that spans lines, as a string
			var s string
			json.Unmarshal(payload, &s)
			payload = []byte(s)
		}
		m, err := recorder.Parse(line.Topic, payload, time.UnixMilli(line.Received))
		if err != nil {
			t.Fatalf("%s: %v in %s", exportFixture, err, payload)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// goldenCase is one rendering of the fixture: through /api/0/locations
// with query (after the day's range), or through Export when query is "".
type goldenCase struct {
	file        string // in testdata/golden
	query       string
	format      string // of Export, with gap
	gap         int64
	contentType string
	disposition string
}

var goldenCases = []goldenCase{
	{file: "json.json", query: "format=json", format: "json", contentType: "application/json"},
	{file: "json-fields.json", query: "fields=tst,lat,lon,isotst", format: "json", contentType: "application/json"},
	{file: "geojson.json", query: "format=geojson", format: "geojson", contentType: "application/json"},
	{file: "geojsonpoi.json", query: "format=geojsonpoi", format: "geojsonpoi", contentType: "application/json"},
	{file: "linestring.json", query: "format=linestring", format: "linestring", contentType: "application/json"},
	{file: "linestring-gap.json", query: "format=linestring&gap=1800", format: "linestring", gap: 1800, contentType: "application/json"},
	{file: "gpx.gpx", query: "format=gpx", format: "gpx", contentType: "application/gpx+xml",
		disposition: `attachment; filename="alice-phone-2024-05-01-2024-05-01.gpx"`},
	{file: "gpx-gap.gpx", query: "format=gpx&gap", format: "gpx", gap: defaultGap, contentType: "application/gpx+xml",
		disposition: `attachment; filename="alice-phone-2024-05-01-2024-05-01.gpx"`},
	{file: "kml.kml", query: "format=kml", format: "kml", contentType: "application/vnd.google-earth.kml+xml",
		disposition: `attachment; filename="alice-phone-2024-05-01-2024-05-01.kml"`},
	{file: "kml-gap.kml", query: "format=kml&gap=3600", format: "kml", gap: 3600, contentType: "application/vnd.google-earth.kml+xml",
		disposition: `attachment; filename="alice-phone-2024-05-01-2024-05-01.kml"`},
	{file: "csv.csv", query: "format=csv", format: "csv", contentType: "text/csv; charset=utf-8",
		disposition: `attachment; filename="alice-phone-2024-05-01-2024-05-01.csv"`},
	{file: "xml.xml", query: "format=xml", format: "xml", contentType: "application/xml; charset=utf-8"},
	{file: "xml-fields.xml", query: "format=xml&fields=isotst,_type,lat,lon,poi,missing,my%20note", format: "xml", contentType: "application/xml; charset=utf-8"},
	{file: "rec.rec", format: "rec"},
}

// TestGolden renders the fixture in every format through the real handler
// (and rec through Export) and compares with testdata/golden; -update
// rewrites the files. Each body is also checked to parse as its format.
func TestGolden(t *testing.T) {
	a := newWebAPI(t)
	loadExportFixture(t, a.store)
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			var got []byte
			if tc.query == "" {
				var buf bytes.Buffer
				if err := Export(context.Background(), a.store, a.Version, ExportOptions{User: "alice", Device: "phone",
					From: goldenFrom, To: goldenTo, Format: tc.format, Gap: tc.gap}, &buf); err != nil {
					t.Fatal(err)
				}
				got = buf.Bytes()
			} else {
				w := a.do(t, request{method: http.MethodGet, path: "/api/0/locations?user=alice&device=phone&" + goldenDay + "&" + tc.query,
					basic: [2]string{"alice", alicePassword}})
				if w.Code != http.StatusOK {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				if ct := w.Header().Get("Content-Type"); ct != tc.contentType {
					t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
				}
				if cd := w.Header().Get("Content-Disposition"); cd != tc.disposition {
					t.Errorf("Content-Disposition %q, want %q", cd, tc.disposition)
				}
				got = w.Body.Bytes()
			}
			checkWellFormed(t, tc.file, got)
			compareGolden(t, tc.file, normalizeGolden(got, a.Version))
		})
	}
}

// normalizeGolden replaces what changes between builds: the version.
func normalizeGolden(body []byte, version string) []byte {
	body = bytes.ReplaceAll(body, []byte(`"version":"`+version+`"`), []byte(`"version":"VERSION"`))
	return bytes.ReplaceAll(body, []byte(`creator="wherehouse `+version+`"`), []byte(`creator="wherehouse VERSION"`))
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./api/ -run Golden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./api/ -run Golden -update rewrites it after a wanted change):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// checkWellFormed parses a body as its file's format.
func checkWellFormed(t *testing.T, name string, body []byte) {
	t.Helper()
	switch filepath.Ext(name) {
	case ".json":
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("not JSON: %v", err)
		}
	case ".gpx", ".kml", ".xml":
		dec := xml.NewDecoder(bytes.NewReader(body))
		for {
			_, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("not XML: %v", err)
				break
			}
		}
	case ".csv":
		if _, err := csv.NewReader(bytes.NewReader(body)).ReadAll(); err != nil {
			t.Errorf("not CSV: %v", err)
		}
	case ".rec":
		for _, line := range strings.SplitAfter(string(body), "\n") {
			if line == "" {
				continue
			}
			if _, err := parseRecLine(line); err != nil {
				t.Errorf("%v: %q", err, line)
			}
		}
	}
}

// recLine is a line of a .rec file, read back.
type recLine struct {
	time    time.Time
	topic   string
	payload json.RawMessage
}

func parseRecLine(line string) (recLine, error) {
	line, ok := strings.CutSuffix(line, "\n")
	if !ok {
		return recLine{}, errors.New("no line break")
	}
	parts := strings.Split(line, "\t")
	if len(parts) != 3 {
		return recLine{}, errors.New("not three tab-separated columns")
	}
	tm, err := time.Parse("2006-01-02T15:04:05Z", parts[0])
	if err != nil {
		return recLine{}, err
	}
	if len(parts[1]) < recTopicWidth {
		return recLine{}, errors.New("topic column narrower than 18")
	}
	if !json.Valid([]byte(parts[2])) {
		return recLine{}, errors.New("payload is not JSON")
	}
	return recLine{tm, strings.TrimRight(parts[1], " "), json.RawMessage(parts[2])}, nil
}

// TestExportMatchesAPI checks that the CLI's Export writes what
// /api/0/locations serves, in every format.
func TestExportMatchesAPI(t *testing.T) {
	a := newWebAPI(t)
	loadExportFixture(t, a.store)
	for _, tc := range goldenCases {
		if tc.query == "" {
			continue
		}
		t.Run(tc.file, func(t *testing.T) {
			w := a.do(t, request{method: http.MethodGet, path: "/api/0/locations?user=alice&device=phone&" + goldenDay + "&" + tc.query,
				basic: [2]string{"alice", alicePassword}})
			fields := ""
			if _, v, ok := strings.Cut(tc.query, "fields="); ok {
				fields = strings.ReplaceAll(v, "%20", " ")
			}
			var buf bytes.Buffer
			if err := Export(context.Background(), a.store, a.Version, ExportOptions{User: "alice", Device: "phone",
				From: goldenFrom, To: goldenTo, Format: tc.format, Fields: fields, Gap: tc.gap}, &buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), w.Body.Bytes()) {
				t.Errorf("Export:\n%s\nAPI:\n%s", buf.Bytes(), w.Body)
			}
		})
	}
}

// TestRecExport checks the rec lines: every message type of the device
// in tst order, read back to the stored payloads, with the Recorder's
// topic column.
func TestRecExport(t *testing.T) {
	a := newWebAPI(t)
	loadExportFixture(t, a.store)
	var buf bytes.Buffer
	if err := Export(context.Background(), a.store, a.Version, ExportOptions{User: "alice", Device: "phone", From: 0, To: 1 << 40, Format: "rec"}, &buf); err != nil {
		t.Fatal(err)
	}
	var topics []string
	var last time.Time
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		l, err := parseRecLine(line)
		if err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if l.time.Before(last) {
			t.Errorf("line %q before the one above it", line)
		}
		last = l.time
		topics = append(topics, l.topic)
		var m struct {
			Type string `json:"_type"`
		}
		json.Unmarshal(l.payload, &m)
		if m.Type == "" {
			t.Errorf("payload without _type: %s", l.payload)
		}
	}
	want := []string{"*", "*", "*", "event", "*", "*", "lwt", "info", "status", "*", "waypoint", "*", "*"}
	if strings.Join(topics, " ") != strings.Join(want, " ") {
		t.Errorf("topics %v, want %v", topics, want)
	}
}

func TestRecTopic(t *testing.T) {
	for _, tc := range []struct{ topic, typ, want string }{
		{"owntracks/alice/phone", "location", "*"},
		{"owntracks/alice/phone", "lwt", "lwt"},
		{"owntracks/alice/phone/event", "transition", "event"},
		{"owntracks/alice/phone/waypoints", "waypoints", "waypoints"},
		{"owntracks/alice/phone/a/b", "x", "a/b"},
		{"/owntracks/alice/phone/info", "card", "info"},
		{"owntracks/alice/phone/pico", "location", "*"},
		{"owntracks/alice/phone/", "x", "-"},
		{"", "location", "*"},
	} {
		if got := recTopic(&storage.Message{Topic: tc.topic, Type: tc.typ}); got != tc.want {
			t.Errorf("recTopic(%q, %s) = %q, want %q", tc.topic, tc.typ, got, tc.want)
		}
	}
}

// TestExportInvalid checks that options Export cannot serve are refused
// before anything is written.
func TestExportInvalid(t *testing.T) {
	a := newWebAPI(t)
	for _, opts := range []ExportOptions{
		{User: "alice", Device: "phone", Format: "pdf"},
		{User: "alice", Device: "phone", Format: "csv", Fields: ","},
		{User: "alice", Format: "json"},
		{User: "alice", Device: "phone", Format: "gpx", Gap: -1},
	} {
		var buf bytes.Buffer
		err := Export(context.Background(), a.store, a.Version, opts, &buf)
		if !errors.Is(err, ErrExportInvalid) || buf.Len() > 0 {
			t.Errorf("Export(%+v) = %v, wrote %q; want ErrExportInvalid and nothing", opts, err, buf.String())
		}
	}
	for _, q := range []string{"format=pdf", "format=gpx&gap=-5", "format=kml&gap=x", "format=xml&fields=,"} {
		w := a.do(t, request{method: http.MethodGet, path: "/api/0/locations?user=alice&device=phone&" + q, basic: [2]string{"alice", alicePassword}})
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", q, w.Code, w.Body)
		}
	}
}
