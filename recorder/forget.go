package recorder

import "context"

// Forget drops the cached state of a device whose data was deleted (device
// "" for every device of user), so its next message starts a new state
// instead of writing the deleted one back.
func (t *DeviceTracker) Forget(_ context.Context, user, device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.cache {
		if k.user == user && (device == "" || k.device == device) {
			delete(t.cache, k)
		}
	}
}
