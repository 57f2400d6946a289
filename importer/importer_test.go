package importer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

var discard = slog.New(slog.DiscardHandler)

func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(context.Background(), t.TempDir(), discard)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// importFile imports one testdata file as src says.
func importFile(t *testing.T, im *importer.Importer, name string, src importer.Source) importer.Summary {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if src.Name == "" {
		src.Name = name
	}
	sum, err := im.Import(t.Context(), f, src, importer.RunOptions{Examples: -1})
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	return sum
}

// locations returns the stored locations of a device.
func locations(t *testing.T, s storage.Messages, user, device string) []storage.Message {
	t.Helper()
	var out []storage.Message
	err := s.Locations(t.Context(), storage.LocationQuery{User: user, Device: device, From: 0, To: 1 << 40}, func(m *storage.Message) error {
		m.Payload = bytes.Clone(m.Payload)
		out = append(out, *m)
		return nil
	})
	if err != nil {
		t.Fatalf("Locations: %v", err)
	}
	return out
}

func reasons(sum importer.Summary) map[string]int64 {
	out := map[string]int64{}
	for _, k := range sum.Skips {
		out[k.Reason] = k.Count
	}
	return out
}

func TestFormats(t *testing.T) {
	tests := []struct {
		file          string
		src           importer.Source // Format "" tests detection
		messages      int64
		locations     int // stored for user/device
		skipped       map[string]int64
		firstLocation string // a fragment of the first stored location's payload
	}{
		{"2024-05.rec", importer.Source{User: "alice", Device: "phone"}, 7, 3,
			map[string]int64{recorder.ReasonJSON: 1, importer.ReasonLine: 1}, `"tzname":"Europe/Berlin"`},
		{"walk.jsonl", importer.Source{User: "alice", Device: "phone"}, 5, 3,
			map[string]int64{recorder.ReasonJSON: 1, recorder.ReasonField: 1}, `"tst":1780299750`},
		{"locations-answer.json", importer.Source{User: "alice", Device: "phone"}, 2, 2,
			map[string]int64{recorder.ReasonField: 1, recorder.ReasonJSON: 1},
			`{"_type":"location","tid":"ph","tst":1714550400,"lat":52.520007,"lon":13.404954,"acc":12,"batt":81}`},
		{"capture.txt", importer.Source{Format: "owntracks"}, 4, 0,
			map[string]int64{recorder.ReasonTopic: 1}, ""},
		{"track.gpx", importer.Source{User: "alice", Device: "phone"}, 4, 4,
			map[string]int64{importer.ReasonTime: 1, importer.ReasonCoordinates: 1},
			`{"_type":"location","tid":"ne","tst":1714809570,"lat":52.5386,"lon":13.4241,"alt":41}`},
		{"points.geojson", importer.Source{User: "alice", Device: "phone"}, 7, 7,
			map[string]int64{importer.ReasonTime: 1, importer.ReasonCoordinates: 1},
			`{"_type":"location","tid":"ph","tst":1714550400,"lat":52.520007,"lon":13.404954,"acc":12,"alt":34,"vel":4,"batt":81}`},
		{"Records.json", importer.Source{User: "alice", Device: "phone"}, 4, 4,
			map[string]int64{importer.ReasonCoordinates: 1},
			`{"_type":"location","tid":"ne","tst":1486110600,"lat":35.6617253,"lon":139.6787215,"acc":8}`},
		{"Timeline.json", importer.Source{User: "alice", Device: "phone"}, 6, 6, map[string]int64{},
			`{"_type":"location","tid":"ne","tst":1714543440,"lat":52.5200066,"lon":13.404954}`},
		{"location-history.json", importer.Source{User: "alice", Device: "phone"}, 4, 4, map[string]int64{},
			`{"_type":"location","tid":"ne","tst":1714626600,"lat":52.5386,"lon":13.4241}`},
		{"Semantic-2019_JANUARY.json", importer.Source{User: "alice", Device: "phone"}, 8, 8,
			map[string]int64{importer.ReasonCoordinates: 1},
			`{"_type":"location","tid":"ne","tst":1546416000,"lat":52.516387,"lon":13.377702}`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			store := openStore(t)
			im := importer.New(store, importer.Options{})
			sum := importFile(t, im, tc.file, tc.src)
			if sum.Messages != tc.messages || sum.New != tc.messages || sum.Existing != 0 {
				t.Errorf("messages %d (new %d, existing %d), want %d all new", sum.Messages, sum.New, sum.Existing, tc.messages)
			}
			if got := reasons(sum); !equalCounts(got, tc.skipped) {
				t.Errorf("skipped %v, want %v (%+v)", got, tc.skipped, sum.Skips)
			}
			if sum.Bytes == 0 || sum.Files != 1 {
				t.Errorf("bytes %d, files %d", sum.Bytes, sum.Files)
			}
			locs := locations(t, store, "alice", "phone")
			if len(locs) != tc.locations {
				t.Fatalf("%d locations stored, want %d", len(locs), tc.locations)
			}
			if tc.firstLocation != "" && !strings.Contains(string(locs[0].Payload), tc.firstLocation) {
				t.Errorf("first location %s, want it to contain %s", locs[0].Payload, tc.firstLocation)
			}
			for _, m := range locs {
				if _, err := recorder.Parse(m.Topic, m.Payload, time.Now()); err != nil {
					t.Errorf("stored payload %s does not parse: %v", m.Payload, err)
				}
			}

			// Again: nothing new.
			again := importFile(t, im, tc.file, tc.src)
			if again.New != 0 || again.Existing != tc.messages {
				t.Errorf("second import: %d new, %d existing; want 0 and %d", again.New, again.Existing, tc.messages)
			}
		})
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRecLines checks what a .rec file's lines become.
func TestRecLines(t *testing.T) {
	store := openStore(t)
	im := importer.New(store, importer.Options{})
	sum := importFile(t, im, "2024-05.rec", importer.Source{User: "Alice", Device: "Phone", Format: "rec"})
	all := locations(t, store, "alice", "phone")
	if all[0].Received != 1714547523000 || all[0].TST != 1714547523 {
		t.Errorf("first location received %d tst %d", all[0].Received, all[0].TST)
	}
	if all[0].Topic != "owntracks/alice/phone" {
		t.Errorf("topic %q", all[0].Topic)
	}
	where := map[string][]string{}
	for _, k := range sum.Skips {
		where[k.Reason] = k.Where
	}
	if got := where[recorder.ReasonJSON]; len(got) != 1 || got[0] != "2024-05.rec:7" {
		t.Errorf("json skip at %v, want 2024-05.rec:7", got)
	}
	if got := where[importer.ReasonLine]; len(got) != 1 || got[0] != "2024-05.rec:8" {
		t.Errorf("line skip at %v, want 2024-05.rec:8", got)
	}
}

// TestSemanticLocationHistory checks what a Takeout Semantic Location
// History month becomes: each place visit's location at its start and its
// end, each activity's start location, the timed points of its
// simplifiedRawPath (not the untimed one, nor its waypointPath) and its end
// location; a visit without coordinates is skipped.
func TestSemanticLocationHistory(t *testing.T) {
	store := openStore(t)
	im := importer.New(store, importer.Options{})
	const name = "Semantic-2019_JANUARY.json"
	sum := importFile(t, im, name, importer.Source{User: "alice", Device: "phone"})

	location := func(clock, lat, lon, more string) string {
		at, err := time.Parse(time.RFC3339, "2019-01-02T"+clock+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`{"_type":"location","tid":"ne","tst":%d,"lat":%s,"lon":%s%s}`, at.Unix(), lat, lon, more)
	}
	want := []string{
		location("08:00:00", "52.516387", "13.377702", ""),            // visit: startTimestamp 08:00:00.123Z
		location("09:30:12", "52.516387", "13.377702", ""),            // its endTimestamp
		location("09:30:12", "52.516421", "13.378015", ""),            // activity: startLocation
		location("09:36:05", "52.5171563", "13.3902211", `,"acc":10`), // simplifiedRawPath: timestamp
		location("09:44:51", "52.518942", "13.4001877", `,"acc":13`),  // timestampMs 1546422291330
		location("09:52:40", "52.520811", "13.409443", ""),            // endLocation
		location("09:52:40", "52.5208066", "13.409496", ""),           // visit: startTimestampMs
		location("17:00:00", "52.5208066", "13.409496", ""),           // its endTimestampMs
	}
	var got []string
	for _, m := range locations(t, store, "alice", "phone") {
		got = append(got, string(m.Payload))
		if m.Received != m.TST*1000 || m.Topic != "owntracks/alice/phone" {
			t.Errorf("%s stored with received %d, topic %q", m.Payload, m.Received, m.Topic)
		}
	}
	// The same tst twice: the store's order of those is not defined, the
	// payloads' order is (same prefix and tst width).
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if sum.Messages != int64(len(want)) || sum.Skipped != 1 || len(sum.Skips) != 1 {
		t.Fatalf("%d messages, %d skipped %+v; want %d and 1", sum.Messages, sum.Skipped, sum.Skips, len(want))
	}
	k := sum.Skips[0]
	if k.Reason != importer.ReasonCoordinates || !strings.Contains(k.Detail, "placeVisit") ||
		len(k.Where) != 1 || k.Where[0] != name+"#4" {
		t.Errorf("skip %+v, want %s of the placeVisit at %s#4", k, importer.ReasonCoordinates, name)
	}
}

// TestDetect checks format detection by name and content.
func TestDetect(t *testing.T) {
	for _, tc := range []struct{ name, head, want string }{
		{"x.rec", "", importer.FormatRec},
		{"x.GPX", "", importer.FormatGPX},
		{"x.geojson", "", importer.FormatGeoJSON},
		{"x.jsonl", "", importer.FormatOwnTracks},
		{"export", "2024-05-01T07:12:03Z\t*                 \t{}", importer.FormatRec},
		{"x.xml", `<?xml version="1.0"?><gpx version="1.1">`, importer.FormatGPX},
		{"x.json", "\xef\xbb\xbf {\"type\":\"FeatureCollection\",\"features\":[]}", importer.FormatGeoJSON},
		{"Records.json", `{"locations":[{"latitudeE7":1,"longitudeE7":2}]}`, importer.FormatTakeout},
		{"Timeline.json", `{"semanticSegments":[]}`, importer.FormatTakeout},
		{"location-history.json", `[{"endTime":"x","startTime":"y"}]`, importer.FormatTakeout},
		{"2019_JANUARY.json", `{"timelineObjects":[{"activitySegment":{"startLocation":{}}}]}`, importer.FormatTakeout},
		{"x.json", `{"_type":"location"}`, importer.FormatOwnTracks},
		{"x.json", `[{"_type":"location"}]`, importer.FormatOwnTracks},
		{"x.txt", `owntracks/a/b {"_type":"lwt"}`, importer.FormatOwnTracks},
		{"x.bin", "\x89PNG", ""},
		{"x.json", `{"foo":1}`, ""},
	} {
		if got := importer.Detect(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, want %q", tc.name, tc.head, got, tc.want)
		}
	}
}

// TestInputErrors checks what stops an import, and that it says why.
func TestInputErrors(t *testing.T) {
	store := openStore(t)
	im := importer.New(store, importer.Options{})
	for _, tc := range []struct {
		name  string
		src   importer.Source
		input string
		want  string
	}{
		{"no owner", importer.Source{Name: "track.gpx"}, "<gpx></gpx>", "--user and --device"},
		{"unknown format", importer.Source{Name: "x", Format: "kml"}, "", "unknown format"},
		{"undetectable", importer.Source{Name: "x.bin"}, "\x89PNG", "cannot tell the format"},
		{"broken xml", importer.Source{Name: "x.gpx", User: "a", Device: "b"}, "<gpx><trk></gpx>", "not well-formed"},
		{"truncated json", importer.Source{Name: "Records.json", User: "a", Device: "b"}, `{"locations":[{"latitudeE7":1`, "unexpected end"},
		{"not takeout", importer.Source{Name: "x.json", Format: "takeout", User: "a", Device: "b"}, `{"foo":[]}`, "not Google location history"},
		{"lines without topic", importer.Source{Name: "x.jsonl"}, `{"_type":"lwt"}`, "--user and --device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := im.Import(t.Context(), strings.NewReader(tc.input), tc.src, importer.RunOptions{})
			if !errors.Is(err, importer.ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInput saying %q", err, tc.want)
			}
		})
	}
}

// TestStoreFailureStops checks that a store error ends the import with
// that error.
func TestStoreFailureStops(t *testing.T) {
	s, err := embedded.Open(t.Context(), t.TempDir(), discard)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	im := importer.New(s, importer.Options{Batch: 2})
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, `{"_type":"location","lat":1,"lon":2,"tst":%d}`+"\n", 1700000000+i)
	}
	_, err = im.Import(t.Context(), strings.NewReader(lines.String()), importer.Source{Name: "x.jsonl", User: "a", Device: "b"}, importer.RunOptions{})
	if err == nil || errors.Is(err, importer.ErrInput) {
		t.Errorf("err = %v, want the store's error", err)
	}
}

// TestSummaryJSON pins the summary's JSON names (the control socket and
// the admin API answer with it).
func TestSummaryJSON(t *testing.T) {
	b, _ := json.Marshal(importer.Summary{Files: 1, Messages: 3, New: 2, Existing: 1, Skipped: 1,
		Skips: []importer.Skips{{Reason: "json", Count: 1, Detail: "d", Where: []string{"f:1"}}}})
	want := `{"files":1,"bytes":0,"messages":3,"new":2,"existing":1,"skipped":1,"skips":[{"reason":"json","count":1,"detail":"d","where":["f:1"]}]}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
}

// TestImportedHook checks what the fence engine is told after a batch:
// the newest tst of the messages it evaluates, per device.
func TestImportedHook(t *testing.T) {
	store := openStore(t)
	got := map[[2]string]int64{}
	im := importer.New(store, importer.Options{Batch: 2, Imported: func(_ context.Context, newest map[[2]string]int64) error {
		for k, tst := range newest {
			got[k] = max(got[k], tst)
		}
		return nil
	}})
	importFile(t, im, "capture.txt", importer.Source{})
	want := map[[2]string]int64{{"alice", "pixel7"}: 1714550420, {"bob", "iphone"}: 1714550430}
	if len(got) != len(want) || got[[2]string{"alice", "pixel7"}] != 1714550420 || got[[2]string{"bob", "iphone"}] != 1714550430 {
		t.Errorf("Imported got %v, want %v", got, want)
	}
}
