package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/geo"
	"github.com/wherehouse/wherehouse/storage"
)

// Limits on fence definitions.
const (
	maxNameLen  = 200
	maxDelay    = 7 * 24 * time.Hour
	maxDistance = 100_000.0 // metres, for hysteresis and max accuracy
)

// Validate checks a fence definition and returns it normalised: geometry
// re-rendered, names lower-cased, an ID when it has none.
func Validate(f storage.Fence) (storage.Fence, *geo.Fence, error) {
	f.Owner = strings.ToLower(strings.TrimSpace(f.Owner))
	f.Name = strings.TrimSpace(f.Name)
	switch {
	case f.Owner == "":
		return f, nil, fmt.Errorf("%w: it needs an owner", ErrInvalid)
	case f.Name == "":
		return f, nil, fmt.Errorf("%w: it needs a name", ErrInvalid)
	case len(f.Name) > maxNameLen:
		return f, nil, fmt.Errorf("%w: the name is longer than %d bytes", ErrInvalid, maxNameLen)
	case f.Dwell < 0 || f.LeaveAfter < 0 || time.Duration(f.Dwell)*time.Second > maxDelay || time.Duration(f.LeaveAfter)*time.Second > maxDelay:
		return f, nil, fmt.Errorf("%w: dwell and leave_after must be between 0 and %s", ErrInvalid, maxDelay)
	case !(f.Hysteresis >= 0 && f.Hysteresis <= maxDistance) || !(f.MaxAccuracy >= 0 && f.MaxAccuracy <= maxDistance):
		return f, nil, fmt.Errorf("%w: hysteresis and max_accuracy must be between 0 and %.0f metres", ErrInvalid, maxDistance)
	case len(f.Geometry) == 0:
		return f, nil, fmt.Errorf("%w: it needs a geometry (a circle or a GeoJSON polygon)", ErrInvalid)
	}
	shape, err := geo.ParseGeometry(f.Geometry, f.Radius)
	if err != nil {
		return f, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f.Geometry = geo.GeometryJSON(shape)
	if _, _, r, ok := geo.CircleOf(shape); ok {
		f.Radius = r
	} else {
		f.Radius = 0
	}
	for i, d := range f.Devices {
		f.Devices[i] = strings.ToLower(strings.TrimSpace(d))
	}
	f.Devices = slices.DeleteFunc(f.Devices, func(d string) bool { return d == "" })
	slices.Sort(f.Devices)
	f.Devices = slices.Compact(f.Devices)
	if f.ID == "" {
		f.ID = newID()
	}
	if f.Created.IsZero() {
		f.Created = time.Now().UTC().Truncate(time.Second)
	}
	return f, geoFence(&f, shape), nil
}

func geoFence(f *storage.Fence, shape geo.Shape) *geo.Fence {
	return &geo.Fence{
		ID: f.ID, Shape: shape, Data: f,
		Rules: geo.Rules{
			Dwell:       time.Duration(f.Dwell) * time.Second,
			LeaveAfter:  time.Duration(f.LeaveAfter) * time.Second,
			Hysteresis:  f.Hysteresis,
			MaxAccuracy: f.MaxAccuracy,
		},
	}
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *Engine) loadFences(ctx context.Context) error {
	list, err := e.store.ListFences(ctx, "")
	if err != nil {
		return fmt.Errorf("load fences: %w", err)
	}
	fences := make(map[string]*geo.Fence, len(list))
	for _, f := range list {
		shape, err := geo.ParseGeometry(f.Geometry, f.Radius)
		if err != nil {
			e.log.Error("fence skipped", "fence", f.ID, "owner", f.Owner, "error", err)
			continue
		}
		fences[f.ID] = geoFence(&f, shape)
	}
	e.mu.Lock()
	e.setFences(fences)
	e.mu.Unlock()
	return nil
}

// setFences replaces the fence set and rebuilds the index. e.mu is held.
func (e *Engine) setFences(fences map[string]*geo.Fence) {
	all := make([]*geo.Fence, 0, len(fences))
	for _, f := range fences {
		all = append(all, f)
	}
	e.fences = fences
	e.index = geo.NewIndex(all)
	e.m.fences.Set(float64(len(all)))
}

// PutFence validates and stores a fence (new when it has no ID) and
// applies it at once.
func (e *Engine) PutFence(ctx context.Context, f storage.Fence) (storage.Fence, error) {
	f, g, err := Validate(f)
	if err != nil {
		return f, err
	}
	if err := e.store.PutFence(ctx, f); err != nil {
		return f, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fences := make(map[string]*geo.Fence, len(e.fences)+1)
	for id, old := range e.fences {
		fences[id] = old
	}
	fences[f.ID] = g
	e.setFences(fences)
	return f, nil
}

// DeleteFence removes a fence and what is known about who is inside it.
func (e *Engine) DeleteFence(ctx context.Context, id string) error {
	if err := e.store.DeleteFence(ctx, id); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fences := make(map[string]*geo.Fence, len(e.fences))
	for fid, f := range e.fences {
		if fid != id {
			fences[fid] = f
		}
	}
	e.setFences(fences)
	for k := range e.states {
		e.putState(k, id, geo.State{})
	}
	return nil
}

// applies reports whether server fence f is evaluated for device k: the
// owner's own devices (all, or those listed), and with Shared every device
// shared with the owner at full precision.
func (e *Engine) applies(f *storage.Fence, k devKey) bool {
	if k.user == f.Owner {
		return len(f.Devices) == 0 || slices.Contains(f.Devices, k.device)
	}
	if !f.Shared {
		return false
	}
	g, ok := e.policy.Grant(storage.User{Name: f.Owner}, k.user, k.device)
	return ok && g.Precision == 0
}

// deviceRegions returns the device's own circular regions (from its
// waypoints) as fences, loading them from the device state on first use.
// e.mu is held.
func (e *Engine) deviceRegions(ctx context.Context, k devKey) []*geo.Fence {
	if r, ok := e.regions[k]; ok {
		return r
	}
	var out []*geo.Fence
	d, err := e.store.Device(ctx, k.user, k.device)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		e.log.Error("device regions not loaded", "user", k.user, "device", k.device, "error", err)
		return nil // try again on the next fix
	}
	if len(d.Waypoints) > 0 {
		gjson.GetBytes(d.Waypoints, "waypoints").ForEach(func(_, w gjson.Result) bool {
			if f := regionFence(w); f != nil {
				out = append(out, f)
			}
			return true
		})
	}
	e.regions[k] = out
	return out
}

// regionFence turns one waypoint of an app into a fence; nil for beacons
// and regions without a radius. Its ID is "wp:" and the region's rid (or
// its tst, which older apps use as the id).
func regionFence(w gjson.Result) *geo.Fence {
	lat, lon, rad := w.Get("lat"), w.Get("lon"), w.Get("rad")
	if !lat.Exists() || !lon.Exists() || rad.Float() <= 0 {
		return nil
	}
	shape, err := geo.NewCircle(lat.Float(), lon.Float(), rad.Float())
	if err != nil {
		return nil
	}
	id := w.Get("rid").String()
	if id == "" {
		id = strconv.FormatInt(w.Get("tst").Int(), 10)
	}
	return &geo.Fence{ID: "wp:" + id, Shape: shape, Data: w.Get("desc").String()}
}

// FenceFeature renders a fence as a GeoJSON Feature.
func FenceFeature(f storage.Fence) json.RawMessage {
	props := map[string]any{
		"id": f.ID, "owner": f.Owner, "name": f.Name, "created": f.Created,
	}
	if f.Radius > 0 {
		props["radius"] = f.Radius
	}
	if len(f.Devices) > 0 {
		props["devices"] = f.Devices
	}
	if f.Shared {
		props["shared"] = true
	}
	for name, v := range map[string]float64{
		"dwell": float64(f.Dwell), "leave_after": float64(f.LeaveAfter),
		"hysteresis": f.Hysteresis, "max_accuracy": f.MaxAccuracy,
	} {
		if v != 0 {
			props[name] = v
		}
	}
	b, _ := json.Marshal(struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	}{"Feature", f.ID, f.Geometry, props})
	return b
}

// ParseFeature reads a fence from a GeoJSON Feature (or a bare geometry)
// whose properties hold name, radius, devices, shared, dwell, leave_after,
// hysteresis and max_accuracy.
func ParseFeature(b []byte) (storage.Fence, error) {
	var in struct {
		Type       string          `json:"type"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties struct {
			Name        string   `json:"name"`
			Radius      float64  `json:"radius"`
			Devices     []string `json:"devices"`
			Shared      bool     `json:"shared"`
			Dwell       int64    `json:"dwell"`
			LeaveAfter  int64    `json:"leave_after"`
			Hysteresis  float64  `json:"hysteresis"`
			MaxAccuracy float64  `json:"max_accuracy"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return storage.Fence{}, fmt.Errorf("%w: not a GeoJSON Feature: %w", ErrInvalid, err)
	}
	p := in.Properties
	f := storage.Fence{
		Name: p.Name, Radius: p.Radius, Devices: p.Devices, Shared: p.Shared,
		Dwell: p.Dwell, LeaveAfter: p.LeaveAfter, Hysteresis: p.Hysteresis, MaxAccuracy: p.MaxAccuracy,
		Geometry: in.Geometry,
	}
	if in.Type != "Feature" {
		f.Geometry = b // a bare geometry
	}
	return f, nil
}

// Fences returns the fences of owner ("" for all).
func (e *Engine) Fences(ctx context.Context, owner string) ([]storage.Fence, error) {
	return e.store.ListFences(ctx, owner)
}
