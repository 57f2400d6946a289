package recorder_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// received is the arrival time used by the parse tests; messages without a
// tst take it as their TST.
var received = time.Date(2024, 5, 1, 10, 0, 0, 123_000_000, time.UTC)

// arrival marks a want.tst that must equal the arrival time.
const arrival = -1

func readPayload(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkAllListed fails if a file in testdata/<dir> has no table row, so a
// payload added later is not silently left untested.
func checkAllListed(t *testing.T, dir string, listed []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(listed, filepath.Base(f)) {
			t.Errorf("testdata/%s/%s has no row in the table", dir, filepath.Base(f))
		}
	}
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		file          string
		topic         string
		user, device  string
		typ           string
		tst           int64 // arrival: the arrival time
		lat, lon      float64
		checkPosition bool
	}{
		{file: "android_location.json", topic: "owntracks/alice/pixel7",
			user: "alice", device: "pixel7", typ: "location", tst: 1714557120,
			lat: 52.5200066, lon: 13.404954, checkPosition: true},
		{file: "ios_location.json", topic: "owntracks/Bob/iPhone",
			user: "bob", device: "iphone", typ: "location", tst: 1714557200,
			lat: 48.856614, lon: 2.352222, checkPosition: true},
		{file: "location_pretty.json", topic: "owntracks/carol/tab",
			user: "carol", device: "tab", typ: "location", tst: 1714557400,
			lat: -33.8688, lon: 151.2093, checkPosition: true},
		{file: "location_extremes.json", topic: "owntracks/carol/tab",
			user: "carol", device: "tab", typ: "location", tst: 0,
			lat: -90, lon: 180, checkPosition: true},
		{file: "location_exponent.json", topic: "owntracks/carol/tab",
			user: "carol", device: "tab", typ: "location", tst: 1714557500,
			lat: 52.5, lon: -13.4, checkPosition: true},
		{file: "lwt_android.json", topic: "owntracks/alice/pixel7",
			user: "alice", device: "pixel7", typ: "lwt", tst: arrival},
		{file: "lwt_ios.json", topic: "owntracks/bob/iphone",
			user: "bob", device: "iphone", typ: "lwt", tst: 1714550000},
		{file: "card.json", topic: "owntracks/bob/iphone/info",
			user: "bob", device: "iphone", typ: "card", tst: arrival},
		// iOS publishes its card retained on the base topic too.
		{file: "card.json", topic: "owntracks/bob/iphone",
			user: "bob", device: "iphone", typ: "card", tst: arrival},
		{file: "transition.json", topic: "owntracks/alice/pixel7/event",
			user: "alice", device: "pixel7", typ: "transition", tst: 1714557300},
		{file: "waypoint.json", topic: "owntracks/alice/pixel7/waypoint",
			user: "alice", device: "pixel7", typ: "waypoint", tst: 1714000100},
		{file: "waypoints.json", topic: "owntracks/alice/pixel7/waypoints",
			user: "alice", device: "pixel7", typ: "waypoints", tst: arrival},
		{file: "unknown_type.json", topic: "owntracks/alice/pixel7/status",
			user: "alice", device: "pixel7", typ: "x-future", tst: arrival},
		{file: "encrypted.json", topic: "owntracks/alice/pixel7",
			user: "alice", device: "pixel7", typ: "encrypted", tst: arrival},
	}
	var listed []string
	for _, tc := range tests {
		listed = append(listed, tc.file)
		t.Run(tc.file+"@"+tc.topic, func(t *testing.T) {
			payload := readPayload(t, "good", tc.file)
			orig := bytes.Clone(payload)
			m, err := recorder.Parse(tc.topic, payload, received)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := storage.Message{
				User: tc.user, Device: tc.device, Topic: tc.topic, Type: tc.typ,
				TST: tc.tst, Received: received.UnixMilli(), Payload: orig,
			}
			if tc.tst == arrival {
				want.TST = received.Unix()
			}
			if m.User != want.User || m.Device != want.Device || m.Topic != want.Topic ||
				m.Type != want.Type || m.TST != want.TST || m.Received != want.Received {
				t.Errorf("Parse = %+v\nwant    %+v", brief(m), brief(want))
			}
			if tc.checkPosition && (m.Lat != tc.lat || m.Lon != tc.lon) {
				t.Errorf("position = %v,%v, want %v,%v", m.Lat, m.Lon, tc.lat, tc.lon)
			}
			if m.IsLocation() != (tc.typ == "location") {
				t.Errorf("IsLocation = %v for _type %q", m.IsLocation(), tc.typ)
			}
			if !bytes.Equal(m.Payload, orig) {
				t.Errorf("payload changed:\n got %q\nwant %q", m.Payload, orig)
			}
			if !bytes.Equal(payload, orig) {
				t.Errorf("Parse modified its input")
			}
		})
	}
	checkAllListed(t, "good", listed)
}

// brief leaves the payload out of a message for error output.
func brief(m storage.Message) storage.Message {
	m.Payload = nil
	return m
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		file   string
		reason string
	}{
		{file: "json_invalid_utf8.json", reason: recorder.ReasonJSON},
		{file: "json_truncated_utf8_sequence.json", reason: recorder.ReasonJSON},
		{file: "json_trailing_garbage.json", reason: recorder.ReasonJSON},
		{file: "json_two_objects.json", reason: recorder.ReasonJSON},
		{file: "json_top_level_array.json", reason: recorder.ReasonJSON},
		{file: "json_top_level_string.json", reason: recorder.ReasonJSON},
		{file: "json_top_level_null.json", reason: recorder.ReasonJSON},
		{file: "json_truncated.json", reason: recorder.ReasonJSON},
		{file: "json_trailing_comma.json", reason: recorder.ReasonJSON},
		{file: "json_nan_literal.json", reason: recorder.ReasonJSON},
		{file: "json_single_quotes.json", reason: recorder.ReasonJSON},
		{file: "json_not_json.json", reason: recorder.ReasonJSON},
		{file: "json_duplicate_type.json", reason: recorder.ReasonJSON},
		{file: "json_duplicate_type_escaped.json", reason: recorder.ReasonJSON},
		{file: "json_duplicate_key.json", reason: recorder.ReasonJSON},
		{file: "json_duplicate_key_same_value.json", reason: recorder.ReasonJSON},
		{file: "type_missing.json", reason: recorder.ReasonType},
		{file: "type_not_string.json", reason: recorder.ReasonType},
		{file: "type_null.json", reason: recorder.ReasonType},
		{file: "type_empty_string.json", reason: recorder.ReasonType},
		{file: "type_array.json", reason: recorder.ReasonType},
		{file: "field_location_missing_lat.json", reason: recorder.ReasonField},
		{file: "field_location_missing_lon.json", reason: recorder.ReasonField},
		{file: "field_location_missing_tst.json", reason: recorder.ReasonField},
		{file: "field_lat_91.json", reason: recorder.ReasonField},
		{file: "field_lat_below_minus_90.json", reason: recorder.ReasonField},
		{file: "field_lon_minus_181.json", reason: recorder.ReasonField},
		{file: "field_lat_string.json", reason: recorder.ReasonField},
		{file: "field_lat_null.json", reason: recorder.ReasonField},
		{file: "field_tst_string.json", reason: recorder.ReasonField},
		{file: "field_tst_negative.json", reason: recorder.ReasonField},
		{file: "field_tst_fractional.json", reason: recorder.ReasonField},
		{file: "field_tst_milliseconds.json", reason: recorder.ReasonField},
		{file: "field_tst_milliseconds_exponent.json", reason: recorder.ReasonField},
		{file: "field_lwt_tst_string.json", reason: recorder.ReasonField},
		{file: "field_lat_nonfinite.json", reason: recorder.ReasonJSON},
		{file: "field_acc_nonfinite.json", reason: recorder.ReasonJSON},
		{file: "field_acc_string.json", reason: recorder.ReasonField},
		{file: "field_batt_bool.json", reason: recorder.ReasonField},
		{file: "field_tid_number.json", reason: recorder.ReasonField},
		{file: "nonfinite_unknown_field.json", reason: recorder.ReasonJSON},
		{file: "nonfinite_nested.json", reason: recorder.ReasonJSON},
		{file: "empty.json", reason: recorder.ReasonEmpty},
		{file: "empty_whitespace.json", reason: recorder.ReasonEmpty},
	}
	var listed []string
	for _, tc := range tests {
		listed = append(listed, tc.file)
		t.Run(tc.file, func(t *testing.T) {
			payload := readPayload(t, "bad", tc.file)
			_, err := recorder.Parse("owntracks/alice/pixel7", payload, received)
			checkReject(t, err, tc.reason)
		})
	}
	checkAllListed(t, "bad", listed)
}

func checkReject(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse accepted it, want a %q rejection", reason)
	}
	if !errors.Is(err, recorder.ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid", err)
	}
	var re *recorder.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RejectError", err, err)
	}
	if re.Reason != reason {
		t.Errorf("reason = %q (%v), want %q", re.Reason, err, reason)
	}
}

func TestParseSize(t *testing.T) {
	// A card whose face image fills the payload to exactly n bytes.
	card := func(n int) []byte {
		const head, tail = `{"_type":"card","name":"Bob","face":"`, `"}`
		return []byte(head + strings.Repeat("A", n-len(head)-len(tail)) + tail)
	}
	tests := []struct {
		name   string
		size   int
		reason string // "" means accepted
	}{
		{"at the limit", recorder.MaxPayload, ""},
		{"one byte over", recorder.MaxPayload + 1, recorder.ReasonSize},
		{"a megabyte", 1 << 20, recorder.ReasonSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := card(tc.size)
			if len(payload) != tc.size {
				t.Fatalf("built %d bytes, want %d", len(payload), tc.size)
			}
			m, err := recorder.Parse("owntracks/bob/iphone/info", payload, received)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if m.Type != "card" || !bytes.Equal(m.Payload, payload) {
					t.Errorf("Parse = type %q, %d payload bytes", m.Type, len(m.Payload))
				}
				return
			}
			checkReject(t, err, tc.reason)
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic        string
		user, device string // both empty: rejected with ReasonTopic
	}{
		{"owntracks/alice/pixel7", "alice", "pixel7"},
		{"owntracks/Alice/Pixel7", "alice", "pixel7"},
		{"owntracks/ALICE/PIXEL7/event", "alice", "pixel7"},
		{"owntracks/bob/iphone/info", "bob", "iphone"},
		{"owntracks/bob/iphone/waypoints", "bob", "iphone"},
		{"owntracks/bob/iphone/cmd", "bob", "iphone"},
		{"owntracks/bob/iphone/a/b/c", "bob", "iphone"},
		{"owntracks/j.doe_1/my-phone", "j.doe_1", "my-phone"},
		{"owntracks/" + strings.Repeat("u", 128) + "/d", strings.Repeat("u", 128), "d"},

		{"", "", ""},
		{"owntracks", "", ""},
		{"owntracks/alice", "", ""},
		{"owntracks/alice/", "", ""},
		{"owntracks//pixel7", "", ""},
		{"/owntracks/alice/pixel7", "", ""},
		{"OwnTracks/alice/pixel7", "", ""},
		{"location/alice/pixel7", "", ""},
		{"owntracksx/alice/pixel7", "", ""},
		{"owntracks/+/pixel7", "", ""},
		{"owntracks/al+ice/pixel7", "", ""},
		{"owntracks/alice/+", "", ""},
		{"owntracks/#/pixel7", "", ""},
		{"owntracks/alice/#", "", ""},
		{"owntracks/al\x00ice/pixel7", "", ""},
		{"owntracks/al\xffice/pixel7", "", ""},
		{"owntracks/alice/pix\xfe", "", ""},
		{"owntracks/" + strings.Repeat("u", 129) + "/d", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			user, device, err := recorder.ParseTopic(tc.topic)
			if tc.user == "" {
				checkReject(t, err, recorder.ReasonTopic)
				return
			}
			if err != nil {
				t.Fatalf("ParseTopic: %v", err)
			}
			if user != tc.user || device != tc.device {
				t.Errorf("ParseTopic = %q, %q; want %q, %q", user, device, tc.user, tc.device)
			}
		})
	}
}

// TestParseBadTopic checks that Parse checks the topic before the payload:
// a good payload on a bad topic is a topic rejection.
func TestParseBadTopic(t *testing.T) {
	payload := readPayload(t, "good", "android_location.json")
	for _, topic := range []string{"owntracks/alice", "owntracks//pixel7", "other/alice/pixel7", "owntracks/+/pixel7"} {
		t.Run(topic, func(t *testing.T) {
			_, err := recorder.Parse(topic, payload, received)
			checkReject(t, err, recorder.ReasonTopic)
		})
	}
}

func TestRejectError(t *testing.T) {
	err := error(&recorder.RejectError{Reason: recorder.ReasonField, Detail: "lat 91 out of range"})
	if !errors.Is(err, recorder.ErrInvalid) {
		t.Error("RejectError does not match ErrInvalid")
	}
	if got := err.Error(); !strings.Contains(got, recorder.ReasonField) || !strings.Contains(got, "lat 91") {
		t.Errorf("Error() = %q, want the reason and the detail", got)
	}
}

// FuzzParse checks Parse's invariants on any topic and payload.
func FuzzParse(f *testing.F) {
	for _, b := range recorder.SeedPayloads(f) {
		f.Add("owntracks/alice/pixel7", b)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		in := bytes.Clone(payload)
		m, err := recorder.Parse(topic, payload, received)
		if !bytes.Equal(payload, in) {
			t.Fatalf("Parse modified its input")
		}
		if err != nil {
			if !errors.Is(err, recorder.ErrInvalid) {
				t.Fatalf("error %v (%T) does not match ErrInvalid", err, err)
			}
			return
		}
		if m.Type == "" {
			t.Errorf("accepted with an empty Type")
		}
		if m.User == "" || m.Device == "" {
			t.Errorf("accepted with user %q, device %q", m.User, m.Device)
		}
		if !bytes.Equal(m.Payload, in) {
			t.Errorf("Payload = %q, want the input %q", m.Payload, in)
		}
		if !json.Valid(m.Payload) {
			t.Errorf("accepted payload %q is not valid JSON", m.Payload)
		}
		if m.TST < 0 {
			t.Errorf("TST = %d", m.TST)
		}
		if m.IsLocation() && (m.Lat < -90 || m.Lat > 90 || m.Lon < -180 || m.Lon > 180) {
			t.Errorf("location out of range: %v,%v", m.Lat, m.Lon)
		}
	})
}
