package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/storage"
)

// maxCachedDevices bounds the tracker's cache. A card may carry a face
// image of tens of kilobytes, so the cache holds a few hundred devices at
// most; a miss costs one store read.
const maxCachedDevices = 512

// DeviceTracker keeps storage.Device up to date from the stored messages:
// when a device was last seen and how, whether it is online, its card, tid
// and regions. Register its Observe with Recorder.Observe. It must be the
// only writer of device state while it runs, since it caches what it wrote.
type DeviceTracker struct {
	store storage.Devices
	log   *slog.Logger

	mu    sync.Mutex
	cache map[deviceKey]storage.Device
}

type deviceKey struct{ user, device string }

// NewDeviceTracker returns a tracker that writes device state to store.
func NewDeviceTracker(store storage.Devices, log *slog.Logger) *DeviceTracker {
	return &DeviceTracker{store: store, log: log, cache: map[deviceKey]storage.Device{}}
}

// Observe updates device state from a batch of newly stored messages, in
// their arrival order, and writes every changed device once. It is a
// recorder.Observer. A store error is logged and loses only the state
// update: the messages themselves are already stored.
func (t *DeviceTracker) Observe(ctx context.Context, stored []storage.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var order []deviceKey // first-touched order, for deterministic writes
	changed := map[deviceKey]storage.Device{}
	for i := range stored {
		m := &stored[i]
		if !fromDevice(m) {
			continue
		}
		k := deviceKey{m.User, m.Device}
		d, ok := changed[k]
		if !ok {
			var err error
			if d, err = t.load(ctx, k); err != nil {
				t.log.Error("device state not updated", "user", m.User, "device", m.Device, "error", err)
				continue
			}
			order = append(order, k)
		}
		changed[k] = t.apply(d, m)
	}
	for _, k := range order {
		d := changed[k]
		if err := t.store.PutDevice(ctx, d); err != nil {
			delete(t.cache, k) // reread what the store really holds next time
			t.log.Error("device state not saved", "user", k.user, "device", k.device, "error", err)
			continue
		}
		t.remember(k, d)
	}
}

// fromDevice reports whether m was sent by the device itself. A cmd is
// sent to the device (by the server or the user), so it says nothing about
// whether the device is there.
func fromDevice(m *storage.Message) bool { return m.Type != "cmd" }

// load returns the cached state of k, reading the store on a miss; a device
// never seen before starts empty.
func (t *DeviceTracker) load(ctx context.Context, k deviceKey) (storage.Device, error) {
	if d, ok := t.cache[k]; ok {
		return d, nil
	}
	d, err := t.store.Device(ctx, k.user, k.device)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Device{User: k.user, Device: k.device}, nil
	}
	return d, err
}

func (t *DeviceTracker) remember(k deviceKey, d storage.Device) {
	if _, ok := t.cache[k]; !ok && len(t.cache) >= maxCachedDevices {
		for old := range t.cache { // evict any one
			delete(t.cache, old)
			break
		}
	}
	t.cache[k] = d
}

// TransportImport marks messages brought in by "wherehouse import": old
// history, not something the device is doing now.
const TransportImport = "import"

// apply returns d updated by one message. Online follows arrival order: a
// Last Will marks the device offline until anything else arrives from it.
// (The Last Will carries tst only from iOS, so arrival time is what counts.)
// An imported message may be older than what the device has sent since: it
// changes Online, Transport and tid only when it arrived after everything
// seen so far, and a card or regions only when newer or the device has none.
func (t *DeviceTracker) apply(d storage.Device, m *storage.Message) storage.Device {
	newest := m.Transport != TransportImport || m.Received >= d.LastSeen
	d.LastSeen = max(d.LastSeen, m.Received)
	if !newest {
		switch {
		case m.Type == "card" && d.Card == nil:
		case (m.Type == "waypoints" || m.Type == "waypoint") && d.Waypoints == nil:
		default:
			return d
		}
	} else {
		if m.Transport != "" {
			d.Transport = m.Transport
		}
		d.Online = m.Type != "lwt"
	}
	switch m.Type {
	case "location":
		if tid, ok := stringMember(m.Payload, "tid"); ok {
			d.TID = tid
		}
	case "card":
		// iOS publishes its card retained on the base topic, the others on
		// .../info: the type decides, never the topic (PROTOCOL.md).
		d.Card = clone(m.Payload)
		if tid, ok := stringMember(m.Payload, "tid"); ok && tid != "" && (newest || d.TID == "") {
			d.TID = tid
		}
	case "waypoints":
		var w struct {
			Waypoints []json.RawMessage `json:"waypoints"`
		}
		if err := json.Unmarshal(m.Payload, &w); err != nil || w.Waypoints == nil {
			t.log.Warn("waypoints not applied", "user", m.User, "device", m.Device, "reason", "no waypoints array")
			break
		}
		d.Waypoints = clone(m.Payload)
	case "waypoint":
		set, err := mergeWaypoint(d.Waypoints, m.Payload)
		if err != nil {
			t.log.Warn("waypoint not applied", "user", m.User, "device", m.Device, "error", err)
			break
		}
		d.Waypoints = set
	}
	return d
}

// mergeWaypoint adds one waypoint to a waypoints payload (nil for none) and
// returns the new set as {"_type":"waypoints","waypoints":[...]}. A region
// with the same rid, or the same tst (the region's id in older apps),
// is replaced; any other is appended.
func mergeWaypoint(set json.RawMessage, waypoint []byte) (json.RawMessage, error) {
	var list []json.RawMessage
	if len(set) > 0 {
		var w struct {
			Waypoints []json.RawMessage `json:"waypoints"`
		}
		if err := json.Unmarshal(set, &w); err != nil {
			return nil, err
		}
		list = w.Waypoints
	}
	id, err := regionID(waypoint)
	if err != nil {
		return nil, err
	}
	replaced := false
	for i := range list {
		other, err := regionID(list[i])
		if err != nil {
			continue
		}
		if id.same(other) {
			list[i] = clone(waypoint)
			replaced = true
			break
		}
	}
	if !replaced {
		list = append(list, clone(waypoint))
	}
	return json.Marshal(struct {
		Type      string            `json:"_type"`
		Waypoints []json.RawMessage `json:"waypoints"`
	}{"waypoints", list})
}

// region identifies a waypoint: by rid when both have one, else by tst
// (kept as a normalised number, "" when absent).
type region struct{ rid, tst string }

func regionID(raw []byte) (region, error) {
	var w struct {
		RID string       `json:"rid"`
		TST *json.Number `json:"tst"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return region{}, err
	}
	r := region{rid: w.RID}
	if w.TST != nil {
		f, err := w.TST.Float64()
		if err != nil {
			return region{}, err
		}
		r.tst = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return r, nil
}

func (r region) same(o region) bool {
	if r.rid != "" && o.rid != "" {
		return r.rid == o.rid
	}
	return r.tst != "" && r.tst == o.tst
}

// stringMember returns a top-level string member of a JSON object. It
// runs for every stored message, so it reads the member in place (gjson)
// rather than decoding the whole object.
func stringMember(payload []byte, name string) (string, bool) {
	r := gjson.GetBytes(payload, gjsonEscape(name))
	if r.Type != gjson.String {
		return "", false
	}
	return r.String(), true
}

// gjsonEscape escapes the characters gjson treats as path syntax.
func gjsonEscape(name string) string {
	if !strings.ContainsAny(name, `.*?|#@\!=<>%`) {
		return name
	}
	var b strings.Builder
	for _, c := range name {
		if strings.ContainsRune(`.*?|#@\!=<>%`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// clone copies a payload so device state never aliases a message buffer.
func clone(b []byte) json.RawMessage { return append(json.RawMessage(nil), b...) }
