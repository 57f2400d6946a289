package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// Home is a 100 m circle; walk yields fixes from 1 km south of it to its
// centre (in) and back out (out).
const homeLat, homeLon = 52.5200, 13.4050

func fix(user, device string, tst int64, lat, lon, acc float64) storage.Message {
	return storage.Message{
		User: user, Device: device, Topic: "owntracks/" + user + "/" + device, Type: "location",
		TST: tst, Received: tst * 1000, Lat: lat, Lon: lon, Acc: acc, Transport: "mqtt",
		Payload: fmt.Appendf(nil, `{"_type":"location","tst":%d,"lat":%v,"lon":%v,"acc":%v}`, tst, lat, lon, acc),
	}
}

// walk returns n fixes stepping from 1 km south to the centre (in) or
// from the centre to 1 km north (out), 30 s apart from start.
func walk(user string, start int64, n int, in bool) []storage.Message {
	var out []storage.Message
	for i := range n {
		f := float64(i) / float64(n-1)
		lat := homeLat - 0.009*(1-f)
		if !in {
			lat = homeLat + 0.009*f
		}
		out = append(out, fix(user, "phone", start+int64(i)*30, lat, homeLon, 10))
	}
	return out
}

type rig struct {
	t      *testing.T
	dir    string
	store  *embedded.Store
	engine *events.Engine
	wg     sync.WaitGroup
	ctx    context.Context
}

func open(t *testing.T, dir string) *rig {
	t.Helper()
	ctx := context.Background()
	store, err := embedded.Open(ctx, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := auth.NewPolicy(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.New(ctx, store, policy, slog.New(slog.DiscardHandler), nil, events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, store: store, engine: e, ctx: ctx}
	r.wg.Go(func() { e.Run(ctx) })
	return r
}

// feed stores msgs and hands them to the engine, as the recorder does.
func (r *rig) feed(msgs []storage.Message) {
	r.t.Helper()
	if _, err := r.store.Append(r.ctx, msgs); err != nil {
		r.t.Fatal(err)
	}
	r.engine.Observe(r.ctx, msgs)
}

// close stops the engine after it has evaluated everything, then the store.
func (r *rig) close() {
	r.engine.Close()
	r.wg.Wait()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) events() string {
	r.t.Helper()
	var out []string
	err := r.store.Events(r.ctx, storage.EventQuery{User: "alice"}, func(ev *storage.Event) error {
		out = append(out, fmt.Sprintf("%s@%d", ev.Event, ev.TST))
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.Join(out, ",")
}

func (r *rig) addHome(extra func(*storage.Fence)) storage.Fence {
	r.t.Helper()
	f := storage.Fence{Owner: "alice", Name: "Home", Radius: 100,
		Geometry: fmt.Appendf(nil, `{"type":"Point","coordinates":[%v,%v]}`, homeLon, homeLat)}
	if extra != nil {
		extra(&f)
	}
	f, err := r.engine.PutFence(r.ctx, f)
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

func TestEnterLeave(t *testing.T) {
	r := open(t, t.TempDir())
	defer r.close()
	home := r.addHome(nil)
	in := walk("alice", 1000, 20, true)
	out := walk("alice", 2000, 20, false)
	r.feed(in)
	r.feed(out)
	got := eventuallyEvents(t, r, 2)
	if !strings.HasPrefix(got, "enter@") || !strings.Contains(got, ",leave@") {
		t.Errorf("events %s, want one enter then one leave", got)
	}
	if occ := r.engine.Occupants(home.ID); len(occ) != 0 {
		t.Errorf("occupants after leaving: %v", occ)
	}
}

func TestLateFixesChangeNothing(t *testing.T) {
	r := open(t, t.TempDir())
	defer r.close()
	r.addHome(nil)
	in := walk("alice", 1000, 20, true)
	r.feed(in)
	eventuallyEvents(t, r, 1)
	// A fix from before, far outside, arrives late: it must not leave.
	r.feed([]storage.Message{fix("alice", "phone", 1100, homeLat+0.05, homeLon, 5)})
	r.feed([]storage.Message{fix("alice", "phone", 5000, homeLat, homeLon, 5)}) // still inside
	time.Sleep(50 * time.Millisecond)
	if got := r.events(); strings.Contains(got, "leave") {
		t.Errorf("late fix caused %s", got)
	}
}

func eventuallyEvents(t *testing.T, r *rig, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r.events()
		if got != "" && strings.Count(got, ",")+1 == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A crash after locations were stored but before they were evaluated: the
// next start evaluates them, and evaluating again stores nothing twice.
func TestCatchUpAfterCrash(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir)
	r.addHome(nil)
	// The device is known (a watermark exists) from an early fix.
	r.feed([]storage.Message{fix("alice", "phone", 900, homeLat-0.05, homeLon, 10)})
	r.close() // saves the watermark

	// Stored, never evaluated (the server died before the engine saw them).
	r = open(t, dir)
	r.engine.Close() // this engine sees nothing new...
	r.wg.Wait()
	if _, err := r.store.Append(r.ctx, append(walk("alice", 1000, 20, true), walk("alice", 2000, 20, false)...)); err != nil {
		t.Fatal(err)
	}
	r.store.Close()

	r = open(t, dir) // ...the next one catches up
	got := eventuallyEvents(t, r, 2)
	r.close()
	r = open(t, dir) // and once more: nothing new
	defer r.close()
	time.Sleep(100 * time.Millisecond)
	if again := r.events(); again != got {
		t.Errorf("after another restart %q, was %q", again, got)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir)
	r.addHome(nil)
	r.feed(walk("alice", 1000, 20, true))
	eventuallyEvents(t, r, 1)
	r.close()
	r = open(t, dir)
	defer r.close()
	// Still inside after the restart: no second enter; then out: one leave.
	r.feed([]storage.Message{fix("alice", "phone", 1700, homeLat, homeLon, 5)})
	r.feed(walk("alice", 2000, 20, false))
	got := eventuallyEvents(t, r, 2)
	if !strings.HasPrefix(got, "enter@") || !strings.Contains(got, ",leave@") {
		t.Errorf("events %s", got)
	}
}

func TestDeviceRegions(t *testing.T) {
	r := open(t, t.TempDir())
	defer r.close()
	wp := storage.Message{User: "alice", Device: "phone", Type: "waypoints", TST: 900, Received: 900000,
		Payload: fmt.Appendf(nil, `{"_type":"waypoints","waypoints":[{"_type":"waypoint","desc":"Gym","lat":%v,"lon":%v,"rad":100,"tst":5,"rid":"gym1"}]}`, homeLat, homeLon)}
	// The device state (as the recorder's device tracker writes it).
	if err := r.store.PutDevice(r.ctx, storage.Device{User: "alice", Device: "phone", Waypoints: wp.Payload}); err != nil {
		t.Fatal(err)
	}
	r.feed([]storage.Message{wp})
	r.feed(walk("alice", 1000, 20, true))
	eventuallyEvents(t, r, 1)
	var ev storage.Event
	r.store.Events(r.ctx, storage.EventQuery{User: "alice"}, func(e *storage.Event) error { ev = *e; return nil })
	if ev.Fence != "wp:gym1" || ev.FenceName != "Gym" || ev.Source != events.SourceServer {
		t.Errorf("region event %+v", ev)
	}
}

func TestDwellFiresWhileQuiet(t *testing.T) {
	r := open(t, t.TempDir())
	defer r.close()
	r.addHome(func(f *storage.Fence) { f.Dwell = 1 })
	now := time.Now().Unix()
	// One fix inside, then silence: the dwell of 1 s runs out on the
	// engine's clock, not on a later fix.
	r.feed([]storage.Message{fix("alice", "phone", now, homeLat, homeLon, 5)})
	got := eventuallyEvents(t, r, 1)
	if !strings.HasPrefix(got, "enter@") {
		t.Errorf("events %s", got)
	}
}

func TestWhichFencesApply(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir)
	policy, err := auth.NewPolicy(r.ctx, r.store)
	if err != nil {
		t.Fatal(err)
	}
	// The engine's policy is its own; share through the store and reopen.
	if _, err := policy.AddShare(r.ctx, storage.Share{Owner: "bob", Viewer: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.AddShare(r.ctx, storage.Share{Owner: "carol", Viewer: "alice", Precision: 1000}); err != nil {
		t.Fatal(err)
	}
	r.close()
	r = open(t, dir)
	defer r.close()
	r.addHome(func(f *storage.Fence) { f.Shared = true; f.Devices = []string{"phone"} })
	for _, who := range []string{"bob", "carol", "dave"} {
		r.feed(walk(who, 1000, 20, true))
	}
	tablet := walk("alice", 1000, 20, true)
	for i := range tablet {
		tablet[i].Device = "tablet"
	}
	r.feed(tablet)
	r.feed(walk("alice", 1000, 20, true))
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for {
		got = got[:0]
		r.store.Events(r.ctx, storage.EventQuery{}, func(ev *storage.Event) error {
			got = append(got, ev.User+"/"+ev.Device+":"+ev.Event)
			return nil
		})
		// alice's phone was fed last: once it is in, everything was evaluated.
		if slices.Contains(got, "alice/phone:enter") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// alice's phone (listed device) and bob (exact share); not alice's
	// tablet, not carol (coarse share), not dave (no share).
	if strings.Join(got, ",") != "alice/phone:enter,bob/phone:enter" {
		t.Errorf("events %v", got)
	}
}

// Imported history newer than a device's watermark is not evaluated at the
// next start.
func TestImportedHistoryFiresNothing(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir)
	r.addHome(nil)
	r.feed([]storage.Message{fix("alice", "phone", 900, homeLat-0.05, homeLon, 10)})
	r.close()

	// An import while the server is down: straight into the store.
	r = open(t, dir)
	r.engine.Close()
	r.wg.Wait()
	imported := walk("alice", 1000, 20, true)
	if _, err := r.store.Append(r.ctx, imported); err != nil {
		t.Fatal(err)
	}
	if err := events.SkipImportedInStore(r.ctx, r.store, map[[2]string]int64{{"alice", "phone"}: imported[len(imported)-1].TST}); err != nil {
		t.Fatal(err)
	}
	r.store.Close()

	r = open(t, dir)
	// A live fix after the import, still outside, is evaluated normally.
	r.feed([]storage.Message{fix("alice", "phone", 5000, homeLat-0.05, homeLon, 10)})
	r.close()
	r = open(t, dir)
	defer r.close()
	if got := r.events(); got != "" {
		t.Errorf("imported history fired %s", got)
	}
	// While running: the engine's own watermark moves.
	r.engine.SkipImported("alice", "phone", 9000)
	r.feed([]storage.Message{fix("alice", "phone", 8000, homeLat, homeLon, 5)}) // older than the import: late
	r.feed([]storage.Message{fix("alice", "phone", 9500, homeLat, homeLon, 5)})
	if got := eventuallyEvents(t, r, 1); got != "enter@9500" {
		t.Errorf("events %s, want only the live enter at 9500", got)
	}
}
