package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// run is one Import: the parser hands it messages on its goroutine, which
// validates them and fills batches; a writer goroutine appends the batches,
// so parsing the next batch overlaps with committing the last.
type run struct {
	ctx  context.Context
	stop context.CancelCauseFunc
	im   *Importer
	src  Source
	in   *countingReader
	opts RunOptions

	base     string // owntracks/<user>/<device>, "" without an owner
	byRecord bool   // positions are records of a JSON array, not lines
	fallback int64  // arrival (UNIX s) of messages with no time: the last tst seen
	scratch  []byte // payloads being built
	cur      *batch
	batches  chan *batch
	free     chan *batch

	// Parser side.
	skips    Summary
	messages atomic.Int64
	skipped  atomic.Int64
	// Writer side.
	added    atomic.Int64
	existing atomic.Int64
}

// batch is a transaction's worth of messages; their payloads live in the
// batch's arena, so a batch costs a few allocations, not one per message.
type batch struct {
	msgs  []storage.Message
	arena []byte
}

func newRun(ctx context.Context, stop context.CancelCauseFunc, im *Importer, src Source, in *countingReader, opts RunOptions) *run {
	r := &run{
		ctx: ctx, stop: stop, im: im, src: src, in: in, opts: opts,
		batches: make(chan *batch, 1),
		free:    make(chan *batch, 2),
	}
	if src.User != "" && src.Device != "" {
		r.base = recorder.TopicPrefix + "/" + src.User + "/" + src.Device
	}
	if !src.ModTime.IsZero() {
		r.fallback = src.ModTime.Unix()
	} else {
		r.fallback = time.Now().Unix()
	}
	r.cur = r.newBatch()
	return r
}

func (r *run) newBatch() *batch {
	select {
	case b := <-r.free:
		return b
	default:
		return &batch{msgs: make([]storage.Message, 0, min(r.im.opts.Batch, 1024))}
	}
}

// hold copies p into the batch's arena. A full arena is replaced, not
// grown: the messages already in the batch keep pointing into the old one.
// Arenas start small (a small import costs little) and double up to
// arenaSize; a batch is reused, so a large import settles at one or two.
func (b *batch) hold(p []byte) []byte {
	if len(b.arena)+len(p) > cap(b.arena) {
		b.arena = make([]byte, 0, max(min(2*cap(b.arena), arenaSize), len(p), 64<<10))
	}
	start := len(b.arena)
	b.arena = append(b.arena, p...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// message validates one payload with the strict parser and queues it. The
// payload may be reused by the caller once message returns. received is the
// arrival time in UNIX ms; 0 means "when it was made": the payload's tst.
func (r *run) message(topic string, payload []byte, received int64, pos int) error {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 {
		return nil
	}
	b := r.cur
	before := b.arena
	p := b.hold(payload)
	at := received
	if at == 0 {
		at = r.fallback * 1000
	}
	m, err := recorder.Parse(topic, p, time.UnixMilli(at))
	if err != nil {
		b.arena = before // nothing refers to the copy: give the space back
		r.rejected(pos, err)
		return nil
	}
	if received == 0 {
		m.Received = m.TST * 1000
	}
	r.fallback = m.TST
	m.Transport = recorder.TransportImport
	b.msgs = append(b.msgs, m)
	r.messages.Add(1)
	if len(b.msgs) >= r.im.opts.Batch {
		return r.send()
	}
	return nil
}

// rejected counts a message the strict parser refused.
func (r *run) rejected(pos int, err error) {
	var re *recorder.RejectError
	if errors.As(err, &re) {
		r.skip(pos, re.Reason, "%s", re.Detail)
		return
	}
	r.skip(pos, recorder.ReasonInternal, "%v", err)
}

// skip counts a line or record that is left out, and why.
func (r *run) skip(pos int, reason, format string, args ...any) {
	r.skipped.Add(1)
	i := r.skips.skips(reason, "")
	k := &r.skips.Skips[i]
	if k.Count == 0 {
		k.Detail = fmt.Sprintf(format, args...)
	}
	k.Count++
	if r.opts.Examples < 0 || len(k.Where) < r.opts.Examples {
		k.Where = append(k.Where, r.where(pos))
	}
}

// where names a position: line N of line formats, record N of the others.
func (r *run) where(pos int) string {
	switch r.src.Format {
	case FormatRec, FormatOwnTracks, FormatGPX, FormatCard, FormatWaypoints, FormatLast:
		if !r.byRecord {
			return r.src.Name + ":" + strconv.Itoa(pos)
		}
	}
	return r.src.Name + "#" + strconv.Itoa(pos)
}

// already counts a message that is known to be in the store without
// appending it.
func (r *run) already() {
	r.messages.Add(1)
	r.existing.Add(1)
}

// send hands the current batch to the writer.
func (r *run) send() error {
	select {
	case r.batches <- r.cur:
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
	r.cur = r.newBatch()
	return nil
}

// flush sends what is left.
func (r *run) flush() error {
	if len(r.cur.msgs) == 0 {
		return nil
	}
	return r.send()
}

// write commits batches until the channel closes. After a failure it
// drains the rest and cancels the run, so the parser stops.
func (r *run) write() error {
	var failed error
	for b := range r.batches {
		if failed != nil {
			continue
		}
		if err := r.commit(b); err != nil {
			failed = err
			r.stop(err)
			continue
		}
		b.msgs = b.msgs[:0]
		b.arena = b.arena[:0]
		select {
		case r.free <- b:
		default:
		}
	}
	return failed
}

// commit appends one batch, then tells device state and live listeners.
func (r *run) commit(b *batch) error {
	// The store's work must not be cut short by a cancelled import: a
	// transaction either commits or is not begun.
	if err := r.ctx.Err(); err != nil {
		return context.Cause(r.ctx)
	}
	dup, err := r.im.store.Append(context.WithoutCancel(r.ctx), b.msgs)
	if err != nil {
		return err
	}
	var n int64
	for _, d := range dup {
		if !d {
			n++
		}
	}
	r.added.Add(n)
	r.existing.Add(int64(len(dup)) - n)
	ctx := context.WithoutCancel(r.ctx)
	if r.im.opts.Imported != nil {
		// Messages already stored count too: a crash between their
		// commit and this call is made good by importing again.
		if newest := evaluated(b.msgs); len(newest) > 0 {
			if err := r.im.opts.Imported(ctx, newest); err != nil {
				return err
			}
		}
	}
	if r.im.opts.Observe != nil {
		if obs := observed(b.msgs); len(obs) > 0 {
			r.im.opts.Observe(ctx, obs)
		}
	}
	if r.im.opts.Live != nil {
		r.publish(ctx, b.msgs, dup)
	}
	if r.opts.Progress != nil {
		r.opts.Progress(r.progress())
	}
	return nil
}

// evaluated is the newest tst per device of the messages the fence engine
// evaluates (events.Engine.Observe).
func evaluated(msgs []storage.Message) map[[2]string]int64 {
	newest := map[[2]string]int64{}
	for i := range msgs {
		switch m := &msgs[i]; m.Type {
		case "location", "transition", "waypoint", "waypoints":
			k := [2]string{m.User, m.Device}
			if tst, ok := newest[k]; !ok || m.TST > tst {
				newest[k] = m.TST
			}
		}
	}
	return newest
}

// observed picks the messages of a batch that can change device state:
// everything but locations, and of those only each device's latest
// arrival, which alone decides last seen, online and tid. Messages already
// stored count too: a resumed import redoes what a crash lost of device
// state, and the tracker takes old history only where it is newer.
func observed(msgs []storage.Message) []storage.Message {
	latest := map[[2]string]int{}
	for i := range msgs {
		if m := &msgs[i]; m.IsLocation() {
			k := [2]string{m.User, m.Device}
			if j, ok := latest[k]; !ok || m.Received >= msgs[j].Received {
				latest[k] = i
			}
		}
	}
	out := make([]storage.Message, 0, len(latest))
	for i := range msgs {
		if m := &msgs[i]; !m.IsLocation() || latest[[2]string{m.User, m.Device}] == i {
			out = append(out, *m)
		}
	}
	return out
}

// publish announces each device's newest new location if it is now the
// device's last position (an import of old history changes no map).
func (r *run) publish(ctx context.Context, msgs []storage.Message, dup []bool) {
	newest := map[[2]string]int{}
	for i := range msgs {
		if m := &msgs[i]; m.IsLocation() && !dup[i] {
			k := [2]string{m.User, m.Device}
			if j, ok := newest[k]; !ok || m.TST >= msgs[j].TST {
				newest[k] = i
			}
		}
	}
	for k, i := range newest {
		last, err := r.im.store.LastLocations(ctx, k[0], k[1])
		if err != nil || len(last) != 1 {
			continue
		}
		m := msgs[i]
		if last[0].TST == m.TST && last[0].Received == m.Received {
			m.Payload = bytes.Clone(m.Payload) // the batch's arena is reused
			r.im.opts.Live.Publish(&m)
		}
	}
}

// progress reports the counts so far.
func (r *run) progress() Progress {
	return Progress{
		Bytes: r.in.n.Load(), Messages: r.messages.Load(),
		New: r.added.Load(), Existing: r.existing.Load(), Skipped: r.skipped.Load(),
	}
}

// summary is the outcome, once the writer has finished.
func (r *run) summary() Summary {
	p := r.progress()
	s := Summary{
		Files: 1, Bytes: p.Bytes, Messages: p.Messages,
		New: p.New, Existing: p.Existing, Skipped: p.Skipped,
	}
	s.Add(Summary{Skips: r.skips.Skips}, -1)
	return s
}
