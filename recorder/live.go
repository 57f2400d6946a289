package recorder

import (
	"sync"

	"github.com/wherehouse/wherehouse/storage"
)

// liveBuffer is how many locations a slow listener may fall behind before
// it misses some (it can always refetch the last positions).
const liveBuffer = 256

// Live fans stored locations out to listeners such as /ws/last. Publishing
// never blocks: a listener whose buffer is full misses the message.
type Live struct {
	mu        sync.Mutex
	listeners map[chan storage.Message]struct{}
	dropped   func()
}

// NewLive returns an empty fan-out. dropped, if set, is called for every
// message a slow listener missed.
func NewLive(dropped func()) *Live {
	return &Live{listeners: make(map[chan storage.Message]struct{}), dropped: dropped}
}

// Subscribe returns a channel of new locations and a function that stops
// them and closes the channel.
func (l *Live) Subscribe() (<-chan storage.Message, func()) {
	ch := make(chan storage.Message, liveBuffer)
	l.mu.Lock()
	l.listeners[ch] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.listeners, ch)
			l.mu.Unlock()
			close(ch)
		})
	}
}

// Publish hands m to every listener.
func (l *Live) Publish(m *storage.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.listeners {
		select {
		case ch <- *m:
		default:
			if l.dropped != nil {
				l.dropped()
			}
		}
	}
}
