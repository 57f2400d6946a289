package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// Defaults for Options.
const (
	DefaultQueue    = 8192
	DefaultMaxBatch = 2048
)

// ErrClosed is returned for messages offered after Close.
var ErrClosed = errors.New("recorder is closed")

// Options tune the pipeline.
type Options struct {
	Queue    int          // messages waiting for a commit before Accept blocks
	MaxBatch int          // messages per transaction at most
	Secrets  SecretSource // decrypts {"_type":"encrypted"} payloads; nil rejects them
}

// Incoming is one message as a transport received it.
type Incoming struct {
	Topic     string
	Payload   []byte
	Transport string // "mqtt", "broker", "http": a metrics label
	Received  time.Time
}

// Done is called once per accepted message: with nil after the message is
// durably stored (or was already), or with the reason it was not.
type Done func(err error)

type job struct {
	msg  storage.Message
	done Done
	err  error // set for a rejected message: nothing to store, only to acknowledge in order
}

// Recorder runs the ingest pipeline. Create it with New, start Run in a
// goroutine, feed it with Accept, stop it with Close.
type Recorder struct {
	store   storage.Messages
	log     *slog.Logger
	metrics *Metrics
	live    *Live
	opts    Options

	observers []Observer
	warned    sync.Map // topic+reason already logged at warn

	mu     sync.RWMutex // guards closed and sends on in
	closed bool
	in     chan job
	acks   chan []job
}

// New builds a recorder that writes to store and announces what it stored
// on live.
func New(store storage.Messages, live *Live, metrics *Metrics, log *slog.Logger, opts Options) *Recorder {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	return &Recorder{
		store: store, log: log, metrics: metrics, live: live, opts: opts,
		in:   make(chan job, opts.Queue),
		acks: make(chan []job, 64),
	}
}

// Observer is told about every batch of newly stored messages (not
// duplicates), in commit order, from the pipeline's goroutine; it must not
// block for long.
type Observer func(ctx context.Context, stored []storage.Message)

// Observe adds an observer. Call it before Run.
func (r *Recorder) Observe(o Observer) { r.observers = append(r.observers, o) }

// Accept parses and validates in, then queues it for the next group commit.
// A message that can never be stored is rejected at once and the error is
// returned. done (may be nil) is called from the pipeline for every message,
// valid or not, in the order they were accepted, so acknowledgements keep
// the order of receipt [MQTT-4.6.0-2].
// Accept blocks while the queue is full (back-pressure on the transport).
func (r *Recorder) Accept(in Incoming, done Done) error {
	_, err := r.AcceptMessage(in, done)
	return err
}

// AcceptMessage is Accept that also returns the message as it will be
// stored: decrypted, with user and device from the topic. Relays use its
// payload, so nothing encrypted with a secret a subscriber lacks is passed
// on (iOS drops a friend whose message it cannot decrypt).
func (r *Recorder) AcceptMessage(in Incoming, done Done) (storage.Message, error) {
	in.Received = receivedAt(in)
	r.metrics.received.WithLabelValues(in.Transport).Inc()
	m, err := Parse(in.Topic, in.Payload, in.Received)
	if err == nil && m.Type == "encrypted" {
		m, err = r.decrypt(in, m)
	}
	m.Transport = in.Transport
	if err != nil {
		r.rejected(in, err)
		if done != nil {
			r.enqueue(job{done: done, err: err})
		}
		return m, err
	}
	return m, r.enqueue(job{msg: m, done: done})
}

func (r *Recorder) enqueue(j job) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		if j.done != nil {
			j.done(ErrClosed)
		}
		return ErrClosed
	}
	r.in <- j
	return j.err
}

// Store accepts in and waits until it is durably stored.
func (r *Recorder) Store(ctx context.Context, in Incoming) error {
	_, err := r.StoreMessage(ctx, in)
	return err
}

// StoreMessage is Store that also returns the stored (decrypted) message.
func (r *Recorder) StoreMessage(ctx context.Context, in Incoming) (storage.Message, error) {
	errc := make(chan error, 1)
	m, err := r.AcceptMessage(in, func(err error) { errc <- err })
	if err != nil {
		return m, err
	}
	select {
	case err := <-errc:
		return m, err
	case <-ctx.Done():
		return m, ctx.Err()
	}
}

func (r *Recorder) rejected(in Incoming, err error) {
	reason := ReasonInternal
	var re *RejectError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	if reason == ReasonEmpty {
		// An empty retained publish clears a retained message: normal.
		r.metrics.empty.Inc()
		r.log.Debug("empty message ignored", "topic", in.Topic, "transport", in.Transport)
		return
	}
	r.metrics.rejected.WithLabelValues(reason).Inc()
	// Warn once per topic and reason; a misconfigured device would
	// otherwise fill the log with the same line.
	level := slog.LevelDebug
	if _, seen := r.warned.LoadOrStore(in.Topic+"\x00"+reason, true); !seen {
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, "message rejected", "topic", in.Topic, "transport", in.Transport, "reason", reason, "error", err)
}

// Close stops taking messages. Run returns once everything accepted before
// has been committed and acknowledged.
func (r *Recorder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.in)
	}
}

// Run commits queued messages in batches until Close, then drains and
// returns. Store errors are handed to each message's Done; the pipeline
// keeps running so a transient failure does not stop ingest.
func (r *Recorder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(r.ackLoop)
	defer wg.Wait()
	defer close(r.acks)
	// Commits must finish even while the server shuts down.
	ctx = context.WithoutCancel(ctx)
	batch := make([]job, 0, r.opts.MaxBatch)
	for {
		j, ok := <-r.in
		if !ok {
			return nil
		}
		batch = append(batch[:0], j)
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case j, ok := <-r.in:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		r.commit(ctx, batch)
	}
}

func (r *Recorder) commit(ctx context.Context, batch []job) {
	done := make([]job, len(batch))
	copy(done, batch)
	msgs := make([]storage.Message, 0, len(batch))
	for i := range batch {
		if batch[i].err == nil {
			msgs = append(msgs, batch[i].msg)
		}
	}
	if len(msgs) == 0 {
		r.acks <- done
		return
	}
	start := time.Now()
	dup, err := r.store.Append(ctx, msgs)
	r.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	r.metrics.batchSize.Observe(float64(len(msgs)))
	if err != nil {
		err = fmt.Errorf("store %d messages: %w", len(batch), err)
		r.log.Error("commit failed", "messages", len(batch), "error", err)
		r.metrics.storeErrors.Inc()
		r.acks <- withErr(done, err)
		return
	}
	stored := msgs[:0:0]
	for i := range msgs {
		if dup[i] {
			r.metrics.duplicates.Inc()
			continue
		}
		stored = append(stored, msgs[i])
		r.metrics.stored.WithLabelValues(msgs[i].Type).Inc()
		r.log.Debug("message stored", "user", msgs[i].User, "device", msgs[i].Device, "type", msgs[i].Type)
		if msgs[i].IsLocation() && r.live != nil {
			r.live.Publish(&msgs[i])
		}
	}
	r.acks <- done
	if len(stored) > 0 {
		for _, o := range r.observers {
			o(ctx, stored)
		}
	}
}

// withErr wraps each job's Done so the ack loop reports err to it.
func withErr(jobs []job, err error) []job {
	for i := range jobs {
		d := jobs[i].done
		if d == nil {
			continue
		}
		if jobs[i].err == nil {
			jobs[i].done = func(error) { d(err) }
		}
	}
	return jobs
}

// ackLoop calls Done callbacks in commit order, off the commit goroutine, so
// a slow network write never delays the next commit.
func (r *Recorder) ackLoop() {
	for batch := range r.acks {
		for _, j := range batch {
			if j.done != nil {
				j.done(j.err)
			}
		}
	}
}

// receivedAt is the arrival time of in, now when unset.
func receivedAt(in Incoming) time.Time {
	if in.Received.IsZero() {
		return time.Now()
	}
	return in.Received
}
