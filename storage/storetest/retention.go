package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// stored reports, for each message, whether the store already holds it:
// appending it again is a duplicate. (It stores the ones it did not hold,
// so call it last.)
func stored(t *testing.T, s storage.Store, msgs ...storage.Message) []bool {
	t.Helper()
	dup, err := s.Append(t.Context(), msgs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return dup
}

func hiddenOf(t *testing.T, s storage.Store, user, device string) []storage.StoredLocation {
	t.Helper()
	var out []storage.StoredLocation
	err := s.HiddenLocations(t.Context(), allOf(user, device), func(l *storage.StoredLocation) error {
		out = append(out, *l)
		return nil
	})
	if err != nil {
		t.Fatalf("HiddenLocations(%s/%s): %v", user, device, err)
	}
	return out
}

func hiddenTSTs(ls []storage.StoredLocation) []int64 {
	out := []int64{}
	for _, l := range ls {
		out = append(out, l.TST)
	}
	return out
}

func locationsAt(t *testing.T, s storage.Store, user, device string, tst int64) []storage.StoredLocation {
	t.Helper()
	got, err := s.LocationsAt(t.Context(), user, device, tst)
	if err != nil {
		t.Fatalf("LocationsAt(%s/%s, %d): %v", user, device, tst, err)
	}
	return got
}

func hide(t *testing.T, s storage.Store, user, device string, tst int64, id string, hidden bool) int {
	t.Helper()
	n, err := s.HideLocations(t.Context(), user, device, tst, id, hidden)
	if err != nil {
		t.Fatalf("HideLocations(%s/%s, %d, %q, %v): %v", user, device, tst, id, hidden, err)
	}
	return n
}

func checkTSTs(t *testing.T, what string, got []storage.Message, want ...int64) {
	t.Helper()
	if !slices.Equal(tsts(got), want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: tst = %v, want %v", what, tsts(got), want)
	}
}

func checkDeleted(t *testing.T, what string, got, want storage.Deleted) {
	t.Helper()
	if got != want {
		t.Errorf("%s deleted %+v, want %+v", what, got, want)
	}
}

// variant is a location with the same tst as location(user, device, tst)
// but another payload.
func variant(user, device string, tst int64) storage.Message {
	m := location(user, device, tst)
	m.Lat, m.Lon = 1.5, 2.5
	m.Received++
	m.Payload = fmt.Appendf(nil, `{"_type":"location","lat":1.5,"lon":2.5,"tst":%d,"tid":%q}`, tst, device)
	return m
}

// testDeleteRange deletes one device's range and checks every boundary:
// the second before from and after to stay, from and to go, as do hidden
// locations, other message types and fence events in the range; other
// devices, other users and events outside the range stay.
func testDeleteRange(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	const from, to = base + 100, base + 200
	mustAppend(t, s, locations("alice", "phone", from-1, from, from+1, from+50, to-1, to, to+1, to+2)...)
	mustAppend(t, s, variant("alice", "phone", from))
	others := []storage.Message{
		event("alice", "phone", "card", from-1),
		event("alice", "phone", "transition", from),
		event("alice", "phone", "lwt", to),
		event("alice", "phone", "status", to+1),
	}
	mustAppend(t, s, others...)
	mustAppend(t, s, locations("alice", "tablet", from-1, from, to, to+1)...)
	mustAppend(t, s, locations("alice", "phone2", from, to)...)
	mustAppend(t, s, locations("bob", "phone", from, from+50, to)...)
	hide(t, s, "alice", "phone", from+50, "", true)
	hide(t, s, "alice", "phone", to+2, "", true)

	evs := []storage.Event{
		transition("alice", "phone", "f", "enter", from-1),
		transition("alice", "phone", "f", "leave", from),
		transition("alice", "phone", "f", "enter", to),
		transition("alice", "phone", "f", "leave", to+1),
		transition("alice", "tablet", "f", "enter", from),
		transition("bob", "phone", "f", "enter", from),
	}
	const now = base * 1000
	record(t, s, nil, evs, []storage.Delivery{
		delivery("keep", "w1", evs[0], now),
		delivery("drop", "w1", evs[1], now+1),
		delivery("done", "w1", evs[2], now+2),
		delivery("other", "w1", evs[4], now+3),
	})
	done := delivery("done", "w1", evs[2], now+2)
	done.Status, done.Finished = storage.DeliveryDelivered, now+5
	if err := s.UpdateDelivery(ctx, done); err != nil {
		t.Fatalf("UpdateDelivery: %v", err)
	}

	got, err := s.DeleteRange(ctx, "alice", "phone", from, to)
	if err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	// from (two of them), from+1, from+50 (hidden), to-1 and to; the
	// transition at from and the lwt at to; the events at from and to.
	checkDeleted(t, "DeleteRange", got, storage.Deleted{Locations: 6, Messages: 2, Events: 2})

	checkTSTs(t, "alice/phone", collect(t, s, allOf("alice", "phone")), from-1, to+1)
	checkTSTs(t, "alice/tablet", collect(t, s, allOf("alice", "tablet")), from-1, from, to, to+1)
	checkTSTs(t, "alice/phone2", collect(t, s, allOf("alice", "phone2")), from, to)
	checkTSTs(t, "bob/phone", collect(t, s, allOf("bob", "phone")), from, from+50, to)
	if got := hiddenTSTs(hiddenOf(t, s, "alice", "phone")); !slices.Equal(got, []int64{to + 2}) {
		t.Errorf("hidden after DeleteRange: tst %v, want [%d]", got, to+2)
	}
	if got := eventIDs(collectEvents(t, s, storage.EventQuery{User: "alice", Device: "phone"})); !slices.Equal(got, []string{evs[0].ID, evs[3].ID}) {
		t.Errorf("events of alice/phone = %q, want the ones at from-1 and to+1", got)
	}
	if got := eventIDs(collectEvents(t, s, storage.EventQuery{})); len(got) != 4 {
		t.Errorf("events left = %q, want 4", got)
	}
	if got := dueIDs(t, s, now+100, 0); !slices.Equal(got, []string{"keep", "other"}) {
		t.Errorf("pending deliveries = %q, want [keep other]", got)
	}
	if log, err := s.Deliveries(ctx, "w1", 0); err != nil || slices.Contains(deliveryIDs(log), "done") {
		t.Errorf("Deliveries(w1) = %q, %v; want the delivered one of a deleted event gone", deliveryIDs(log), err)
	}
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", "phone"), []storage.Message{location("alice", "phone", to+1)})
	// Of the other types, only those in the range are gone.
	if dup := stored(t, s, others...); !slices.Equal(dup, []bool{true, false, false, true}) {
		t.Errorf("other types still stored = %v, want [true false false true]", dup)
	}

	t.Run("again", func(t *testing.T) {
		got, err := s.DeleteRange(ctx, "alice", "phone", from+1, to-1)
		if err != nil || got.Total() != 0 {
			t.Errorf("DeleteRange of an emptied range = %+v, %v; want nothing, nil", got, err)
		}
	})
	t.Run("from after to", func(t *testing.T) {
		got, err := s.DeleteRange(ctx, "alice", "tablet", to, from)
		if err != nil || got.Total() != 0 {
			t.Errorf("DeleteRange(to, from) = %+v, %v; want nothing, nil", got, err)
		}
		checkTSTs(t, "alice/tablet", collect(t, s, allOf("alice", "tablet")), from-1, from, to, to+1)
	})
	t.Run("unknown device", func(t *testing.T) {
		got, err := s.DeleteRange(ctx, "nobody", "phone", 0, math.MaxInt64)
		if err != nil || got.Total() != 0 {
			t.Errorf("DeleteRange of nothing = %+v, %v; want nothing, nil", got, err)
		}
	})
}

// testDeleteRangeLast checks that the last position follows deletions, and
// that a device whose history is all gone leaves the data lists.
func testDeleteRangeLast(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	mustAppend(t, s, locations("alice", "phone", base+1, base+2, base+3, base+4, base+5)...)
	mustAppend(t, s, locations("alice", "tablet", base+1)...)
	mustAppend(t, s, event("alice", "phone", "card", base+9))

	if _, err := s.DeleteRange(ctx, "alice", "phone", base+4, base+10); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	checkMessages(t, "LastLocations after deleting the newest", lastLocations(t, s, "alice", "phone"), []storage.Message{location("alice", "phone", base+3)})

	if _, err := s.DeleteRange(ctx, "alice", "phone", 0, math.MaxInt64); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	checkMessages(t, "LastLocations after deleting all", lastLocations(t, s, "alice", ""), []storage.Message{location("alice", "tablet", base+1)})
	devices, err := s.Devices(ctx, "alice")
	if err != nil || !slices.Equal(devices, []string{"tablet"}) {
		t.Errorf("Devices(alice) = %q, %v; want [tablet]", devices, err)
	}
	if _, err := s.DeleteRange(ctx, "alice", "tablet", math.MinInt64, math.MaxInt64); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	if users, err := s.DataUsers(ctx); err != nil || len(users) != 0 {
		t.Errorf("DataUsers = %q, %v; want none", users, err)
	}
	if got := lastLocations(t, s, "", ""); len(got) != 0 {
		t.Errorf("LastLocations = %d, want none", len(got))
	}
	// The device comes back with new data.
	mustAppend(t, s, locations("alice", "phone", base+1)...)
	checkMessages(t, "LastLocations after new data", lastLocations(t, s, "alice", ""), []storage.Message{location("alice", "phone", base+1)})
}

// testDeleteRangeLarge deletes more than one batch.
func testDeleteRangeLarge(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	n := int64(storage.DeleteBatch + 150)
	var msgs []storage.Message
	for i := range n {
		msgs = append(msgs, location("alice", "phone", base+i))
		if i%100 == 0 {
			msgs = append(msgs, event("alice", "phone", "status", base+i))
		}
	}
	mustAppend(t, s, msgs...)
	got, err := s.DeleteRange(t.Context(), "alice", "phone", base+1, base+n-2)
	if err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	checkDeleted(t, "DeleteRange", got, storage.Deleted{Locations: int(n - 2), Messages: int((n - 2) / 100)})
	checkTSTs(t, "left", collect(t, s, allOf("alice", "phone")), base, base+n-1)
}

// testDeleteLocations deletes single locations, by tst and by ID.
func testDeleteLocations(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	const at = base + 10
	a, b := location("alice", "phone", at), variant("alice", "phone", at)
	mustAppend(t, s, location("alice", "phone", at-1), a, b, location("alice", "phone", at+1))
	mustAppend(t, s, location("bob", "phone", at))
	other := event("alice", "phone", "transition", at)
	mustAppend(t, s, other)

	both := locationsAt(t, s, "alice", "phone", at)
	if len(both) != 2 || both[0].ID == "" || both[0].ID == both[1].ID || both[0].Hidden || both[1].Hidden {
		t.Fatalf("LocationsAt = %+v, want two visible locations with different IDs", both)
	}
	got := sortMessages([]storage.Message{both[0].Message, both[1].Message})
	checkMessages(t, "LocationsAt", got, sortMessages([]storage.Message{a, b}))
	if got := locationsAt(t, s, "alice", "phone", at+5); len(got) != 0 {
		t.Errorf("LocationsAt an empty tst = %d locations", len(got))
	}

	for _, tc := range []struct {
		name, user, device string
		tst                int64
		id                 string
	}{
		{"unknown id", "alice", "phone", at, "0000000000000000"},
		{"id at another tst", "alice", "phone", at + 1, both[0].ID},
		{"empty tst", "alice", "phone", at + 5, ""},
		{"unknown device", "alice", "watch", at, ""},
		{"unknown user", "nobody", "phone", at, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := s.DeleteLocations(ctx, tc.user, tc.device, tc.tst, tc.id); !errors.Is(err, storage.ErrNotFound) || n != 0 {
				t.Errorf("DeleteLocations = %d, %v; want 0, ErrNotFound", n, err)
			}
		})
	}

	if n, err := s.DeleteLocations(ctx, "alice", "phone", at, both[0].ID); err != nil || n != 1 {
		t.Fatalf("DeleteLocations(id) = %d, %v; want 1, nil", n, err)
	}
	left := locationsAt(t, s, "alice", "phone", at)
	if len(left) != 1 || left[0].ID != both[1].ID {
		t.Fatalf("LocationsAt after deleting one = %+v, want only %s", left, both[1].ID)
	}
	// Hidden ones go too.
	hide(t, s, "alice", "phone", at, "", true)
	if n, err := s.DeleteLocations(ctx, "alice", "phone", at, ""); err != nil || n != 1 {
		t.Fatalf("DeleteLocations(all) = %d, %v; want 1, nil", n, err)
	}
	checkTSTs(t, "alice/phone", collect(t, s, allOf("alice", "phone")), at-1, at+1)
	checkTSTs(t, "bob/phone", collect(t, s, allOf("bob", "phone")), at)
	if got := hiddenOf(t, s, "alice", "phone"); len(got) != 0 {
		t.Errorf("hidden left: %d", len(got))
	}
	if n, err := s.DeleteLocations(ctx, "alice", "phone", at, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteLocations again = %d, %v; want ErrNotFound", n, err)
	}
	// Deleting the newest recomputes the last position.
	if _, err := s.DeleteLocations(ctx, "alice", "phone", at+1, ""); err != nil {
		t.Fatalf("DeleteLocations(newest): %v", err)
	}
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", "phone"), []storage.Message{location("alice", "phone", at-1)})
	// Other message types at the tst stay.
	if dup := stored(t, s, other); !dup[0] {
		t.Error("the transition at the deleted tst is gone")
	}
}

// testHideLocations hides and shows locations: hidden ones are kept (and
// come back byte for byte) but left out of Locations and LastLocations.
func testHideLocations(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	mustAppend(t, s, locations("alice", "phone", base+1, base+2, base+3)...)
	mustAppend(t, s, locations("bob", "phone", base+3)...)
	newest := location("alice", "phone", base+3)

	if n := hide(t, s, "alice", "phone", base+3, "", true); n != 1 {
		t.Errorf("HideLocations = %d, want 1", n)
	}
	checkTSTs(t, "Locations", collect(t, s, allOf("alice", "phone")), base+1, base+2)
	limited := allOf("alice", "phone")
	limited.Limit = 1
	checkTSTs(t, "Locations with limit", collect(t, s, limited), base+2)
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", ""), []storage.Message{location("alice", "phone", base+2)})
	checkMessages(t, "LastLocations of bob", lastLocations(t, s, "bob", ""), []storage.Message{location("bob", "phone", base+3)})
	at := locationsAt(t, s, "alice", "phone", base+3)
	if len(at) != 1 || !at[0].Hidden {
		t.Fatalf("LocationsAt = %+v, want one hidden", at)
	}
	checkMessage(t, "hidden location", at[0].Message, newest)
	if got := hiddenOf(t, s, "alice", "phone"); len(got) != 1 || got[0].ID != at[0].ID {
		t.Errorf("HiddenLocations = %+v, want the one at %d", got, base+3)
	}
	if devices, err := s.Devices(ctx, "alice"); err != nil || !slices.Equal(devices, []string{"phone"}) {
		t.Errorf("Devices = %q, %v; want [phone]", devices, err)
	}

	// Sent again, it is a duplicate and stays hidden.
	if dup := stored(t, s, newest); !dup[0] {
		t.Error("a hidden location sent again was stored again")
	}
	checkTSTs(t, "Locations after resend", collect(t, s, allOf("alice", "phone")), base+1, base+2)

	if n := hide(t, s, "alice", "phone", base+3, "", true); n != 0 {
		t.Errorf("HideLocations of a hidden one = %d, want 0", n)
	}
	for _, tc := range []struct {
		name   string
		tst    int64
		id     string
		hidden bool
	}{
		{"hide empty tst", base + 9, "", true},
		{"show empty tst", base + 9, "", false},
		{"unknown id", base + 3, "0000000000000000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := s.HideLocations(ctx, "alice", "phone", tc.tst, tc.id, tc.hidden); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("HideLocations = %d, %v; want ErrNotFound", n, err)
			}
		})
	}
	if n, err := s.HideLocations(ctx, "alice", "watch", base+1, "", true); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("HideLocations of an unknown device = %d, %v; want ErrNotFound", n, err)
	}

	if n := hide(t, s, "alice", "phone", base+3, at[0].ID, false); n != 1 {
		t.Errorf("HideLocations(show) = %d, want 1", n)
	}
	checkMessages(t, "Locations after showing", collect(t, s, allOf("alice", "phone")), locations("alice", "phone", base+1, base+2, base+3))
	checkMessages(t, "LastLocations after showing", lastLocations(t, s, "alice", ""), []storage.Message{newest})
	if got := hiddenOf(t, s, "alice", "phone"); len(got) != 0 {
		t.Errorf("HiddenLocations after showing = %d", len(got))
	}
	if n := hide(t, s, "alice", "phone", base+3, "", false); n != 0 {
		t.Errorf("showing a visible one = %d, want 0", n)
	}

	t.Run("one of two", func(t *testing.T) {
		a, b := location("carol", "phone", base), variant("carol", "phone", base)
		mustAppend(t, s, a, b)
		both := locationsAt(t, s, "carol", "phone", base)
		if len(both) != 2 {
			t.Fatalf("LocationsAt = %d, want 2", len(both))
		}
		hide(t, s, "carol", "phone", base, both[1].ID, true)
		after := locationsAt(t, s, "carol", "phone", base)
		if len(after) != 2 || after[0].ID != both[0].ID || after[0].Hidden || after[1].ID != both[1].ID || !after[1].Hidden {
			t.Errorf("LocationsAt after hiding one = %+v", after)
		}
		if got := collect(t, s, allOf("carol", "phone")); len(got) != 1 {
			t.Errorf("Locations = %d, want 1", len(got))
		} else {
			checkMessage(t, "visible one", got[0], both[0].Message)
		}
	})
}

// testDeleteDevice deletes everything of one device and nothing of the
// others, a device whose name starts with its name included.
func testDeleteDevice(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	evs := map[string]storage.Event{}
	for _, d := range []struct{ user, device string }{{"alice", "phone"}, {"alice", "phone2"}, {"alice", "tablet"}, {"bob", "phone"}} {
		mustAppend(t, s, locations(d.user, d.device, base+1, base+2, base+3)...)
		mustAppend(t, s, event(d.user, d.device, "card", base+2))
		if err := s.PutDevice(ctx, storage.Device{User: d.user, Device: d.device, Online: true, LastSeen: base * 1000}); err != nil {
			t.Fatalf("PutDevice: %v", err)
		}
		if err := s.QueueCommand(ctx, d.user, d.device, []byte(`{"_type":"cmd"}`), time.Hour); err != nil {
			t.Fatalf("QueueCommand: %v", err)
		}
		ev := transition(d.user, d.device, "f", "enter", base+2)
		evs[d.user+"/"+d.device] = ev
		record(t, s, []storage.FenceState{inside(d.user, d.device, "f", base+2), {User: d.user, Device: d.device, Last: base + 3}},
			[]storage.Event{ev}, []storage.Delivery{delivery("d-"+d.device+"-"+d.user, "w1", ev, base*1000)})
	}
	hide(t, s, "alice", "phone", base+1, "", true)

	got, err := s.DeleteDevice(ctx, "alice", "phone")
	if err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	checkDeleted(t, "DeleteDevice", got, storage.Deleted{Locations: 3, Messages: 1, Events: 1})

	if got := collect(t, s, allOf("alice", "phone")); len(got) != 0 {
		t.Errorf("locations left: %d", len(got))
	}
	if got := hiddenOf(t, s, "alice", "phone"); len(got) != 0 {
		t.Errorf("hidden locations left: %d", len(got))
	}
	if got := lastLocations(t, s, "alice", "phone"); len(got) != 0 {
		t.Errorf("last position left")
	}
	if _, err := s.Device(ctx, "alice", "phone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device after DeleteDevice: err = %v, want ErrNotFound", err)
	}
	if cmds, err := s.TakeCommands(ctx, "alice", "phone"); err != nil || len(cmds) != 0 {
		t.Errorf("TakeCommands = %d, %v; want none", len(cmds), err)
	}
	if got := collectEvents(t, s, storage.EventQuery{User: "alice", Device: "phone"}); len(got) != 0 {
		t.Errorf("events left: %d", len(got))
	}
	if got := dueIDs(t, s, math.MaxInt64, 0); slices.Contains(got, "d-phone-alice") || len(got) != 3 {
		t.Errorf("deliveries = %q, want the other three", got)
	}
	var wantStates []storage.FenceState
	for _, d := range []struct{ user, device string }{{"alice", "phone2"}, {"alice", "tablet"}, {"bob", "phone"}} {
		wantStates = append(wantStates, inside(d.user, d.device, "f", base+2), storage.FenceState{User: d.user, Device: d.device, Last: base + 3})
		checkTSTs(t, d.user+"/"+d.device, collect(t, s, allOf(d.user, d.device)), base+1, base+2, base+3)
		if _, err := s.Device(ctx, d.user, d.device); err != nil {
			t.Errorf("Device(%s/%s): %v", d.user, d.device, err)
		}
		if cmds, err := s.TakeCommands(ctx, d.user, d.device); err != nil || len(cmds) != 1 {
			t.Errorf("TakeCommands(%s/%s) = %d, %v; want 1", d.user, d.device, len(cmds), err)
		}
		if got := eventIDs(collectEvents(t, s, storage.EventQuery{User: d.user, Device: d.device})); !slices.Equal(got, []string{evs[d.user+"/"+d.device].ID}) {
			t.Errorf("events of %s/%s = %q", d.user, d.device, got)
		}
	}
	checkStates(t, s, wantStates...)
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", ""), []storage.Message{location("alice", "phone2", base+3), location("alice", "tablet", base+3)})
	if devices, err := s.Devices(ctx, "alice"); err != nil || !slices.Equal(devices, []string{"phone2", "tablet"}) {
		t.Errorf("Devices(alice) = %q, %v", devices, err)
	}
	if list, err := s.ListDevices(ctx, "alice"); err != nil || len(list) != 2 {
		t.Errorf("ListDevices(alice) = %+v, %v; want 2", list, err)
	}

	for _, d := range []struct{ user, device string }{{"alice", "phone"}, {"nobody", "phone"}, {"alice", "phon"}} {
		if _, err := s.DeleteDevice(ctx, d.user, d.device); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteDevice(%s/%s): err = %v, want ErrNotFound", d.user, d.device, err)
		}
	}
	// A device known only by its state is deleted too.
	if err := s.PutDevice(ctx, storage.Device{User: "carol", Device: "watch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteDevice(ctx, "carol", "watch"); err != nil {
		t.Errorf("DeleteDevice of a device with only a state: %v", err)
	}
	if _, err := s.Device(ctx, "carol", "watch"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("state left: %v", err)
	}
	// The device starts afresh.
	mustAppend(t, s, locations("alice", "phone", base+9)...)
	checkMessages(t, "new data", lastLocations(t, s, "alice", "phone"), locations("alice", "phone", base+9))
}

// testDeleteUserData deletes every device of one user and nothing else:
// not the account, not users whose names start with theirs.
func testDeleteUserData(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, user("alice", false)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ user, device string }{{"alice", "phone"}, {"alice", "tablet"}, {"alice.smith", "phone"}, {"alicex", "phone"}, {"bob", "phone"}} {
		mustAppend(t, s, locations(d.user, d.device, base+1, base+2)...)
		if err := s.PutDevice(ctx, storage.Device{User: d.user, Device: d.device}); err != nil {
			t.Fatal(err)
		}
		record(t, s, []storage.FenceState{inside(d.user, d.device, "f", base)}, []storage.Event{transition(d.user, d.device, "f", "enter", base)}, nil)
	}
	// A device with a state and events but no history.
	if err := s.PutDevice(ctx, storage.Device{User: "alice", Device: "watch"}); err != nil {
		t.Fatal(err)
	}
	record(t, s, nil, []storage.Event{transition("alice", "watch", "f", "enter", base)}, nil)

	got, err := s.DeleteUserData(ctx, "alice")
	if err != nil {
		t.Fatalf("DeleteUserData: %v", err)
	}
	checkDeleted(t, "DeleteUserData", got, storage.Deleted{Locations: 4, Events: 3})
	if users, err := s.DataUsers(ctx); err != nil || !slices.Equal(users, []string{"alice.smith", "alicex", "bob"}) {
		t.Errorf("DataUsers = %q, %v", users, err)
	}
	if list, err := s.ListDevices(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("ListDevices(alice) = %+v, %v; want none", list, err)
	}
	if got := lastLocations(t, s, "alice", ""); len(got) != 0 {
		t.Errorf("last positions of alice left: %d", len(got))
	}
	if got := collectEvents(t, s, storage.EventQuery{User: "alice"}); len(got) != 0 {
		t.Errorf("events of alice left: %d", len(got))
	}
	if got := collectEvents(t, s, storage.EventQuery{}); len(got) != 3 {
		t.Errorf("events left = %d, want 3", len(got))
	}
	states, err := s.FenceStates(ctx)
	if err != nil || len(states) != 3 {
		t.Errorf("FenceStates = %+v, %v; want the other users' 3", states, err)
	}
	if got := lastLocations(t, s, "", ""); len(got) != 3 {
		t.Errorf("LastLocations = %d, want 3", len(got))
	}
	if _, err := s.User(ctx, "alice"); err != nil {
		t.Errorf("the account went too: %v", err)
	}
	if _, err := s.DeleteUserData(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUserData again: err = %v, want ErrNotFound", err)
	}
}

// testThinLocations keeps the first location of each interval before the
// cutoff and touches nothing else.
func testThinLocations(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	const every = 300
	t0 := base - base%every // an interval starts here
	mustAppend(t, s, locations("alice", "phone", t0, t0+1, t0+60, t0+299, t0+300, t0+301, t0+600, t0+899, t0+900, t0+901)...)
	mustAppend(t, s, location("alice", "phone", t0+120))
	hide(t, s, "alice", "phone", t0+120, "", true)
	other := event("alice", "phone", "transition", t0+60)
	mustAppend(t, s, other)
	mustAppend(t, s, locations("bob", "phone", t0, t0+1, t0+60)...)

	n, err := s.ThinLocations(ctx, "alice", "phone", t0+900, every)
	if err != nil || n != 5 {
		t.Fatalf("ThinLocations = %d, %v; want 5, nil", n, err)
	}
	checkMessages(t, "thinned", collect(t, s, allOf("alice", "phone")), locations("alice", "phone", t0, t0+300, t0+600, t0+900, t0+901))
	checkTSTs(t, "bob/phone", collect(t, s, allOf("bob", "phone")), t0, t0+1, t0+60)
	if got := hiddenTSTs(hiddenOf(t, s, "alice", "phone")); !slices.Equal(got, []int64{t0 + 120}) {
		t.Errorf("hidden = %v, want [%d]", got, t0+120)
	}
	if n, err := s.ThinLocations(ctx, "alice", "phone", t0+900, every); err != nil || n != 0 {
		t.Errorf("ThinLocations again = %d, %v; want 0, nil", n, err)
	}
	// The newest location may be thinned: the last position follows.
	if n, err := s.ThinLocations(ctx, "alice", "phone", t0+10_000, every); err != nil || n != 1 {
		t.Errorf("ThinLocations of everything = %d, %v; want 1, nil", n, err)
	}
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", "phone"), locations("alice", "phone", t0+900))
	if dup := stored(t, s, other); !dup[0] {
		t.Error("thinning deleted a transition")
	}
	if n, err := s.ThinLocations(ctx, "nobody", "phone", t0+900, every); err != nil || n != 0 {
		t.Errorf("ThinLocations of nothing = %d, %v", n, err)
	}

	t.Run("large", func(t *testing.T) {
		s := open(t)
		const every = 3600
		t0 := base - base%every
		n := int64(storage.DeleteBatch + 100)
		var msgs []storage.Message
		for i := range n {
			msgs = append(msgs, location("alice", "phone", t0+i))
		}
		mustAppend(t, s, msgs...)
		got, err := s.ThinLocations(t.Context(), "alice", "phone", t0+n, every)
		if err != nil || got != int(n-3) {
			t.Fatalf("ThinLocations = %d, %v; want %d", got, err, n-3)
		}
		checkTSTs(t, "left", collect(t, s, allOf("alice", "phone")), t0, t0+every, t0+2*every)
	})
}

func testRetentionPolicies(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	check := func(t *testing.T, want ...storage.RetentionPolicy) {
		t.Helper()
		got, err := s.RetentionPolicies(ctx)
		if err != nil {
			t.Fatalf("RetentionPolicies: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("RetentionPolicies = %+v, want %+v", got, want)
		}
		for i := range got {
			if g, w := got[i], want[i]; g.User != w.User || g.DeleteAfter != w.DeleteAfter || g.ThinAfter != w.ThinAfter || g.ThinTo != w.ThinTo || !g.Updated.Equal(w.Updated) {
				t.Errorf("RetentionPolicies[%d] = %+v, want %+v", i, g, w)
			}
		}
	}
	if p, err := s.RetentionPolicy(ctx, "alice"); err != nil || p.User != "alice" || !p.Keep() {
		t.Errorf("RetentionPolicy of a user without one = %+v, %v; want keep", p, err)
	}
	check(t)
	when := time.Unix(base, 0).UTC()
	alice := storage.RetentionPolicy{User: "alice", DeleteAfter: 365 * 86400, Updated: when}
	bob := storage.RetentionPolicy{User: "bob", DeleteAfter: 730 * 86400, ThinAfter: 30 * 86400, ThinTo: 300, Updated: when}
	dotted := storage.RetentionPolicy{User: "alice.smith", ThinAfter: 86400, ThinTo: 60, Updated: when}
	for _, p := range []storage.RetentionPolicy{bob, alice, dotted} {
		if err := s.PutRetentionPolicy(ctx, p); err != nil {
			t.Fatalf("PutRetentionPolicy(%s): %v", p.User, err)
		}
	}
	check(t, alice, dotted, bob)
	if p, err := s.RetentionPolicy(ctx, "bob"); err != nil || p.ThinTo != 300 || !p.Updated.Equal(when) {
		t.Errorf("RetentionPolicy(bob) = %+v, %v", p, err)
	}
	// Keeping everything removes the stored policy.
	for _, name := range []string{"alice", "carol"} {
		if err := s.PutRetentionPolicy(ctx, storage.RetentionPolicy{User: name}); err != nil {
			t.Fatalf("PutRetentionPolicy(%s, keep): %v", name, err)
		}
	}
	check(t, dotted, bob)
}

func testRetentionCancelledContext(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	mustAppend(t, s, locations("alice", "phone", base+1, base+2)...)
	ctx := cancelled(t)
	if _, err := s.DeleteRange(ctx, "alice", "phone", 0, math.MaxInt64); err == nil {
		t.Error("DeleteRange with a cancelled context: no error")
	}
	if _, err := s.ThinLocations(ctx, "alice", "phone", math.MaxInt64, 60); err == nil {
		t.Error("ThinLocations with a cancelled context: no error")
	}
	if _, err := s.DeleteDevice(ctx, "alice", "phone"); err == nil {
		t.Error("DeleteDevice with a cancelled context: no error")
	}
	checkTSTs(t, "left", collect(t, s, allOf("alice", "phone")), base+1, base+2)
}
