package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

func openUsers(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func mustAdd(t *testing.T, a *auth.Accounts, name, password string, admin bool) {
	t.Helper()
	if err := a.Add(t.Context(), name, password, admin); err != nil {
		t.Fatalf("Add(%q): %v", name, err)
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"a", true},
		{"0day", true},
		{"j.doe_1-x", true},
		{strings.Repeat("a", 64), true},

		{"", false},
		{"Alice", false},
		{"ALICE", false},
		{"al/ice", false},
		{"al+ice", false},
		{"+", false},
		{"al#ice", false},
		{"#", false},
		{strings.Repeat("a", 65), false},
		{".alice", false},
		{"-alice", false},
		{"_alice", false},
		{"al ice", false},
		{"alice\n", false},
		{"älice", false},
		{"al\x00ice", false},
		{"$sys", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := auth.ValidName(tc.name); got != tc.ok {
				t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
			}
		})
	}
}

func TestAccountsAdd(t *testing.T) {
	t.Parallel() // bcrypt is slow, more so under -race
	store := openUsers(t)
	a := auth.NewAccounts(store)
	mustAdd(t, a, "alice", "correct horse", false)

	tests := []struct {
		name, user, password string
		admin                bool
		want                 error // nil: added
	}{
		{"admin", "root", "battery staple", true, nil},
		{"eight characters", "bob", "12345678", false, nil},
		{"upper case", "Carol", "correct horse", false, auth.ErrInvalidName},
		{"slash", "ca/rol", "correct horse", false, auth.ErrInvalidName},
		{"plus", "carol+", "correct horse", false, auth.ErrInvalidName},
		{"hash", "carol#", "correct horse", false, auth.ErrInvalidName},
		{"empty", "", "correct horse", false, auth.ErrInvalidName},
		{"65 characters", strings.Repeat("c", 65), "correct horse", false, auth.ErrInvalidName},
		{"weak password", "carol", "1234567", false, auth.ErrWeakPassword},
		{"empty password", "carol", "", false, auth.ErrWeakPassword},
		{"duplicate", "alice", "another password", false, storage.ErrExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Add(t.Context(), tc.user, tc.password, tc.admin)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Add(%q, %q) = %v, want %v", tc.user, tc.password, err, tc.want)
			}
			if tc.want == storage.ErrExists {
				return
			}
			if tc.want != nil {
				if _, err := store.User(t.Context(), tc.user); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("rejected user %q: User = %v, want ErrNotFound", tc.user, err)
				}
				return
			}
			u, err := a.Get(t.Context(), tc.user)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if u.Name != tc.user || u.Admin != tc.admin || u.Created.IsZero() {
				t.Errorf("stored %+v", u)
			}
		})
	}

	t.Run("password over 72 bytes", func(t *testing.T) {
		if err := a.Add(t.Context(), "dave", strings.Repeat("p", 73), false); err == nil {
			t.Error("Add accepted a password bcrypt would truncate")
		}
	})
	t.Run("hash stored, not the password", func(t *testing.T) {
		u, err := store.User(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if u.PasswordHash == "correct horse" || strings.Contains(u.PasswordHash, "correct horse") {
			t.Errorf("password stored in clear: %q", u.PasswordHash)
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			t.Errorf("PasswordHash = %q, want a bcrypt hash ($2...)", u.PasswordHash)
		}
	})
	t.Run("duplicate keeps the first password", func(t *testing.T) {
		if _, err := a.Authenticate(t.Context(), "alice", "correct horse"); err != nil {
			t.Errorf("Authenticate with the first password: %v", err)
		}
	})
}

func TestAccountsAuthenticate(t *testing.T) {
	t.Parallel() // bcrypt is slow, more so under -race
	a := auth.NewAccounts(openUsers(t))
	mustAdd(t, a, "alice", "correct horse", false)
	mustAdd(t, a, "root", "battery staple", true)

	tests := []struct {
		name, user, password string
		want                 error
		admin                bool
	}{
		{"ok", "alice", "correct horse", nil, false},
		{"ok again (cached)", "alice", "correct horse", nil, false},
		{"admin", "root", "battery staple", nil, true},
		{"wrong password", "alice", "correct horsE", auth.ErrBadCredentials, false},
		{"other user's password", "alice", "battery staple", auth.ErrBadCredentials, false},
		{"empty password", "alice", "", auth.ErrBadCredentials, false},
		{"unknown user", "mallory", "correct horse", auth.ErrBadCredentials, false},
		{"empty user", "", "correct horse", auth.ErrBadCredentials, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := a.Authenticate(t.Context(), tc.user, tc.password)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Authenticate(%q, %q) = %v, want %v", tc.user, tc.password, err, tc.want)
			}
			if tc.want != nil {
				if u.Name != "" || u.PasswordHash != "" || u.Admin {
					t.Errorf("failed login returned user %+v", u)
				}
				return
			}
			if u.Name != tc.user || u.Admin != tc.admin {
				t.Errorf("Authenticate = %+v, want name %q admin %v", u, tc.user, tc.admin)
			}
		})
	}
}

func TestAccountsSetPassword(t *testing.T) {
	t.Parallel() // bcrypt is slow, more so under -race
	a := auth.NewAccounts(openUsers(t))
	ctx := t.Context()
	mustAdd(t, a, "alice", "old password", false)
	if _, err := a.Authenticate(ctx, "alice", "old password"); err != nil {
		t.Fatalf("Authenticate before: %v", err) // now cached
	}

	if err := a.SetPassword(ctx, "alice", "short"); !errors.Is(err, auth.ErrWeakPassword) {
		t.Errorf("SetPassword(weak) = %v, want ErrWeakPassword", err)
	}
	if _, err := a.Authenticate(ctx, "alice", "old password"); err != nil {
		t.Errorf("a rejected SetPassword changed the password: %v", err)
	}
	if err := a.SetPassword(ctx, "nobody", "new password"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetPassword(unknown user) = %v, want ErrNotFound", err)
	}

	if err := a.SetPassword(ctx, "alice", "new password"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if _, err := a.Authenticate(ctx, "alice", "old password"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("old password after SetPassword: %v, want ErrBadCredentials at once", err)
	}
	if _, err := a.Authenticate(ctx, "alice", "new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	u, err := a.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$2") || strings.Contains(u.PasswordHash, "new password") {
		t.Errorf("PasswordHash = %q, want a bcrypt hash", u.PasswordHash)
	}
}

func TestAccountsDelete(t *testing.T) {
	t.Parallel() // bcrypt is slow, more so under -race
	a := auth.NewAccounts(openUsers(t))
	ctx := t.Context()
	mustAdd(t, a, "alice", "correct horse", false)
	mustAdd(t, a, "bob", "battery staple", false)
	for name, password := range map[string]string{"alice": "correct horse", "bob": "battery staple"} {
		if _, err := a.Authenticate(ctx, name, password); err != nil {
			t.Fatalf("Authenticate(%s) before: %v", name, err) // now cached
		}
	}
	if err := a.Delete(ctx, "alice"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := a.Authenticate(ctx, "alice", "correct horse"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("login after Delete: %v, want ErrBadCredentials", err)
	}
	if _, err := a.Authenticate(ctx, "bob", "battery staple"); err != nil {
		t.Errorf("other user after Delete: %v", err)
	}
	if err := a.Delete(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete again = %v, want ErrNotFound", err)
	}
	users, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Name != "bob" {
		t.Errorf("List = %v, want only bob", users)
	}
}

// pausingUsers is the real store with one hook: the first User call after
// arm returns the real record only when released. It lets a test interleave
// Authenticate and SetPassword deterministically.
type pausingUsers struct {
	*embedded.Store
	mu      sync.Mutex
	armed   bool
	paused  chan struct{} // closed when the armed call has read the record
	release chan struct{}
}

func (p *pausingUsers) arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.paused, p.release = true, make(chan struct{}), make(chan struct{})
}

func (p *pausingUsers) User(ctx context.Context, name string) (storage.User, error) {
	u, err := p.Store.User(ctx, name)
	p.mu.Lock()
	armed := p.armed
	p.armed = false
	p.mu.Unlock()
	if armed {
		close(p.paused)
		<-p.release
	}
	return u, err
}

// TestAccountsChangeDuringLogin: a login that read the old record before
// SetPassword or Delete and finishes after it must not leave the old
// password cached.
func TestAccountsChangeDuringLogin(t *testing.T) {
	tests := []struct {
		name   string
		change func(ctx context.Context, a *auth.Accounts) error
	}{
		{"SetPassword", func(ctx context.Context, a *auth.Accounts) error {
			return a.SetPassword(ctx, "alice", "new password")
		}},
		{"Delete", func(ctx context.Context, a *auth.Accounts) error {
			return a.Delete(ctx, "alice")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &pausingUsers{Store: openUsers(t)}
			a := auth.NewAccounts(store)
			ctx := t.Context()
			mustAdd(t, a, "alice", "old password", false)

			store.arm()
			loginErr := make(chan error, 1)
			go func() {
				_, err := a.Authenticate(ctx, "alice", "old password")
				loginErr <- err
			}()
			<-store.paused // the login has read the old hash
			if err := tc.change(ctx, a); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			close(store.release)
			<-loginErr // it may succeed: it started before the change

			if _, err := a.Authenticate(ctx, "alice", "old password"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Errorf("old password after %s returned: %v, want ErrBadCredentials", tc.name, err)
			}
		})
	}
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		p := auth.RandomPassword()
		if len(p) < auth.MinPassword {
			t.Errorf("RandomPassword() = %q, shorter than MinPassword", p)
		}
		if seen[p] {
			t.Errorf("RandomPassword() repeated %q", p)
		}
		seen[p] = true
	}
}

func TestConstantTimeEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"secret", "secret", true},
		{"secret", "secreT", false},
		{"secret", "secrets", false},
		{"secret", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.a+"|"+tc.b, func(t *testing.T) {
			if got := auth.ConstantTimeEqual(tc.a, tc.b); got != tc.want {
				t.Errorf("ConstantTimeEqual(%q, %q) = %v", tc.a, tc.b, got)
			}
		})
	}
}
