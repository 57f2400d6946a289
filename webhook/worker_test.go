package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/storage"
)

const (
	secret = "hook-secret-do-not-log"
	token  = "ha-token-in-path"
)

var body = []byte(`{"id":"ev1","user":"alice","device":"phone","event":"enter","tst":1700000000,"lat":52.5,"lon":13.4,"source":"server"}`)

// request is what a receiver saw.
type request struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a loopback webhook endpoint answering with respond.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, request{header: r.Header.Clone(), body: b, path: r.URL.Path})
		n := len(rc.requests)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) seen() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.requests)
}

func ok(int, http.ResponseWriter, *http.Request) {}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixture is a worker on a memStore with one webhook pointing at url.
type fixture struct {
	store *memStore
	w     *Worker
	logs  *lockedBuffer
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, url string, opts Options) *fixture {
	t.Helper()
	f := &fixture{store: newMemStore(), logs: &lockedBuffer{}, reg: prometheus.NewRegistry()}
	f.store.putWebhook(storage.Webhook{ID: "wh1", Owner: "alice", URL: url, Secret: secret, Created: time.Now()})
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Millisecond
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "wherehouse/test"
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.w = New(f.store, log, f.reg, opts)
	f.w.pause = 5 * time.Millisecond
	return f
}

// metric returns the value of a counter, or the sample count of a
// histogram, as registered.
func (f *fixture) metric(t *testing.T, name, result string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{result=%q} not registered", name, result)
	return 0
}

// run starts the worker; the returned function stops it and waits.
func (f *fixture) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *fixture) queue(ids ...string) {
	now := time.Now().UnixMilli()
	for _, id := range ids {
		f.store.queue(storage.Delivery{
			ID: id, Webhook: "wh1", Owner: "alice", Event: "ev-" + id, Body: body,
			Status: storage.DeliveryPending, Next: now, Created: now,
		})
	}
	f.w.Notify()
}

// finished waits until delivery id has left the outbox.
func (f *fixture) finished(t *testing.T, id string) storage.Delivery {
	t.Helper()
	var d storage.Delivery
	waitFor(t, "delivery "+id+" finished", func() bool {
		var ok bool
		d, ok = f.store.delivery(id)
		return ok && d.Status != storage.DeliveryPending
	})
	return d
}

// waitFor polls cond until it holds, failing the test after a deadline
// well below maxIdle, so a worker that is not woken fails.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDelivered(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL+"/api/webhook/"+token, Options{})
	f.run(t)
	f.queue("d1")

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryDelivered || d.Attempts != 1 || d.LastCode != 200 || d.LastError != "" || d.Finished == 0 {
		t.Fatalf("delivery = %+v, want delivered after 1 attempt with code 200", d)
	}
	reqs := rc.seen()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if !bytes.Equal(r.body, body) {
		t.Errorf("body = %s, want %s", r.body, body)
	}
	if !Verify(secret, r.body, r.header.Get(SignatureHeader)) {
		t.Errorf("signature %q does not verify", r.header.Get(SignatureHeader))
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"User-Agent":    "wherehouse/test",
		DeliveryHeader:  "d1",
		EventHeader:     "enter",
		SignatureHeader: Sign(secret, body),
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if got := f.metric(t, "wherehouse_webhook_deliveries_total", "delivered"); got != 1 {
		t.Errorf("delivered counter = %v, want 1", got)
	}
	if got := f.metric(t, "wherehouse_webhook_delivery_seconds", ""); got != 1 {
		t.Errorf("delivery_seconds count = %v, want 1", got)
	}
}

func TestNoSecretNoSignature(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL, Options{})
	f.store.putWebhook(storage.Webhook{ID: "wh1", Owner: "alice", URL: rc.URL})
	f.run(t)
	f.queue("d1")
	f.finished(t, "d1")
	if h := rc.seen()[0].header; h.Get(SignatureHeader) != "" {
		t.Errorf("signature header %q sent without a secret", h.Get(SignatureHeader))
	}
}

func TestRetryThenDelivered(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "receiver body must not be stored", http.StatusInternalServerError)
		}
	})
	f := newFixture(t, rc.URL+"/api/webhook/"+token, Options{MaxBackoff: 20 * time.Millisecond})
	f.run(t)
	f.queue("d1")

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryDelivered || d.Attempts != 3 || d.LastCode != 200 || d.LastError != "" {
		t.Fatalf("delivery = %+v, want delivered after 3 attempts", d)
	}
	if n := len(rc.seen()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
	h := f.store.history("d1")
	if len(h) != 3 {
		t.Fatalf("%d updates, want 3: %+v", len(h), h)
	}
	for i, u := range h[:2] {
		if u.Status != storage.DeliveryPending || u.Attempts != i+1 || u.LastCode != 500 || u.LastError != "500 Internal Server Error" {
			t.Errorf("update %d = %+v, want pending retry with code 500", i, u)
		}
		// The attempt came after Created, so the retry is at least
		// MaxBackoff later.
		if u.Next < d.Created+20 {
			t.Errorf("update %d: next %d is less than MaxBackoff after created %d", i, u.Next, d.Created)
		}
	}
	if got := f.metric(t, "wherehouse_webhook_deliveries_total", "retry"); got != 2 {
		t.Errorf("retry counter = %v, want 2", got)
	}
	logs := f.logs.String()
	if strings.Count(logs, "level=WARN") != 1 {
		t.Errorf("want one warning for the first failure, logs:\n%s", logs)
	}
	for _, leak := range []string{secret, token, "receiver body", `"lat"`} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q:\n%s", leak, logs)
		}
	}
}

func TestMaxAttempts(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f := newFixture(t, rc.URL, Options{MaxAttempts: 3})
	f.run(t)
	f.queue("d1")

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryFailed || d.Attempts != 3 || d.LastCode != 503 || d.Finished == 0 {
		t.Fatalf("delivery = %+v, want failed after 3 attempts with code 503", d)
	}
	if n := len(rc.seen()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
	if got := f.metric(t, "wherehouse_webhook_deliveries_total", "failed"); got != 1 {
		t.Errorf("failed counter = %v, want 1", got)
	}
	if !strings.Contains(f.logs.String(), "level=INFO msg=\"webhook delivery failed\"") {
		t.Errorf("final failure not logged at info:\n%s", f.logs)
	}
}

func TestNetworkError(t *testing.T) {
	rc := newReceiver(t, ok)
	url := rc.URL + "/api/webhook/" + token
	rc.Close() // nothing listens there now
	f := newFixture(t, url, Options{MaxAttempts: 2})
	f.run(t)
	f.queue("d1")

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryFailed || d.Attempts != 2 || d.LastCode != 0 || d.LastError == "" {
		t.Fatalf("delivery = %+v, want failed after 2 attempts with an error", d)
	}
	if strings.Contains(d.LastError, token) {
		t.Errorf("last error %q repeats the URL", d.LastError)
	}
}

func TestDeletedWebhook(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL, Options{})
	f.store.queue(storage.Delivery{ID: "d1", Webhook: "gone", Body: body, Status: storage.DeliveryPending})
	f.run(t)

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryFailed || d.LastError != "webhook deleted" || d.Attempts != 0 || d.Finished == 0 {
		t.Fatalf("delivery = %+v, want failed: webhook deleted", d)
	}
	if n := len(rc.seen()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

// A webhook deleted while its POST is in flight takes the delivery with
// it; that is not a store error.
func TestWebhookDeletedInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	f := newFixture(t, rc.URL, Options{})
	f.run(t)
	f.queue("d1")
	<-entered
	f.store.deleteWebhook("wh1")
	close(release)

	waitFor(t, "worker idle", func() bool {
		f.w.mu.Lock()
		defer f.w.mu.Unlock()
		return len(f.w.inflight) == 0
	})
	if _, ok := f.store.delivery("d1"); ok {
		t.Error("delivery of a deleted webhook reappeared")
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if f.w.storeErrs != 0 {
		t.Errorf("storeErrs = %d, want 0", f.w.storeErrs)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, ok)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	})
	f := newFixture(t, rc.URL, Options{MaxAttempts: 1})
	f.run(t)
	f.queue("d1")

	d := f.finished(t, "d1")
	if d.Status != storage.DeliveryFailed || d.LastCode != http.StatusFound || !strings.Contains(d.LastError, target.URL+"/elsewhere") {
		t.Fatalf("delivery = %+v, want failed with code 302 naming the Location", d)
	}
	if n := len(target.seen()); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

// Deliveries still pending while their POST runs are never picked twice,
// however often Run polls, and at most Parallel run at once.
func TestInFlightNotDuplicated(t *testing.T) {
	const parallel = 3
	var cur, peak atomic.Int32
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	f := newFixture(t, rc.URL, Options{Parallel: parallel})
	f.run(t)
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("d%d", i))
	}
	f.queue(ids...)

	waitFor(t, "all slots busy", func() bool { return cur.Load() == parallel })
	// Each poll ends with NextDelivery, which reports the busy ones as due.
	_, before := f.store.counts()
	for range 3 {
		f.w.Notify()
		waitFor(t, "a poll", func() bool { _, n := f.store.counts(); return n > before })
		_, before = f.store.counts()
	}
	if n := len(rc.seen()); n != parallel {
		t.Errorf("%d requests while %d slots were busy, want %d", n, parallel, parallel)
	}
	close(release)

	for _, id := range ids {
		if d := f.finished(t, id); d.Status != storage.DeliveryDelivered || d.Attempts != 1 {
			t.Errorf("delivery = %+v, want delivered after 1 attempt", d)
		}
	}
	got := map[string]int{}
	for _, r := range rc.seen() {
		got[r.header.Get(DeliveryHeader)]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("delivery %s POSTed %d times, want 1", id, got[id])
		}
	}
	if p := peak.Load(); p > parallel {
		t.Errorf("%d POSTs in flight at once, want at most %d", p, parallel)
	}
}

func TestNotifyWakesRun(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL, Options{})
	f.run(t)
	// The outbox is empty, so Run now sleeps for maxIdle; waitFor gives
	// up well before that.
	waitFor(t, "first poll", func() bool { _, n := f.store.counts(); return n > 0 })
	f.queue("d1")
	if d := f.finished(t, "d1"); d.Status != storage.DeliveryDelivered {
		t.Fatalf("delivery = %+v, want delivered", d)
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	f := newFixture(t, "http://127.0.0.1:1", Options{})
	for range 100 {
		f.w.Notify() // no Run reads these
	}
}

// A delivery queued for later is sent when it comes due, with no further
// wake-up.
func TestWakesWhenDue(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL, Options{})
	f.run(t)
	start := time.Now().UnixMilli()
	f.store.queue(storage.Delivery{ID: "d1", Webhook: "wh1", Body: body, Status: storage.DeliveryPending, Next: start + 50})
	f.w.Notify()
	if d := f.finished(t, "d1"); d.Status != storage.DeliveryDelivered || d.Finished < start+50 {
		t.Fatalf("delivery = %+v, want delivered no earlier than its next %d", d, start+50)
	}
}

func TestInjectedClock(t *testing.T) {
	rc := newReceiver(t, ok)
	const skew = time.Hour
	f := newFixture(t, rc.URL, Options{Now: func() time.Time { return time.Now().Add(skew) }})
	f.run(t)
	wall := time.Now()
	// Due by the worker's clock, not yet by the wall clock.
	f.store.queue(storage.Delivery{ID: "d1", Webhook: "wh1", Body: body, Status: storage.DeliveryPending, Next: wall.Add(skew / 2).UnixMilli()})
	f.w.Notify()
	if d := f.finished(t, "d1"); d.Finished < wall.Add(skew).UnixMilli() {
		t.Fatalf("finished %d, want the injected clock (>= %d)", d.Finished, wall.Add(skew).UnixMilli())
	}
}

func TestStoreErrorRetried(t *testing.T) {
	rc := newReceiver(t, ok)
	f := newFixture(t, rc.URL, Options{})
	f.store.failDue = 3
	f.queue("d1")
	f.run(t)

	if d := f.finished(t, "d1"); d.Status != storage.DeliveryDelivered {
		t.Fatalf("delivery = %+v, want delivered", d)
	}
	if n, _ := f.store.counts(); n < 4 {
		t.Errorf("DueDeliveries called %d times, want at least 4", n)
	}
	if c := strings.Count(f.logs.String(), "level=ERROR"); c != 3 {
		t.Errorf("%d store errors logged, want 3:\n%s", c, f.logs)
	}
}

func TestRunReturnsOnCancel(t *testing.T) {
	f := newFixture(t, "http://127.0.0.1:1", Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	waitFor(t, "first poll", func() bool { _, n := f.store.counts(); return n > 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Run waits for the POSTs in flight and records them before returning.
func TestRunDrainsOnCancel(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	f := newFixture(t, rc.URL, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	f.queue("d1")
	<-entered
	cancel()
	close(release) // the POST ends only after the cancellation
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	d, _ := f.store.delivery("d1")
	if d.Status != storage.DeliveryDelivered {
		t.Fatalf("after Run returned, delivery = %+v, want delivered", d)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		max      time.Duration
		want     time.Duration
	}{
		{1, time.Hour, 2 * time.Second},
		{2, time.Hour, 4 * time.Second},
		{5, time.Hour, 32 * time.Second},
		{11, time.Hour, 2048 * time.Second},
		{12, time.Hour, time.Hour},
		{1000, time.Hour, time.Hour},
		{3, 5 * time.Second, 5 * time.Second},
		{1, time.Millisecond, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.attempts, tt.max), func(t *testing.T) {
			for range 50 {
				if got := backoff(tt.attempts, tt.max); got < tt.want || got > tt.want+tt.want/10 {
					t.Fatalf("backoff = %s, want %s plus at most 10%%", got, tt.want)
				}
			}
		})
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("x", maxLastError-1) + "é" + "tail"
	got := clip(long)
	if len(got) > maxLastError || !strings.HasPrefix(long, got) || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("clip = %q (%d bytes)", got, len(got))
	}
	if clip("short") != "short" {
		t.Error("clip changed a short string")
	}
}
