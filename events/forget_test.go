package events_test

import (
	"strings"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// A deleted device is forgotten: not inside any fence any more, no state
// or watermark written back, and its next fixes are evaluated afresh, even
// ones older than what was evaluated before the deletion.
func TestForgetDevice(t *testing.T) {
	r := open(t, t.TempDir())
	defer r.close()
	home := r.addHome(nil)
	r.feed(walk("alice", 1000, 20, true))
	eventuallyEvents(t, r, 1)
	if occ := r.engine.Occupants(home.ID); len(occ) != 1 {
		t.Fatalf("occupants = %v, want alice/phone", occ)
	}

	if _, err := r.store.DeleteDevice(r.ctx, "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	r.engine.ForgetDevice(r.ctx, "alice", "")
	if occ := r.engine.Occupants(home.ID); len(occ) != 0 {
		t.Errorf("occupants after ForgetDevice = %v, want none", occ)
	}
	states, err := r.store.FenceStates(r.ctx)
	if err != nil || len(states) != 0 {
		t.Errorf("FenceStates = %+v, %v; want none", states, err)
	}

	r.feed(walk("alice", 100, 20, true)) // before the old watermark
	got := eventuallyEvents(t, r, 1)
	if !strings.HasPrefix(got, "enter@") {
		t.Errorf("events after forgetting = %q, want a new enter", got)
	}
	err = r.store.Events(r.ctx, storage.EventQuery{User: "alice"}, func(ev *storage.Event) error {
		if ev.TST >= 1000 {
			t.Errorf("an event from before the deletion came back: %+v", ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
