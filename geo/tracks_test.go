package geo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the generated track fixtures in ../fixtures/tracks")

// tracksDir holds the track fixtures shared with the integration tests.
var tracksDir = filepath.Join("..", "fixtures", "tracks")

// trackCase is one entry of fixtures/tracks/tracks.json: a track file,
// the fence and rules it is meant for, and the transitions it must fire,
// in order, each with the window its fix's tst must fall in.
type trackCase struct {
	File       string      `json:"file"`
	Fence      trackFence  `json:"fence"`
	Dwell      int64       `json:"dwell,omitempty"`       // seconds
	LeaveAfter int64       `json:"leave_after,omitempty"` // seconds
	Events     []wantEvent `json:"events"`
}

type trackFence struct {
	Name   string  `json:"name"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	Radius float64 `json:"radius"`
}

type wantEvent struct {
	Event  string `json:"event"`
	TSTMin int64  `json:"tst_min"`
	TSTMax int64  `json:"tst_max"`
}

func (c trackCase) fence(t testing.TB) *Fence {
	s, err := NewCircle(c.Fence.Lat, c.Fence.Lon, c.Fence.Radius)
	if err != nil {
		t.Fatal(err)
	}
	return &Fence{ID: c.Fence.Name, Shape: s, Rules: c.rules()}
}

func (c trackCase) rules() Rules {
	return Rules{Dwell: time.Duration(c.Dwell) * time.Second, LeaveAfter: time.Duration(c.LeaveAfter) * time.Second}
}

// walker makes a track: a true path with fixes along it, each displaced
// by GPS noise (uniform in a disk of noise metres) and reporting an acc
// drawn from [accMin, accMax].
type walker struct {
	rng            *rand.Rand
	fence          trackFence
	tst            int64
	lat, lon       float64 // true position
	noise          float64
	accMin, accMax int
	batt           float64
	fixes          []genFix // in time order
}

// genFix is a generated fix with its true distance to the fence border.
type genFix struct {
	Fix
	alt, vel, batt int
	trueD          float64
}

func newWalker(seed uint64, f trackFence, tst int64, north, east float64) *walker {
	w := &walker{rng: rand.New(rand.NewPCG(seed, 1)), fence: f, tst: tst, batt: 60 + float64(seed%40)}
	w.lat, w.lon = offset(f.Lat, f.Lon, north, east)
	return w
}

// gps sets the noise and accuracy of the following fixes.
func (w *walker) gps(noise float64, accMin, accMax int) {
	w.noise, w.accMin, w.accMax = noise, accMin, accMax
}

func (w *walker) emit(vel float64) {
	r := w.noise * math.Sqrt(w.rng.Float64())
	a := w.rng.Float64() * 2 * math.Pi
	lat, lon := offset(w.lat, w.lon, r*math.Sin(a), r*math.Cos(a))
	w.batt -= 0.02
	w.fixes = append(w.fixes, genFix{
		Fix:   Fix{TST: w.tst, Lat: round6(lat), Lon: round6(lon), Acc: float64(w.accMin + w.rng.IntN(w.accMax-w.accMin+1))},
		alt:   34 + w.rng.IntN(8),
		vel:   int(math.Round(vel * 3.6)),
		batt:  int(w.batt),
		trueD: haversine(w.fence.Lat, w.fence.Lon, w.lat, w.lon) - w.fence.Radius,
	})
}

// move goes in a straight line to the point north and east metres from
// the fence centre at speed m/s, with a fix every minGap to maxGap
// seconds.
func (w *walker) move(north, east, speed float64, minGap, maxGap int) {
	toLat, toLon := offset(w.fence.Lat, w.fence.Lon, north, east)
	for {
		left := haversine(w.lat, w.lon, toLat, toLon)
		gap := minGap + w.rng.IntN(maxGap-minGap+1)
		step := speed * float64(gap)
		if step >= left {
			w.tst += max(int64(minGap), int64(math.Ceil(left/speed)))
			w.lat, w.lon = toLat, toLon
			w.emit(speed)
			return
		}
		f := step / left
		w.tst += int64(gap)
		w.lat, w.lon = w.lat+f*(toLat-w.lat), w.lon+f*(toLon-w.lon)
		w.emit(speed)
	}
}

// stay stands still for up to seconds, with a fix every minGap to maxGap;
// it ends at its last fix.
func (w *walker) stay(seconds int64, minGap, maxGap int) {
	end := w.tst + seconds
	for {
		next := w.tst + int64(minGap+w.rng.IntN(maxGap-minGap+1))
		if next > end {
			return
		}
		w.tst = next
		w.emit(0)
	}
}

// first is the tst of the first fix after tst after whose true distance
// to the border satisfies ok; it fails the test when there is none.
func (w *walker) first(after int64, ok func(d float64) bool) int64 {
	for _, f := range w.fixes {
		if f.TST > after && ok(f.trueD) {
			return f.TST
		}
	}
	panic(fmt.Sprintf("no fix after %d matches", after))
}

// enter and leave are the windows in which a transition must fire after
// tst after: between the first fix whose true position is within reach
// of the border (from) and the first one deep enough across it (to).
func (w *walker) enter(after int64, from, to float64) wantEvent {
	return wantEvent{EventEnter, w.first(after, func(d float64) bool { return d <= from }), w.first(after, func(d float64) bool { return d <= to })}
}

func (w *walker) leave(after int64, from, to float64) wantEvent {
	return wantEvent{EventLeave, w.first(after, func(d float64) bool { return d >= from }), w.first(after, func(d float64) bool { return d >= to })}
}

// track is a generated fixture: its manifest entry and its fixes in
// publishing order.
type track struct {
	trackCase
	fixes []genFix
	// left is the index of the first fix after a stay, for lateFixes.
	left int
}

var (
	home        = trackFence{Name: "home", Lat: 52.5380, Lon: 13.4240, Radius: 100}
	office      = trackFence{Name: "office", Lat: 52.5200, Lon: 13.3880, Radius: 100}
	gym         = trackFence{Name: "gym", Lat: 52.5070, Lon: 13.4500, Radius: 120}
	supermarket = trackFence{Name: "supermarket", Lat: 52.4960, Lon: 13.3610, Radius: 150}
)

// The windows below allow for the noise and accuracy of each track: a fix
// can be certainly inside only once its true position is noise-accMin
// inside at most, and is sure to be once it is accMax+noise inside; a fix
// is certainly outside only from Hysteresis+accMin-noise beyond, and
// surely from Hysteresis+accMax+noise.

// walkHome walks from 1 km west into home, stays 20 minutes and walks out
// east: one enter, one leave.
func walkHome(seed uint64) track {
	w := newWalker(seed, home, 1780299720, 30, -1000)
	w.gps(8, 5, 15)
	w.move(-10, -20, 1.4, 10, 30)
	w.stay(20*60, 30, 60)
	stayed, left := w.tst, len(w.fixes)
	w.move(-40, 1000, 1.4, 10, 30)
	return track{trackCase{File: "walk-home.jsonl", Fence: home, Events: []wantEvent{
		w.enter(0, 8-5, -(15 + 8)),
		w.leave(stayed, DefaultHysteresis+5-8, DefaultHysteresis+15+8),
	}}, w.fixes, left}
}

// lateFixes is walkHome with two batches delivered late: the 6 fixes of
// the approach before the walker is 50 m from home arrive 5 fixes after
// the enter, and the last 5 fixes at home arrive at the end, as a phone
// sends its queue once it is back online. Being older than what was
// seen, they change nothing: one enter, one leave.
func lateFixes() track {
	tr := walkHome(2)
	tr.File = "late-fixes.jsonl"
	fixes := tr.fixes
	i := slices.IndexFunc(fixes, func(f genFix) bool { return f.trueD < 50 }) - 6
	j := tr.left - 5
	enter := slices.IndexFunc(fixes, func(f genFix) bool { return f.TST >= tr.Events[0].TSTMax })
	var out []genFix
	for k, f := range fixes {
		if (k >= i && k < i+6) || (k >= j && k < j+5) {
			continue
		}
		out = append(out, f)
		if k == enter+5 {
			out = append(out, fixes[i:i+6]...)
		}
	}
	tr.fixes = append(out, fixes[j:j+5]...)
	return tr
}

// jitterBorder walks into office, then stands on its border for an hour
// with a poor fix (noise 30 m, acc 15-40 m) and walks away north: one
// enter on arrival, no leave while at the border, one leave at the end.
func jitterBorder() track {
	w := newWalker(3, office, 1780419900, -600, 0)
	w.gps(8, 5, 15)
	w.move(-30, 0, 1.3, 10, 30)
	w.stay(120, 20, 40)
	w.move(100, 0, 1.3, 10, 30) // on the border
	w.gps(30, 15, 40)
	w.stay(60*60, 10, 60)
	parked := w.tst
	w.gps(8, 5, 15)
	w.move(800, 0, 1.3, 10, 30)
	return track{trackCase{File: "jitter-border.jsonl", Fence: office, Events: []wantEvent{
		w.enter(0, 8-5, -(15 + 8)),
		w.leave(parked, DefaultHysteresis+5-8, DefaultHysteresis+15+8),
	}}, w.fixes, 0}
}

// lowAccuracy walks into gym from 800 m north and stays 40 minutes. On
// the way a network fix (acc 1500 m) lands on the gym, and while inside
// one lands 3 km away and another (acc 600 m) 1.5 km away: none of them
// may flip the state. One enter, no leave.
func lowAccuracy() track {
	w := newWalker(4, gym, 1780511400, 800, 0)
	w.gps(6, 4, 12)
	w.move(600, 0, 1.4, 10, 30)
	w.stay(40, 20, 30)
	network(w, 0, 0, 1500)
	w.move(20, 10, 1.4, 10, 30)
	w.stay(10*60, 30, 60)
	network(w, -3000, 0, 1500)
	w.stay(10*60, 30, 60)
	network(w, 0, 1500, 600)
	w.stay(20*60, 30, 60)
	return track{trackCase{File: "low-accuracy.jsonl", Fence: gym, Events: []wantEvent{
		w.enter(0, 6-4, -(12 + 6)),
	}}, w.fixes, 0}
}

// network adds a cell-tower fix at north, east of the fence centre with
// acc metres, half a minute on, leaving the true position where it is.
func network(w *walker, north, east float64, acc int) {
	lat, lon := offset(w.fence.Lat, w.fence.Lon, north, east)
	w.tst += 30
	w.fixes = append(w.fixes, genFix{
		Fix:   Fix{TST: w.tst, Lat: round6(lat), Lon: round6(lon), Acc: float64(acc)},
		batt:  int(w.batt),
		trueD: haversine(w.fence.Lat, w.fence.Lon, w.lat, w.lon) - w.fence.Radius,
	})
}

// dwell drives east through supermarket at 50 km/h without stopping, on
// for 2 km, back, and stops 40 m from its centre for 15 minutes, then
// drives off west. With a dwell of 5 minutes the drive-through fires
// nothing; the stop fires one enter (its fix is the first one inside on
// the way back) once 5 minutes have passed, then one leave.
func dwell() track {
	w := newWalker(5, supermarket, 1780571700, 0, -2000)
	w.gps(5, 4, 10)
	w.move(0, 2000, 13.9, 8, 12)
	back := w.tst
	w.move(20, 35, 13.9, 8, 12)
	w.stay(15*60, 30, 60)
	stopped := w.tst
	w.move(0, -1500, 13.9, 8, 12)
	return track{trackCase{File: "dwell.jsonl", Fence: supermarket, Dwell: 300, Events: []wantEvent{
		w.enter(back, 5-4, -(10 + 5)),
		w.leave(stopped, DefaultHysteresis+4-5, DefaultHysteresis+10+5),
	}}, w.fixes, 0}
}

func tracks() []track {
	return []track{walkHome(1), jitterBorder(), lowAccuracy(), dwell(), lateFixes()}
}

func (t track) jsonl() []byte {
	var b bytes.Buffer
	for _, f := range t.fixes {
		conn := "m"
		if f.vel == 0 && f.Acc < 30 {
			conn = "w" // at rest on Wi-Fi
		}
		fmt.Fprintf(&b, `{"_type":"location","tid":"ph","tst":%d,"lat":%s,"lon":%s,"acc":%d,"alt":%d,"vel":%d,"batt":%d,"conn":%q}`+"\n",
			f.TST, formatNum(f.Lat), formatNum(f.Lon), int(f.Acc), f.alt, f.vel, f.batt, conn)
	}
	return b.Bytes()
}

// TestTrackFixtures checks that the files in fixtures/tracks are what the
// generators make; go test -update rewrites them.
func TestTrackFixtures(t *testing.T) {
	var manifest []trackCase
	files := map[string][]byte{}
	for _, tr := range tracks() {
		manifest = append(manifest, tr.trackCase)
		files[tr.File] = tr.jsonl()
	}
	m, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files["tracks.json"] = append(m, '\n')
	for name, want := range files {
		path := filepath.Join(tracksDir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./geo -run TestTrackFixtures -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its generator; run go test ./geo -run TestTrackFixtures -update", path)
		}
	}
}

// readTracks reads the manifest and every track's fixes.
func readTracks(t testing.TB) ([]trackCase, map[string][]Fix) {
	b, err := os.ReadFile(filepath.Join(tracksDir, "tracks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []trackCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	fixes := map[string][]Fix{}
	for _, c := range cases {
		fixes[c.File] = readTrack(t, c.File)
	}
	return cases, fixes
}

func readTrack(t testing.TB, name string) []Fix {
	f, err := os.Open(filepath.Join(tracksDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fixes []Fix
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p struct {
			Type          string `json:"_type"`
			TST           int64
			Lat, Lon, Acc float64
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.Type != "location" {
			t.Fatalf("%s: bad line %s: %v", name, sc.Bytes(), err)
		}
		fixes = append(fixes, Fix{TST: p.TST, Lat: p.Lat, Lon: p.Lon, Acc: p.Acc})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return fixes
}

// replay steps every fix in order from s, calling Due every tick seconds
// between fixes when tick > 0.
func replay(f *Fence, s State, fixes []Fix, tick int64) (State, []Transition) {
	var got []Transition
	for _, fix := range fixes {
		if tick > 0 && s.Last > 0 {
			for now := s.Last + tick; now < fix.TST; now += tick {
				var tr *Transition
				if s, tr = Due(f, s, now); tr != nil {
					got = append(got, *tr)
				}
			}
		}
		var tr *Transition
		if s, tr = Step(f, s, fix); tr != nil {
			got = append(got, *tr)
		}
	}
	return s, got
}

func checkEvents(t *testing.T, got []Transition, want []wantEvent) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Event == want[i].Event && got[i].Fix.TST >= want[i].TSTMin && got[i].Fix.TST <= want[i].TSTMax
	}
	if !ok {
		t.Errorf("transitions %+v, want %+v", got, want)
	}
}

// TestTracks replays each track on its fence and checks the transitions,
// then that replaying again, or from any point after a restart, fires
// nothing new.
func TestTracks(t *testing.T) {
	cases, fixes := readTracks(t)
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			f := c.fence(t)
			fx := fixes[c.File]
			end, got := replay(f, State{}, fx, 0)
			checkEvents(t, got, c.Events)
			if s, again := replay(f, end, fx, 0); len(again) != 0 || s != end {
				t.Errorf("replaying the whole track again fired %+v", again)
			}
			// A restart after any fix, with the state stored then, and
			// every fix delivered again from the start.
			for k := range fx {
				s, before := replay(f, State{}, fx[:k], 0)
				s, after := replay(f, s, fx, 0)
				if all := append(before, after...); !slices.Equal(all, got) || s != end {
					t.Fatalf("restart after fix %d: transitions %+v, want %+v", k, all, got)
				}
			}
			// Timers calling Due between fixes change nothing here, as
			// fixes come more often than any delay.
			if s, ticked := replay(f, State{}, fx, 10); !slices.Equal(ticked, got) || s != end {
				t.Errorf("with Due every 10 s: %+v, want %+v", ticked, got)
			}
			// The same fence drawn as a 64-gon behaves the same.
			pf := *f
			pf.Shape = circlePolygon(c.Fence, 64)
			if _, pg := replay(&pf, State{}, fx, 0); len(pg) != len(got) {
				t.Errorf("as a polygon: %+v, want %+v", pg, got)
			}
		})
	}
}

// circlePolygon is a regular n-gon circumscribing the fence's circle.
func circlePolygon(c trackFence, n int) Shape {
	r := c.Radius / math.Cos(math.Pi/float64(n))
	ring := make([][2]float64, 0, n+1)
	for i := range n {
		a := float64(i) / float64(n) * 2 * math.Pi
		lat, lon := offset(c.Lat, c.Lon, r*math.Sin(a), r*math.Cos(a))
		ring = append(ring, [2]float64{lon, lat})
	}
	return newPolygon(false, [][][][2]float64{{append(ring, ring[0])}})
}

// TestTracksNeedRules shows each rule earning its place: without it the
// track misbehaves.
func TestTracksNeedRules(t *testing.T) {
	cases, fixes := readTracks(t)
	byFile := map[string]trackCase{}
	for _, c := range cases {
		byFile[c.File] = c
	}
	for _, tc := range []struct {
		file    string
		rules   Rules
		atLeast int // transitions
	}{
		{"jitter-border.jsonl", Rules{Hysteresis: -1}, 4},
		{"low-accuracy.jsonl", Rules{MaxAccuracy: -1}, 3},
		{"dwell.jsonl", Rules{}, 4},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := byFile[tc.file].fence(t)
			f.Rules = tc.rules
			if _, got := replay(f, State{}, fixes[tc.file], 0); len(got) < tc.atLeast {
				t.Errorf("with %+v: %d transitions %+v, want at least %d", tc.rules, len(got), got, tc.atLeast)
			}
		})
	}
}
