package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// created is a fixed account creation time; backends may drop the
// monotonic reading and the location, so times are compared with Equal.
var created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func user(name string, admin bool) storage.User {
	return storage.User{Name: name, PasswordHash: "$2a$10$hash-of-" + name, Admin: admin, Created: created}
}

func checkUser(t *testing.T, what string, got, want storage.User) {
	t.Helper()
	if got.Name != want.Name || got.PasswordHash != want.PasswordHash || got.Admin != want.Admin || !got.Created.Equal(want.Created) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func checkUsers(t *testing.T, s storage.Store, want ...storage.User) {
	t.Helper()
	got, err := s.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListUsers = %+v, want %+v", got, want)
	}
	for i := range got {
		checkUser(t, "ListUsers", got[i], want[i])
	}
	n, err := s.CountUsers(t.Context())
	if err != nil {
		t.Fatalf("CountUsers: %v", err)
	}
	if n != len(want) {
		t.Errorf("CountUsers = %d, want %d", n, len(want))
	}
}

func testUsers(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	checkUsers(t, s)

	alice, bob, carol := user("alice", true), user("bob", false), user("carol", false)
	for _, u := range []storage.User{carol, alice, bob} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
	}
	checkUsers(t, s, alice, bob, carol)

	got, err := s.User(ctx, "alice")
	if err != nil {
		t.Fatalf("User(alice): %v", err)
	}
	checkUser(t, "User(alice)", got, alice)

	alice.PasswordHash, alice.Admin = "$2a$10$new-hash", false
	if err := s.UpdateUser(ctx, alice); err != nil {
		t.Fatalf("UpdateUser(alice): %v", err)
	}
	got, err = s.User(ctx, "alice")
	if err != nil {
		t.Fatalf("User(alice) after update: %v", err)
	}
	checkUser(t, "User(alice) after update", got, alice)
	checkUsers(t, s, alice, bob, carol)

	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatalf("DeleteUser(bob): %v", err)
	}
	if _, err := s.User(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("User(bob) after delete: err = %v, want %v", err, storage.ErrNotFound)
	}
	checkUsers(t, s, alice, carol)

	// The name is free again.
	if err := s.CreateUser(ctx, bob); err != nil {
		t.Fatalf("CreateUser(bob) after delete: %v", err)
	}
	checkUsers(t, s, alice, bob, carol)
}

func testUserErrors(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	alice := user("alice", true)
	if err := s.CreateUser(t.Context(), alice); err != nil {
		t.Fatalf("CreateUser(alice): %v", err)
	}

	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"create existing", func() error { return s.CreateUser(t.Context(), user("alice", false)) }, storage.ErrExists},
		{"get unknown", func() error { _, err := s.User(t.Context(), "bob"); return err }, storage.ErrNotFound},
		{"get prefix", func() error { _, err := s.User(t.Context(), "ali"); return err }, storage.ErrNotFound},
		{"update unknown", func() error { return s.UpdateUser(t.Context(), user("bob", true)) }, storage.ErrNotFound},
		{"delete unknown", func() error { return s.DeleteUser(t.Context(), "bob") }, storage.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// None of the failures changed anything: alice is untouched and the
	// failed update did not create bob.
	got, err := s.User(t.Context(), "alice")
	if err != nil {
		t.Fatalf("User(alice): %v", err)
	}
	checkUser(t, "User(alice)", got, alice)
	checkUsers(t, s, alice)
}

func testDeleteUserKeepsHistory(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, user("alice", false)); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	fix := location("alice", "phone", base)
	mustAppend(t, s, fix)
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}

	checkMessages(t, "Locations", collect(t, s, allOf("alice", "phone")), []storage.Message{fix})
	checkMessages(t, "LastLocations", lastLocations(t, s, "alice", ""), []storage.Message{fix})
	users, err := s.DataUsers(ctx)
	if err != nil {
		t.Fatalf("DataUsers: %v", err)
	}
	if len(users) != 1 || users[0] != "alice" {
		t.Errorf("DataUsers = %q, want [alice]", users)
	}
	// History is not an account.
	checkUsers(t, s)
}
