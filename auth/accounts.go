package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wherehouse/wherehouse/storage"
)

// Errors callers branch on.
var (
	// ErrBadCredentials means unknown user or wrong password (never which).
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrInvalidName means a user name that cannot be used in topics.
	ErrInvalidName = errors.New("invalid user name: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	// ErrWeakPassword means a password too short to accept.
	ErrWeakPassword = errors.New("password too short: use at least 8 characters")
)

// MinPassword is the shortest password accepted.
const MinPassword = 8

// cacheTTL bounds how long a verified password is trusted without bcrypt.
const cacheTTL = 5 * time.Minute

// bcryptCost is bcrypt's default: about 50 ms per check on a small server.
const bcryptCost = bcrypt.DefaultCost

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name can be a user name (it is a topic level).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Accounts manages users on top of a store.
type Accounts struct {
	store storage.Users

	mu    sync.Mutex
	cache map[[32]byte]cached // sha256(name, password) -> verified user
	gen   uint64              // bumped by every change; a login that saw an older one is not cached
}

type cached struct {
	user    storage.User
	expires time.Time
}

// NewAccounts returns accounts kept in store.
func NewAccounts(store storage.Users) *Accounts {
	return &Accounts{store: store, cache: make(map[[32]byte]cached)}
}

// HashPassword returns a bcrypt hash of password.
func HashPassword(password string) (string, error) {
	if len(password) < MinPassword {
		return "", ErrWeakPassword
	}
	if len(password) > 72 {
		return "", errors.New("password too long: bcrypt uses at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// RandomPassword returns a password suitable for a generated account.
func RandomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Add creates a user.
func (a *Accounts) Add(ctx context.Context, name, password string, admin bool) error {
	if !ValidName(name) {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return a.store.CreateUser(ctx, storage.User{Name: name, PasswordHash: h, Admin: admin, Created: time.Now().UTC()})
}

// SetPassword changes a user's password; cached logins and web sessions
// are dropped.
func (a *Accounts) SetPassword(ctx context.Context, name, password string) error {
	u, err := a.store.User(ctx, name)
	if err != nil {
		return err
	}
	if u.PasswordHash, err = HashPassword(password); err != nil {
		return err
	}
	if err := a.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	a.forget()
	return a.endSessions(ctx, name)
}

// Delete removes a user; cached logins and web sessions are dropped.
func (a *Accounts) Delete(ctx context.Context, name string) error {
	if err := a.store.DeleteUser(ctx, name); err != nil {
		return err
	}
	a.forget()
	return a.endSessions(ctx, name)
}

// endSessions logs a user out of the web app, when the store keeps web
// sessions (the server and the CLI's direct mode both use one that does).
func (a *Accounts) endSessions(ctx context.Context, name string) error {
	ss, ok := a.store.(storage.Sessions)
	if !ok {
		return nil
	}
	if err := ss.DeleteUserSessions(ctx, name); err != nil {
		return fmt.Errorf("end web sessions of %s: %w", name, err)
	}
	return nil
}

// List returns every user (password hashes included; callers must not
// show them).
func (a *Accounts) List(ctx context.Context) ([]storage.User, error) {
	return a.store.ListUsers(ctx)
}

// Get returns one user.
func (a *Accounts) Get(ctx context.Context, name string) (storage.User, error) {
	return a.store.User(ctx, name)
}

// Authenticate checks a name and password. It returns ErrBadCredentials for
// an unknown user and for a wrong password alike, and spends the same bcrypt
// time on both so timing tells nothing.
func (a *Accounts) Authenticate(ctx context.Context, name, password string) (storage.User, error) {
	key := credKey(name, password)
	a.mu.Lock()
	c, ok := a.cache[key]
	gen := a.gen
	a.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.user, nil
	}
	u, err := a.store.User(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return storage.User{}, ErrBadCredentials
	}
	if err != nil {
		return storage.User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return storage.User{}, ErrBadCredentials
	}
	a.mu.Lock()
	changed := a.gen != gen
	if !changed {
		if len(a.cache) > 10000 {
			clear(a.cache)
		}
		a.cache[key] = cached{user: u, expires: time.Now().Add(cacheTTL)}
	}
	a.mu.Unlock()
	if changed {
		// The account changed while we checked: the password may have
		// been verified against the old hash. Check again from scratch.
		return a.Authenticate(ctx, name, password)
	}
	return u, nil
}

func (a *Accounts) forget() {
	a.mu.Lock()
	clear(a.cache)
	a.gen++
	a.mu.Unlock()
}

func credKey(name, password string) [32]byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// dummyHash is compared against for unknown users, so they cost the same
// bcrypt time as a wrong password. (A constant: computing it at start-up
// would slow every CLI command.)
var dummyHash = []byte("$2a$10$b8JAsaSNpOzvbJLijx7mO.KDO5HzbMkQEPX3.6hMVZ0WkIV4E1ERS")

// ConstantTimeEqual compares secrets without leaking where they differ.
func ConstantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
