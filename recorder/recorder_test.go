package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// waitLimit bounds every wait so a lost callback fails the test instead of
// hanging it; it is a deadline, not a timing assertion.
const waitLimit = 60 * time.Second

var discard = slog.New(slog.DiscardHandler)

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.Context(), t.TempDir(), discard)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// running is a recorder whose Run goroutine the test owns.
type running struct {
	*recorder.Recorder
	runErr chan error
}

// startRecorder starts a recorder on store; the cleanup closes it and waits
// for Run, which must return nil.
func startRecorder(t *testing.T, store storage.Messages, live *recorder.Live, opts recorder.Options) *running {
	t.Helper()
	r := &running{
		Recorder: recorder.New(store, live, recorder.NewMetrics(nil), discard, opts),
		runErr:   make(chan error, 1),
	}
	go func() { r.runErr <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		r.Close()
		r.wait(t)
	})
	return r
}

// wait waits for Run to return (after Close).
func (r *running) wait(t *testing.T) {
	t.Helper()
	select {
	case err, ok := <-r.runErr:
		if ok && err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if ok {
			close(r.runErr)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after Close")
	}
}

func location(user, device string, tst int64, tid string) recorder.Incoming {
	return recorder.Incoming{
		Topic:     "owntracks/" + user + "/" + device,
		Payload:   fmt.Appendf(nil, `{"_type":"location","lat":52.%d,"lon":13.4,"tst":%d,"tid":%q}`, tst%1000, tst, tid),
		Transport: "test",
		Received:  time.Unix(tst+5, 0),
	}
}

func incoming(topic, payload string) recorder.Incoming {
	return recorder.Incoming{Topic: topic, Payload: []byte(payload), Transport: "test", Received: received}
}

// storedLocations returns every stored location of user/device.
func storedLocations(t testing.TB, s storage.Messages, user, device string) []storage.Message {
	t.Helper()
	var out []storage.Message
	q := storage.LocationQuery{User: user, Device: device, From: 0, To: math.MaxInt64}
	if err := s.Locations(context.Background(), q, func(m *storage.Message) error {
		c := *m
		c.Payload = bytes.Clone(m.Payload)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Errorf("Locations(%s/%s): %v", user, device, err)
	}
	return out
}

// isStored reports whether the location in is in the store, by its tst and
// payload.
func isStored(t testing.TB, s storage.Messages, in recorder.Incoming) bool {
	t.Helper()
	m, err := recorder.Parse(in.Topic, in.Payload, in.Received)
	if err != nil {
		t.Errorf("Parse(%s): %v", in.Payload, err)
		return false
	}
	found := false
	q := storage.LocationQuery{User: m.User, Device: m.Device, From: m.TST, To: m.TST}
	if err := s.Locations(context.Background(), q, func(got *storage.Message) error {
		if bytes.Equal(got.Payload, in.Payload) {
			found = true
		}
		return nil
	}); err != nil {
		t.Errorf("Locations: %v", err)
	}
	return found
}

// waitGroup waits for wg with the test deadline.
func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestRecorderConcurrentAccept feeds the pipeline from several producers at
// once, with invalid messages and duplicates mixed in, and checks every
// callback: called exactly once, in each producer's order, with the right
// error, and with the location readable from the store when it says nil.
func TestRecorderConcurrentAccept(t *testing.T) {
	tests := []struct {
		name string
		opts recorder.Options
	}{
		{"defaults", recorder.Options{}},
		{"small queue and batches", recorder.Options{Queue: 4, MaxBatch: 3}},
		{"batch of one", recorder.Options{Queue: 1, MaxBatch: 1}},
	}
	const producers, perProducer = 6, 150
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t)
			rec := startRecorder(t, store, nil, tc.opts)

			type result struct {
				seq int
				err error
			}
			var (
				mu      sync.Mutex
				results = make([][]result, producers)
				unique  = make([]int, producers) // distinct valid locations per producer
				pending sync.WaitGroup
			)
			var producing sync.WaitGroup
			for p := range producers {
				user := fmt.Sprintf("user%d", p)
				producing.Go(func() {
					var prev recorder.Incoming
					prevValid := false
					for seq := range perProducer {
						in := location(user, "phone", 1_714_000_000+int64(seq), "u"+fmt.Sprint(p))
						wantInvalid := false
						switch {
						case seq%10 == 9:
							in = incoming("owntracks/"+user+"/phone", `{"_type":"location","lat":91,"lon":0,"tst":1}`)
							wantInvalid = true
						case seq%7 == 6 && prevValid:
							in = prev // a duplicate: stored once, acknowledged twice
						default:
							unique[p]++
						}
						prev, prevValid = in, !wantInvalid
						var calls atomic.Int32
						pending.Add(1)
						err := rec.Accept(in, func(err error) {
							if n := calls.Add(1); n != 1 {
								t.Errorf("%s seq %d: done called %d times", user, seq, n)
								return
							}
							if err == nil && !isStored(t, store, in) {
								t.Errorf("%s seq %d: done(nil) but the location is not in the store", user, seq)
							}
							mu.Lock()
							results[p] = append(results[p], result{seq, err})
							mu.Unlock()
							pending.Done()
						})
						if wantInvalid != (err != nil) {
							t.Errorf("%s seq %d: Accept = %v, want invalid %v", user, seq, err, wantInvalid)
						}
						if err != nil && !errors.Is(err, recorder.ErrInvalid) {
							t.Errorf("%s seq %d: Accept = %v, want ErrInvalid", user, seq, err)
						}
					}
				})
			}
			waitGroup(t, &producing, "producers")
			waitGroup(t, &pending, "done callbacks")

			mu.Lock()
			defer mu.Unlock()
			for p := range producers {
				if len(results[p]) != perProducer {
					t.Errorf("producer %d: %d callbacks, want %d", p, len(results[p]), perProducer)
					continue
				}
				for i, r := range results[p] {
					if r.seq != i {
						t.Errorf("producer %d: callback %d is for seq %d: out of order", p, i, r.seq)
						break
					}
					wantInvalid := r.seq%10 == 9
					if wantInvalid && !errors.Is(r.err, recorder.ErrInvalid) {
						t.Errorf("producer %d seq %d: done(%v), want ErrInvalid", p, r.seq, r.err)
					}
					if !wantInvalid && r.err != nil {
						t.Errorf("producer %d seq %d: done(%v), want nil", p, r.seq, r.err)
					}
				}
				if got := len(storedLocations(t, store, fmt.Sprintf("user%d", p), "phone")); got != unique[p] {
					t.Errorf("producer %d: %d locations stored, want %d", p, got, unique[p])
				}
			}
		})
	}
}

// TestRecorderOrderWithRejects checks that a rejected message's callback
// keeps its place among the valid ones of the same producer.
func TestRecorderOrderWithRejects(t *testing.T) {
	store := openStore(t)
	rec := startRecorder(t, store, nil, recorder.Options{})
	const topic = "owntracks/alice/pixel7"
	msgs := []struct {
		in     recorder.Incoming
		reason string // "" means stored
	}{
		{location("alice", "pixel7", 1_714_000_001, "ph"), ""},
		{incoming(topic, `{"_type":"location","lat":52,"lon":-181,"tst":1714000002}`), recorder.ReasonField},
		{location("alice", "pixel7", 1_714_000_003, "ph"), ""},
		{incoming(topic, ``), recorder.ReasonEmpty},
		{incoming(topic, `{"_type":"lwt"}`), ""},
		{incoming(topic, `{"_type":"encrypted","data":"AAAA"}`), recorder.ReasonCrypto},
		{incoming("owntracks/alice", `{"_type":"lwt"}`), recorder.ReasonTopic},
		{incoming(topic, `{"_type":"lwt"} {}`), recorder.ReasonJSON},
		{location("alice", "pixel7", 1_714_000_004, "ph"), ""},
	}
	var (
		mu    sync.Mutex
		order []int
		errs  = make([]error, len(msgs))
		wg    sync.WaitGroup
	)
	for i, m := range msgs {
		wg.Add(1)
		err := rec.Accept(m.in, func(err error) {
			mu.Lock()
			order = append(order, i)
			errs[i] = err
			mu.Unlock()
			wg.Done()
		})
		if (err == nil) != (m.reason == "") {
			t.Errorf("message %d: Accept = %v, want reason %q", i, err, m.reason)
		}
	}
	waitGroup(t, &wg, "done callbacks")
	mu.Lock()
	defer mu.Unlock()
	for i := range order {
		if order[i] != i {
			t.Fatalf("callbacks came in order %v", order)
		}
	}
	for i, m := range msgs {
		if m.reason == "" {
			if errs[i] != nil {
				t.Errorf("message %d: done(%v), want nil", i, errs[i])
			}
			continue
		}
		var re *recorder.RejectError
		if !errors.Is(errs[i], recorder.ErrInvalid) || !errors.As(errs[i], &re) || re.Reason != m.reason {
			t.Errorf("message %d: done(%v), want ErrInvalid with reason %q", i, errs[i], m.reason)
		}
	}
	if got := len(storedLocations(t, store, "alice", "pixel7")); got != 3 {
		t.Errorf("%d locations stored, want 3", got)
	}
}

func TestRecorderStore(t *testing.T) {
	store := openStore(t)
	// No Live: the recorder must work without listeners.
	rec := startRecorder(t, store, nil, recorder.Options{})
	tests := []struct {
		name   string
		in     recorder.Incoming
		reason string // "" means stored
	}{
		{"android location", incoming("owntracks/alice/pixel7", string(readPayload(t, "good", "android_location.json"))), ""},
		{"ios location", incoming("owntracks/Bob/iPhone", string(readPayload(t, "good", "ios_location.json"))), ""},
		{"lwt", incoming("owntracks/alice/pixel7", `{"_type":"lwt"}`), ""},
		{"card", incoming("owntracks/bob/iphone/info", string(readPayload(t, "good", "card.json"))), ""},
		{"unknown type", incoming("owntracks/bob/iphone/status", `{"_type":"x-future"}`), ""},
		{"lat 91", incoming("owntracks/alice/pixel7", `{"_type":"location","lat":91,"lon":0,"tst":1}`), recorder.ReasonField},
		{"bad topic", incoming("owntracks/+/pixel7", `{"_type":"lwt"}`), recorder.ReasonTopic},
		{"empty", incoming("owntracks/alice/pixel7", ""), recorder.ReasonEmpty},
		{"no key for encrypted", incoming("owntracks/alice/pixel7", string(readPayload(t, "good", "encrypted.json"))), recorder.ReasonCrypto},
		{"not json", incoming("owntracks/alice/pixel7", "hello"), recorder.ReasonJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := rec.Store(t.Context(), tc.in)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Store: %v", err)
				}
				m, _ := recorder.Parse(tc.in.Topic, tc.in.Payload, tc.in.Received)
				if m.IsLocation() && !isStored(t, store, tc.in) {
					t.Error("Store returned nil but the location is not in the store")
				}
				return
			}
			var re *recorder.RejectError
			if !errors.Is(err, recorder.ErrInvalid) || !errors.As(err, &re) || re.Reason != tc.reason {
				t.Errorf("Store = %v, want ErrInvalid with reason %q", err, tc.reason)
			}
		})
	}
	if got := storedLocations(t, store, "bob", "iphone"); len(got) != 1 || got[0].Topic != "owntracks/Bob/iPhone" {
		t.Errorf("bob/iphone locations = %+v, want the one iOS location with its topic as received", got)
	}
}

func TestRecorderDuplicates(t *testing.T) {
	store := openStore(t)
	live := recorder.NewLive(nil)
	rec := startRecorder(t, store, live, recorder.Options{})
	ch, cancel := live.Subscribe()
	defer cancel()

	a := location("alice", "pixel7", 1_714_000_100, "ph")
	sameTST := a
	sameTST.Payload = bytes.Replace(a.Payload, []byte(`"tid":"ph"`), []byte(`"tid":"p2"`), 1)
	lateCopy := a
	lateCopy.Received = a.Received.Add(time.Hour) // a resend: only the arrival time differs
	lateCopy.Transport = "http"

	// Stored one by one, in separate commits.
	for i, in := range []recorder.Incoming{a, a, lateCopy} {
		if err := rec.Store(t.Context(), in); err != nil {
			t.Fatalf("Store #%d: %v", i, err)
		}
	}
	if got := len(storedLocations(t, store, "alice", "pixel7")); got != 1 {
		t.Errorf("after storing one location three times: %d stored, want 1", got)
	}
	// Accepted back to back, most likely in one commit.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, in := range []recorder.Incoming{sameTST, sameTST, a} {
		wg.Add(1)
		if err := rec.Accept(in, func(err error) { errs[i] = err; wg.Done() }); err != nil {
			t.Fatalf("Accept #%d: %v", i, err)
		}
	}
	waitGroup(t, &wg, "done callbacks")
	for i, err := range errs {
		if err != nil {
			t.Errorf("duplicate #%d: done(%v), want nil", i, err)
		}
	}
	// Same tst, different payload: both kept (DESIGN.md).
	if got := len(storedLocations(t, store, "alice", "pixel7")); got != 2 {
		t.Errorf("%d stored, want 2 (two payloads with one tst)", got)
	}
	var published []storage.Message
	for len(ch) > 0 {
		published = append(published, <-ch)
	}
	if len(published) != 2 {
		t.Errorf("live got %d locations, want 2 (no duplicates)", len(published))
	}
}

func TestRecorderClosed(t *testing.T) {
	store := openStore(t)
	rec := startRecorder(t, store, nil, recorder.Options{})
	if err := rec.Store(t.Context(), location("alice", "pixel7", 1_714_000_000, "ph")); err != nil {
		t.Fatalf("Store before Close: %v", err)
	}
	rec.Close()
	rec.Close() // idempotent
	rec.wait(t)

	tests := []struct {
		name string
		in   recorder.Incoming
	}{
		{"valid", location("alice", "pixel7", 1_714_000_001, "ph")},
		{"lwt", incoming("owntracks/alice/pixel7", `{"_type":"lwt"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []error
			err := rec.Accept(tc.in, func(err error) { calls = append(calls, err) })
			if !errors.Is(err, recorder.ErrClosed) {
				t.Errorf("Accept after Close = %v, want ErrClosed", err)
			}
			if len(calls) != 1 || !errors.Is(calls[0], recorder.ErrClosed) {
				t.Errorf("done calls = %v, want exactly one with ErrClosed", calls)
			}
			if err := rec.Accept(tc.in, nil); !errors.Is(err, recorder.ErrClosed) {
				t.Errorf("Accept(nil done) after Close = %v, want ErrClosed", err)
			}
			if err := rec.Store(t.Context(), tc.in); !errors.Is(err, recorder.ErrClosed) {
				t.Errorf("Store after Close = %v, want ErrClosed", err)
			}
		})
	}
	if got := len(storedLocations(t, store, "alice", "pixel7")); got != 1 {
		t.Errorf("%d stored, want 1 (nothing after Close)", got)
	}
}

// TestRecorderCloseDrains closes the recorder while producers are still
// accepting: every message Accept took (returned nil for) must be stored
// and acknowledged by the time Run returns.
func TestRecorderCloseDrains(t *testing.T) {
	tests := []struct {
		name string
		opts recorder.Options
	}{
		{"defaults", recorder.Options{}},
		{"small queue", recorder.Options{Queue: 2, MaxBatch: 5}},
	}
	const producers = 4
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t)
			rec := startRecorder(t, store, nil, tc.opts)

			var (
				accepted [producers]int
				acked    atomic.Int64
				total    atomic.Int64
				enough   = make(chan struct{})
				once     sync.Once
				wg       sync.WaitGroup
			)
			for p := range producers {
				wg.Go(func() {
					user := fmt.Sprintf("user%d", p)
					for seq := int64(0); ; seq++ {
						err := rec.Accept(location(user, "phone", 1_714_000_000+seq, "dr"), func(err error) {
							if err == nil {
								acked.Add(1)
							}
						})
						if errors.Is(err, recorder.ErrClosed) {
							return
						}
						if err != nil {
							t.Errorf("Accept: %v", err)
							return
						}
						accepted[p]++
						if total.Add(1) >= 400 {
							once.Do(func() { close(enough) })
						}
					}
				})
			}
			select {
			case <-enough:
			case <-time.After(waitLimit):
				t.Fatal("producers did not get 400 messages accepted")
			}
			rec.Close()
			rec.wait(t)
			waitGroup(t, &wg, "producers")

			sum := 0
			for p := range producers {
				sum += accepted[p]
				if got := len(storedLocations(t, store, fmt.Sprintf("user%d", p), "phone")); got != accepted[p] {
					t.Errorf("user%d: %d stored after Run returned, want the %d accepted", p, got, accepted[p])
				}
			}
			if got := acked.Load(); got != int64(sum) {
				t.Errorf("%d callbacks with nil by the time Run returned, want %d", got, sum)
			}
		})
	}
}

// TestRecorderLive checks what a live listener sees: stored locations only,
// once each, in commit order.
func TestRecorderLive(t *testing.T) {
	store := openStore(t)
	live := recorder.NewLive(nil)
	rec := startRecorder(t, store, live, recorder.Options{})
	ch, cancel := live.Subscribe()
	defer cancel()

	a := location("alice", "pixel7", 1_714_000_200, "ph")
	b := location("Bob", "iPhone", 1_714_000_100, "ip") // older fix, later arrival
	feed := []recorder.Incoming{
		a,
		a, // duplicate
		incoming("owntracks/alice/pixel7", `{"_type":"lwt"}`),
		incoming("owntracks/bob/iphone/info", string(readPayload(t, "good", "card.json"))),
		incoming("owntracks/alice/pixel7/event", string(readPayload(t, "good", "transition.json"))),
		incoming("owntracks/alice/pixel7", `{"_type":"location","lat":99,"lon":0,"tst":1}`), // #5: invalid
		b,
	}
	for i, in := range feed {
		err := rec.Store(t.Context(), in)
		if invalid := i == 5; invalid != (err != nil) {
			t.Fatalf("Store #%d = %v", i, err)
		}
	}
	// Live.Publish runs before the commit is acknowledged, so everything is
	// in the channel once Store has returned.
	var got []storage.Message
	for len(ch) > 0 {
		got = append(got, <-ch)
	}
	want := []struct {
		user, device string
		in           recorder.Incoming
	}{{"alice", "pixel7", a}, {"bob", "iphone", b}}
	if len(got) != len(want) {
		t.Fatalf("live got %d messages (%v), want %d", len(got), got, len(want))
	}
	for i, w := range want {
		m := got[i]
		if m.User != w.user || m.Device != w.device || m.Type != "location" || m.Topic != w.in.Topic ||
			!bytes.Equal(m.Payload, w.in.Payload) || m.Received != w.in.Received.UnixMilli() {
			t.Errorf("live message %d = %+v %s, want %s/%s %s", i, brief(m), m.Payload, w.user, w.device, w.in.Payload)
		}
	}
}
