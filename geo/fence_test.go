package geo

import (
	"math"
	"testing"
	"time"
)

// at is a fix at tst, the given metres north of the centre of the 100 m
// test circle (so at distance north-100 from its border while north >= 0).
type at struct {
	tst        int64
	north, acc float64
}

func TestStep(t *testing.T) {
	c, err := NewCircle(berlinLat, berlinLon, 100)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		name string
		tst  int64 // of the transition's fix
	}
	for _, tc := range []struct {
		name   string
		rules  Rules
		start  State
		fixes  []at
		want   []event
		inside bool
		since  int64
		pend   int64
		last   int64
	}{
		{name: "first fix inside enters", fixes: []at{{100, 0, 10}},
			want: []event{{"enter", 100}}, inside: true, since: 100, last: 100},
		{name: "first fix outside stays", fixes: []at{{100, 500, 10}},
			last: 100},
		{name: "straddling the border changes nothing", fixes: []at{{100, 50, 60}},
			last: 100},
		{name: "accuracy circle touching the border from inside enters", fixes: []at{{100, 59.9, 40}},
			want: []event{{"enter", 100}}, inside: true, since: 100, last: 100},
		{name: "unknown accuracy is exact", fixes: []at{{100, 99, 0}},
			want: []event{{"enter", 100}}, inside: true, since: 100, last: 100},
		{name: "negative accuracy is taken as 0", fixes: []at{{100, 99, -50}},
			want: []event{{"enter", 100}}, inside: true, since: 100, last: 100},
		{name: "within the hysteresis band stays inside", start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 110, 0}, {110, 119, 0}}, inside: true, since: 1, last: 110},
		{name: "beyond the hysteresis band leaves", start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 110, 0}, {110, 120.1, 0}}, want: []event{{"leave", 110}}, since: 110, last: 110},
		{name: "accuracy keeps a fix in the band", start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 150, 40}}, inside: true, since: 1, last: 100},
		{name: "no hysteresis leaves at the border", rules: Rules{Hysteresis: -1}, start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 100.5, 0}}, want: []event{{"leave", 100}}, since: 100, last: 100},
		{name: "custom hysteresis", rules: Rules{Hysteresis: 100}, start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 190, 0}, {110, 205, 0}}, want: []event{{"leave", 110}}, since: 110, last: 110},
		{name: "late fix is ignored", start: State{Inside: true, Since: 1, Last: 500},
			fixes: []at{{400, 5000, 5}, {500, 5000, 5}}, inside: true, since: 1, last: 500},
		{name: "zero time is ignored", fixes: []at{{0, 0, 5}}},
		{name: "inaccurate fix is ignored and Last kept", start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 3000, 1500}}, inside: true, since: 1, last: 50},
		{name: "fix at the accuracy limit counts", start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 3000, 250}}, want: []event{{"leave", 100}}, since: 100, last: 100},
		{name: "no accuracy limit", rules: Rules{MaxAccuracy: -1}, start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 3000, 1500}}, want: []event{{"leave", 100}}, since: 100, last: 100},
		{name: "custom accuracy limit", rules: Rules{MaxAccuracy: 50}, start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{100, 3000, 60}}, inside: true, since: 1, last: 50},
		{name: "dwell runs", rules: Rules{Dwell: 5 * time.Minute},
			fixes: []at{{1000, 0, 10}, {1100, 10, 10}, {1299, 0, 10}},
			pend:  1000, last: 1299},
		{name: "dwell fires with the first fix", rules: Rules{Dwell: 5 * time.Minute},
			fixes: []at{{1000, 0, 10}, {1100, 10, 10}, {1300, 0, 10}, {1400, 0, 10}},
			want:  []event{{"enter", 1000}}, inside: true, since: 1000, last: 1400},
		{name: "dwell rounds up to whole seconds", rules: Rules{Dwell: 1500 * time.Millisecond},
			fixes: []at{{1000, 0, 10}, {1001, 10, 10}, {1002, 0, 10}},
			want:  []event{{"enter", 1000}}, inside: true, since: 1000, last: 1002},
		{name: "dwell cancelled by a fix outside", rules: Rules{Dwell: 5 * time.Minute},
			fixes: []at{{1000, 0, 10}, {1100, 500, 10}, {1200, 0, 10}, {1400, 0, 10}},
			pend:  1200, last: 1400},
		{name: "dwell goes on through ambiguous fixes and fires at one", rules: Rules{Dwell: 5 * time.Minute},
			fixes: []at{{1000, 0, 10}, {1100, 105, 10}, {1300, 105, 10}},
			want:  []event{{"enter", 1000}}, inside: true, since: 1000, last: 1300},
		{name: "leave after runs and a fix inside cancels it", rules: Rules{LeaveAfter: 2 * time.Minute}, start: State{Inside: true, Since: 1, Last: 50},
			fixes:  []at{{1000, 500, 10}, {1060, 0, 10}, {1100, 500, 10}, {1219, 500, 10}},
			inside: true, since: 1, pend: 1100, last: 1219},
		{name: "leave after fires with the first fix", rules: Rules{LeaveAfter: 2 * time.Minute}, start: State{Inside: true, Since: 1, Last: 50},
			fixes: []at{{1000, 500, 10}, {1060, 0, 10}, {1100, 500, 10}, {1220, 700, 10}},
			want:  []event{{"leave", 1100}}, since: 1100, last: 1220},
		{name: "enter then leave", fixes: []at{{10, 500, 5}, {20, 50, 5}, {30, 90, 5}, {40, 130, 5}},
			want: []event{{"enter", 20}, {"leave", 40}}, since: 40, last: 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fence{ID: "home", Shape: c, Rules: tc.rules}
			s := tc.start
			var got []event
			for _, x := range tc.fixes {
				lat, lon := offset(berlinLat, berlinLon, x.north, 0)
				var tr *Transition
				s, tr = Step(f, s, Fix{TST: x.tst, Lat: lat, Lon: lon, Acc: x.acc})
				if tr != nil {
					got = append(got, event{tr.Event, tr.Fix.TST})
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("transitions %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("transitions %v, want %v", got, tc.want)
				}
			}
			if s.Inside != tc.inside || s.Since != tc.since || s.Pending != tc.pend || s.Last != tc.last {
				t.Errorf("state %+v, want inside %v since %d pending %d last %d", s, tc.inside, tc.since, tc.pend, tc.last)
			}
			if s.Pending == 0 && s.PendingFix != (Fix{}) {
				t.Errorf("PendingFix %+v without Pending", s.PendingFix)
			}
			if s.Pending != 0 && s.PendingFix.TST != s.Pending {
				t.Errorf("PendingFix %+v for Pending %d", s.PendingFix, s.Pending)
			}
		})
	}
}

func TestStepIgnoresNonFinite(t *testing.T) {
	c, err := NewCircle(berlinLat, berlinLon, 100)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fence{Shape: c}
	for _, fix := range []Fix{
		{TST: 10, Lat: math.NaN(), Lon: berlinLon},
		{TST: 10, Lat: berlinLat, Lon: math.Inf(1)},
		{TST: 10, Lat: berlinLat, Lon: berlinLon, Acc: math.NaN()},
	} {
		if s, tr := Step(f, State{}, fix); s != (State{}) || tr != nil {
			t.Errorf("Step(%+v) = %+v, %v", fix, s, tr)
		}
	}
}

func TestDue(t *testing.T) {
	c, err := NewCircle(berlinLat, berlinLon, 100)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fence{ID: "home", Shape: c, Rules: Rules{Dwell: 5 * time.Minute, LeaveAfter: time.Minute}}
	fix := Fix{TST: 1000, Lat: berlinLat, Lon: berlinLon, Acc: 10}
	s, tr := Step(f, State{}, fix)
	if tr != nil || s.Pending != 1000 {
		t.Fatalf("Step = %+v, %v; want a pending enter", s, tr)
	}
	if at, ok := DueAt(f, s); !ok || at != 1300 {
		t.Errorf("DueAt = %d, %v; want 1300", at, ok)
	}
	if s2, tr := Due(f, s, 1299); tr != nil || s2 != s {
		t.Errorf("Due before the dwell = %+v, %v", s2, tr)
	}
	s2, tr := Due(f, s, 5000)
	if tr == nil || tr.Event != EventEnter || tr.Fix != fix {
		t.Fatalf("Due after the dwell fired %+v", tr)
	}
	want := State{Inside: true, Since: 1000, Last: 1000}
	if s2 != want {
		t.Errorf("state %+v, want %+v", s2, want)
	}
	if s3, tr := Due(f, s2, 9000); tr != nil || s3 != s2 {
		t.Errorf("Due with nothing pending = %+v, %v", s3, tr)
	}
	if _, ok := DueAt(f, s2); ok {
		t.Error("DueAt with nothing pending")
	}
	// A leave pending, and the device silent: Due fires it.
	lat, lon := offset(berlinLat, berlinLon, 500, 0)
	out := Fix{TST: 6000, Lat: lat, Lon: lon, Acc: 10}
	s3, _ := Step(f, s2, out)
	s4, tr := Due(f, s3, 6060)
	if tr == nil || tr.Event != EventLeave || tr.Fix != out || s4.Inside || s4.Since != 6000 || s4.Last != 6000 {
		t.Errorf("Due fired %+v into %+v", tr, s4)
	}
}
