package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/geo"
	"github.com/wherehouse/wherehouse/storage"
)

// Store is what the engine reads and writes.
type Store interface {
	storage.Fences
	storage.Events
	storage.Webhooks
	storage.Devices
	storage.Messages
	storage.Users
}

// Publisher sends a message from the server to the MQTT broker.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// DefaultEventTopic is the default prefix of the JSON event topic.
const DefaultEventTopic = "wherehouse/events"

const (
	queueSize         = 1024             // batches waiting for evaluation before the recorder waits
	dueInterval       = 5 * time.Second  // how often pending dwell/leave delays are checked
	watermarkInterval = 10 * time.Second // how often device watermarks are saved
	sendQueue         = 1024             // events waiting to be published on MQTT
)

// Options configure an Engine.
type Options struct {
	Publisher  Publisher        // MQTT; nil for none
	EventTopic string           // prefix of the JSON event topic; "" for none
	Notify     func()           // called after webhook deliveries were queued
	Now        func() time.Time // for tests; default time.Now
}

type devKey struct{ user, device string }

// mark is a device's watermark: the newest fix evaluated (UNIX s), when it
// arrived (wall clock, UNIX s), and whether it is saved.
type mark struct {
	tst, arrived int64
	dirty        bool
}

// Engine evaluates fences and records and delivers events. Create it with
// New, register Observe with the recorder, run Run, and Close it after the
// recorder has stopped.
type Engine struct {
	store  Store
	policy *auth.Policy
	log    *slog.Logger
	opts   Options
	hub    *Hub
	m      *metrics

	in        chan []item
	closeMu   sync.RWMutex
	closed    bool
	send      chan storage.Event
	sendQuit  chan struct{}
	sendGroup sync.WaitGroup

	mu      sync.Mutex
	fences  map[string]*geo.Fence // server fences by ID; Data is *storage.Fence
	index   *geo.Index
	states  map[devKey]map[string]geo.State
	marks   map[devKey]*mark // newest fix evaluated per device
	dirty   []devKey         // devices whose mark is not saved yet
	regions map[devKey][]*geo.Fence
	seen    []*geo.Fence // scratch for evaluate
	started int64        // wall time the engine started
}

// New loads fences and states from store.
func New(ctx context.Context, store Store, policy *auth.Policy, log *slog.Logger, reg prometheus.Registerer, opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{
		store: store, policy: policy, log: log, opts: opts,
		hub:      NewHub(),
		m:        newMetrics(reg),
		in:       make(chan []item, queueSize),
		send:     make(chan storage.Event, sendQueue),
		sendQuit: make(chan struct{}),
		states:   map[devKey]map[string]geo.State{},
		marks:    map[devKey]*mark{},
		regions:  map[devKey][]*geo.Fence{},
		started:  opts.Now().Unix(),
	}
	if err := e.loadFences(ctx); err != nil {
		return nil, err
	}
	states, err := store.FenceStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("load fence states: %w", err)
	}
	for _, s := range states {
		k := devKey{s.User, s.Device}
		if s.Fence == "" {
			e.marks[k] = &mark{tst: s.Last}
			continue
		}
		e.stateMap(k)[s.Fence] = fromStored(s)
	}
	return e, nil
}

// Hub is where events are announced as they are recorded.
func (e *Engine) Hub() *Hub { return e.hub }

// Observe queues newly stored messages for evaluation. It is a
// recorder.Observer; it waits while the queue is full, so evaluation
// applies back-pressure instead of losing transitions.
func (e *Engine) Observe(ctx context.Context, stored []storage.Message) {
	var mine []item
	for i := range stored {
		switch stored[i].Type {
		case "location", "transition", "waypoint", "waypoints":
			if stored[i].Transport == "import" {
				continue // history, not something happening now
			}
			mine = append(mine, newItem(&stored[i], false))
		}
	}
	if len(mine) == 0 {
		return
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return
	}
	e.in <- mine
}

// item is one message to evaluate. A location keeps only what evaluation
// reads (its payload is not copied); other types keep their payload.
type item struct {
	m   storage.Message
	acc float64
}

func newItem(m *storage.Message, stored bool) item {
	it := item{m: *m}
	if m.IsLocation() {
		it.acc = m.Acc
		if stored {
			it.acc = gjson.GetBytes(m.Payload, "acc").Float() // read back: Acc is not stored
		}
		it.m.Payload = nil
	} else {
		it.m.Payload = append([]byte(nil), m.Payload...)
	}
	return it
}

// Close stops taking messages; Run returns after evaluating what was
// queued. Call it after the recorder has stopped.
func (e *Engine) Close() {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.in)
	}
}

// Run evaluates queued messages until Close. It first catches up on
// locations stored after each device's watermark (a crash may have left
// them unevaluated).
func (e *Engine) Run(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // finish the queue even while shutting down
	e.sendGroup.Go(e.sender)
	defer func() {
		close(e.sendQuit)
		e.sendGroup.Wait()
	}()
	e.catchUp(ctx)
	due := time.NewTicker(dueInterval)
	defer due.Stop()
	marks := time.NewTicker(watermarkInterval)
	defer marks.Stop()
	for {
		select {
		case batch, ok := <-e.in:
			if !ok {
				e.saveMarks(ctx)
				return nil
			}
			e.process(ctx, batch)
		case <-due.C:
			e.fireDue(ctx)
		case <-marks.C:
			e.saveMarks(ctx)
		}
	}
}

// catchUp evaluates locations stored after each known watermark.
func (e *Engine) catchUp(ctx context.Context) {
	e.mu.Lock()
	marks := make(map[devKey]int64, len(e.marks))
	for k, v := range e.marks {
		marks[k] = v.tst
	}
	e.mu.Unlock()
	for k, from := range marks {
		var batch []item
		q := storage.LocationQuery{User: k.user, Device: k.device, From: from + 1, To: math.MaxInt64}
		n := 0
		err := e.store.Locations(ctx, q, func(m *storage.Message) error {
			batch = append(batch, newItem(m, true))
			n++
			if len(batch) == 512 {
				e.process(ctx, batch)
				batch = nil
			}
			return nil
		})
		if len(batch) > 0 {
			e.process(ctx, batch)
		}
		if err != nil {
			e.log.Error("fence catch-up failed", "user", k.user, "device", k.device, "error", err)
		} else if n > 0 {
			e.log.Info("fences caught up", "user", k.user, "device", k.device, "since", from, "locations", n)
		}
	}
}

// change collects what one evaluation pass changed.
type change struct {
	states map[[3]string]storage.FenceState
	events []storage.Event
}

func (c *change) setState(k devKey, fence string, s geo.State) {
	if c.states == nil {
		c.states = map[[3]string]storage.FenceState{}
	}
	c.states[[3]string{k.user, k.device, fence}] = toStored(k, fence, s)
}

func (e *Engine) process(ctx context.Context, batch []item) {
	start := time.Now()
	now := e.opts.Now().Unix()
	var c change
	e.mu.Lock()
	for i := range batch {
		m := &batch[i].m
		k := devKey{m.User, m.Device}
		switch m.Type {
		case "location":
			e.evaluate(ctx, &c, k, m, batch[i].acc, now)
		case "waypoint", "waypoints":
			delete(e.regions, k) // reloaded from the device state on the next fix
		case "transition":
			if ev, ok := deviceEvent(m); ok {
				c.events = append(c.events, ev)
			}
		}
	}
	e.commit(ctx, &c, false)
	e.mu.Unlock()
	e.m.evalSeconds.Observe(time.Since(start).Seconds())
}

// evaluate runs one location through every fence that applies. e.mu is held.
func (e *Engine) evaluate(ctx context.Context, c *change, k devKey, m *storage.Message, acc float64, now int64) {
	fix := geo.Fix{TST: m.TST, Lat: m.Lat, Lon: m.Lon, Acc: acc}
	mk := e.marks[k]
	switch {
	case mk == nil:
		mk = &mark{}
		e.marks[k] = mk
	case fix.TST <= mk.tst:
		e.m.late.Inc()
		return // late: never moves any state backwards
	}
	mk.tst, mk.arrived = fix.TST, now
	if !mk.dirty {
		mk.dirty = true
		e.dirty = append(e.dirty, k)
	}
	e.m.evaluated.Inc()
	seen := e.seen[:0] // fences already stepped for this fix
	defer func() { e.seen = seen[:0] }()
	step := func(f *geo.Fence) {
		if slices.Contains(seen, f) {
			return
		}
		seen = append(seen, f)
		states := e.states[k]
		old := states[f.ID]
		s, tr := geo.Step(f, old, fix)
		if s != old {
			e.putState(k, f.ID, s)
			if changed(old, s) {
				c.setState(k, f.ID, s)
			}
		}
		if tr != nil {
			c.events = append(c.events, e.serverEvent(k, f, tr))
		}
	}
	if e.index != nil {
		e.index.Search(fix.Lat, fix.Lon, 0, func(f *geo.Fence) bool {
			if e.applies(f.Data.(*storage.Fence), k) {
				step(f)
			}
			return true
		})
	}
	// Fences the device is inside of (or about to be) may be far away now.
	for id := range e.states[k] {
		if f := e.fence(ctx, k, id); f != nil {
			step(f)
		}
	}
	for _, f := range e.deviceRegions(ctx, k) {
		step(f)
	}
}

// fence finds a server fence or one of the device's regions by ID.
func (e *Engine) fence(ctx context.Context, k devKey, id string) *geo.Fence {
	if f, ok := e.fences[id]; ok {
		return f
	}
	for _, f := range e.deviceRegions(ctx, k) {
		if f.ID == id {
			return f
		}
	}
	return nil
}

func (e *Engine) stateMap(k devKey) map[string]geo.State {
	m, ok := e.states[k]
	if !ok {
		m = map[string]geo.State{}
		e.states[k] = m
	}
	return m
}

func (e *Engine) putState(k devKey, fence string, s geo.State) {
	if isDefault(s) {
		if m, ok := e.states[k]; ok {
			delete(m, fence)
			if len(m) == 0 {
				delete(e.states, k)
			}
		}
		return
	}
	e.stateMap(k)[fence] = s
}

// fireDue fires dwell and leave delays that ran out while the device sent
// nothing (a phone at rest reports rarely). Time is the device's: its
// newest fix time plus the wall time since that fix arrived, so a phone
// uploading hours of queued fixes is not judged by the wall clock while
// the rest of its queue is still on the way.
func (e *Engine) fireDue(ctx context.Context) {
	wall := e.opts.Now().Unix()
	var c change
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, states := range e.states {
		last, arrived := int64(0), e.started
		if mk := e.marks[k]; mk != nil {
			last = mk.tst
			if mk.arrived != 0 {
				arrived = mk.arrived
			}
		}
		now := min(wall, last+wall-arrived)
		for id, s := range states {
			if s.Pending == 0 {
				continue
			}
			f := e.fence(ctx, k, id)
			if f == nil {
				continue
			}
			ns, tr := geo.Due(f, s, now)
			if tr == nil {
				continue
			}
			e.putState(k, id, ns)
			c.setState(k, id, ns)
			c.events = append(c.events, e.serverEvent(k, f, tr))
		}
	}
	e.commit(ctx, &c, false)
}

// saveMarks writes the device watermarks that changed.
func (e *Engine) saveMarks(ctx context.Context) {
	var c change
	e.mu.Lock()
	defer e.mu.Unlock()
	e.commit(ctx, &c, true)
}

// commit stores what changed, with the dirty watermarks, and announces the
// new events. Watermarks alone are written only when marks is set: a write
// per location would cost a disk sync each. e.mu is held.
func (e *Engine) commit(ctx context.Context, c *change, marks bool) {
	if len(c.states) == 0 && len(c.events) == 0 && (!marks || len(e.dirty) == 0) {
		return
	}
	states := make([]storage.FenceState, 0, len(c.states)+len(e.dirty))
	for _, s := range c.states {
		states = append(states, s)
	}
	for _, k := range e.dirty {
		states = append(states, storage.FenceState{User: k.user, Device: k.device, Last: e.marks[k].tst})
	}
	deliveries, err := e.deliveries(ctx, c.events)
	if err != nil {
		e.log.Error("webhook deliveries not queued", "error", err)
	}
	fresh, err := e.store.RecordTransitions(ctx, states, c.events, deliveries)
	if err != nil {
		e.m.storeErrors.Inc()
		e.log.Error("fence transitions not stored", "events", len(c.events), "error", err)
		return
	}
	for _, k := range e.dirty {
		e.marks[k].dirty = false
	}
	e.dirty = e.dirty[:0]
	queued := false
	for i := range c.events {
		if !fresh[i] {
			continue
		}
		ev := c.events[i]
		e.m.events.WithLabelValues(ev.Event, ev.Source).Inc()
		e.log.Info("fence "+ev.Event, "user", ev.User, "device", ev.Device, "fence", ev.Fence, "desc", ev.FenceName, "source", ev.Source, "tst", ev.TST)
		e.hub.Publish(ev)
		select {
		case e.send <- ev:
		default:
			e.m.sendDropped.Inc()
		}
		for _, d := range deliveries {
			if d.Event == ev.ID {
				queued = true
			}
		}
	}
	if queued && e.opts.Notify != nil {
		e.opts.Notify()
	}
}

// eventID derives an event's ID from the transition itself, so evaluating
// the same fixes again yields the same IDs and nothing is stored twice.
func eventID(source, user, device, fence, event string, tst int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%d", source, user, device, fence, event, tst)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (e *Engine) serverEvent(k devKey, f *geo.Fence, tr *geo.Transition) storage.Event {
	name := ""
	switch d := f.Data.(type) {
	case *storage.Fence:
		name = d.Name
	case string:
		name = d // a region's desc
	}
	return storage.Event{
		ID:   eventID(SourceServer, k.user, k.device, f.ID, tr.Event, tr.Fix.TST),
		User: k.user, Device: k.device, Fence: f.ID, FenceName: name, Event: tr.Event,
		TST: tr.Fix.TST, Lat: tr.Fix.Lat, Lon: tr.Fix.Lon, Acc: tr.Fix.Acc,
		Source: SourceServer, Created: e.opts.Now().UnixMilli(),
	}
}

// Event sources.
const (
	SourceServer = "server" // evaluated by wherehouse
	SourceDevice = "device" // reported by the app
)

// deviceEvent turns an app's transition message into an event.
func deviceEvent(m *storage.Message) (storage.Event, bool) {
	r := gjson.ParseBytes(m.Payload)
	ev := r.Get("event").String()
	if ev != "enter" && ev != "leave" {
		return storage.Event{}, false
	}
	fence := r.Get("rid").String()
	if fence == "" {
		fence = r.Get("desc").String()
	}
	tst := m.TST
	return storage.Event{
		ID:   eventID(SourceDevice, m.User, m.Device, fence, ev, tst),
		User: m.User, Device: m.Device, Fence: fence, FenceName: r.Get("desc").String(), Event: ev,
		TST: tst, Lat: r.Get("lat").Float(), Lon: r.Get("lon").Float(), Acc: r.Get("acc").Float(),
		Source: SourceDevice, Created: m.Received,
	}, true
}

// CanSee reports whether viewer may see events of user's device: their
// own, and those of devices shared with them at full precision (a fence
// event would reveal more than a coarse share does).
func (e *Engine) CanSee(viewer storage.User, user, device string) bool {
	if viewer.Admin || viewer.Name == user {
		return true
	}
	g, ok := e.policy.Grant(viewer, user, device)
	return ok && g.Precision == 0
}

// Occupant is a device inside a fence.
type Occupant struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Since  int64  `json:"since"` // fix time of the enter, UNIX s
}

// Occupants returns the devices inside fence id now.
func (e *Engine) Occupants(id string) []Occupant {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Occupant{}
	for k, states := range e.states {
		if s, ok := states[id]; ok && s.Inside {
			out = append(out, Occupant{User: k.user, Device: k.device, Since: s.Since})
		}
	}
	sortOccupants(out)
	return out
}

// ErrInvalid wraps a fence the engine refuses.
var ErrInvalid = errors.New("invalid fence")

func isDefault(s geo.State) bool { return !s.Inside && s.Pending == 0 }

// changed reports whether a state changed in a way worth storing: a state
// that only saw one more fix need not be written (the device watermark
// covers it).
func changed(a, b geo.State) bool {
	return a.Inside != b.Inside || a.Since != b.Since || a.Pending != b.Pending
}

func fromStored(s storage.FenceState) geo.State {
	return geo.State{
		Inside: s.Inside, Since: s.Since, Pending: s.Pending, Last: s.Last,
		PendingFix: geo.Fix{TST: s.Pending, Lat: s.PendingLat, Lon: s.PendingLon, Acc: s.PendingAcc},
	}
}

func toStored(k devKey, fence string, s geo.State) storage.FenceState {
	return storage.FenceState{
		User: k.user, Device: k.device, Fence: fence, Inside: s.Inside, Since: s.Since,
		Pending: s.Pending, PendingLat: s.PendingFix.Lat, PendingLon: s.PendingFix.Lon, PendingAcc: s.PendingFix.Acc,
		Last: s.Last,
	}
}
