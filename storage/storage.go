package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a record with that name already exists.
	ErrExists = errors.New("already exists")
	// ErrLocked means another process holds the store open.
	ErrLocked = errors.New("store is in use by another process")
	// ErrNewerSchema means the store was written by a newer wherehouse.
	ErrNewerSchema = errors.New("store was written by a newer wherehouse")
)

// Store is everything a backend provides.
type Store interface {
	Messages
	Last
	Users
	Devices
	Keys
	Shares
	Commands
	Fences
	Events
	Webhooks
	Sessions
	Retention
	Areas
	io.Closer
}

// Message is one received OwnTracks message, as stored. The payload is kept
// byte for byte (after decryption) so every export is lossless.
type Message struct {
	User     string // lower-cased user from the topic
	Device   string // lower-cased device from the topic
	Topic    string // the topic as received
	Type     string // the payload's _type
	TST      int64  // fix time in UNIX seconds; arrival time when the payload has none
	Received int64  // arrival time in UNIX milliseconds
	Lat, Lon float64
	Payload  []byte // the JSON payload

	// Transport is how the message came (mqtt, broker, http). It is not
	// part of the stored record; observers of new messages use it.
	Transport string
	// Acc is a location's accuracy in metres (0 when absent), as the
	// parser read it. Not stored either: read back, it is 0.
	Acc float64
}

// IsLocation reports whether m is a location fix.
func (m *Message) IsLocation() bool { return m.Type == "location" }

// ReceivedTime returns the arrival time.
func (m *Message) ReceivedTime() time.Time { return time.UnixMilli(m.Received).UTC() }

// Messages is the history of everything received.
type Messages interface {
	// Append durably stores msgs in one transaction, in order. dup[i]
	// reports that msgs[i] was stored before (same user, device, tst, type
	// and payload) and was not stored again.
	Append(ctx context.Context, msgs []Message) (dup []bool, err error)
	// Locations calls fn for every location of q.User/q.Device with
	// q.From <= tst <= q.To, in ascending tst order. With q.Limit > 0 only
	// the newest q.Limit of them are given (still ascending). An error from
	// fn stops the walk and is returned.
	Locations(ctx context.Context, q LocationQuery, fn func(*Message) error) error
	// AllMessages calls fn for every message of q.User/q.Device, locations
	// and every other type alike, with q.From <= tst <= q.To, in ascending
	// tst order (messages of one tst in no particular order); q.Limit is
	// not used. It is how a device's whole history is exported. An error
	// from fn stops the walk and is returned.
	AllMessages(ctx context.Context, q LocationQuery, fn func(*Message) error) error
}

// LocationQuery selects locations of one device by fix time.
type LocationQuery struct {
	User, Device string
	From, To     int64 // UNIX seconds, inclusive
	Limit        int
}

// Last answers "where is everyone now".
type Last interface {
	// LastLocations returns the newest location (by tst) of every device,
	// optionally limited to one user and one device ("" means all), ordered
	// by user and device.
	LastLocations(ctx context.Context, user, device string) ([]Message, error)
	// DataUsers returns the users that have stored messages, sorted.
	DataUsers(ctx context.Context) ([]string, error)
	// Devices returns the devices of user that have stored messages, sorted.
	Devices(ctx context.Context, user string) ([]string, error)
}

// User is an account, for MQTT and HTTP alike.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash"`
	Admin        bool      `json:"admin"`
	Created      time.Time `json:"created"`
}

// Users stores accounts.
type Users interface {
	// CreateUser stores a new account; ErrExists if the name is taken.
	CreateUser(ctx context.Context, u User) error
	// UpdateUser replaces an existing account; ErrNotFound if missing.
	UpdateUser(ctx context.Context, u User) error
	// User returns one account; ErrNotFound if missing.
	User(ctx context.Context, name string) (User, error)
	// ListUsers returns all accounts sorted by name.
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes an account; ErrNotFound if missing. History stays.
	DeleteUser(ctx context.Context, name string) error
	// CountUsers returns how many accounts exist.
	CountUsers(ctx context.Context) (int, error)
}
