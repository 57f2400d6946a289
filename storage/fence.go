package storage

import (
	"context"
	"encoding/json"
	"time"
)

// Fence is a geofence owned by a user: a circle (Geometry is a GeoJSON
// Point and Radius is set) or a GeoJSON Polygon or MultiPolygon.
type Fence struct {
	ID       string          `json:"id"`
	Owner    string          `json:"owner"`
	Name     string          `json:"name"`
	Geometry json.RawMessage `json:"geometry"`         // GeoJSON geometry, lon/lat order
	Radius   float64         `json:"radius,omitempty"` // metres, for a circle
	// Devices limits the fence to some of the owner's devices; empty
	// means all of them.
	Devices []string `json:"devices,omitempty"`
	// Shared also evaluates the fence for every device shared with the
	// owner at full precision.
	Shared bool `json:"shared,omitempty"`
	// Rules; zero values take the engine's defaults.
	Dwell       int64     `json:"dwell,omitempty"`        // seconds inside before enter fires
	LeaveAfter  int64     `json:"leave_after,omitempty"`  // seconds outside before leave fires
	Hysteresis  float64   `json:"hysteresis,omitempty"`   // metres beyond the border before outside counts
	MaxAccuracy float64   `json:"max_accuracy,omitempty"` // fixes less accurate than this (metres) are ignored
	Created     time.Time `json:"created"`
}

// Fences keeps server-side geofences.
type Fences interface {
	// PutFence creates or replaces a fence (by ID).
	PutFence(ctx context.Context, f Fence) error
	// Fence returns one fence; ErrNotFound if none.
	Fence(ctx context.Context, id string) (Fence, error)
	// DeleteFence removes a fence; ErrNotFound if none. Its states go too.
	DeleteFence(ctx context.Context, id string) error
	// ListFences returns the fences of owner ("" for all), ordered by
	// owner then ID.
	ListFences(ctx context.Context, owner string) ([]Fence, error)
}

// FenceState is where one device stands relative to one fence. A state
// that is outside with nothing pending is the default and is not stored.
// A state with Fence "" is the device's watermark: Last is the newest fix
// the engine has evaluated for it (kept while Last is set), so a restart
// re-evaluates only what came after.
type FenceState struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Fence  string `json:"fence"`
	Inside bool   `json:"inside"`
	Since  int64  `json:"since,omitempty"` // fix time (UNIX s) the current state began
	// Pending is the fix time of the first fix pointing to the other
	// state, while a dwell or leave delay runs; 0 when none.
	Pending    int64   `json:"pending,omitempty"`
	PendingLat float64 `json:"pending_lat,omitempty"`
	PendingLon float64 `json:"pending_lon,omitempty"`
	PendingAcc float64 `json:"pending_acc,omitempty"`
	Last       int64   `json:"last,omitempty"` // newest fix time evaluated
}

// IsDefault reports whether s need not be stored: outside with nothing
// pending, or a watermark without a time.
func (s *FenceState) IsDefault() bool {
	if s.Fence == "" {
		return s.Last == 0
	}
	return !s.Inside && s.Pending == 0
}

// Event is one enter or leave transition.
type Event struct {
	ID        string  `json:"id"` // deterministic: the same transition always has the same ID
	User      string  `json:"user"`
	Device    string  `json:"device"`
	Fence     string  `json:"fence,omitempty"` // fence ID, or the region's rid/desc for device events
	FenceName string  `json:"desc,omitempty"`  // the fence's name
	Event     string  `json:"event"`           // "enter" or "leave"
	TST       int64   `json:"tst"`             // fix time of the transition, UNIX s
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Acc       float64 `json:"acc,omitempty"`
	Source    string  `json:"source"`   // "server" (evaluated here) or "device" (reported by the app)
	Created   int64   `json:"received"` // when it was recorded, UNIX ms
}

// EventQuery selects events by device and fix time; empty strings match
// every user or device.
type EventQuery struct {
	User, Device string
	From, To     int64 // UNIX seconds, inclusive; To 0 means no upper bound
	Limit        int   // only the newest Limit (still ascending); 0 for all
}

// Delivery is one webhook POST of one event, queued in the outbox until
// it succeeds or is given up.
type Delivery struct {
	ID        string `json:"id"`
	Webhook   string `json:"webhook"` // Webhook.ID
	Owner     string `json:"owner"`   // the webhook's owner
	Event     string `json:"event"`   // Event.ID
	Body      []byte `json:"body"`    // the JSON body to POST
	Attempts  int    `json:"attempts"`
	Next      int64  `json:"next"`   // when to try next, UNIX ms
	Status    string `json:"status"` // "pending", "delivered" or "failed"
	LastCode  int    `json:"last_code,omitempty"`
	LastError string `json:"last_error,omitempty"`
	Created   int64  `json:"created"`            // UNIX ms
	Finished  int64  `json:"finished,omitempty"` // UNIX ms, once delivered or given up
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Events keeps fence states, events and the webhook outbox. They live in
// one store so a transition, its state and its deliveries commit together.
type Events interface {
	// RecordTransitions durably stores, in one transaction: states
	// (a default state deletes the stored one), events not stored before
	// (by ID), and the deliveries of those new events (deliveries whose
	// Event was already stored are dropped). fresh[i] reports that
	// events[i] was new.
	RecordTransitions(ctx context.Context, states []FenceState, events []Event, deliveries []Delivery) (fresh []bool, err error)
	// FenceStates returns every stored state.
	FenceStates(ctx context.Context) ([]FenceState, error)
	// Events calls fn for every matching event in ascending TST order.
	Events(ctx context.Context, q EventQuery, fn func(*Event) error) error
	// DueDeliveries returns up to limit pending deliveries with Next <=
	// now (UNIX ms), soonest first.
	DueDeliveries(ctx context.Context, now int64, limit int) ([]Delivery, error)
	// NextDelivery returns the earliest Next of any pending delivery;
	// ok is false when the outbox is empty.
	NextDelivery(ctx context.Context) (next int64, ok bool, err error)
	// UpdateDelivery replaces a delivery (by ID). Once it is delivered or
	// failed it leaves the outbox and joins its webhook's log, which
	// keeps the newest DeliveryLogSize entries. ErrNotFound if d is not
	// pending (it finished, or its webhook was deleted).
	UpdateDelivery(ctx context.Context, d Delivery) error
	// Deliveries returns a webhook's pending deliveries and its log,
	// newest first, at most limit.
	Deliveries(ctx context.Context, webhook string, limit int) ([]Delivery, error)
}

// DeliveryLogSize is how many finished deliveries each webhook keeps.
const DeliveryLogSize = 100

// Webhook posts the events a user may see to a URL.
type Webhook struct {
	ID      string    `json:"id"`
	Owner   string    `json:"owner"`
	URL     string    `json:"url"`
	Secret  string    `json:"secret,omitempty"` // HMAC-SHA256 key for the signature header
	Created time.Time `json:"created"`
}

// Webhooks keeps webhook registrations.
type Webhooks interface {
	// PutWebhook creates or replaces a webhook (by ID).
	PutWebhook(ctx context.Context, w Webhook) error
	// Webhook returns one webhook; ErrNotFound if none.
	Webhook(ctx context.Context, id string) (Webhook, error)
	// DeleteWebhook removes a webhook and its pending deliveries; ErrNotFound if none.
	DeleteWebhook(ctx context.Context, id string) error
	// ListWebhooks returns the webhooks of owner ("" for all), ordered by
	// owner then ID.
	ListWebhooks(ctx context.Context, owner string) ([]Webhook, error)
}
