package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/storage"
)

// Defaults for Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 12
	DefaultMaxBackoff  = time.Hour
	DefaultParallel    = 4
	DefaultUserAgent   = "wherehouse"
)

const (
	// firstBackoff is the wait after the first failed attempt; it doubles
	// with every further one up to Options.MaxBackoff.
	firstBackoff = 2 * time.Second
	// maxIdle bounds every sleep, so a missed Notify or a clock jump costs
	// at most this long.
	maxIdle = 30 * time.Second
	// minIdle is the shortest sleep when the store claims due work that
	// DueDeliveries did not return, so an inconsistent store cannot make
	// Run spin.
	minIdle = time.Second
	// storePause is the first pause after a store error; it doubles while
	// errors persist, up to maxIdle.
	storePause = time.Second
	// maxLastError caps Delivery.LastError.
	maxLastError = 200
	// resultRetry labels attempts that failed and will be retried; the
	// other results are the final storage.Delivery* states.
	resultRetry = "retry"
	// maxDrain is how much of a response body is read (and discarded) so
	// the connection can be reused.
	maxDrain = 64 << 10
)

// Store is what the worker needs; storage.Events and storage.Webhooks
// together provide it.
type Store interface {
	Webhook(ctx context.Context, id string) (storage.Webhook, error)
	DueDeliveries(ctx context.Context, now int64, limit int) ([]storage.Delivery, error)
	NextDelivery(ctx context.Context) (next int64, ok bool, err error)
	UpdateDelivery(ctx context.Context, d storage.Delivery) error
}

// Options tune a Worker; zero values take the defaults.
type Options struct {
	// Client makes the POSTs. nil: a client with DefaultTimeout that
	// follows no redirects (a redirect is a failed attempt, with its
	// Location in LastError). A client without Timeout still gets
	// DefaultTimeout per request.
	Client *http.Client
	// MaxAttempts is how many POSTs a delivery gets before it fails.
	MaxAttempts int
	// MaxBackoff caps the wait between attempts, which starts at 2 s and
	// doubles per attempt, plus up to 10 % jitter.
	MaxBackoff time.Duration
	// Parallel is how many POSTs may be in flight at once.
	Parallel int
	// UserAgent is sent with every POST, as "wherehouse/<version>".
	UserAgent string
	// Now is the clock for Next and Finished (tests); default time.Now.
	Now func() time.Time
}

// Worker POSTs queued deliveries to their webhooks and records each
// attempt. Deliveries are at least once: a receiver may see a delivery
// again (same DeliveryHeader) if recording the attempt failed.
//
// At most Options.Parallel POSTs are in flight, across all webhooks, and
// order is not guaranteed: a retried delivery can arrive after a newer
// one. Receivers should order by the event's "tst" and deduplicate by its
// "id".
type Worker struct {
	store   Store
	log     *slog.Logger
	opts    Options
	timeout time.Duration
	wake    chan struct{}

	mu       sync.Mutex
	inflight map[string]struct{} // delivery IDs being POSTed
	// released collects the IDs that finished while poll read the due
	// deliveries: that list may still show them pending (nil outside it).
	released   map[string]struct{}
	storeErrs  int           // consecutive store errors
	pauseUntil time.Time     // no polling before this (wall clock)
	pause      time.Duration // first pause after a store error

	results *prometheus.CounterVec
	seconds prometheus.Histogram
}

// New returns a Worker; its metrics are registered with reg unless it is
// nil.
func New(store Store, log *slog.Logger, reg prometheus.Registerer, opts Options) *Worker {
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Worker{
		store:    store,
		log:      log,
		opts:     opts,
		timeout:  opts.Client.Timeout,
		wake:     make(chan struct{}, 1),
		inflight: make(map[string]struct{}),
		pause:    storePause,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by result (delivered, retry, failed).",
		}, []string{"result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wherehouse_webhook_delivery_seconds",
			Help:    "Time for a webhook POST, until the response headers or the error.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	for _, r := range []string{storage.DeliveryDelivered, resultRetry, storage.DeliveryFailed} {
		w.results.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(w.results, w.seconds)
	}
	return w
}

// Notify wakes Run after new deliveries were queued. It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers due deliveries until ctx ends, then waits for the POSTs in
// flight (each bounded by the client timeout), records them and returns
// nil. Between polls it sleeps until the next delivery is due, a Notify,
// or a POST finishes, and at most 30 s. Run must not be called twice at
// once.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// A POST that went out is recorded even while the server shuts down.
	bg := context.WithoutCancel(ctx)
	for {
		wait := w.poll(ctx, bg, &wg)
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// poll starts the due deliveries there are free slots for and returns how
// long to sleep.
func (w *Worker) poll(ctx, bg context.Context, wg *sync.WaitGroup) time.Duration {
	w.mu.Lock()
	busy := len(w.inflight)
	pause := time.Until(w.pauseUntil)
	w.mu.Unlock()
	if pause > 0 {
		return pause
	}
	// One clock reading for both queries: whatever NextDelivery reports
	// as due at now, DueDeliveries(now) has already seen.
	now := w.opts.Now().UnixMilli()
	started := 0
	if free := w.opts.Parallel - busy; free > 0 {
		// In-flight deliveries are still pending in the store, so asking
		// for busy+free returns at least free others if there are any.
		w.mu.Lock()
		w.released = map[string]struct{}{}
		w.mu.Unlock()
		due, err := w.store.DueDeliveries(ctx, now, busy+free)
		w.mu.Lock()
		released := w.released
		w.released = nil
		if err != nil {
			w.mu.Unlock()
			return w.storeFailed(ctx, "list due webhook deliveries", err)
		}
		for _, d := range due {
			if started == free {
				break
			}
			if _, ok := w.inflight[d.ID]; ok {
				continue
			}
			if _, ok := released[d.ID]; ok {
				continue // finished after the list was read: not to be POSTed again
			}
			w.inflight[d.ID] = struct{}{}
			started++
			wg.Go(func() { w.deliver(bg, d) })
		}
		if len(due) == 0 {
			w.storeErrs = 0
		}
		w.mu.Unlock()
	}
	next, ok, err := w.store.NextDelivery(ctx)
	if err != nil {
		return w.storeFailed(ctx, "find next webhook delivery", err)
	}
	if !ok {
		return maxIdle
	}
	wait := time.Duration(next-now) * time.Millisecond
	switch {
	case wait > maxIdle:
		return maxIdle
	case wait > 0:
		return wait
	case busy+started > 0:
		// Due but in flight, or no free slot: a finishing POST wakes Run.
		return maxIdle
	default:
		return minIdle
	}
}

// storeFailed logs a store error and pauses polling, longer while errors
// persist.
func (w *Worker) storeFailed(ctx context.Context, doing string, err error) time.Duration {
	if ctx.Err() != nil {
		return 0 // shutting down; the error is the cancellation
	}
	w.mu.Lock()
	w.storeErrs++
	pause := w.pause
	for i := 1; i < w.storeErrs && pause < maxIdle; i++ {
		pause *= 2
	}
	pause = min(pause, maxIdle)
	w.pauseUntil = time.Now().Add(pause)
	w.mu.Unlock()
	w.log.Error(doing, "error", err, "retry_in", pause)
	return pause
}

// deliver makes one attempt at d and records it.
func (w *Worker) deliver(ctx context.Context, d storage.Delivery) {
	defer w.release(d.ID)
	hook, err := w.store.Webhook(ctx, d.Webhook)
	if errors.Is(err, storage.ErrNotFound) {
		d.Status = storage.DeliveryFailed
		d.Finished = w.opts.Now().UnixMilli()
		d.LastCode = 0
		d.LastError = "webhook deleted"
		if w.record(ctx, d, storage.DeliveryFailed) {
			w.log.Info("webhook delivery failed", "webhook", d.Webhook, "delivery", d.ID, "error", d.LastError)
		}
		return
	}
	if err != nil {
		w.storeFailed(ctx, "load webhook", fmt.Errorf("webhook %s: %w", d.Webhook, err))
		return
	}

	code, lastErr := w.post(ctx, hook, &d)
	d.Attempts++
	d.LastCode = code
	d.LastError = clip(lastErr)
	now := w.opts.Now()
	host := hostOf(hook.URL)
	log := w.log.With("webhook", hook.ID, "delivery", d.ID, "host", host, "attempts", d.Attempts)
	switch {
	case lastErr == "":
		d.Status = storage.DeliveryDelivered
		d.Finished = now.UnixMilli()
		if w.record(ctx, d, storage.DeliveryDelivered) {
			log.Debug("webhook delivered", "code", code)
		}
	case d.Attempts >= w.opts.MaxAttempts:
		d.Status = storage.DeliveryFailed
		d.Finished = now.UnixMilli()
		if w.record(ctx, d, storage.DeliveryFailed) {
			log.Info("webhook delivery failed", "code", code, "error", d.LastError)
		}
	default:
		wait := backoff(d.Attempts, w.opts.MaxBackoff)
		d.Status = storage.DeliveryPending
		d.Next = now.Add(wait).UnixMilli()
		if w.record(ctx, d, resultRetry) {
			if d.Attempts == 1 {
				log.Warn("webhook delivery attempt failed", "code", code, "error", d.LastError, "retry_in", wait)
			} else {
				log.Debug("webhook delivery attempt failed", "code", code, "error", d.LastError, "retry_in", wait)
			}
		}
	}
}

// record stores d and counts result; it reports whether the store took it.
func (w *Worker) record(ctx context.Context, d storage.Delivery, result string) bool {
	err := w.store.UpdateDelivery(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		// Its webhook was deleted, with its outbox, during the POST.
		w.log.Debug("webhook delivery gone", "webhook", d.Webhook, "delivery", d.ID)
		return false
	}
	if err != nil {
		// d stays due in the outbox and is POSTed again after the pause.
		w.storeFailed(ctx, "record webhook delivery", fmt.Errorf("delivery %s: %w", d.ID, err))
		return false
	}
	w.mu.Lock()
	w.storeErrs = 0
	w.mu.Unlock()
	w.results.WithLabelValues(result).Inc()
	return true
}

// release forgets an in-flight delivery and wakes Run for the freed slot.
func (w *Worker) release(id string) {
	w.mu.Lock()
	delete(w.inflight, id)
	if w.released != nil {
		w.released[id] = struct{}{}
	}
	w.mu.Unlock()
	w.Notify()
}

// post sends d to hook. It returns the status code (0 without a response)
// and, for anything but a 2xx, a short reason; it never includes the URL,
// which may carry a token, or the response body.
func (w *Worker) post(ctx context.Context, hook storage.Webhook, d *storage.Delivery) (int, string) {
	u, err := url.Parse(hook.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, "invalid webhook url"
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(d.Body))
	if err != nil {
		return 0, "invalid webhook url"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.opts.UserAgent)
	req.Header.Set(DeliveryHeader, d.ID)
	if ev := gjson.GetBytes(d.Body, "event"); ev.Type == gjson.String && isToken(ev.Str) {
		req.Header.Set(EventHeader, ev.Str)
	}
	if hook.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(hook.Secret, d.Body))
	}

	start := time.Now()
	resp, err := w.opts.Client.Do(req)
	w.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		// *url.Error repeats the URL; keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return c, ""
	case c >= 300 && c < 400:
		return c, fmt.Sprintf("%s, redirect to %q not followed", resp.Status, resp.Header.Get("Location"))
	default:
		return c, resp.Status
	}
}

// backoff is the wait after the attempts-th failed attempt: 2 s doubling
// per attempt, capped at max, plus up to 10 % jitter so deliveries that
// failed together spread out.
func backoff(attempts int, max time.Duration) time.Duration {
	d := firstBackoff
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d + rand.N(d/10+1)
}

// clip shortens s to at most maxLastError bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxLastError {
		return s
	}
	cut := maxLastError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// hostOf returns the host of a webhook URL for logs; the path and query
// may carry a token (Home Assistant's webhook IDs are in the path).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// isToken reports whether s is safe and short enough for a header value.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}
