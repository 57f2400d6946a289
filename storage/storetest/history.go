package storetest

import (
	"errors"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// testAllMessages checks the walk over every message type of a device:
// locations and other types merged in tst order, the range inclusive, other
// devices left out, a large history read across chunks, and fn's error
// returned.
func testAllMessages(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	msgs := []storage.Message{
		event("alice", "phone", "lwt", base+1),
		location("alice", "phone", base+2),
		event("alice", "phone", "transition", base+3),
		location("alice", "phone", base+3),
		event("alice", "phone", "card", base+5),
		location("alice", "phone", base+6),
		event("alice", "phone", "status", base+9),
	}
	mustAppend(t, s, msgs...)
	mustAppend(t, s, location("alice", "tablet", base+4), event("bob", "phone", "lwt", base+4))

	all := func(q storage.LocationQuery) []storage.Message {
		t.Helper()
		var out []storage.Message
		if err := s.AllMessages(t.Context(), q, func(m *storage.Message) error {
			out = append(out, *m)
			return nil
		}); err != nil {
			t.Fatalf("AllMessages(%+v): %v", q, err)
		}
		return out
	}
	// At base+3 both a location and a transition: locations come first.
	want := []storage.Message{msgs[0], msgs[1], msgs[3], msgs[2], msgs[4], msgs[5], msgs[6]}
	checkMessages(t, "AllMessages", all(allOf("alice", "phone")), want)
	checkMessages(t, "AllMessages range", all(storage.LocationQuery{User: "alice", Device: "phone", From: base + 3, To: base + 6}), want[2:6])
	checkMessages(t, "AllMessages other device", all(allOf("alice", "tablet")), []storage.Message{location("alice", "tablet", base+4)})
	if got := all(allOf("carol", "phone")); len(got) != 0 {
		t.Errorf("AllMessages of a device without data: %d messages", len(got))
	}
	if got := all(storage.LocationQuery{User: "alice", Device: "phone", From: base + 9, To: base + 1}); len(got) != 0 {
		t.Errorf("AllMessages with from after to: %d messages", len(got))
	}

	t.Run("large", func(t *testing.T) {
		s := open(t)
		const n = 3000 // several chunks of any sensible size
		var batch []storage.Message
		for i := range int64(n) {
			if i%3 == 0 {
				batch = append(batch, event("alice", "phone", "status", base+i))
			} else {
				batch = append(batch, location("alice", "phone", base+i))
			}
		}
		mustAppend(t, s, batch...)
		var got []int64
		if err := s.AllMessages(t.Context(), allOf("alice", "phone"), func(m *storage.Message) error {
			got = append(got, m.TST)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d messages, want %d", len(got), n)
		}
		for i, tst := range got {
			if tst != base+int64(i) {
				t.Fatalf("message %d has tst %d, want %d", i, tst, base+int64(i))
			}
		}
	})

	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := s.AllMessages(t.Context(), allOf("alice", "phone"), func(*storage.Message) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 2 {
			t.Errorf("AllMessages = %v after %d calls, want the callback's error after 2", err, calls)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		err := s.AllMessages(cancelled(t), allOf("alice", "phone"), func(*storage.Message) error { return nil })
		if err == nil {
			t.Error("AllMessages with a cancelled context: no error")
		}
	})
}
