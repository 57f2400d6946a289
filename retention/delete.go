package retention

import (
	"context"
	"errors"

	"github.com/wherehouse/wherehouse/storage"
)

// DeleteRange deletes everything of one device with from <= tst <= to
// (see storage.Retention).
func (m *Manager) DeleteRange(ctx context.Context, user, device string, from, to int64) (storage.Deleted, error) {
	n, err := m.store.DeleteRange(ctx, user, device, from, to)
	if n.Total() > 0 {
		m.log.Info("history deleted", "user", user, "device", device, "from", from, "to", to,
			"locations", n.Locations, "messages", n.Messages, "events", n.Events)
	}
	return n, err
}

// DeleteLocations deletes the locations of one device at tst (all, or the
// one with id).
func (m *Manager) DeleteLocations(ctx context.Context, user, device string, tst int64, id string) (int, error) {
	n, err := m.store.DeleteLocations(ctx, user, device, tst, id)
	if n > 0 {
		m.log.Info("locations deleted", "user", user, "device", device, "tst", tst, "locations", n)
	}
	return n, err
}

// HideLocations hides or shows the locations of one device at tst (all,
// or the one with id).
func (m *Manager) HideLocations(ctx context.Context, user, device string, tst int64, id string, hidden bool) (int, error) {
	n, err := m.store.HideLocations(ctx, user, device, tst, id, hidden)
	if n > 0 {
		m.log.Info("locations hidden", "user", user, "device", device, "tst", tst, "locations", n, "hidden", hidden)
	}
	return n, err
}

// LocationsAt returns the locations of one device at tst, hidden or not.
func (m *Manager) LocationsAt(ctx context.Context, user, device string, tst int64) ([]storage.StoredLocation, error) {
	return m.store.LocationsAt(ctx, user, device, tst)
}

// HiddenLocations walks the hidden locations of one device.
func (m *Manager) HiddenLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.StoredLocation) error) error {
	return m.store.HiddenLocations(ctx, q, fn)
}

// DeleteDevice deletes everything recorded about one device, and has the
// caches forget it. A message that arrives while the device is deleted may
// leave a new state behind; it is new data.
func (m *Manager) DeleteDevice(ctx context.Context, user, device string) (storage.Deleted, error) {
	n, err := m.store.DeleteDevice(ctx, user, device)
	if errors.Is(err, storage.ErrNotFound) {
		return n, err
	}
	m.forget(ctx, user, device)
	m.log.Info("device deleted", "user", user, "device", device,
		"locations", n.Locations, "messages", n.Messages, "events", n.Events)
	return n, err
}

// DeleteUserData deletes everything recorded about every device of user.
// With purge it also removes the rest of what belongs to the account: its
// retention policy, and what the Purge hooks remove (shares, fences,
// webhooks, encryption secrets); the account itself stays for the caller
// to delete. ErrNotFound when there was nothing to delete.
func (m *Manager) DeleteUserData(ctx context.Context, user string, purge bool) (storage.Deleted, error) {
	if purge {
		for _, p := range m.opts.Purge {
			if err := p(ctx, user); err != nil {
				return storage.Deleted{}, err
			}
		}
		if err := m.store.PutRetentionPolicy(ctx, storage.RetentionPolicy{User: user}); err != nil {
			return storage.Deleted{}, err
		}
	}
	n, err := m.store.DeleteUserData(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		if purge {
			err = nil
		}
		return n, err
	}
	m.forget(ctx, user, "")
	m.log.Info("user data deleted", "user", user, "purge", purge,
		"locations", n.Locations, "messages", n.Messages, "events", n.Events)
	return n, err
}

func (m *Manager) forget(ctx context.Context, user, device string) {
	for _, f := range m.opts.Forget {
		f(ctx, user, device)
	}
}
