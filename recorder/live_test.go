package recorder_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

func liveMsg(i int) *storage.Message {
	return &storage.Message{
		User: "alice", Device: "pixel7", Topic: "owntracks/alice/pixel7", Type: "location",
		TST: 1_714_000_000 + int64(i), Lat: 52.5, Lon: 13.4,
		Payload: fmt.Appendf(nil, `{"_type":"location","lat":52.5,"lon":13.4,"tst":%d}`, 1_714_000_000+i),
	}
}

// publishAll publishes msgs in a goroutine and fails if that blocks: Publish
// must never wait for a listener.
func publishAll(t *testing.T, l *recorder.Live, msgs ...*storage.Message) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, m := range msgs {
			l.Publish(m)
		}
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("Publish blocked")
	}
}

func drain(ch <-chan storage.Message) []storage.Message {
	var out []storage.Message
	for len(ch) > 0 {
		out = append(out, <-ch)
	}
	return out
}

func TestLiveFanOut(t *testing.T) {
	tests := []struct {
		name      string
		listeners int
		messages  int
	}{
		{"no listeners", 0, 3},
		{"one listener", 1, 3},
		{"three listeners", 3, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dropped atomic.Int64
			l := recorder.NewLive(func() { dropped.Add(1) })
			chans := make([]<-chan storage.Message, tc.listeners)
			for i := range chans {
				ch, cancel := l.Subscribe()
				defer cancel()
				chans[i] = ch
			}
			msgs := make([]*storage.Message, tc.messages)
			for i := range msgs {
				msgs[i] = liveMsg(i)
			}
			publishAll(t, l, msgs...)
			for i, ch := range chans {
				got := drain(ch)
				if len(got) != tc.messages {
					t.Fatalf("listener %d got %d messages, want %d", i, len(got), tc.messages)
				}
				for j := range got {
					if got[j].TST != msgs[j].TST || string(got[j].Payload) != string(msgs[j].Payload) {
						t.Errorf("listener %d message %d = tst %d, want %d (publish order)", i, j, got[j].TST, msgs[j].TST)
					}
				}
			}
			if n := dropped.Load(); n != 0 {
				t.Errorf("dropped %d, want 0", n)
			}
		})
	}
}

// TestLiveSlowListener fills one listener's buffer: Publish must not block,
// the extra messages are dropped and counted, and another listener is not
// affected.
func TestLiveSlowListener(t *testing.T) {
	var dropped atomic.Int64
	l := recorder.NewLive(func() { dropped.Add(1) })
	slow, cancelSlow := l.Subscribe()
	defer cancelSlow()

	const n = 1000
	msgs := make([]*storage.Message, n)
	for i := range msgs {
		msgs[i] = liveMsg(i)
	}
	publishAll(t, l, msgs...)
	if len(slow) == 0 || len(slow) != cap(slow) {
		t.Fatalf("slow listener holds %d of %d buffered messages, want a full buffer", len(slow), cap(slow))
	}
	if got := int64(len(slow)) + dropped.Load(); got != n {
		t.Errorf("buffered %d + dropped %d = %d, want %d", len(slow), dropped.Load(), got, n)
	}

	// A new listener still gets the next message; the full one drops it.
	fresh, cancelFresh := l.Subscribe()
	defer cancelFresh()
	before := dropped.Load()
	publishAll(t, l, liveMsg(n))
	if got := drain(fresh); len(got) != 1 || got[0].TST != liveMsg(n).TST {
		t.Errorf("fresh listener got %v, want the one new message", got)
	}
	if d := dropped.Load() - before; d != 1 {
		t.Errorf("dropped %d for the full listener, want 1", d)
	}
	// The slow listener kept the oldest messages, in order.
	got := drain(slow)
	for i := range got {
		if got[i].TST != msgs[i].TST {
			t.Fatalf("slow listener message %d has tst %d, want %d", i, got[i].TST, msgs[i].TST)
		}
	}
}

// TestLiveNilDropped checks that a Live without a dropped callback still
// drops instead of blocking.
func TestLiveNilDropped(t *testing.T) {
	l := recorder.NewLive(nil)
	ch, cancel := l.Subscribe()
	defer cancel()
	msgs := make([]*storage.Message, 1000)
	for i := range msgs {
		msgs[i] = liveMsg(i)
	}
	publishAll(t, l, msgs...)
	if len(ch) != cap(ch) {
		t.Errorf("buffer holds %d of %d", len(ch), cap(ch))
	}
}

func TestLiveCancel(t *testing.T) {
	var dropped atomic.Int64
	l := recorder.NewLive(func() { dropped.Add(1) })
	ch, cancel := l.Subscribe()
	other, cancelOther := l.Subscribe()
	defer cancelOther()

	publishAll(t, l, liveMsg(1))
	cancel()
	cancel() // idempotent: no panic on a second close

	// Buffered messages are still readable, then the channel is closed.
	if m, ok := <-ch; !ok || m.TST != liveMsg(1).TST {
		t.Errorf("first receive after cancel = %v, %v; want the buffered message", m.TST, ok)
	}
	if _, ok := <-ch; ok {
		t.Error("channel still open after cancel")
	}
	// Publishing after cancel neither panics (send on closed channel) nor
	// counts the cancelled listener as a drop.
	publishAll(t, l, liveMsg(2))
	if n := dropped.Load(); n != 0 {
		t.Errorf("dropped = %d after cancel, want 0", n)
	}
	if got := drain(other); len(got) != 2 {
		t.Errorf("remaining listener got %d messages, want 2", len(got))
	}
}

// TestLiveConcurrent subscribes, publishes and cancels at once; run with
// -race it checks the locking, and it must not panic on a closed channel.
func TestLiveConcurrent(t *testing.T) {
	l := recorder.NewLive(func() {})
	var pubs, subs sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		pubs.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.Publish(liveMsg(i))
			}
		})
	}
	for range 50 {
		subs.Go(func() {
			ch, cancel := l.Subscribe()
			for range 3 {
				<-ch
			}
			start := make(chan struct{})
			var cancels sync.WaitGroup
			for range 3 { // cancel from several goroutines at once
				cancels.Go(func() { <-start; cancel() })
			}
			close(start)
			cancels.Wait()
			for range ch { // closed by cancel: this ends
			}
		})
	}
	// The subscribers end once they have received from the endless
	// publishers; then the publishers are stopped.
	waitGroup(t, &subs, "subscribers")
	close(stop)
	waitGroup(t, &pubs, "publishers")
}
