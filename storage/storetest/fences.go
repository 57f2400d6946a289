package storetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// fence builds a circular fence; its geometry is compared as JSON values,
// since a backend may re-encode it (PostgreSQL jsonb reorders keys).
func fence(id, owner, name string) storage.Fence {
	return storage.Fence{
		ID:       id,
		Owner:    owner,
		Name:     name,
		Geometry: json.RawMessage(`{"type":"Point","coordinates":[13.4,52.5]}`),
		Radius:   150,
		Devices:  []string{"phone"},
		Dwell:    60,
		Created:  created,
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func checkFence(t *testing.T, what string, got, want storage.Fence) {
	t.Helper()
	gg, wg := got.Geometry, want.Geometry
	gc, wc := got.Created, want.Created
	got.Geometry, want.Geometry = nil, nil
	got.Created, want.Created = wc, wc
	if !sameJSON(gg, wg) || !gc.Equal(wc) || !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v (geometry %s, created %v), want %+v (geometry %s, created %v)", what, got, gg, gc, want, wg, wc)
	}
}

func checkFences(t *testing.T, s storage.Store, owner string, want ...storage.Fence) {
	t.Helper()
	got, err := s.ListFences(t.Context(), owner)
	if err != nil {
		t.Fatalf("ListFences(%q): %v", owner, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListFences(%q) = %+v, want %+v", owner, got, want)
	}
	for i := range got {
		checkFence(t, fmt.Sprintf("ListFences(%q)[%d]", owner, i), got[i], want[i])
	}
}

func testFences(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	checkFences(t, s, "")

	home := fence("a1", "bob", "home")
	work := fence("0f", "bob", "work")
	// "bob.smith" sorts after "bob" however a backend joins owner and ID.
	dot := fence("00", "bob.smith", "gym")
	polygon := fence("wp:alice/phone/Zoo*", "alice", "zoo")
	polygon.Geometry = json.RawMessage(`{"type":"Polygon","coordinates":[[[13.3,52.5],[13.4,52.5],[13.4,52.6],[13.3,52.5]]]}`)
	polygon.Radius, polygon.Devices, polygon.Shared = 0, nil, true
	polygon.LeaveAfter, polygon.Hysteresis, polygon.MaxAccuracy = 120, 25.5, 500
	for _, f := range []storage.Fence{home, dot, polygon, work} {
		if err := s.PutFence(ctx, f); err != nil {
			t.Fatalf("PutFence(%s): %v", f.ID, err)
		}
	}
	checkFences(t, s, "", polygon, work, home, dot)
	checkFences(t, s, "bob", work, home)
	checkFences(t, s, "bob.smith", dot)
	checkFences(t, s, "bo")
	checkFences(t, s, "nobody")

	got, err := s.Fence(ctx, polygon.ID)
	if err != nil {
		t.Fatalf("Fence(%s): %v", polygon.ID, err)
	}
	checkFence(t, "Fence", got, polygon)

	// Put replaces by ID.
	home.Name, home.Radius, home.Devices = "new home", 300, nil
	if err := s.PutFence(ctx, home); err != nil {
		t.Fatalf("PutFence(%s) again: %v", home.ID, err)
	}
	got, err = s.Fence(ctx, home.ID)
	if err != nil {
		t.Fatalf("Fence(%s): %v", home.ID, err)
	}
	checkFence(t, "Fence after replace", got, home)
	checkFences(t, s, "bob", work, home)

	if err := s.DeleteFence(ctx, work.ID); err != nil {
		t.Fatalf("DeleteFence(%s): %v", work.ID, err)
	}
	checkFences(t, s, "", polygon, home, dot)

	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"get deleted", func() error { _, err := s.Fence(ctx, work.ID); return err }},
		{"get unknown", func() error { _, err := s.Fence(ctx, "ff"); return err }},
		{"get prefix", func() error { _, err := s.Fence(ctx, "a"); return err }},
		{"delete deleted", func() error { return s.DeleteFence(ctx, work.ID) }},
		{"delete unknown", func() error { return s.DeleteFence(ctx, "ff") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("err = %v, want %v", err, storage.ErrNotFound)
			}
		})
	}
	checkFences(t, s, "", polygon, home, dot)
}

// sortStates orders states by user, device and fence: FenceStates promises
// no order.
func sortStates(states []storage.FenceState) []storage.FenceState {
	slices.SortFunc(states, func(a, b storage.FenceState) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Fence, b.Fence))
	})
	return states
}

func checkStates(t *testing.T, s storage.Store, want ...storage.FenceState) {
	t.Helper()
	got, err := s.FenceStates(t.Context())
	if err != nil {
		t.Fatalf("FenceStates: %v", err)
	}
	if got, want := sortStates(got), sortStates(slices.Clone(want)); !slices.Equal(got, want) {
		t.Errorf("FenceStates = %+v, want %+v", got, want)
	}
}

func record(t *testing.T, s storage.Store, states []storage.FenceState, events []storage.Event, deliveries []storage.Delivery) []bool {
	t.Helper()
	fresh, err := s.RecordTransitions(t.Context(), states, events, deliveries)
	if err != nil {
		t.Fatalf("RecordTransitions: %v", err)
	}
	if len(fresh) != len(events) {
		t.Fatalf("RecordTransitions(%d events) returned %d fresh flags", len(events), len(fresh))
	}
	return fresh
}

func inside(user, device, fence string, since int64) storage.FenceState {
	return storage.FenceState{User: user, Device: device, Fence: fence, Inside: true, Since: since, Last: since}
}

func testDeleteFenceStates(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	for _, f := range []storage.Fence{fence("a1", "alice", "home"), fence("a10", "alice", "work")} {
		if err := s.PutFence(ctx, f); err != nil {
			t.Fatalf("PutFence(%s): %v", f.ID, err)
		}
	}
	keep := inside("alice", "phone", "a10", base)
	watermark := storage.FenceState{User: "alice", Device: "phone", Last: base + 2}
	record(t, s, []storage.FenceState{
		inside("alice", "phone", "a1", base),
		inside("alice", "tablet", "a1", base+1),
		inside("bob", "phone", "a1", base+2),
		keep,
		watermark,
	}, nil, nil)
	// "a1" is a prefix of "a10": only the exact fence's states go, and
	// the device's watermark stays.
	if err := s.DeleteFence(ctx, "a1"); err != nil {
		t.Fatalf("DeleteFence: %v", err)
	}
	checkStates(t, s, keep, watermark)
}

// transition builds a server event; its ID is derived from the rest, as
// the engine's deterministic IDs are.
func transition(user, device, fence, kind string, tst int64) storage.Event {
	return storage.Event{
		ID:        fmt.Sprintf("%s-%s-%s-%s-%d", user, device, fence, kind, tst),
		User:      user,
		Device:    device,
		Fence:     fence,
		FenceName: "name of " + fence,
		Event:     kind,
		TST:       tst,
		Lat:       52.5 + float64(tst%100)/1e4,
		Lon:       13.4,
		Acc:       12,
		Source:    "server",
		Created:   tst*1000 + 5,
	}
}

func delivery(id, webhook string, e storage.Event, next int64) storage.Delivery {
	return storage.Delivery{
		ID:      id,
		Webhook: webhook,
		Owner:   "alice",
		Event:   e.ID,
		Body:    fmt.Appendf(nil, `{"event":%q,"id":%q}`, e.Event, e.ID),
		Next:    next,
		Status:  storage.DeliveryPending,
		Created: next,
	}
}

func collectEvents(t *testing.T, s storage.Store, q storage.EventQuery) []storage.Event {
	t.Helper()
	out := []storage.Event{}
	if err := s.Events(t.Context(), q, func(e *storage.Event) error {
		out = append(out, *e)
		return nil
	}); err != nil {
		t.Fatalf("Events(%+v): %v", q, err)
	}
	return out
}

func eventIDs(events []storage.Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func deliveryIDs(ds []storage.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func dueIDs(t *testing.T, s storage.Store, now int64, limit int) []string {
	t.Helper()
	due, err := s.DueDeliveries(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueDeliveries(%d, %d): %v", now, limit, err)
	}
	return deliveryIDs(due)
}

func testRecordTransitions(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	checkStates(t, s)

	home := inside("alice", "phone", "a1", base)
	pending := storage.FenceState{User: "alice", Device: "tablet", Fence: "a1", Pending: base + 3, PendingLat: 52.5, PendingLon: 13.4, PendingAcc: 8, Last: base + 3}
	enter := transition("alice", "phone", "a1", "enter", base)
	d1 := delivery("d1", "w1", enter, base*1000)
	fresh := record(t, s, []storage.FenceState{home, pending}, []storage.Event{enter}, []storage.Delivery{d1})
	if !slices.Equal(fresh, []bool{true}) {
		t.Errorf("fresh = %v, want [true]", fresh)
	}
	checkStates(t, s, home, pending)
	if got := collectEvents(t, s, storage.EventQuery{}); !slices.Equal(got, []storage.Event{enter}) {
		t.Errorf("Events = %+v, want %+v", got, []storage.Event{enter})
	}
	due, err := s.DueDeliveries(t.Context(), base*1000, 0)
	if err != nil {
		t.Fatalf("DueDeliveries: %v", err)
	}
	if len(due) != 1 || !reflect.DeepEqual(due[0], d1) {
		t.Errorf("DueDeliveries = %+v, want [%+v]", due, d1)
	}

	// The same transition again (a replayed fix) is not fresh and its
	// deliveries are dropped; a new one in the same call is stored, and a
	// second copy within the call is a duplicate of the first.
	leave := transition("alice", "phone", "a1", "leave", base+600)
	home.Since, home.Last = base, base+300
	pending.Pending, pending.Inside, pending.Since = 0, true, base+3 // now inside
	fresh = record(t, s,
		[]storage.FenceState{home, pending},
		[]storage.Event{enter, leave, leave},
		[]storage.Delivery{delivery("d1again", "w1", enter, base*1000), delivery("d2", "w1", leave, base*1000+1)})
	if !slices.Equal(fresh, []bool{false, true, false}) {
		t.Errorf("fresh = %v, want [false true false]", fresh)
	}
	checkStates(t, s, home, pending)
	if got := eventIDs(collectEvents(t, s, storage.EventQuery{})); !slices.Equal(got, []string{enter.ID, leave.ID}) {
		t.Errorf("Events = %q, want %q", got, []string{enter.ID, leave.ID})
	}
	if got := dueIDs(t, s, base*1000+1, 0); !slices.Equal(got, []string{"d1", "d2"}) {
		t.Errorf("DueDeliveries = %q, want [d1 d2]", got)
	}

	// A default state (outside, nothing pending) deletes the stored one;
	// deleting a state that was never stored is no error.
	home = storage.FenceState{User: "alice", Device: "phone", Fence: "a1", Last: base + 600}
	never := storage.FenceState{User: "carol", Device: "phone", Fence: "a1"}
	record(t, s, []storage.FenceState{home, never}, nil, nil)
	checkStates(t, s, pending)

	// A watermark (Fence "") is kept while its Last is set, beside the
	// device's fence states.
	watermark := storage.FenceState{User: "alice", Device: "tablet", Last: base + 700}
	record(t, s, []storage.FenceState{watermark}, nil, nil)
	checkStates(t, s, pending, watermark)
	watermark.Last = base + 800
	record(t, s, []storage.FenceState{watermark}, nil, nil)
	checkStates(t, s, pending, watermark)
	watermark.Last = 0
	record(t, s, []storage.FenceState{watermark}, nil, nil)
	checkStates(t, s, pending)
}

func testEvents(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	if got := collectEvents(t, s, storage.EventQuery{}); len(got) != 0 {
		t.Errorf("Events of an empty store = %+v", got)
	}
	var (
		a1 = transition("alice", "phone", "f", "enter", base+10)
		a2 = transition("alice", "phone", "f", "leave", base+40)
		a3 = transition("alice", "phone", "f", "enter", base+70)
		t1 = transition("alice", "tablet", "f", "enter", base+20)
		t2 = transition("alice", "tablet", "f", "leave", base+70)
		b1 = transition("bob", "phone", "f", "enter", base+30)
		d1 = transition("bob.smith", "phone", "f", "enter", base+5)
		// A device event: what the app reported for its own region.
		r1 = storage.Event{ID: "r1", User: "bob", Device: "watch", Fence: "Home*", Event: "leave", TST: base + 50, Lat: 1, Lon: 2, Source: "device", Created: 7}
	)
	// Out of order, over several calls: the order is by fix time.
	record(t, s, nil, []storage.Event{a3, b1, t2}, nil)
	record(t, s, nil, []storage.Event{a1, d1, r1}, nil)
	record(t, s, nil, []storage.Event{t1, a2}, nil)

	for _, tc := range []struct {
		name string
		q    storage.EventQuery
		want []storage.Event
	}{
		// Equal fix times come in user, device, ID order.
		{"all", storage.EventQuery{}, []storage.Event{d1, a1, t1, b1, a2, r1, a3, t2}},
		{"user", storage.EventQuery{User: "alice"}, []storage.Event{a1, t1, a2, a3, t2}},
		{"user not prefix", storage.EventQuery{User: "bob"}, []storage.Event{b1, r1}},
		{"user with dot", storage.EventQuery{User: "bob.smith"}, []storage.Event{d1}},
		{"device", storage.EventQuery{User: "alice", Device: "phone"}, []storage.Event{a1, a2, a3}},
		{"device of every user", storage.EventQuery{Device: "phone"}, []storage.Event{d1, a1, b1, a2, a3}},
		{"unknown user", storage.EventQuery{User: "ali"}, nil},
		{"unknown device", storage.EventQuery{User: "alice", Device: "watch"}, nil},
		{"range inclusive", storage.EventQuery{User: "alice", Device: "phone", From: base + 10, To: base + 40}, []storage.Event{a1, a2}},
		{"range of user", storage.EventQuery{User: "alice", From: base + 11, To: base + 70}, []storage.Event{t1, a2, a3, t2}},
		{"range of all", storage.EventQuery{From: base + 30, To: base + 50}, []storage.Event{b1, a2, r1}},
		{"to 0 is open", storage.EventQuery{From: base + 50}, []storage.Event{r1, a3, t2}},
		{"empty range", storage.EventQuery{From: base + 41, To: base + 49}, nil},
		{"from after to", storage.EventQuery{From: base + 50, To: base + 10}, nil},
		{"limit keeps newest", storage.EventQuery{Limit: 3}, []storage.Event{r1, a3, t2}},
		{"limit of device", storage.EventQuery{User: "alice", Device: "phone", Limit: 2}, []storage.Event{a2, a3}},
		{"limit in range", storage.EventQuery{User: "alice", Device: "phone", To: base + 69, Limit: 1}, []storage.Event{a2}},
		{"limit above count", storage.EventQuery{User: "bob", Limit: 10}, []storage.Event{b1, r1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collectEvents(t, s, tc.q)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Events(%+v) = %q, want %q", tc.q, eventIDs(got), eventIDs(tc.want))
			}
		})
	}

	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Events(t.Context(), storage.EventQuery{}, func(*storage.Event) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Events: err = %v after %d calls, want %v after 1", err, n, stop)
		}
	})
	t.Run("store usable from callback", func(t *testing.T) {
		n := 0
		err := s.Events(t.Context(), storage.EventQuery{User: "alice", Device: "phone"}, func(e *storage.Event) error {
			n++
			_, err := s.RecordTransitions(t.Context(), []storage.FenceState{inside(e.User, e.Device, e.Fence, e.TST)}, nil, nil)
			return err
		})
		if err != nil || n != 3 {
			t.Errorf("Events: err = %v after %d calls, want nil after 3", err, n)
		}
	})
}

func testOutbox(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	if next, ok, err := s.NextDelivery(ctx); err != nil || ok {
		t.Fatalf("NextDelivery of an empty outbox = %d, %v, %v; want not ok", next, ok, err)
	}
	const now = base * 1000
	e1 := transition("alice", "phone", "f", "enter", base)
	e2 := transition("alice", "phone", "f", "leave", base+60)
	d1 := delivery("d1", "w1", e1, now+30)
	d2 := delivery("d2", "w2", e1, now+10)
	d3 := delivery("d3", "w1", e2, now+20)
	record(t, s, nil, []storage.Event{e1, e2}, []storage.Delivery{d1, d2, d3})

	if next, ok, err := s.NextDelivery(ctx); err != nil || !ok || next != now+10 {
		t.Errorf("NextDelivery = %d, %v, %v; want %d, true, nil", next, ok, err, now+10)
	}
	for _, tc := range []struct {
		now   int64
		limit int
		want  []string
	}{
		{now, 0, []string{}},
		{now + 10, 0, []string{"d2"}},
		{now + 25, 0, []string{"d2", "d3"}},
		{now + 30, 0, []string{"d2", "d3", "d1"}},
		{now + 30, 2, []string{"d2", "d3"}},
	} {
		if got := dueIDs(t, s, tc.now, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("DueDeliveries(now+%d, %d) = %q, want %q", tc.now-now, tc.limit, got, tc.want)
		}
	}

	// A failed attempt is retried later: the due order follows Next.
	d2.Attempts, d2.Next, d2.LastCode, d2.LastError = 1, now+40, 503, "service unavailable"
	if err := s.UpdateDelivery(ctx, d2); err != nil {
		t.Fatalf("UpdateDelivery(d2 retry): %v", err)
	}
	if got := dueIDs(t, s, now+100, 0); !slices.Equal(got, []string{"d3", "d1", "d2"}) {
		t.Errorf("DueDeliveries after retry = %q, want [d3 d1 d2]", got)
	}
	due, err := s.DueDeliveries(ctx, now+100, 0)
	if err != nil {
		t.Fatalf("DueDeliveries: %v", err)
	}
	if !reflect.DeepEqual(due[2], d2) {
		t.Errorf("DueDeliveries[2] = %+v, want %+v", due[2], d2)
	}
	if next, ok, err := s.NextDelivery(ctx); err != nil || !ok || next != now+20 {
		t.Errorf("NextDelivery after retry = %d, %v, %v; want %d, true, nil", next, ok, err, now+20)
	}

	// Delivered and failed ones leave the outbox for their webhook's log.
	d3.Attempts, d3.Status, d3.LastCode, d3.Finished = 1, storage.DeliveryDelivered, 204, now+21
	d1.Attempts, d1.Status, d1.LastError, d1.Finished = 8, storage.DeliveryFailed, "connection refused", now+31
	for _, d := range []storage.Delivery{d3, d1} {
		if err := s.UpdateDelivery(ctx, d); err != nil {
			t.Fatalf("UpdateDelivery(%s %s): %v", d.ID, d.Status, err)
		}
	}
	if got := dueIDs(t, s, now+100, 0); !slices.Equal(got, []string{"d2"}) {
		t.Errorf("DueDeliveries after finishing = %q, want [d2]", got)
	}
	if next, ok, err := s.NextDelivery(ctx); err != nil || !ok || next != now+40 {
		t.Errorf("NextDelivery after finishing = %d, %v, %v; want %d, true, nil", next, ok, err, now+40)
	}
	got, err := s.Deliveries(ctx, "w1", 0)
	if err != nil {
		t.Fatalf("Deliveries(w1): %v", err)
	}
	if want := []storage.Delivery{d1, d3}; !reflect.DeepEqual(got, want) {
		t.Errorf("Deliveries(w1) = %+v, want %+v", got, want)
	}

	// Deliveries lists pending ones before the log.
	e3 := transition("alice", "phone", "f", "enter", base+120)
	d4 := delivery("d4", "w1", e3, now+50)
	record(t, s, nil, []storage.Event{e3}, []storage.Delivery{d4})
	for _, tc := range []struct {
		webhook string
		limit   int
		want    []string
	}{
		{"w1", 0, []string{"d4", "d1", "d3"}},
		{"w1", 2, []string{"d4", "d1"}},
		{"w2", 0, []string{"d2"}},
		{"w", 0, []string{}},
	} {
		got, err := s.Deliveries(ctx, tc.webhook, tc.limit)
		if err != nil {
			t.Fatalf("Deliveries(%s, %d): %v", tc.webhook, tc.limit, err)
		}
		if ids := deliveryIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("Deliveries(%s, %d) = %q, want %q", tc.webhook, tc.limit, ids, tc.want)
		}
	}

	// Only pending deliveries can be updated.
	for _, d := range []storage.Delivery{d3, delivery("nope", "w1", e1, now)} {
		if err := s.UpdateDelivery(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("UpdateDelivery(%s): err = %v, want %v", d.ID, err, storage.ErrNotFound)
		}
	}
	if got := dueIDs(t, s, now+100, 0); !slices.Equal(got, []string{"d2", "d4"}) {
		t.Errorf("DueDeliveries at the end = %q, want [d2 d4]", got)
	}
}

func testDeliveryLog(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	const now = base * 1000
	n := storage.DeliveryLogSize + 5
	var events []storage.Event
	var ds []storage.Delivery
	for i := range n {
		e := transition("alice", "phone", "f", "enter", base+int64(i))
		events = append(events, e)
		ds = append(ds, delivery(fmt.Sprintf("d%03d", i), "w1", e, now+int64(i)))
	}
	other := delivery("other", "w2", events[0], now)
	record(t, s, nil, events, append(ds, other))
	other.Status, other.Finished = storage.DeliveryDelivered, now
	if err := s.UpdateDelivery(ctx, other); err != nil {
		t.Fatalf("UpdateDelivery(other): %v", err)
	}
	for i := range ds {
		ds[i].Status, ds[i].Attempts, ds[i].Finished = storage.DeliveryDelivered, 1, now+1000+int64(i)
		if err := s.UpdateDelivery(ctx, ds[i]); err != nil {
			t.Fatalf("UpdateDelivery(%s): %v", ds[i].ID, err)
		}
	}
	got, err := s.Deliveries(ctx, "w1", 0)
	if err != nil {
		t.Fatalf("Deliveries(w1): %v", err)
	}
	want := slices.Clone(ds[n-storage.DeliveryLogSize:])
	slices.Reverse(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Deliveries(w1) = %q, want the newest %d: %q", deliveryIDs(got), storage.DeliveryLogSize, deliveryIDs(want))
	}
	// Another webhook's log is not trimmed by this one's.
	if got, err := s.Deliveries(ctx, "w2", 0); err != nil || !slices.Equal(deliveryIDs(got), []string{"other"}) {
		t.Errorf("Deliveries(w2) = %q, %v; want [other]", deliveryIDs(got), err)
	}
}

func checkWebhooks(t *testing.T, s storage.Store, owner string, want ...storage.Webhook) {
	t.Helper()
	got, err := s.ListWebhooks(t.Context(), owner)
	if err != nil {
		t.Fatalf("ListWebhooks(%q): %v", owner, err)
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.ID == w.ID && g.Owner == w.Owner && g.URL == w.URL && g.Secret == w.Secret && g.Created.Equal(w.Created)
	}
	if !same {
		t.Errorf("ListWebhooks(%q) = %+v, want %+v", owner, got, want)
	}
}

func testWebhooks(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	checkWebhooks(t, s, "")
	hook := func(id, owner string) storage.Webhook {
		return storage.Webhook{ID: id, Owner: owner, URL: "https://example.com/hook/" + id, Secret: "secret-" + id, Created: created}
	}
	w1, w2, w3 := hook("b2", "alice"), hook("a1", "alice"), hook("c3", "alice.b")
	for _, w := range []storage.Webhook{w1, w3, w2} {
		if err := s.PutWebhook(ctx, w); err != nil {
			t.Fatalf("PutWebhook(%s): %v", w.ID, err)
		}
	}
	checkWebhooks(t, s, "", w2, w1, w3)
	checkWebhooks(t, s, "alice", w2, w1)
	checkWebhooks(t, s, "nobody")

	w1.URL, w1.Secret = "http://127.0.0.1:9/other", ""
	if err := s.PutWebhook(ctx, w1); err != nil {
		t.Fatalf("PutWebhook(%s) again: %v", w1.ID, err)
	}
	got, err := s.Webhook(ctx, w1.ID)
	if err != nil {
		t.Fatalf("Webhook(%s): %v", w1.ID, err)
	}
	if got.URL != w1.URL || got.Secret != "" || got.Owner != w1.Owner || !got.Created.Equal(created) {
		t.Errorf("Webhook(%s) = %+v, want %+v", w1.ID, got, w1)
	}

	// Deleting a webhook drops its pending deliveries and its log, and
	// leaves the other webhooks' alone.
	const now = base * 1000
	e1 := transition("alice", "phone", "f", "enter", base)
	e2 := transition("alice", "phone", "f", "leave", base+1)
	done := delivery("done", w1.ID, e1, now)
	record(t, s, nil, []storage.Event{e1, e2}, []storage.Delivery{
		done,
		delivery("p1", w1.ID, e1, now+1),
		delivery("p2", w1.ID, e2, now+2),
		delivery("keep", w2.ID, e2, now+3),
	})
	done.Status, done.Finished = storage.DeliveryDelivered, now
	if err := s.UpdateDelivery(ctx, done); err != nil {
		t.Fatalf("UpdateDelivery(done): %v", err)
	}
	if err := s.DeleteWebhook(ctx, w1.ID); err != nil {
		t.Fatalf("DeleteWebhook(%s): %v", w1.ID, err)
	}
	checkWebhooks(t, s, "", w2, w3)
	if got := dueIDs(t, s, now+10, 0); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("DueDeliveries after DeleteWebhook = %q, want [keep]", got)
	}
	if ds, err := s.Deliveries(ctx, w1.ID, 0); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries of the deleted webhook = %q, %v; want none", deliveryIDs(ds), err)
	}
	if err := s.UpdateDelivery(ctx, delivery("p1", w1.ID, e1, now+5)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateDelivery of a deleted webhook's delivery: err = %v, want %v", err, storage.ErrNotFound)
	}

	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"get deleted", func() error { _, err := s.Webhook(ctx, w1.ID); return err }},
		{"get prefix", func() error { _, err := s.Webhook(ctx, "a"); return err }},
		{"delete deleted", func() error { return s.DeleteWebhook(ctx, w1.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("err = %v, want %v", err, storage.ErrNotFound)
			}
		})
	}
}

func testFencesCancelledContext(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	f := fence("a1", "alice", "home")
	if err := s.PutFence(t.Context(), f); err != nil {
		t.Fatalf("PutFence: %v", err)
	}
	w := storage.Webhook{ID: "w1", Owner: "alice", URL: "https://example.com/", Created: created}
	if err := s.PutWebhook(t.Context(), w); err != nil {
		t.Fatalf("PutWebhook: %v", err)
	}
	e := transition("alice", "phone", "a1", "enter", base)
	d := delivery("d1", "w1", e, base*1000)
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"PutFence", func(ctx context.Context) error { return s.PutFence(ctx, fence("b2", "alice", "work")) }},
		{"Fence", func(ctx context.Context) error { _, err := s.Fence(ctx, f.ID); return err }},
		{"ListFences", func(ctx context.Context) error { _, err := s.ListFences(ctx, ""); return err }},
		{"DeleteFence", func(ctx context.Context) error { return s.DeleteFence(ctx, f.ID) }},
		{"RecordTransitions", func(ctx context.Context) error {
			_, err := s.RecordTransitions(ctx, nil, []storage.Event{e}, []storage.Delivery{d})
			return err
		}},
		{"FenceStates", func(ctx context.Context) error { _, err := s.FenceStates(ctx); return err }},
		{"Events", func(ctx context.Context) error {
			return s.Events(ctx, storage.EventQuery{}, func(*storage.Event) error { return nil })
		}},
		{"DueDeliveries", func(ctx context.Context) error { _, err := s.DueDeliveries(ctx, base*1000, 0); return err }},
		{"NextDelivery", func(ctx context.Context) error { _, _, err := s.NextDelivery(ctx); return err }},
		{"UpdateDelivery", func(ctx context.Context) error { return s.UpdateDelivery(ctx, d) }},
		{"Deliveries", func(ctx context.Context) error { _, err := s.Deliveries(ctx, "w1", 0); return err }},
		{"PutWebhook", func(ctx context.Context) error { return s.PutWebhook(ctx, w) }},
		{"Webhook", func(ctx context.Context) error { _, err := s.Webhook(ctx, w.ID); return err }},
		{"ListWebhooks", func(ctx context.Context) error { _, err := s.ListWebhooks(ctx, ""); return err }},
		{"DeleteWebhook", func(ctx context.Context) error { return s.DeleteWebhook(ctx, w.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(cancelled(t)); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want %v", err, context.Canceled)
			}
		})
	}
	// Nothing was written or removed.
	checkFences(t, s, "", f)
	checkWebhooks(t, s, "", w)
	if got := collectEvents(t, s, storage.EventQuery{}); len(got) != 0 {
		t.Errorf("Events after cancelled calls = %q, want none", eventIDs(got))
	}
}
