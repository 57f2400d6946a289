package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// TestStamperMatchesAppendStamp walks seconds in the order a track has
// them, across days, years and the ends of four-digit years, so the
// remembered date is reused and replaced.
func TestStamperMatchesAppendStamp(t *testing.T) {
	var secs []int64
	for _, start := range []int64{-62167219200 - 86400, -86400 * 2, 951782400 - 86400, 1735689600 - 3, 253402300799 - 86400} {
		for s := start; s < start+3*86400; s += 7919 {
			secs = append(secs, s)
		}
		secs = append(secs, start+86399, start+86400, start+86401, start-1)
	}
	secs = append(secs, 0, -1, 1, 253402300800, 1<<40, -(1 << 40), 59, 1714557120, 1714557120)
	var st stamper
	for _, sec := range secs {
		tm := time.Unix(sec, 0)
		for _, f := range []struct {
			sep byte
			z   bool
		}{{'T', true}, {' ', false}} {
			if got, want := string(st.append(nil, sec, f.sep, f.z)), string(appendStamp(nil, tm, f.sep, f.z)); got != want {
				t.Errorf("%d: %s, want %s", sec, got, want)
			}
		}
	}
}

func TestTimeFieldsReceivedBeforeEpoch(t *testing.T) {
	for _, ms := range []int64{-1, -999, -1000, -1001, 0, 999, 1000} {
		m := &storage.Message{Received: ms}
		got := string(timeFields(m)[0].val)
		want := `"` + m.ReceivedTime().Format(isoLayout) + `"`
		if got != want {
			t.Errorf("isorcv of %d ms = %s, want %s", ms, got, want)
		}
	}
}

// mentionsAnyRef is mentionsAny as first written: one search per key.
func mentionsAnyRef(p []byte, extra []field) bool {
	if bytes.Contains(p, []byte(`\u`)) {
		return escapedKeyCollides(p, extra)
	}
	for _, f := range extra {
		if bytes.Contains(p, []byte(`"`+f.key+`"`)) {
			return true
		}
	}
	return false
}

var mentionsSeeds = []string{
	`{"_type":"location","lat":1,"tst":2}`,
	`{"isotst":1}`,
	`{"a":"isotst"}`,
	`{"a":"isotst" }`,
	`isotst"`,
	`"isotst`,
	`"disptst"`,
	`{"a":["isorcv"]}`,
	`{"a":{"disptst":1}}`,
	`{"\u0069sotst":1}`,
	`{"a":"\u0069sotst"}`,
	`{"a":"\\u","isotst":1}`,
	`{"isoisotst":1,"xisotst":2}`,
	`{"sotst":"i","isotst":3}`,
	``,
	`"`,
	`""`,
}

func TestMentionsAny(t *testing.T) {
	extra := timeFields(&storage.Message{})
	for _, p := range mentionsSeeds {
		if got, want := mentionsAny([]byte(p), extra), mentionsAnyRef([]byte(p), extra); got != want {
			t.Errorf("mentionsAny(%s) = %v, want %v", p, got, want)
		}
	}
}

func FuzzMentionsAny(f *testing.F) {
	for _, p := range mentionsSeeds {
		f.Add([]byte(p), "isotst")
	}
	f.Add([]byte("000000000"), "") // once ran past the end of p
	f.Add([]byte(`""`), "")
	f.Fuzz(func(t *testing.T, p []byte, key string) {
		extra := append(timeFields(&storage.Message{}), field{key, []byte("1")})
		if got, want := mentionsAny(p, extra), mentionsAnyRef(p, extra); got != want {
			t.Fatalf("mentionsAny(%q, +%q) = %v, want %v", p, key, got, want)
		}
	})
}

// propertiesRef is what appendFeature copied from a payload when it used a
// JSON parser: the wanted top-level members, in order, as written.
func propertiesRef(payload []byte) []byte {
	var dst []byte
	gjson.ParseBytes(payload).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "tid", "vel", "acc", "alt", "batt":
			dst = append(dst, ',', '"')
			dst = append(dst, key.Str...)
			dst = append(dst, '"', ':')
			dst = append(dst, value.Raw...)
			if key.Str == "tid" {
				dst = append(dst, `,"name":`...)
				dst = append(dst, value.Raw...)
			}
		case "addr":
			dst = append(dst, `,"address":`...)
			dst = append(dst, value.Raw...)
		}
		return true
	})
	return dst
}

var featureSeeds = []string{
	`{"_type":"location","lat":52.52,"lon":13.4,"tst":1714557120,"tid":"ph","vel":12,"acc":5,"alt":112,"batt":87,"conn":"w"}`,
	`{"_type":"location","tid":"i\/p","topic":"owntracks\/bob\/iphone"}`,
	`{"t\u0069d":"zz","s":"caf\u00e9","vel":1}`,
	" {\n \"acc\" : 5 , \"tst\": 3 , \"alt\":-3.5e2, \"batt\" : 7 }\n",
	`{"tid":"ph","tid":"qq","n":[1,{"acc":2}],"o":{"vel":"x"},"vel":true,"alt":null,"batt":false}`,
	`{"a":"]}\"{[","tid":"a\\","acc":[[],{}],"alt":{"a":[1,"]"]}}`,
	`{}`,
	`{"tid":"`,
	`{"tid":`,
	`{"tid"`,
	`{"acc":1,}`,
	`{"acc":1 "alt":2}`,
	`[{"tid":1}]`,
	`"tid"`,
	``,
}

func TestFeaturePropertiesMatchParser(t *testing.T) {
	for _, p := range featureSeeds {
		if !json.Valid([]byte(p)) {
			continue
		}
		checkFeatureProperties(t, []byte(p))
	}
}

// FuzzFeatureProperties compares the properties copied for geojson with
// what a JSON parser finds, for every valid payload, and checks that no
// input panics.
func FuzzFeatureProperties(f *testing.F) {
	for _, p := range featureSeeds {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if !json.Valid(p) {
			appendFeature(nil, &storage.Message{Payload: p})
			return
		}
		checkFeatureProperties(t, p)
	})
}

func checkFeatureProperties(t *testing.T, p []byte) {
	t.Helper()
	m := &storage.Message{TST: 1714557120, Payload: p}
	head := appendFeature(nil, &storage.Message{TST: m.TST})
	head = head[:len(head)-2] // "}}"
	got := appendFeature(nil, m)
	want := append(append(bytes.Clone(head), propertiesRef(p)...), "}}"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("feature of %s\n = %s\nwant %s", p, got, want)
	}
}

// hiddenScanner is a store without ScanLocations: the handler falls back
// to Locations.
type hiddenScanner struct{ storage.Store }

// TestLocationsRenderPaths checks that both ways of reading a long track
// give the same body, and a body that parses with every point in order.
func TestLocationsRenderPaths(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const n, start = 3000, 1714557120
	msgs := make([]storage.Message, n)
	for i := range msgs {
		tst := int64(start + 29*i)
		msgs[i] = storage.Message{User: "u", Device: "d", Type: "location", Topic: "owntracks/u/d", TST: tst, Received: tst*1000 + 500,
			Lat: 52.5 + float64(i)/1e4, Lon: 13.4, Payload: fmt.Appendf(nil, `{"_type":"location","tid":"ph","acc":%d,"lat":%v,"lon":13.4,"tst":%d}`, i, 52.5+float64(i)/1e4, tst)}
	}
	if _, err := store.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	accounts := auth.NewAccounts(store)
	if err := accounts.Add(ctx, "u", "password-1", false); err != nil {
		t.Fatal(err)
	}
	policy, err := auth.NewPolicy(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(st storage.Store, query string) []byte {
		t.Helper()
		s := New(Deps{Store: st, Accounts: accounts, Policy: policy, Live: recorder.NewLive(nil),
			Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(), Version: "test"})
		req := httptest.NewRequest(http.MethodGet, "/api/0/locations?user=u&device=d&from="+strconv.Itoa(start)+"&to="+strconv.Itoa(start+29*n)+query, nil)
		req.SetBasicAuth("u", "password-1")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", query, w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	for _, query := range []string{"&format=json", "&format=geojson", "&fields=acc,isotst", "&limit=5"} {
		t.Run(query, func(t *testing.T) {
			got, want := serve(store, query), serve(hiddenScanner{store}, query)
			if !bytes.Equal(got, want) {
				t.Fatalf("scanned body differs from the one read by Locations (%d and %d bytes)", len(got), len(want))
			}
			var body struct {
				Data     []struct{ TST int64 } `json:"data"`
				Features []struct {
					Properties struct{ TST int64 } `json:"properties"`
				} `json:"features"`
				Count *int `json:"count"`
			}
			if err := json.Unmarshal(got, &body); err != nil {
				t.Fatal(err)
			}
			tsts := make([]int64, 0, n)
			for _, d := range body.Data {
				tsts = append(tsts, d.TST)
			}
			for _, f := range body.Features {
				tsts = append(tsts, f.Properties.TST)
			}
			wantN := n
			if query == "&limit=5" {
				wantN = 5
			}
			if len(tsts) != wantN || (body.Count != nil && *body.Count != wantN) {
				t.Fatalf("%d points, count %v; want %d", len(tsts), body.Count, wantN)
			}
			if query == "&fields=acc,isotst" {
				return // tst not asked for
			}
			for i, tst := range tsts {
				if want := int64(start + 29*(n-wantN+i)); tst != want {
					t.Fatalf("point %d has tst %d, want %d", i, tst, want)
				}
			}
		})
	}
}
