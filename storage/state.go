package storage

import (
	"context"
	"encoding/json"
	"time"
)

// Device is what is known about a device besides its positions.
type Device struct {
	User      string          `json:"user"`
	Device    string          `json:"device"`
	Card      json.RawMessage `json:"card,omitempty"`      // the newest card payload (name, face, tid)
	Waypoints json.RawMessage `json:"waypoints,omitempty"` // the device's current regions, a waypoints payload
	Online    bool            `json:"online"`              // false after a Last Will, true after any later message
	LastSeen  int64           `json:"last_seen"`           // arrival of the newest message, UNIX ms
	Transport string          `json:"transport,omitempty"` // how the newest message came: mqtt, broker, http
	TID       string          `json:"tid,omitempty"`       // tracker id from the newest location or card
}

// Devices keeps per-device state.
type Devices interface {
	// PutDevice creates or replaces a device's state.
	PutDevice(ctx context.Context, d Device) error
	// Device returns one device's state; ErrNotFound if none.
	Device(ctx context.Context, user, device string) (Device, error)
	// ListDevices returns the state of every device of user ("" for all),
	// ordered by user and device.
	ListDevices(ctx context.Context, user string) ([]Device, error)
}

// Keys keeps payload-encryption secrets, sealed by the caller; the store
// never sees them in the clear.
type Keys interface {
	// SetKey stores the sealed secret of a device ("" for every device of
	// the user that has no key of its own).
	SetKey(ctx context.Context, user, device string, sealed []byte) error
	// Key returns a sealed secret; ErrNotFound if none.
	Key(ctx context.Context, user, device string) ([]byte, error)
	// DeleteKey removes a secret; ErrNotFound if none.
	DeleteKey(ctx context.Context, user, device string) error
}

// Share lets Viewer see Owner's devices (or one of them).
type Share struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Viewer    string    `json:"viewer"`
	Device    string    `json:"device,omitempty"` // "" for all of Owner's devices
	Until     time.Time `json:"until,omitzero"`   // zero for no expiry
	Precision int       `json:"precision,omitempty"`
	History   bool      `json:"history,omitempty"` // may also read the track history
	Created   time.Time `json:"created"`
}

// Group is a named set of users who all see each other.
type Group struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Shares keeps who may see whom.
type Shares interface {
	// PutShare creates or replaces a share (by ID).
	PutShare(ctx context.Context, s Share) error
	// DeleteShare removes a share; ErrNotFound if none.
	DeleteShare(ctx context.Context, id string) error
	// ListShares returns every share.
	ListShares(ctx context.Context) ([]Share, error)
	// PutGroup creates or replaces a group.
	PutGroup(ctx context.Context, g Group) error
	// DeleteGroup removes a group; ErrNotFound if none.
	DeleteGroup(ctx context.Context, name string) error
	// ListGroups returns every group.
	ListGroups(ctx context.Context) ([]Group, error)
}

// Commands queues cmd messages for devices that poll (HTTP mode).
type Commands interface {
	// QueueCommand adds a cmd payload for a device; it expires after ttl.
	QueueCommand(ctx context.Context, user, device string, payload []byte, ttl time.Duration) error
	// TakeCommands removes and returns the queued payloads, oldest first.
	TakeCommands(ctx context.Context, user, device string) ([][]byte, error)
}
