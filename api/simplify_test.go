package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// zigzag returns n points (x, y in metres) going east along a zigzag of
// the given amplitude, one corner every step metres.
func zigzag(n int, step, amplitude float64) (x, y []float64) {
	for i := range n {
		x = append(x, float64(i)*step)
		y = append(y, float64(i%2)*amplitude)
	}
	return x, y
}

func TestDouglasPeucker(t *testing.T) {
	line := func(n int) ([]float64, []float64) {
		x, y := make([]float64, n), make([]float64, n)
		for i := range n {
			x[i], y[i] = float64(i)*10, float64(i)*5
		}
		return x, y
	}
	zx, zy := zigzag(11, 100, 50)
	// A zigzag with one spike: the spike is what matters most.
	sx, sy := zigzag(11, 100, 50)
	sy[6] = 1000
	tests := []struct {
		name      string
		x, y      []float64
		tolerance float64
		max       int
		want      []int
	}{
		{"empty", nil, nil, 10, 0, []int{}},
		{"one point", []float64{1}, []float64{2}, 10, 0, []int{0}},
		{"two points", []float64{1, 2}, []float64{2, 3}, 10, 2, []int{0, 1}},
		{"straight line", nil, nil, 1, 0, []int{0, 19}},
		{"zigzag kept", zx, zy, 10, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"zigzag flattened", zx, zy, 60, 0, []int{0, 10}},
		{"zigzag at most 4", zx, zy, 10, 4, nil}, // checked below
		{"spike first", sx, sy, 10, 3, []int{0, 6, 10}},
		{"only max_points", sx, sy, 0, 3, []int{0, 6, 10}},
		{"stationary", []float64{0, 1, 0, 1, 0}, []float64{0, 1, 1, 0, 0}, 5, 0, []int{0, 4}},
		{"loop back to start", []float64{0, 500, 1000, 500, 0}, []float64{0, 0, 0, 1, 0}, 5, 0, []int{0, 2, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, y := tc.x, tc.y
			if tc.name == "straight line" {
				x, y = line(20)
			}
			got, err := douglasPeucker(context.Background(), x, y, tc.tolerance, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(got) > tc.max || got[0] != 0 || got[len(got)-1] != len(x)-1 || !slices.IsSorted(got) {
					t.Fatalf("got %v: want at most %d points, first and last kept, ascending", got, tc.max)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDouglasPeuckerTolerance checks the defining property on random
// tracks: every dropped point is within the tolerance of the kept
// segment around it, and max_points is a hard bound.
func TestDouglasPeuckerTolerance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		n := 2 + r.IntN(500)
		x, y := make([]float64, n), make([]float64, n)
		for i := 1; i < n; i++ {
			x[i], y[i] = x[i-1]+r.NormFloat64()*30, y[i-1]+r.NormFloat64()*30
		}
		tol := 1 + r.Float64()*50
		got, err := douglasPeucker(context.Background(), x, y, tol, 0)
		if err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(got); k++ {
			a, b := got[k-1], got[k]
			for i := a + 1; i < b; i++ {
				if d := segmentDistance(x, y, a, b, i); d > tol+1e-9 {
					t.Fatalf("round %d: point %d is %.2f m from kept segment %d-%d, tolerance %.2f", round, i, d, a, b, tol)
				}
			}
		}
		maxPoints := 2 + r.IntN(n)
		bounded, _ := douglasPeucker(context.Background(), x, y, tol, maxPoints)
		if len(bounded) > maxPoints || len(bounded) > len(got) || bounded[0] != 0 || bounded[len(bounded)-1] != n-1 {
			t.Fatalf("round %d: max_points %d gave %d points (tolerance alone %d)", round, maxPoints, len(bounded), len(got))
		}
	}
}

func segmentDistance(x, y []float64, a, b, i int) float64 {
	_, d2 := farthest([]float64{x[a], x[i], x[b]}, []float64{y[a], y[i], y[b]}, 0, 2)
	return math.Sqrt(d2)
}

func TestDouglasPeuckerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x, y := zigzag(1000, 1, 1)
	if _, err := douglasPeucker(ctx, x, y, 0.1, 0); err == nil {
		t.Error("no error with a cancelled context")
	}
}

func TestProject(t *testing.T) {
	var tr track
	// 0.001° of latitude is 111.2 m everywhere; of longitude at 60°N half that.
	tr.add(1, 60, 10)
	tr.add(2, 60.001, 10)
	tr.add(3, 60, 10.001)
	// Across the antimeridian: 179.9995 to -179.9995 is 0.001° east.
	tr.add(4, 0, 179.9995)
	tr.add(5, 0, -179.9995)
	tr.project()
	if d := tr.y[1] - tr.y[0]; math.Abs(d-111.2) > 0.1 {
		t.Errorf("0.001° north = %.2f m, want 111.2", d)
	}
	// The mean latitude is 36°: cos(36°) of 111.2 m.
	if d, want := tr.x[2]-tr.x[0], 111.2*math.Cos(36.0002*math.Pi/180); math.Abs(d-want) > 0.1 {
		t.Errorf("0.001° east = %.2f m, want %.2f", d, want)
	}
	if d, want := tr.x[4]-tr.x[3], 111.2*math.Cos(36.0002*math.Pi/180); math.Abs(d-want) > 0.1 {
		t.Errorf("across the antimeridian: %.2f m, want %.2f", d, want)
	}
}

func TestKeptPointsFilter(t *testing.T) {
	kept := keptPoints{{tst: 10, nth: 0}, {tst: 20, nth: 1}, {tst: 30, nth: 0}, {tst: 50, nth: 0}}
	keep := kept.filter()
	// The second pass sees a point at 15 stored meanwhile, two at 20
	// (the second was kept), and 30 is gone.
	var got []string
	for _, m := range []storage.Message{{TST: 10}, {TST: 15}, {TST: 20, Topic: "a"}, {TST: 20, Topic: "b"}, {TST: 40}, {TST: 50}} {
		if keep(&m) {
			got = append(got, fmt.Sprint(m.TST, m.Topic))
		}
	}
	if want := []string{"10", "20b", "50"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}

func TestKeptPointsRanges(t *testing.T) {
	q := storage.LocationQuery{User: "u", Device: "d", From: 0, To: 1000}
	kept := keptPoints{
		{tst: 10, index: 0}, {tst: 11, index: 1}, // near: one read
		{tst: 500, index: 1 + readGap + 1},       // far: a read of its own
		{tst: 500, nth: 3, index: 2 + 3*readGap}, // far, but the same tst: never split
		{tst: 900, index: 5 * readGap},
	}
	want := []storage.LocationQuery{
		{User: "u", Device: "d", From: 10, To: 11},
		{User: "u", Device: "d", From: 500, To: 500},
		{User: "u", Device: "d", From: 900, To: 900},
	}
	if got := kept.ranges(q); !slices.Equal(got, want) {
		t.Errorf("ranges\n%+v\nwant\n%+v", got, want)
	}
	if got := (keptPoints{}).ranges(q); !slices.Equal(got, []storage.LocationQuery{q}) {
		t.Errorf("no points: %+v", got)
	}
}

// zigzagStart is the first tst of storeZigzag's track.
const zigzagStart = 1714557120

// storeZigzag stores alice's phone going east from 52.5°N 13.4°E along a
// zigzag: one point a minute, 0.001° (68 m) east each, alternating
// 0.0009° (100 m) north and back. Every payload has alt and a string with
// a comma.
func storeZigzag(t testing.TB, a *webAPI, n int) {
	t.Helper()
	msgs := make([]storage.Message, n)
	for i := range msgs {
		tst := int64(zigzagStart + 60*i)
		lat, lon := 52.5+float64(i%2)*0.0009, 13.4+float64(i)*0.001
		msgs[i] = storage.Message{User: "alice", Device: "phone", Type: "location", Topic: "owntracks/alice/phone", TST: tst,
			Received: tst*1000 + 500, Lat: lat, Lon: lon,
			Payload: fmt.Appendf(nil, `{"_type":"location","tid":"ph","acc":%d,"alt":%d,"lat":%v,"lon":%v,"tst":%d,"batt":80,"SSID":"home, \"5G\""}`, i, 30+i, lat, lon, tst)}
	}
	if _, err := a.store.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func zigzagPath(n int, query string) string {
	return "/api/0/locations?user=alice&device=phone&from=" + strconv.Itoa(zigzagStart) + "&to=" + strconv.Itoa(zigzagStart+60*(n-1)) + query
}

// tstsOf returns the tst of every point of a json or geojson answer.
func tstsOf(t *testing.T, body []byte) []int64 {
	t.Helper()
	var v struct {
		Data     []struct{ TST int64 } `json:"data"`
		Features []struct {
			Properties struct{ TST int64 } `json:"properties"`
		} `json:"features"`
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v in %.200s", err, body)
	}
	var out []int64
	for _, d := range v.Data {
		out = append(out, d.TST)
	}
	for _, f := range v.Features {
		out = append(out, f.Properties.TST)
	}
	if v.Count != nil && *v.Count != len(out) {
		t.Errorf("count %d, %d points", *v.Count, len(out))
	}
	return out
}

func TestLocationsSimplified(t *testing.T) {
	a := newWebAPI(t)
	const n = 101
	storeZigzag(t, a, n)
	alice := [2]string{"alice", alicePassword}
	all := make([]int64, n)
	for i := range all {
		all[i] = int64(zigzagStart + 60*i)
	}
	ends := []int64{all[0], all[n-1]}
	tests := []struct {
		query  string
		want   []int64 // nil: check count and ends only
		points string
	}{
		{"&simplify=10", all, "101/101"},                // corners 100 m off the line: all kept
		{"&simplify=10&format=geojson", all, "101/101"}, //
		{"&simplify=150", ends, "2/101"},                // the zigzag is within 150 m of a straight line
		{"&simplify=150&format=geojson", ends, "2/101"}, //
		{"&max_points=2", ends, "2/101"},                //
		{"&max_points=10", nil, "10/101"},               //
		{"&simplify=10&max_points=25&format=geojson", nil, "25/101"},
		{"&simplify=10&limit=5", all[n-5:], "5/5"},
		{"&simplify=0", all, "101/101"}, // only points exactly on the line go
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, tc.query), basic: alice})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get(pointsHeader); got != tc.points {
				t.Errorf("%s %q, want %q", pointsHeader, got, tc.points)
			}
			got := tstsOf(t, w.Body.Bytes())
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Fatalf("kept %d points %v, want %v", len(got), got, tc.want)
			}
			kept, _ := strconv.Atoi(strings.Split(tc.points, "/")[0])
			if len(got) != kept || got[0] != all[0] && !strings.Contains(tc.query, "limit") || got[len(got)-1] != all[n-1] {
				t.Errorf("kept %v: want %d points with the first and the last", got, kept)
			}
		})
	}
	// The points kept are sent whole, as without simplify.
	full := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, ""), basic: alice})
	simple := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, "&simplify=150"), basic: alice})
	var fullBody, simpleBody struct{ Data []json.RawMessage }
	json.Unmarshal(full.Body.Bytes(), &fullBody)
	json.Unmarshal(simple.Body.Bytes(), &simpleBody)
	if len(simpleBody.Data) != 2 || string(simpleBody.Data[0]) != string(fullBody.Data[0]) || string(simpleBody.Data[1]) != string(fullBody.Data[n-1]) {
		t.Errorf("simplified points differ from the full answer's:\n%s\n%s", simpleBody.Data, fullBody.Data[0])
	}

	for _, q := range []string{"&simplify=abc", "&simplify=-1", "&simplify=Inf", "&max_points=1", "&max_points=x", "&simplify=5&format=pdf"} {
		if w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, q), basic: alice}); w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, w.Code)
		}
	}
}

// yearStore fills a store with a year of one device at 30 s: 1,051,200
// points of a walk that alternates between staying put and moving.
func yearStore(b *testing.B) (*webAPI, string, int) {
	a := newWebAPI(b)
	const n, batch = 365 * 24 * 120, 10000
	r := rand.New(rand.NewPCG(7, 11))
	lat, lon := 52.5, 13.4
	heading, moving := 0.0, false
	start := int64(1704067200)
	msgs := make([]storage.Message, 0, batch)
	for i := range n {
		if r.IntN(200) == 0 {
			moving = !moving
		}
		if moving {
			heading += r.NormFloat64() * 0.2
			lat += math.Cos(heading) * 0.0002
			lon += math.Sin(heading) * 0.0003
		}
		jlat, jlon := lat+r.NormFloat64()*0.00005, lon+r.NormFloat64()*0.00008
		tst := start + 30*int64(i)
		msgs = append(msgs, storage.Message{User: "alice", Device: "phone", Type: "location", Topic: "owntracks/alice/phone",
			TST: tst, Received: tst * 1000, Lat: jlat, Lon: jlon,
			Payload: fmt.Appendf(nil, `{"_type":"location","acc":12,"alt":40,"batt":81,"bs":1,"conn":"w","created_at":%d,"lat":%.6f,"lon":%.6f,"tid":"ph","tst":%d,"vac":3,"vel":4,"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"home","m":1,"t":"u"}`, tst, jlat, jlon, tst)})
		if len(msgs) == batch || i == n-1 {
			if _, err := a.store.Append(context.Background(), msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	return a, fmt.Sprintf("/api/0/locations?user=alice&device=phone&from=%d&to=%d", start, start+30*n), n
}

// BenchmarkSimplifyYear measures simplify and max_points over a year at
// 30 s, after the plain year (no query) for comparison, and a year as CSV.
func BenchmarkSimplifyYear(b *testing.B) {
	t0 := time.Now()
	a, path, n := yearStore(b)
	b.Logf("stored %d points in %v", n, time.Since(t0).Round(time.Millisecond))
	for _, query := range []string{"", "&simplify=10", "&simplify=50", "&max_points=5000", "&max_points=5000&format=gpx", "&format=csv"} {
		b.Run(strings.TrimPrefix(query, "&"), func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path+query, nil)
			req.SetBasicAuth("alice", alicePassword)
			var w discardWriter
			b.ReportAllocs()
			for b.Loop() {
				w = discardWriter{header: http.Header{}}
				a.ServeHTTP(&w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
			if p := w.header.Get(pointsHeader); p != "" {
				kept, _ := strconv.Atoi(strings.Split(p, "/")[0])
				b.ReportMetric(float64(kept), "kept")
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1000, "ms/op")
			b.SetBytes(w.n)
		})
	}
}
