package events

import (
	"context"
	"slices"

	"github.com/wherehouse/wherehouse/storage"
)

// ForgetDevice drops what the engine knows about a device whose data was
// deleted (device "" for every device of user): its fence states,
// watermark and regions, in memory and in the store. The store deleted
// them already; a commit racing that deletion may have written some back,
// so they are removed again here, under the engine's lock. The device
// starts afresh with its next location.
func (e *Engine) ForgetDevice(ctx context.Context, user, device string) {
	match := func(k devKey) bool { return k.user == user && (device == "" || k.device == device) }
	e.mu.Lock()
	defer e.mu.Unlock()
	var states []storage.FenceState // defaults: RecordTransitions deletes them
	for k, m := range e.states {
		if !match(k) {
			continue
		}
		for id := range m {
			states = append(states, storage.FenceState{User: k.user, Device: k.device, Fence: id})
		}
		delete(e.states, k)
	}
	for k := range e.marks {
		if match(k) {
			states = append(states, storage.FenceState{User: k.user, Device: k.device})
			delete(e.marks, k)
		}
	}
	for k := range e.regions {
		if match(k) {
			delete(e.regions, k)
		}
	}
	e.dirty = slices.DeleteFunc(e.dirty, match)
	if len(states) == 0 {
		return
	}
	if _, err := e.store.RecordTransitions(ctx, states, nil, nil); err != nil {
		e.m.storeErrors.Inc()
		e.log.Error("fence states of a deleted device not removed", "user", user, "device", device, "error", err)
	}
}
