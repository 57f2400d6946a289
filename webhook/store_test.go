package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/wherehouse/wherehouse/storage"
)

// memStore is an in-memory Store following the contract in
// storage/fence.go. It stands in while storage/embedded gains the outbox;
// the server's integration test runs the worker on the real store.
type memStore struct {
	mu        sync.Mutex
	hooks     map[string]storage.Webhook
	outbox    map[string]storage.Delivery // pending
	finished  map[string]storage.Delivery // delivered or failed
	updates   []storage.Delivery          // every UpdateDelivery, in order
	dueCalls  int
	nextCalls int
	failDue   int // how many more DueDeliveries calls fail
}

var errStore = errors.New("store unavailable")

func newMemStore() *memStore {
	return &memStore{
		hooks:    make(map[string]storage.Webhook),
		outbox:   make(map[string]storage.Delivery),
		finished: make(map[string]storage.Delivery),
	}
}

func (s *memStore) Webhook(_ context.Context, id string) (storage.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return storage.Webhook{}, storage.ErrNotFound
	}
	return h, nil
}

func (s *memStore) DueDeliveries(_ context.Context, now int64, limit int) ([]storage.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dueCalls++
	if s.failDue > 0 {
		s.failDue--
		return nil, errStore
	}
	var due []storage.Delivery
	for _, d := range s.outbox {
		if d.Next <= now {
			due = append(due, clone(d))
		}
	}
	slices.SortFunc(due, func(a, b storage.Delivery) int {
		return cmp.Or(cmp.Compare(a.Next, b.Next), cmp.Compare(a.ID, b.ID))
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	return due, nil
}

func (s *memStore) NextDelivery(context.Context) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextCalls++
	var next int64
	ok := false
	for _, d := range s.outbox {
		if !ok || d.Next < next {
			next, ok = d.Next, true
		}
	}
	return next, ok, nil
}

func (s *memStore) UpdateDelivery(_ context.Context, d storage.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.outbox[d.ID]; !ok {
		return storage.ErrNotFound
	}
	s.updates = append(s.updates, clone(d))
	if d.Status == storage.DeliveryPending {
		s.outbox[d.ID] = clone(d)
		return nil
	}
	delete(s.outbox, d.ID)
	s.finished[d.ID] = clone(d)
	return nil
}

func (s *memStore) putWebhook(h storage.Webhook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[h.ID] = h
}

// deleteWebhook removes h and its pending deliveries, as
// storage.Webhooks.DeleteWebhook does.
func (s *memStore) deleteWebhook(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hooks, id)
	for k, d := range s.outbox {
		if d.Webhook == id {
			delete(s.outbox, k)
		}
	}
}

func (s *memStore) queue(ds ...storage.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.outbox[d.ID] = clone(d)
	}
}

// delivery returns d as stored, pending or finished.
func (s *memStore) delivery(id string) (storage.Delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.outbox[id]; ok {
		return clone(d), true
	}
	d, ok := s.finished[id]
	return clone(d), ok
}

func (s *memStore) history(id string) []storage.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h []storage.Delivery
	for _, d := range s.updates {
		if d.ID == id {
			h = append(h, d)
		}
	}
	return h
}

func (s *memStore) counts() (due, next int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dueCalls, s.nextCalls
}

func clone(d storage.Delivery) storage.Delivery {
	d.Body = bytes.Clone(d.Body)
	return d
}
