package geo

import (
	"math"
	"time"
)

// Transition events.
const (
	EventEnter = "enter"
	EventLeave = "leave"
)

// Defaults for zero Rules fields.
const (
	// DefaultHysteresis is how far beyond the border, past the accuracy
	// circle, a fix must lie to count as outside. A phone's acc is the
	// radius within which the true position lies about two times in
	// three (68%, one standard deviation), so one fix in three strays
	// further; 20 m is about one more urban GPS error, enough to stop a
	// device parked at the border from leaving on noise, and small next
	// to the 50 m and larger fences people draw.
	DefaultHysteresis = 20.0 // metres
	// DefaultMaxAccuracy drops network-located fixes (cell towers, often
	// 500-2000 m) and keeps the Wi-Fi (20-100 m) and GPS ones.
	DefaultMaxAccuracy = 250.0 // metres
)

// Rules tune one fence's decisions; zero fields take the defaults.
type Rules struct {
	// Dwell is how long a device must be certainly inside before enter
	// fires; 0 fires at the first such fix.
	Dwell time.Duration
	// LeaveAfter is how long a device must be certainly outside before
	// leave fires; 0 fires at the first such fix.
	LeaveAfter time.Duration
	// Hysteresis is how many metres beyond the border, accuracy circle
	// included, a fix must be to count as outside; 0 takes
	// DefaultHysteresis, a negative value means none.
	Hysteresis float64
	// MaxAccuracy drops fixes whose acc is above it (metres); 0 takes
	// DefaultMaxAccuracy, a negative value means no limit.
	MaxAccuracy float64
}

func (r Rules) hysteresis() float64 {
	switch {
	case r.Hysteresis == 0:
		return DefaultHysteresis
	case r.Hysteresis < 0:
		return 0
	}
	return r.Hysteresis
}

func (r Rules) maxAccuracy() float64 {
	switch {
	case r.MaxAccuracy == 0:
		return DefaultMaxAccuracy
	case r.MaxAccuracy < 0:
		return math.Inf(1)
	}
	return r.MaxAccuracy
}

// delay is the wait in whole seconds (rounded up) before a transition
// towards inside (enter) or outside (leave) fires.
func (r Rules) delay(inside bool) int64 {
	d := r.LeaveAfter
	if inside {
		d = r.Dwell
	}
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Fence is one geofence for evaluation.
type Fence struct {
	ID    string
	Shape Shape
	Rules Rules
	Data  any // the caller's own payload (e.g. the stored fence); geo never looks at it
}

// Fix is one location, as the OwnTracks apps report it.
type Fix struct {
	TST      int64   // UNIX seconds
	Lat, Lon float64 // degrees
	Acc      float64 // metres; 0 (unknown) is taken as exact
}

// State is where one device stands relative to one fence. The zero State
// is outside with nothing known.
type State struct {
	Inside bool
	Since  int64 // TST at which the current state began; 0 unknown
	// Pending is the TST of the first fix that pointed to the other state
	// while a Dwell or LeaveAfter delay runs; 0 when none.
	Pending    int64
	PendingFix Fix   // that fix
	Last       int64 // newest TST evaluated
}

// Transition is an enter or leave that fired.
type Transition struct {
	Event string // EventEnter or EventLeave
	// Fix is the fix at which the transition happened: for a delayed one
	// the first fix of the pending period, so the event carries the time
	// the device arrived or left, not the time the delay ran out.
	Fix Fix
}

// Step applies fix to s for fence f and returns the new state and the
// transition that fired, or nil.
//
// Fixes are ignored, and s returned unchanged (Last included, so a fix in
// between may still come), when they are late (TST at or before s.Last:
// replayed, or delivered out of order), not finite, or less accurate than
// MaxAccuracy. The rest are classed by the signed distance d to the border
// and the accuracy acc:
//
//   - certainly inside when d + acc <= 0: the whole accuracy circle is
//     inside;
//   - certainly outside when d - acc >= Hysteresis: the whole accuracy
//     circle is more than Hysteresis beyond the border;
//   - otherwise ambiguous (straddling the border or within the hysteresis
//     band), which changes nothing.
//
// A certain fix pointing to the state the device is in cancels a pending
// transition. One pointing to the other state starts one (it becomes
// PendingFix) unless one is running; the transition fires once the delay
// (Dwell to enter, LeaveAfter to leave) has passed since Pending, at the
// first fix that does not contradict it (certain or ambiguous) or at Due.
// With no delay it fires at once. A device is taken to start outside, so
// a first fix certainly inside fires enter, as the OwnTracks apps do when
// a region is added while inside.
//
// Step depends only on its arguments: replaying the same fixes on the
// stored state fires nothing again, as each is at or before Last.
func Step(f *Fence, s State, fix Fix) (State, *Transition) {
	if fix.TST <= s.Last {
		return s, nil
	}
	acc := fix.Acc
	if !(acc >= 0) { // negative or NaN
		if math.IsNaN(acc) {
			return s, nil
		}
		acc = 0
	}
	if acc > f.Rules.maxAccuracy() {
		return s, nil
	}
	hyst := f.Rules.hysteresis()
	var d float64
	if w, ok := f.Shape.(within); ok {
		// Only whether d is beyond -acc or hyst+acc matters; 1 m more
		// keeps a cut-off answer clear of both.
		d = w.distanceWithin(fix.Lat, fix.Lon, hyst+acc+1)
	} else {
		d = f.Shape.Distance(fix.Lat, fix.Lon)
	}
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return s, nil
	}
	s.Last = fix.TST
	switch {
	case d+acc <= 0:
		return toward(f, s, true, fix)
	case d-acc >= hyst:
		return toward(f, s, false, fix)
	}
	return Due(f, s, fix.TST)
}

// within is a Shape that can stop measuring once the point is known to
// be farther than limit from its border (see polygon.distanceWithin).
type within interface {
	distanceWithin(lat, lon, limit float64) float64
}

// toward handles a fix certainly inside (inside true) or outside.
func toward(f *Fence, s State, inside bool, fix Fix) (State, *Transition) {
	if s.Inside == inside {
		s.Pending, s.PendingFix = 0, Fix{}
		return s, nil
	}
	if s.Pending == 0 {
		s.Pending, s.PendingFix = fix.TST, fix
	}
	return Due(f, s, fix.TST)
}

// Due fires a pending transition whose delay has run out by now (UNIX
// seconds) even without a new fix, since a phone at rest may not report
// for a long time. The transition is the one Step would have fired at a
// fix at now. Otherwise it returns s unchanged and nil. Last is not
// changed: no fix was seen.
func Due(f *Fence, s State, now int64) (State, *Transition) {
	if s.Pending == 0 || now-s.Pending < f.Rules.delay(!s.Inside) {
		return s, nil
	}
	t := &Transition{Event: EventEnter, Fix: s.PendingFix}
	if s.Inside {
		t.Event = EventLeave
	}
	s.Inside, s.Since = !s.Inside, s.Pending
	s.Pending, s.PendingFix = 0, Fix{}
	return s, t
}

// DueAt reports when a pending transition of s will fire without a
// contrary fix (UNIX seconds), for a caller that sets a timer to call
// Due; ok is false when nothing is pending.
func DueAt(f *Fence, s State) (at int64, ok bool) {
	if s.Pending == 0 {
		return 0, false
	}
	return s.Pending + f.Rules.delay(!s.Inside), true
}
