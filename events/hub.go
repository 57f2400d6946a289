package events

import (
	"slices"
	"strings"
	"sync"

	"github.com/wherehouse/wherehouse/storage"
)

// hubBuffer is how many events a slow listener may fall behind before it
// misses some (they stay queryable at /api/v1/events).
const hubBuffer = 256

// Hub fans recorded events out to listeners such as /ws/events. Publishing
// never blocks.
type Hub struct {
	mu        sync.Mutex
	listeners map[chan storage.Event]struct{}
}

// NewHub returns an empty fan-out.
func NewHub() *Hub { return &Hub{listeners: map[chan storage.Event]struct{}{}} }

// Subscribe returns a channel of new events and a function that stops
// them and closes the channel.
func (h *Hub) Subscribe() (<-chan storage.Event, func()) {
	ch := make(chan storage.Event, hubBuffer)
	h.mu.Lock()
	h.listeners[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.listeners, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}

// Publish hands ev to every listener that has room.
func (h *Hub) Publish(ev storage.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.listeners {
		select {
		case ch <- ev:
		default:
		}
	}
}

func sortOccupants(o []Occupant) {
	slices.SortFunc(o, func(a, b Occupant) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
}
