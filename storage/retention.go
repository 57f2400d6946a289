package storage

import (
	"context"
	"time"
)

// RetentionPolicy says how long a user's history is kept. The zero policy
// (no DeleteAfter, no ThinAfter) keeps everything; it is the default.
type RetentionPolicy struct {
	User string `json:"user"`
	// DeleteAfter is an age in seconds: messages of every type and fence
	// events older than this are deleted. 0 keeps them.
	DeleteAfter int64 `json:"delete_after,omitempty"`
	// ThinAfter is an age in seconds: locations older than this are
	// thinned to the first one of each ThinTo-second interval (intervals
	// aligned to the UNIX epoch), per device. 0 thins nothing.
	ThinAfter int64     `json:"thin_after,omitempty"`
	ThinTo    int64     `json:"thin_to,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// Keep reports whether p keeps everything.
func (p *RetentionPolicy) Keep() bool { return p.DeleteAfter <= 0 && p.ThinAfter <= 0 }

// Deleted counts what a deletion removed.
type Deleted struct {
	Locations int `json:"locations"` // location messages, hidden ones included
	Messages  int `json:"messages"`  // messages of every other type
	Events    int `json:"events"`    // fence events
}

// Add adds o's counts to d.
func (d *Deleted) Add(o Deleted) {
	d.Locations += o.Locations
	d.Messages += o.Messages
	d.Events += o.Events
}

// Total is how many records were removed.
func (d Deleted) Total() int { return d.Locations + d.Messages + d.Events }

// StoredLocation is one stored location with what tells it apart from
// other locations of the same device and tst.
type StoredLocation struct {
	Message
	// ID identifies the location among those of its device and tst; it
	// stays the same while the location is stored.
	ID string
	// Hidden locations are kept but left out of Locations, AllMessages and
	// LastLocations, and so out of every answer built on them.
	Hidden bool
}

// DeleteBatch is the most records a backend deletes in one transaction, so
// a long deletion never holds writers (ingest) up for long, and a crash
// leaves every batch either done or not.
const DeleteBatch = 10000

// Retention deletes, thins and hides history, and keeps each user's
// retention policy. Every change that can remove or hide a device's newest
// location recomputes its last position from what remains.
type Retention interface {
	// DeleteRange removes every message of one device with from <= tst <=
	// to: locations (hidden ones too) and every other type, and the
	// device's fence events in that range (with their webhook deliveries).
	// Nothing outside the range is touched. At most DeleteBatch records go
	// per transaction.
	DeleteRange(ctx context.Context, user, device string, from, to int64) (Deleted, error)
	// DeleteLocations removes the locations of one device at tst, hidden
	// or not: all of them for id "", else the one with that ID. Other
	// message types at tst stay. ErrNotFound when none matched.
	DeleteLocations(ctx context.Context, user, device string, tst int64, id string) (int, error)
	// HideLocations hides (hidden true) or shows again (false) the
	// locations of one device at tst: all of them for id "", else the one
	// with that ID. It returns how many changed; ErrNotFound when no
	// location, hidden or not, matched.
	HideLocations(ctx context.Context, user, device string, tst int64, id string, hidden bool) (int, error)
	// LocationsAt returns every location of one device at tst, hidden ones
	// included, ordered by ID.
	LocationsAt(ctx context.Context, user, device string, tst int64) ([]StoredLocation, error)
	// HiddenLocations calls fn for every hidden location of q.User/q.Device
	// with q.From <= tst <= q.To, in ascending tst order (q.Limit is not
	// used). An error from fn stops the walk and is returned.
	HiddenLocations(ctx context.Context, q LocationQuery, fn func(*StoredLocation) error) error
	// ThinLocations deletes the visible locations of one device with tst <
	// before, except the first of each interval of every seconds (aligned
	// to the UNIX epoch). Newer locations, hidden ones and other message
	// types stay. It returns how many were deleted.
	ThinLocations(ctx context.Context, user, device string, before, every int64) (int, error)
	// DeleteDevice removes everything recorded about one device: its
	// history, last position, device state, queued commands, fence states
	// and fence events. ErrNotFound when there was nothing.
	DeleteDevice(ctx context.Context, user, device string) (Deleted, error)
	// DeleteUserData does DeleteDevice for every device of user. The
	// account, its encryption secrets, shares, fences, webhooks and
	// retention policy stay. ErrNotFound when there was nothing.
	DeleteUserData(ctx context.Context, user string) (Deleted, error)

	// RetentionPolicy returns a user's policy; a user without one gets
	// the zero policy (keep everything), never ErrNotFound.
	RetentionPolicy(ctx context.Context, user string) (RetentionPolicy, error)
	// PutRetentionPolicy stores p; a policy that keeps everything removes
	// the stored one.
	PutRetentionPolicy(ctx context.Context, p RetentionPolicy) error
	// RetentionPolicies returns every stored policy, ordered by user.
	RetentionPolicies(ctx context.Context) ([]RetentionPolicy, error)
}
