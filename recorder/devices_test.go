package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// msg parses payload as received on topic at ms (UNIX milliseconds) over
// transport, as the pipeline would.
func msg(t *testing.T, topic, payload string, ms int64, transport string) storage.Message {
	t.Helper()
	m, err := recorder.Parse(topic, []byte(payload), time.UnixMilli(ms))
	if err != nil {
		t.Fatalf("parse %s: %v", payload, err)
	}
	m.Transport = transport
	return m
}

func device(t *testing.T, s storage.Devices, user, dev string) storage.Device {
	t.Helper()
	d, err := s.Device(t.Context(), user, dev)
	if err != nil {
		t.Fatalf("Device(%s, %s): %v", user, dev, err)
	}
	return d
}

// regions returns the waypoints of a waypoints payload as generic values.
func regions(t *testing.T, raw json.RawMessage) []map[string]any {
	t.Helper()
	var w struct {
		Type      string           `json:"_type"`
		Waypoints []map[string]any `json:"waypoints"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatalf("waypoints %s: %v", raw, err)
	}
	if w.Type != "waypoints" {
		t.Errorf("waypoints _type = %q, want waypoints", w.Type)
	}
	return w.Waypoints
}

const (
	loc1 = `{"_type":"location","lat":52.1,"lon":13.1,"tst":1700000000,"tid":"ap"}`
	loc2 = `{"_type":"location","lat":52.2,"lon":13.2,"tst":1700000060,"tid":"aq"}`
	lwt  = `{"_type":"lwt"}`
)

func TestDeviceTrackerOnline(t *testing.T) {
	const topic = "owntracks/alice/phone"
	tests := []struct {
		name       string
		batches    [][]string // payloads, one batch per slice, arriving 1s apart
		wantOnline bool
	}{
		{"location", [][]string{{loc1}}, true},
		{"lwt after location", [][]string{{loc1}, {lwt}}, false},
		{"lwt after location, one batch", [][]string{{loc1, lwt}}, false},
		{"location after lwt", [][]string{{loc1}, {lwt}, {loc2}}, true},
		{"location after lwt, one batch", [][]string{{lwt, loc2}}, true},
		{"lwt only", [][]string{{lwt}}, false},
		{"status after lwt", [][]string{{lwt}, {`{"_type":"status","android":{}}`}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t)
			tr := recorder.NewDeviceTracker(store, discard)
			ms := int64(1_700_000_000_000)
			for _, batch := range tc.batches {
				var msgs []storage.Message
				for _, p := range batch {
					ms += 1000
					msgs = append(msgs, msg(t, topic, p, ms, "mqtt"))
				}
				tr.Observe(t.Context(), msgs)
			}
			d := device(t, store, "alice", "phone")
			if d.Online != tc.wantOnline {
				t.Errorf("Online = %v, want %v", d.Online, tc.wantOnline)
			}
			if d.LastSeen != ms {
				t.Errorf("LastSeen = %d, want %d (the newest arrival)", d.LastSeen, ms)
			}
			if d.Transport != "mqtt" {
				t.Errorf("Transport = %q, want mqtt", d.Transport)
			}
		})
	}
}

func TestDeviceTrackerLastSeen(t *testing.T) {
	store := openStore(t)
	tr := recorder.NewDeviceTracker(store, discard)
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/Alice/Phone", loc1, 5000, "mqtt")})
	// A message received with an older time (a clock step, another
	// transport) never moves LastSeen back, but is the newest transport.
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone/event",
		`{"_type":"transition","event":"enter","desc":"Home","lat":52,"lon":13,"tst":1700000000,"wtst":1,"tid":"zz"}`, 4000, "http")})
	d := device(t, store, "alice", "phone")
	want := storage.Device{User: "alice", Device: "phone", Online: true, LastSeen: 5000, Transport: "http", TID: "ap"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("device = %+v, want %+v", d, want)
	}
}

func TestDeviceTrackerTID(t *testing.T) {
	store := openStore(t)
	tr := recorder.NewDeviceTracker(store, discard)
	steps := []struct {
		topic, payload, wantTID string
	}{
		{"owntracks/alice/phone", loc1, "ap"},
		{"owntracks/alice/phone", loc2, "aq"},
		{"owntracks/alice/phone", `{"_type":"location","lat":1,"lon":1,"tst":1700000100}`, "aq"}, // no tid: keep
		{"owntracks/alice/phone/info", `{"_type":"card","name":"Alice","tid":"al"}`, "al"},
		{"owntracks/alice/phone/info", `{"_type":"card","name":"Alice"}`, "al"}, // no tid: keep
		{"owntracks/alice/phone/event", `{"_type":"transition","event":"leave","tst":1700000200,"tid":"xx"}`, "al"},
	}
	for i, st := range steps {
		tr.Observe(t.Context(), []storage.Message{msg(t, st.topic, st.payload, int64(i+1)*1000, "mqtt")})
		if d := device(t, store, "alice", "phone"); d.TID != st.wantTID {
			t.Errorf("after %s: TID = %q, want %q", st.payload, d.TID, st.wantTID)
		}
	}
}

func TestDeviceTrackerCard(t *testing.T) {
	const card = `{"_type":"card","name":"Alice","face":"aGVsbG8=","tid":"al"}`
	for _, topic := range []string{
		"owntracks/alice/phone",      // iOS: retained on the base topic
		"owntracks/alice/phone/info", // the others
	} {
		t.Run(topic, func(t *testing.T) {
			store := openStore(t)
			tr := recorder.NewDeviceTracker(store, discard)
			tr.Observe(t.Context(), []storage.Message{msg(t, topic, card, 1000, "mqtt"), msg(t, "owntracks/alice/phone", loc1, 2000, "mqtt")})
			d := device(t, store, "alice", "phone")
			if string(d.Card) != card {
				t.Errorf("Card = %s, want %s", d.Card, card)
			}
			if d.TID != "ap" {
				t.Errorf("TID = %q, want ap (the location came after the card)", d.TID)
			}
			// A newer card replaces the old one; a later location keeps it.
			const card2 = `{"_type":"card","name":"Alice B."}`
			tr.Observe(t.Context(), []storage.Message{msg(t, topic, card2, 3000, "mqtt"), msg(t, "owntracks/alice/phone", loc2, 4000, "mqtt")})
			if d := device(t, store, "alice", "phone"); string(d.Card) != card2 {
				t.Errorf("Card = %s, want %s", d.Card, card2)
			}
		})
	}
}

func TestDeviceTrackerWaypoints(t *testing.T) {
	const topic = "owntracks/alice/phone/waypoint"
	type step struct {
		payload  string
		wantDesc []string // descs of the current set, in order; nil: no set
	}
	home := `{"_type":"waypoint","desc":"Home","lat":52,"lon":13,"rad":50,"tst":1600000000}`
	work := `{"_type":"waypoint","desc":"Work","lat":52.5,"lon":13.4,"rad":100,"tst":1600000100,"rid":"w1"}`
	tests := []struct {
		name  string
		steps []step
	}{
		{"set", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `,` + work + `]}`, []string{"Home", "Work"}},
		}},
		{"single without a set", []step{
			{home, []string{"Home"}},
		}},
		{"single appended", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `]}`, []string{"Home"}},
			{work, []string{"Home", "Work"}},
		}},
		{"same tst replaces", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `,` + work + `]}`, []string{"Home", "Work"}},
			{`{"_type":"waypoint","desc":"Home 2","lat":52,"lon":13,"rad":80,"tst":1600000000}`, []string{"Home 2", "Work"}},
		}},
		{"same rid replaces", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `,` + work + `]}`, []string{"Home", "Work"}},
			{`{"_type":"waypoint","desc":"Office","lat":52.5,"lon":13.4,"rad":100,"tst":1600000999,"rid":"w1"}`, []string{"Home", "Office"}},
		}},
		{"new set replaces all", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `,` + work + `]}`, []string{"Home", "Work"}},
			{`{"_type":"waypoints","waypoints":[]}`, []string{}},
		}},
		{"malformed set ignored", []step{
			{`{"_type":"waypoints","waypoints":[` + home + `]}`, []string{"Home"}},
			{`{"_type":"waypoints","waypoints":"none"}`, []string{"Home"}},
			{`{"_type":"waypoints"}`, []string{"Home"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t)
			tr := recorder.NewDeviceTracker(store, discard)
			for i, st := range tc.steps {
				tr.Observe(t.Context(), []storage.Message{msg(t, topic, st.payload, int64(i+1)*1000, "mqtt")})
				d := device(t, store, "alice", "phone")
				got := []string{}
				for _, w := range regions(t, d.Waypoints) {
					desc, _ := w["desc"].(string)
					got = append(got, desc)
				}
				if !reflect.DeepEqual(got, st.wantDesc) {
					t.Errorf("step %d (%s): regions = %q, want %q", i, st.payload, got, st.wantDesc)
				}
			}
		})
	}
}

func TestDeviceTrackerOtherTypes(t *testing.T) {
	for _, p := range []string{
		`{"_type":"transition","event":"enter","tst":1700000000}`,
		`{"_type":"beacon","uuid":"x","major":1,"minor":2,"tst":1700000000}`,
		`{"_type":"status","android":{"hib":1}}`,
		`{"_type":"steps","steps":100,"from":1,"to":2}`,
		`{"_type":"configuration","mode":0}`,
		`{"_type":"somethingnew","x":1}`,
	} {
		store := openStore(t)
		tr := recorder.NewDeviceTracker(store, discard)
		tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone/x", p, 1234, "http")})
		d := device(t, store, "alice", "phone")
		want := storage.Device{User: "alice", Device: "phone", Online: true, LastSeen: 1234, Transport: "http"}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("after %s: device = %+v, want %+v", p, d, want)
		}
	}
}

// A cmd goes to the device: it must not mark the device seen or online.
func TestDeviceTrackerCmd(t *testing.T) {
	store := openStore(t)
	tr := recorder.NewDeviceTracker(store, discard)
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone/cmd", `{"_type":"cmd","action":"reportLocation"}`, 1000, "mqtt")})
	if _, err := store.Device(t.Context(), "alice", "phone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device after a cmd only: err = %v, want ErrNotFound", err)
	}
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone", lwt, 2000, "mqtt")})
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone/cmd", `{"_type":"cmd","action":"reportLocation"}`, 3000, "mqtt")})
	if d := device(t, store, "alice", "phone"); d.Online || d.LastSeen != 2000 {
		t.Errorf("after lwt, cmd: Online = %v, LastSeen = %d; want false, 2000", d.Online, d.LastSeen)
	}
}

// A new tracker (a restart) starts from what the store holds.
func TestDeviceTrackerRestart(t *testing.T) {
	store := openStore(t)
	const card = `{"_type":"card","name":"Alice","tid":"al"}`
	recorder.NewDeviceTracker(store, discard).Observe(t.Context(), []storage.Message{
		msg(t, "owntracks/alice/phone/info", card, 1000, "mqtt"),
		msg(t, "owntracks/alice/phone/waypoint", `{"_type":"waypoint","desc":"Home","lat":1,"lon":1,"rad":5,"tst":1}`, 1001, "mqtt"),
		msg(t, "owntracks/bob/tab", loc1, 1002, "mqtt"),
	})
	tr := recorder.NewDeviceTracker(store, discard)
	tr.Observe(t.Context(), []storage.Message{
		msg(t, "owntracks/alice/phone/waypoint", `{"_type":"waypoint","desc":"Work","lat":2,"lon":2,"rad":5,"tst":2}`, 2000, "http"),
		msg(t, "owntracks/alice/phone", lwt, 2001, "mqtt"),
	})
	d := device(t, store, "alice", "phone")
	if string(d.Card) != card || d.TID != "al" || d.Online || d.LastSeen != 2001 {
		t.Errorf("alice/phone = %+v", d)
	}
	if n := len(regions(t, d.Waypoints)); n != 2 {
		t.Errorf("alice/phone has %d regions, want 2", n)
	}
	all, err := store.ListDevices(t.Context(), "")
	if err != nil || len(all) != 2 || all[0].User != "alice" || all[1].User != "bob" {
		t.Errorf("ListDevices = %+v, %v; want alice/phone, bob/tab", all, err)
	}
}

// Through the pipeline: the tracker as a recorder observer.
func TestDeviceTrackerObserver(t *testing.T) {
	store := openStore(t)
	tr := recorder.NewDeviceTracker(store, discard)
	r := recorder.New(store, nil, recorder.NewMetrics(nil), discard, recorder.Options{})
	r.Observe(tr.Observe)
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(context.Background()) }()
	for _, in := range []recorder.Incoming{
		incoming("owntracks/alice/phone", `{"_type":"card","name":"Alice","face":"aGVsbG8=","tid":"al"}`),
		location("alice", "phone", 1700000000, "ap"),
		incoming("owntracks/alice/phone", lwt),
	} {
		in.Transport = "mqtt"
		if err := r.Store(t.Context(), in); err != nil {
			t.Fatalf("store %s: %v", in.Payload, err)
		}
	}
	r.Close() // Run returns after the last commit's observers
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after Close")
	}
	d := device(t, store, "alice", "phone")
	if d.Online || d.TID != "ap" || d.Transport != "mqtt" || len(d.Card) == 0 {
		t.Errorf("alice/phone = %+v; want offline, tid ap, transport mqtt, a card", d)
	}
}

// TestDeviceTrackerImport checks that imported history (often older than
// what the device sent since) changes device state only where it is newer,
// or where the device has no card or regions yet.
func TestDeviceTrackerImport(t *testing.T) {
	const (
		card    = `{"_type":"card","name":"Old","tid":"ol"}`
		regions = `{"_type":"waypoints","waypoints":[{"_type":"waypoint","desc":"Home","lat":52,"lon":13,"rad":50,"tst":1}]}`
	)
	store := openStore(t)
	tr := recorder.NewDeviceTracker(store, discard)
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone", loc2, 9000, "mqtt")})
	tr.Observe(t.Context(), []storage.Message{
		msg(t, "owntracks/alice/phone", lwt, 5000, recorder.TransportImport),
		msg(t, "owntracks/alice/phone", loc1, 6000, recorder.TransportImport),
		msg(t, "owntracks/alice/phone/info", card, 7000, recorder.TransportImport),
		msg(t, "owntracks/alice/phone/waypoints", regions, 7000, recorder.TransportImport),
	})
	d := device(t, store, "alice", "phone")
	if !d.Online || d.Transport != "mqtt" || d.LastSeen != 9000 || d.TID != "aq" {
		t.Errorf("older imported history changed the live state: %+v", d)
	}
	if !strings.Contains(string(d.Card), `"Old"`) || d.Waypoints == nil {
		t.Errorf("a device without card and regions did not take the imported ones: %+v", d)
	}
	// Newer than anything seen: it counts like live data.
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone", lwt, 10000, recorder.TransportImport)})
	if d := device(t, store, "alice", "phone"); d.Online || d.Transport != recorder.TransportImport || d.LastSeen != 10000 {
		t.Errorf("a newer imported Last Will: %+v", d)
	}
	// An older card does not replace the device's card.
	tr.Observe(t.Context(), []storage.Message{msg(t, "owntracks/alice/phone/info", `{"_type":"card","name":"Older"}`, 8000, recorder.TransportImport)})
	if d := device(t, store, "alice", "phone"); !strings.Contains(string(d.Card), `"Old"`) {
		t.Errorf("an older imported card replaced the card: %s", d.Card)
	}
}
