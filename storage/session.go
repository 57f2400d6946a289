package storage

import (
	"context"
	"time"
)

// Session is a login of the web app. The browser holds a random token in
// a cookie; the store keeps only its SHA-256, so a copy of the store (a
// backup) cannot be used to log in.
type Session struct {
	ID      string    `json:"id"`   // hex SHA-256 of the cookie's token
	User    string    `json:"user"` // the account logged in
	CSRF    string    `json:"csrf"` // what unsafe requests must send in X-CSRF-Token
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Sessions keeps web logins until they expire.
type Sessions interface {
	// PutSession creates or replaces a session (by ID). It is dropped at
	// s.Expires.
	PutSession(ctx context.Context, s Session) error
	// Session returns one session; ErrNotFound if missing or expired.
	Session(ctx context.Context, id string) (Session, error)
	// DeleteSession removes a session; ErrNotFound if none.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions removes every session of user (none is fine).
	DeleteUserSessions(ctx context.Context, user string) error
}
