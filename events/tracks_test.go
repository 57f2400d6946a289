package events_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// trackCase is one entry of fixtures/tracks/tracks.json: a recorded-style
// track, the fence it is meant for and the events it must produce.
type trackCase struct {
	File  string `json:"file"`
	Fence struct {
		Name   string  `json:"name"`
		Lat    float64 `json:"lat"`
		Lon    float64 `json:"lon"`
		Radius float64 `json:"radius"`
	} `json:"fence"`
	Dwell  int64 `json:"dwell"`
	Events []struct {
		Event  string `json:"event"`
		TSTMin int64  `json:"tst_min"`
		TSTMax int64  `json:"tst_max"`
	} `json:"events"`
}

const tracksDir = "../fixtures/tracks"

// TestTracks replays every fixture track through the engine and a real
// store, one message at a time in file (arrival) order, and checks that
// exactly the expected events come out: no flapping at a jittery border,
// no transition from a low-accuracy or late fix, enter only after a dwell.
func TestTracks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tracksDir, "tracks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []trackCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.File, func(t *testing.T) {
			r := open(t, t.TempDir())
			r.addHome(func(f *storage.Fence) {
				f.Name, f.Radius, f.Dwell = tc.Fence.Name, tc.Fence.Radius, tc.Dwell
				f.Geometry = fmt.Appendf(nil, `{"type":"Point","coordinates":[%v,%v]}`, tc.Fence.Lon, tc.Fence.Lat)
			})
			for _, m := range readTrack(t, tc.File) {
				r.feed([]storage.Message{m})
			}
			r.close() // evaluates everything queued
			r = open(t, r.dir)
			defer r.close()
			var got []storage.Event
			r.store.Events(r.ctx, storage.EventQuery{User: "alice"}, func(ev *storage.Event) error {
				got = append(got, *ev)
				return nil
			})
			if len(got) != len(tc.Events) {
				t.Fatalf("got %d events %s, want %d", len(got), r.events(), len(tc.Events))
			}
			for i, want := range tc.Events {
				if got[i].Event != want.Event || got[i].TST < want.TSTMin || got[i].TST > want.TSTMax {
					t.Errorf("event %d: %s at %d, want %s in [%d, %d]", i, got[i].Event, got[i].TST, want.Event, want.TSTMin, want.TSTMax)
				}
			}
		})
	}
}

func readTrack(t *testing.T, name string) []storage.Message {
	t.Helper()
	f, err := os.Open(filepath.Join(tracksDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []storage.Message
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var p struct {
			TST int64   `json:"tst"`
			Lat float64 `json:"lat"`
			Lon float64 `json:"lon"`
			Acc float64 `json:"acc"`
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, storage.Message{
			User: "alice", Device: "phone", Topic: "owntracks/alice/phone", Type: "location",
			TST: p.TST, Received: p.TST * 1000, Lat: p.Lat, Lon: p.Lon, Acc: p.Acc, Transport: "mqtt", Payload: []byte(line),
		})
	}
	return out
}
