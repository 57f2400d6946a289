package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

func testRoundTrip(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	// Whitespace, escapes, HTML characters and non-ASCII text: a backend
	// that re-encodes the JSON (or stores it as jsonb) would change them.
	exotic := storage.Message{
		User:     "alice",
		Device:   "phone",
		Topic:    "owntracks/Alice/Phone",
		Type:     "location",
		TST:      base,
		Received: base*1000 + 123,
		Lat:      52.520008,
		Lon:      -13.404954,
		Payload: []byte("{ \"_type\": \"location\",\n  \"lat\": 52.520008, \"lon\": -13.404954,\n" +
			"  \"tst\": 1700000000, \"desc\": \"caf\\u00e9 <home> & \\\"work\\\" ü\" }"),
	}
	tiny := storage.Message{
		User: "alice", Device: "phone", Topic: "owntracks/alice/phone", Type: "location",
		TST: base + 1, Received: 1, Lat: math.SmallestNonzeroFloat64, Lon: -180,
		Payload: []byte(`{"_type":"location","lat":5e-324,"lon":-180,"tst":1700000001}`),
	}
	want := []storage.Message{exotic, tiny, location("alice", "phone", base+2)}
	mustAppend(t, s, want...)
	checkMessages(t, "Locations", collect(t, s, allOf("alice", "phone")), want)
}

func testOnlyLocations(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	msgs := []storage.Message{
		location("alice", "phone", base+10),
		event("alice", "phone", "lwt", base+11),
		event("alice", "phone", "card", base+12),
		event("alice", "phone", "transition", base+13),
		location("alice", "phone", base+14),
		event("alice", "phone", "waypoint", base+14),
	}
	mustAppend(t, s, msgs...)

	got := collect(t, s, allOf("alice", "phone"))
	checkMessages(t, "Locations", got, []storage.Message{msgs[0], msgs[4]})

	// The other types were stored: appending them again is a duplicate.
	dup, err := s.Append(t.Context(), msgs[1:4])
	if err != nil {
		t.Fatalf("Append again: %v", err)
	}
	if want := []bool{true, true, true}; !slices.Equal(dup, want) {
		t.Errorf("Append again: dup = %v, want %v", dup, want)
	}
}

func testOrder(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	mustAppend(t, s, locations("alice", "phone", base+5, base+3, base+9, base+1)...)
	mustAppend(t, s, locations("alice", "phone", base+4, base+8, base+2)...)
	mustAppend(t, s, locations("alice", "phone", base+7)...)
	mustAppend(t, s, locations("alice", "phone", base+6)...)

	got := collect(t, s, allOf("alice", "phone"))
	var want []storage.Message
	for tst := base + 1; tst <= base+9; tst++ {
		want = append(want, location("alice", "phone", tst))
	}
	checkMessages(t, "Locations", got, want)
}

func testSeparateDevices(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	mustAppend(t, s,
		location("alice", "phone", base),
		location("alice", "tablet", base),
		location("bob", "phone", base),
		location("alice", "phone", base+1),
		location("alice", "phone2", base+2),
		location("alicephone", "x", base+3),
	)
	for _, tc := range []struct {
		user, device string
		want         []int64
	}{
		{"alice", "phone", []int64{base, base + 1}},
		{"alice", "tablet", []int64{base}},
		{"bob", "phone", []int64{base}},
		{"alice", "phone2", []int64{base + 2}},
	} {
		t.Run(tc.user+"/"+tc.device, func(t *testing.T) {
			got := collect(t, s, allOf(tc.user, tc.device))
			if !slices.Equal(tsts(got), tc.want) {
				t.Fatalf("tst = %v, want %v", tsts(got), tc.want)
			}
			for i := range got {
				checkMessage(t, "Locations", got[i], location(tc.user, tc.device, got[i].TST))
			}
		})
	}
}

func testRange(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	const from, to = base + 100, base + 200
	mustAppend(t, s, locations("alice", "phone", from-1, from, from+50, to, to+1)...)

	for _, tc := range []struct {
		name string
		q    storage.LocationQuery
		want []int64
	}{
		{"inclusive", storage.LocationQuery{User: "alice", Device: "phone", From: from, To: to}, []int64{from, from + 50, to}},
		{"from equals to", storage.LocationQuery{User: "alice", Device: "phone", From: from, To: from}, []int64{from}},
		{"only at to", storage.LocationQuery{User: "alice", Device: "phone", From: to, To: to + 0}, []int64{to}},
		{"open ends exclude boundary", storage.LocationQuery{User: "alice", Device: "phone", From: from + 1, To: to - 1}, []int64{from + 50}},
		{"empty interval", storage.LocationQuery{User: "alice", Device: "phone", From: from + 51, To: to - 1}, nil},
		{"from after to", storage.LocationQuery{User: "alice", Device: "phone", From: to, To: from}, nil},
		{"before everything", storage.LocationQuery{User: "alice", Device: "phone", From: 0, To: from - 2}, nil},
		{"after everything", storage.LocationQuery{User: "alice", Device: "phone", From: to + 2, To: base * 2}, nil},
		{"whole int64 range", storage.LocationQuery{User: "alice", Device: "phone", From: math.MinInt64, To: math.MaxInt64}, []int64{from - 1, from, from + 50, to, to + 1}},
		{"unknown user", storage.LocationQuery{User: "nobody", Device: "phone", From: 0, To: math.MaxInt64}, nil},
		{"unknown device", storage.LocationQuery{User: "alice", Device: "watch", From: 0, To: math.MaxInt64}, nil},
		{"unknown device with limit", storage.LocationQuery{User: "alice", Device: "watch", From: 0, To: math.MaxInt64, Limit: 3}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tsts(collect(t, s, tc.q)); !slices.Equal(got, tc.want) {
				t.Errorf("tst = %v, want %v", got, tc.want)
			}
		})
	}
}

func testLimit(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	at := func(offsets ...int64) []int64 {
		out := make([]int64, len(offsets))
		for i, o := range offsets {
			out[i] = base + o
		}
		return out
	}
	// Appended newest first, so a backend that keeps insertion order fails.
	mustAppend(t, s, locations("alice", "phone", at(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)...)...)
	mustAppend(t, s, locations("alice", "tablet", at(55)...)...)

	q := func(from, to int64, limit int) storage.LocationQuery {
		return storage.LocationQuery{User: "alice", Device: "phone", From: base + from, To: base + to, Limit: limit}
	}
	for _, tc := range []struct {
		name string
		q    storage.LocationQuery
		want []int64
	}{
		{"newest of all", q(0, 1000, 3), at(80, 90, 100)},
		{"newest before to", q(0, 55, 3), at(30, 40, 50)},
		{"to on a point", q(0, 50, 2), at(40, 50)},
		{"exactly limit in range", q(45, 75, 3), at(50, 60, 70)},
		{"from on a point", q(30, 45, 5), at(30, 40)},
		{"fewer than limit", q(85, 1000, 5), at(90, 100)},
		{"limit above total", q(0, 1000, 100), at(10, 20, 30, 40, 50, 60, 70, 80, 90, 100)},
		{"limit one", q(0, 1000, 1), at(100)},
		{"limit one inside", q(0, 99, 1), at(90)},
		{"no limit", q(0, 1000, 0), at(10, 20, 30, 40, 50, 60, 70, 80, 90, 100)},
		{"before everything", q(0, 9, 3), nil},
		{"after everything", q(101, 1000, 3), nil},
		{"from after to", q(60, 40, 3), nil},
		{"to beyond int64 range end", storage.LocationQuery{User: "alice", Device: "phone", From: math.MinInt64, To: math.MaxInt64, Limit: 2}, at(90, 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(t, s, tc.q)
			if !slices.Equal(tsts(got), tc.want) {
				t.Fatalf("tst = %v, want %v", tsts(got), tc.want)
			}
			for i := range got {
				checkMessage(t, "Locations", got[i], location("alice", "phone", got[i].TST))
			}
		})
	}
}

func testDuplicates(t *testing.T, open func(*testing.T) storage.Store) {
	m := location("alice", "phone", base)
	resent := m
	resent.Received += 60_000 // the same fix delivered again a minute later
	other := m
	other.Payload = []byte(`{"_type":"location","lat":1,"lon":2,"tst":1700000000}`)
	other.Lat, other.Lon = 1, 2
	otherDevice := m
	otherDevice.Device = "tablet"
	otherUser := m
	otherUser.User = "bob"
	before, after := location("alice", "phone", base-1), location("alice", "phone", base+1)
	lwt := event("alice", "phone", "lwt", base)

	for _, tc := range []struct {
		name    string
		batches [][]storage.Message
		dup     [][]bool
		want    []storage.Message // the stored locations
	}{
		{
			name:    "same batch",
			batches: [][]storage.Message{{m, m}},
			dup:     [][]bool{{false, true}},
			want:    []storage.Message{m},
		},
		{
			name:    "separate batches",
			batches: [][]storage.Message{{m}, {m}},
			dup:     [][]bool{{false}, {true}},
			want:    []storage.Message{m},
		},
		{
			name:    "received later",
			batches: [][]storage.Message{{m}, {resent}},
			dup:     [][]bool{{false}, {true}},
			want:    []storage.Message{m},
		},
		{
			name:    "between others",
			batches: [][]storage.Message{{before, m}, {after, m, m}},
			dup:     [][]bool{{false, false}, {false, true, true}},
			want:    []storage.Message{before, m, after},
		},
		{
			name:    "same tst other payload",
			batches: [][]storage.Message{{m, other}, {other, m}},
			dup:     [][]bool{{false, false}, {true, true}},
			want:    []storage.Message{m, other},
		},
		{
			name:    "same payload other device",
			batches: [][]storage.Message{{m, otherDevice}, {otherDevice}},
			dup:     [][]bool{{false, false}, {true}},
			want:    []storage.Message{m, otherDevice},
		},
		{
			name:    "same payload other user",
			batches: [][]storage.Message{{m}, {otherUser}},
			dup:     [][]bool{{false}, {false}},
			want:    []storage.Message{m, otherUser},
		},
		{
			name:    "other type",
			batches: [][]storage.Message{{lwt, lwt}, {lwt}},
			dup:     [][]bool{{false, true}, {true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			devices := map[[2]string]bool{}
			for i, batch := range tc.batches {
				dup, err := s.Append(t.Context(), batch)
				if err != nil {
					t.Fatalf("Append batch %d: %v", i, err)
				}
				if !slices.Equal(dup, tc.dup[i]) {
					t.Errorf("Append batch %d: dup = %v, want %v", i, dup, tc.dup[i])
				}
				for _, m := range batch {
					devices[[2]string{m.User, m.Device}] = true
				}
			}
			var got []storage.Message
			for d := range devices {
				got = append(got, collect(t, s, allOf(d[0], d[1]))...)
			}
			// Two messages with one tst may come in either order.
			checkMessages(t, "stored locations", sortMessages(got), sortMessages(slices.Clone(tc.want)))
		})
	}
}

func testCallbackError(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	const n = 3000 // more than one read chunk of the embedded backend
	tst := make([]int64, n)
	for i := range tst {
		tst[i] = base + int64(i)
	}
	mustAppend(t, s, locations("alice", "phone", tst...)...)
	errStop := errors.New("stop here")

	for _, tc := range []struct {
		name   string
		limit  int
		stopAt int // fn fails on this call (1-based)
	}{
		{"first", 0, 1},
		{"third", 0, 3},
		{"after a chunk", 0, 1500},
		{"last", 0, n},
		{"with limit first", 10, 1},
		{"with limit third", 10, 3},
		{"with large limit", 2000, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			q := allOf("alice", "phone")
			q.Limit = tc.limit
			err := s.Locations(t.Context(), q, func(*storage.Message) error {
				calls++
				if calls == tc.stopAt {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, errStop) {
				t.Errorf("Locations: err = %v, want %v", err, errStop)
			}
			if calls != tc.stopAt {
				t.Errorf("fn called %d times, want %d (walk must stop at the error)", calls, tc.stopAt)
			}
		})
	}
}

func testLargeRange(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	const n, batch = 5000, 1000
	// Batches go in newest first and each batch is reversed, so nothing
	// arrives in tst order.
	for b := n/batch - 1; b >= 0; b-- {
		msgs := make([]storage.Message, 0, batch)
		for i := batch - 1; i >= 0; i-- {
			msgs = append(msgs, location("alice", "phone", base+int64(b*batch+i)*30))
		}
		mustAppend(t, s, msgs...)
	}
	mustAppend(t, s, location("alice", "tablet", base+15)) // interleaved neighbour

	for _, tc := range []struct {
		name       string
		q          storage.LocationQuery
		first, cnt int // expected: points first .. first+cnt-1
	}{
		{"all", allOf("alice", "phone"), 0, n},
		{"inner range", storage.LocationQuery{User: "alice", Device: "phone", From: base + 30*1000, To: base + 30*3999}, 1000, 3000},
		{"chunk boundary", storage.LocationQuery{User: "alice", Device: "phone", From: base + 30*1023, To: base + 30*1024}, 1023, 2},
		{"newest 2500", storage.LocationQuery{User: "alice", Device: "phone", From: 0, To: base * 2, Limit: 2500}, n - 2500, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := 0
			err := s.Locations(t.Context(), tc.q, func(m *storage.Message) error {
				if i < tc.cnt {
					want := location("alice", "phone", base+int64(tc.first+i)*30)
					if m.TST != want.TST {
						return fmt.Errorf("point %d: tst %d, want %d", i, m.TST, want.TST)
					}
					checkMessage(t, fmt.Sprintf("point %d", i), *m, want)
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatalf("Locations: %v", err)
			}
			if i != tc.cnt {
				t.Errorf("got %d points, want %d", i, tc.cnt)
			}
		})
	}
}

func testCancelledContext(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	mustAppend(t, s, locations("alice", "phone", base, base+1)...)

	t.Run("Append", func(t *testing.T) {
		if _, err := s.Append(cancelled(t), locations("alice", "phone", base+2)); err == nil {
			t.Fatal("Append with cancelled context: no error")
		}
		if got := tsts(collect(t, s, allOf("alice", "phone"))); !slices.Equal(got, []int64{base, base + 1}) {
			t.Errorf("after cancelled Append: tst = %v, want %v", got, []int64{base, base + 1})
		}
	})
	for _, limit := range []int{0, 1} {
		t.Run(fmt.Sprintf("Locations limit %d", limit), func(t *testing.T) {
			q := allOf("alice", "phone")
			q.Limit = limit
			err := s.Locations(cancelled(t), q, func(*storage.Message) error { return nil })
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Locations with cancelled context: err = %v, want %v", err, context.Canceled)
			}
		})
	}
}

func testAppendCopiesInput(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	want := location("alice", "phone", base)
	msgs := []storage.Message{location("alice", "phone", base)}
	mustAppend(t, s, msgs...)
	// The recorder reuses its buffers once Append returns.
	for i := range msgs[0].Payload {
		msgs[0].Payload[i] = 'x'
	}
	checkMessages(t, "Locations", collect(t, s, allOf("alice", "phone")), []storage.Message{want})
	checkMessages(t, "LastLocations", lastLocations(t, s, "", ""), []storage.Message{want})

	// Nor may a caller that scribbles on what fn gets damage the store.
	for _, limit := range []int{0, 1} {
		q := allOf("alice", "phone")
		q.Limit = limit
		if err := s.Locations(t.Context(), q, func(m *storage.Message) error {
			for i := range m.Payload {
				m.Payload[i] = 'y'
			}
			return nil
		}); err != nil {
			t.Fatalf("Locations: %v", err)
		}
	}
	checkMessages(t, "Locations after scribbling", collect(t, s, allOf("alice", "phone")), []storage.Message{want})
}

// testWriteDuringWalk appends from inside fn: a backend must not hold a lock
// (or its only connection) across calls of fn, or a slow export would stall
// the recorder, and this test would deadlock.
func testWriteDuringWalk(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	const n = 2500 // several chunks of the embedded backend
	tst := make([]int64, n)
	for i := range tst {
		tst[i] = base + int64(i)
	}
	mustAppend(t, s, locations("alice", "phone", tst...)...)

	for _, limit := range []int{0, 10} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			q := storage.LocationQuery{User: "alice", Device: "phone", From: base, To: base + n - 1, Limit: limit}
			calls := 0
			err := s.Locations(t.Context(), q, func(m *storage.Message) error {
				calls++
				if calls%1000 == 1 {
					extra := []storage.Message{location("alice", "phone", base+n+int64(calls)+int64(limit)), location("bob", "phone", m.TST)}
					if _, err := s.Append(t.Context(), extra); err != nil {
						return fmt.Errorf("Append inside fn: %w", err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Locations: %v", err)
			}
			if want := cmp.Or(limit, n); calls != want {
				t.Errorf("fn called %d times, want %d", calls, want)
			}
		})
	}
}
