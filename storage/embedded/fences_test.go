package embedded

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// transitionBatch is one enter with its state and two deliveries, one of
// which is then delivered.
type transitionBatch struct {
	fence     storage.Fence
	webhook   storage.Webhook
	state     storage.FenceState
	event     storage.Event
	pending   storage.Delivery
	delivered storage.Delivery
}

func newTransitionBatch() transitionBatch {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	ev := storage.Event{
		ID: "ev1", User: "alice", Device: "phone", Fence: "f1", FenceName: "home", Event: "enter",
		TST: base, Lat: 52.5, Lon: 13.4, Acc: 10, Source: "server", Created: base * 1000,
	}
	d := func(id string, next int64) storage.Delivery {
		return storage.Delivery{
			ID: id, Webhook: "w1", Owner: "alice", Event: ev.ID, Body: []byte(`{"event":"enter"}`),
			Next: next, Status: storage.DeliveryPending, Created: base * 1000,
		}
	}
	return transitionBatch{
		fence: storage.Fence{
			ID: "f1", Owner: "alice", Name: "home", Radius: 100, Created: created,
			Geometry: json.RawMessage(`{"type":"Point","coordinates":[13.4,52.5]}`),
		},
		webhook:   storage.Webhook{ID: "w1", Owner: "alice", URL: "https://example.com/hook", Secret: "s", Created: created},
		state:     storage.FenceState{User: "alice", Device: "phone", Fence: "f1", Inside: true, Since: base, Last: base},
		event:     ev,
		pending:   d("d1", base*1000+5),
		delivered: d("d2", base*1000),
	}
}

// record stores b's transition and, with finish, marks one delivery done.
func (b *transitionBatch) record(t *testing.T, s *Store, finish bool) {
	t.Helper()
	fresh, err := s.RecordTransitions(t.Context(), []storage.FenceState{b.state}, []storage.Event{b.event}, []storage.Delivery{b.pending, b.delivered})
	if err != nil {
		t.Fatalf("RecordTransitions: %v", err)
	}
	if !slices.Equal(fresh, []bool{true}) {
		t.Fatalf("RecordTransitions: fresh = %v, want [true]", fresh)
	}
	if !finish {
		return
	}
	b.delivered.Status, b.delivered.Attempts, b.delivered.LastCode, b.delivered.Finished = storage.DeliveryDelivered, 1, 200, base*1000+1
	if err := s.UpdateDelivery(t.Context(), b.delivered); err != nil {
		t.Fatalf("UpdateDelivery: %v", err)
	}
}

// check verifies that s holds b's history-side records.
func (b *transitionBatch) check(t *testing.T, s *Store, finished bool) {
	t.Helper()
	ctx := t.Context()
	states, err := s.FenceStates(ctx)
	if err != nil || !slices.Equal(states, []storage.FenceState{b.state}) {
		t.Errorf("FenceStates = %+v, %v; want [%+v]", states, err, b.state)
	}
	var events []storage.Event
	if err := s.Events(ctx, storage.EventQuery{User: "alice", Device: "phone"}, func(e *storage.Event) error {
		events = append(events, *e)
		return nil
	}); err != nil || !slices.Equal(events, []storage.Event{b.event}) {
		t.Errorf("Events = %+v, %v; want [%+v]", events, err, b.event)
	}
	want := []storage.Delivery{b.pending, b.delivered}
	if finished {
		want = []storage.Delivery{b.pending}
	}
	slices.SortFunc(want, func(x, y storage.Delivery) int { return int(x.Next - y.Next) })
	due, err := s.DueDeliveries(ctx, base*1000+100, 0)
	if err != nil || !reflect.DeepEqual(due, want) {
		t.Errorf("DueDeliveries = %+v, %v; want %+v", due, err, want)
	}
	if finished {
		all, err := s.Deliveries(ctx, "w1", 0)
		if want := []storage.Delivery{b.pending, b.delivered}; err != nil || !reflect.DeepEqual(all, want) {
			t.Errorf("Deliveries = %+v, %v; want %+v", all, err, want)
		}
	}
	// The event is remembered, so a replay neither repeats it nor queues
	// its deliveries again.
	replay := b.pending
	replay.ID = "d3"
	fresh, err := s.RecordTransitions(ctx, nil, []storage.Event{b.event}, []storage.Delivery{replay})
	if err != nil || !slices.Equal(fresh, []bool{false}) {
		t.Errorf("RecordTransitions again: fresh = %v, %v; want [false]", fresh, err)
	}
}

func TestFencesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	b := newTransitionBatch()
	s := openDir(t, dir)
	if err := s.PutFence(t.Context(), b.fence); err != nil {
		t.Fatalf("PutFence: %v", err)
	}
	if err := s.PutWebhook(t.Context(), b.webhook); err != nil {
		t.Fatalf("PutWebhook: %v", err)
	}
	b.record(t, s, true)
	closeStore(t, s)

	s = openDir(t, dir)
	defer closeStore(t, s)
	f, err := s.Fence(t.Context(), b.fence.ID)
	if err != nil || f.Name != b.fence.Name || f.Owner != b.fence.Owner || string(f.Geometry) != string(b.fence.Geometry) || !f.Created.Equal(b.fence.Created) {
		t.Errorf("Fence after reopen = %+v, %v; want %+v", f, err, b.fence)
	}
	w, err := s.Webhook(t.Context(), b.webhook.ID)
	if err != nil || w.URL != b.webhook.URL || w.Secret != b.webhook.Secret {
		t.Errorf("Webhook after reopen = %+v, %v; want %+v", w, err, b.webhook)
	}
	b.check(t, s, true)
}

// TestRecordTransitionsDurable copies history.db while the store is still
// open, right after RecordTransitions returned: what a kill -9 at that
// moment leaves behind must hold the transition.
func TestRecordTransitionsDurable(t *testing.T) {
	dir := t.TempDir()
	b := newTransitionBatch()
	s := openDir(t, dir)
	defer closeStore(t, s)
	b.record(t, s, false)

	raw, err := os.ReadFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatalf("read history db: %v", err)
	}
	crashed := t.TempDir()
	if err := os.WriteFile(filepath.Join(crashed, HistoryFile), raw, 0o600); err != nil {
		t.Fatalf("write copy: %v", err)
	}
	c := openDir(t, crashed)
	defer closeStore(t, c)
	b.check(t, c, false)
}

// TestOpenAddsFenceBuckets opens a store written before fences existed.
func TestOpenAddsFenceBuckets(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	mustAppend(t, s, fix("alice", "phone", base))
	closeStore(t, s)

	db, err := bolt.Open(filepath.Join(dir, HistoryFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open history db: %v", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFenceState, bucketEvents, bucketEventID, bucketOutbox, bucketOutboxID, bucketDeliveries} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("drop fence buckets: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close history db: %v", err)
	}

	s = openDir(t, dir)
	defer closeStore(t, s)
	b := newTransitionBatch()
	b.record(t, s, true)
	b.check(t, s, true)
	if got := allLocations(t, s, "alice", "phone"); len(got) != 1 {
		t.Errorf("Locations after upgrade: %d, want 1", len(got))
	}
}
