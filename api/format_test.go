package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// objectKeys returns the top-level keys of a JSON object in order, failing
// the test if data is not exactly one valid JSON object.
func jsonObjectKeys(t *testing.T, data []byte) []string {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("invalid JSON: %s", data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", data)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func duplicateJSONKeys(keys []string) []string {
	var dups []string
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
	}
	return dups
}

func TestAppendObjectFastPath(t *testing.T) {
	extra := []field{stringField("username", "alice"), stringField("device", "pixel7")}
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{
			name:    "location",
			payload: `{"_type":"location","lat":52.52,"lon":13.4,"tst":1714557120,"tid":"ph"}`,
			want:    `{"_type":"location","lat":52.52,"lon":13.4,"tst":1714557120,"tid":"ph","username":"alice","device":"pixel7"}`,
		},
		{
			name:    "members kept byte for byte",
			payload: `{"_type":"location","topic_x":"owntracks\/alice","lat":5.25e1,"s":"caf\u00e9","n":[1,{"a":null}]}`,
			want:    `{"_type":"location","topic_x":"owntracks\/alice","lat":5.25e1,"s":"caf\u00e9","n":[1,{"a":null}],"username":"alice","device":"pixel7"}`,
		},
		{
			name:    "empty object",
			payload: `{}`,
			want:    `{"username":"alice","device":"pixel7"}`,
		},
		{
			name:    "empty object with spaces",
			payload: " { } \n",
			want:    `{"username":"alice","device":"pixel7"}`,
		},
		{
			name:    "pretty printed",
			payload: "{\n  \"_type\": \"lwt\"\n}\n",
			want:    "{\n  \"_type\": \"lwt\",\"username\":\"alice\",\"device\":\"pixel7\"}",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte(`[1,`)
			got := appendObject(bytes.Clone(prefix), []byte(tc.payload), extra, nil)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("dst not appended to: %s", got)
			}
			got = got[len(prefix):]
			if string(got) != tc.want {
				t.Errorf("appendObject =\n %s\nwant\n %s", got, tc.want)
			}
			if dups := duplicateJSONKeys(jsonObjectKeys(t, got)); dups != nil {
				t.Errorf("duplicate keys %v", dups)
			}
		})
	}
}

func TestAppendObjectNoExtra(t *testing.T) {
	for _, payload := range []string{`{}`, `{"_type":"lwt"}`} {
		got := appendObject(nil, []byte(payload), nil, nil)
		if string(got) != payload {
			t.Errorf("appendObject(%s, no fields) = %s", payload, got)
		}
	}
}

// TestAppendObjectCollision: a payload that already has a member we add
// must still give one member of that name, with our value.
func TestAppendObjectCollision(t *testing.T) {
	m := &storage.Message{
		User: "alice", Device: "pixel7", Topic: "owntracks/alice/pixel7", Type: "location",
		TST: 1714557120, Received: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli(),
	}
	extra := append([]field{stringField("topic", m.Topic), stringField("username", m.User)}, timeFields(m)...)
	want := map[string]string{
		"topic":    `"owntracks/alice/pixel7"`,
		"username": `"alice"`,
		"isotst":   `"2024-05-01T09:52:00Z"`,
		"disptst":  `"2024-05-01 09:52:00"`,
		"isorcv":   `"2024-05-01T10:00:00Z"`,
	}
	tests := []struct {
		name    string
		payload string
	}{
		{name: "topic (HTTP mode)", payload: `{"_type":"location","lat":1,"lon":2,"tst":1714557120,"topic":"owntracks/Alice/Pixel7"}`},
		{name: "isotst", payload: `{"_type":"location","isotst":"1970-01-01T00:00:00Z","lat":1,"lon":2,"tst":1714557120}`},
		{name: "several", payload: `{"username":"mallory","_type":"location","disptst":0,"isorcv":null,"lat":1}`},
		{name: "spaced colon", payload: `{"_type":"location","topic" : "x","lat":1}`},
		{name: "escaped key", payload: `{"_type":"location","\u0074opic":"x","lat":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendObject(nil, []byte(tc.payload), extra, nil)
			keys := jsonObjectKeys(t, got)
			if dups := duplicateJSONKeys(keys); dups != nil {
				t.Fatalf("duplicate keys %v in %s", dups, got)
			}
			var members map[string]json.RawMessage
			if err := json.Unmarshal(got, &members); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if string(members[k]) != v {
					t.Errorf("%s = %s, want ours %s", k, members[k], v)
				}
			}
			var in map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.payload), &in); err != nil {
				t.Fatal(err)
			}
			for k, v := range in {
				if _, ours := want[k]; !ours && string(members[k]) != string(v) {
					t.Errorf("payload member %s = %s, want %s kept", k, members[k], v)
				}
			}
			if len(members) != len(in)+len(want)-sharedKeys(in, want) {
				t.Errorf("%d members, want the payload's and ours: %s", len(members), got)
			}
		})
	}
}

func sharedKeys(in map[string]json.RawMessage, want map[string]string) int {
	n := 0
	for k := range in {
		if _, ok := want[k]; ok {
			n++
		}
	}
	return n
}

func TestAppendObjectOnly(t *testing.T) {
	payload := []byte(`{"_type":"location","lat":52.52,"lon":13.4,"tst":1714557120,"tid":"ph","batt":80}`)
	extra := []field{stringField("username", "alice"), stringField("isotst", "2024-05-01T09:52:00Z")}
	tests := []struct {
		name string
		only []string
		want []string // keys, in any order
	}{
		{"payload fields", []string{"lat", "lon"}, []string{"lat", "lon"}},
		{"with an added field", []string{"lat", "lon", "isotst", "username"}, []string{"lat", "lon", "isotst", "username"}},
		{"unknown field", []string{"lat", "nope"}, []string{"lat"}},
		{"nothing matches", []string{"nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			only := map[string]bool{}
			for _, k := range tc.only {
				only[k] = true
			}
			got := appendObject(nil, payload, extra, only)
			keys := jsonObjectKeys(t, got)
			slices.Sort(keys)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("keys %v, want %v (%s)", keys, want, got)
			}
			var members map[string]json.RawMessage
			if err := json.Unmarshal(got, &members); err != nil {
				t.Fatal(err)
			}
			if v, ok := members["lat"]; ok && string(v) != "52.52" {
				t.Errorf("lat = %s", v)
			}
			if v, ok := members["username"]; ok && string(v) != `"alice"` {
				t.Errorf("username = %s", v)
			}
		})
	}
}

func TestTimeFields(t *testing.T) {
	m := &storage.Message{TST: 1714557120, Received: time.Date(2024, 5, 1, 10, 0, 0, 999e6, time.UTC).UnixMilli()}
	got := appendObject(nil, []byte(`{}`), timeFields(m), nil)
	const want = `{"isorcv":"2024-05-01T10:00:00Z","isotst":"2024-05-01T09:52:00Z","disptst":"2024-05-01 09:52:00"}`
	if string(got) != want {
		t.Errorf("time fields = %s, want %s", got, want)
	}
}

func TestAppendFeature(t *testing.T) {
	tests := []struct {
		name      string
		msg       storage.Message
		wantProps map[string]any
	}{
		{
			name: "all properties",
			msg: storage.Message{Type: "location", TST: 1714557120, Lat: 52.5200066, Lon: 13.404954,
				Payload: []byte(`{"_type":"location","lat":52.5200066,"lon":13.404954,"tst":1714557120,"tid":"ph","vel":12,"acc":5,"alt":112,"batt":87,"conn":"w","addr":"Main St 1"}`)},
			wantProps: map[string]any{"tst": 1714557120.0, "isotst": "2024-05-01T09:52:00Z",
				"tid": "ph", "name": "ph", "vel": 12.0, "acc": 5.0, "alt": 112.0, "batt": 87.0, "address": "Main St 1"},
		},
		{
			name: "minimal, southern and western",
			msg: storage.Message{Type: "location", TST: 0, Lat: -33.8688, Lon: -70.5,
				Payload: []byte(`{"_type":"location","lat":-33.8688,"lon":-70.5,"tst":0}`)},
			wantProps: map[string]any{"tst": 0.0, "isotst": "1970-01-01T00:00:00Z"},
		},
		{
			name: "ios escapes",
			msg: storage.Message{Type: "location", TST: 1714557200, Lat: 48.856614, Lon: 2.352222,
				Payload: []byte(`{"_type":"location","lat":48.856614,"lon":2.352222,"tst":1714557200,"tid":"i\/p","topic":"owntracks\/bob\/iphone"}`)},
			wantProps: map[string]any{"tst": 1714557200.0, "isotst": "2024-05-01T09:53:20Z", "tid": "i/p", "name": "i/p"},
		},
		{
			name: "extreme coordinates",
			msg: storage.Message{Type: "location", TST: 1, Lat: 90, Lon: -180,
				Payload: []byte(`{"_type":"location","lat":90,"lon":-180,"tst":1}`)},
			wantProps: map[string]any{"tst": 1.0, "isotst": "1970-01-01T00:00:01Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendFeature([]byte(`[`), &tc.msg)[1:]
			if dups := duplicateJSONKeys(jsonObjectKeys(t, got)); dups != nil {
				t.Errorf("duplicate keys %v", dups)
			}
			var f struct {
				Type     string `json:"type"`
				Geometry struct {
					Type        string    `json:"type"`
					Coordinates []float64 `json:"coordinates"`
				} `json:"geometry"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(got, &f); err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			if f.Type != "Feature" || f.Geometry.Type != "Point" {
				t.Errorf("type %q, geometry %q; want Feature, Point", f.Type, f.Geometry.Type)
			}
			// GeoJSON (RFC 7946 3.1.1) puts longitude first.
			if !slices.Equal(f.Geometry.Coordinates, []float64{tc.msg.Lon, tc.msg.Lat}) {
				t.Errorf("coordinates %v, want [lon lat] = [%v %v]", f.Geometry.Coordinates, tc.msg.Lon, tc.msg.Lat)
			}
			if len(f.Properties) != len(tc.wantProps) {
				t.Errorf("properties %v, want %v", f.Properties, tc.wantProps)
			}
			for k, v := range tc.wantProps {
				if f.Properties[k] != v {
					t.Errorf("properties[%s] = %v (%T), want %v", k, f.Properties[k], f.Properties[k], v)
				}
			}
		})
	}
}

func TestAppendStampMatchesTimeFormat(t *testing.T) {
	for _, sec := range []int64{0, 1, 59, 951782400, 1717225200, 1795603061, 4102444799, 253402300799} {
		tm := time.Unix(sec, 0).UTC()
		if got, want := string(appendStamp(nil, tm, 'T', true)), `"`+tm.Format(isoLayout)+`"`; got != want {
			t.Errorf("%d: iso %s, want %s", sec, got, want)
		}
		if got, want := string(appendStamp(nil, tm, ' ', false)), `"`+tm.Format(dispLayout)+`"`; got != want {
			t.Errorf("%d: disp %s, want %s", sec, got, want)
		}
	}
}
