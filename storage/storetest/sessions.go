package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

func session(id, user string, expires time.Time) storage.Session {
	return storage.Session{ID: id, User: user, CSRF: "csrf-of-" + id, Created: created, Expires: expires}
}

func checkSession(t *testing.T, s storage.Store, want storage.Session) {
	t.Helper()
	got, err := s.Session(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Session(%s): %v", want.ID, err)
	}
	if got.ID != want.ID || got.User != want.User || got.CSRF != want.CSRF ||
		!got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Errorf("Session(%s) = %+v, want %+v", want.ID, got, want)
	}
}

func checkNoSession(t *testing.T, s storage.Store, id string) {
	t.Helper()
	if got, err := s.Session(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Session(%s) = %+v, %v; want ErrNotFound", id, got, err)
	}
}

func testSessions(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	checkNoSession(t, s, "a1")
	a1, a2, b1 := session("a1", "alice", later), session("a2", "alice", later), session("b1", "bob", later)
	for _, sess := range []storage.Session{a1, a2, b1} {
		if err := s.PutSession(ctx, sess); err != nil {
			t.Fatalf("PutSession(%s): %v", sess.ID, err)
		}
	}
	checkSession(t, s, a1)
	checkSession(t, s, b1)

	// Replacing keeps one session under the ID.
	a1.Expires = later.Add(time.Hour)
	if err := s.PutSession(ctx, a1); err != nil {
		t.Fatalf("PutSession(a1 again): %v", err)
	}
	checkSession(t, s, a1)

	if err := s.DeleteSession(ctx, "a2"); err != nil {
		t.Fatalf("DeleteSession(a2): %v", err)
	}
	checkNoSession(t, s, "a2")
	if err := s.DeleteSession(ctx, "a2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteSession(a2) twice: %v, want ErrNotFound", err)
	}

	if err := s.PutSession(ctx, a2); err != nil {
		t.Fatalf("PutSession(a2): %v", err)
	}
	if err := s.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUserSessions(alice): %v", err)
	}
	checkNoSession(t, s, "a1")
	checkNoSession(t, s, "a2")
	checkSession(t, s, b1)
	if err := s.DeleteUserSessions(ctx, "nobody"); err != nil {
		t.Errorf("DeleteUserSessions(nobody): %v", err)
	}
}

func testSessionsExpire(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx := t.Context()
	live := session("live", "alice", time.Now().Add(time.Hour))
	if err := s.PutSession(ctx, live); err != nil {
		t.Fatalf("PutSession(live): %v", err)
	}
	// A session that has expired is gone, also when it replaces a live one.
	gone := session("gone", "alice", time.Now().Add(-time.Second))
	if err := s.PutSession(ctx, gone); err != nil {
		t.Fatalf("PutSession(expired): %v", err)
	}
	checkNoSession(t, s, "gone")
	live.Expires = time.Now().Add(-time.Minute)
	if err := s.PutSession(ctx, live); err != nil {
		t.Fatalf("PutSession(live, now expired): %v", err)
	}
	checkNoSession(t, s, "live")

	// One that expires while stored is not returned either.
	soon := session("soon", "bob", time.Now().Add(50*time.Millisecond))
	if err := s.PutSession(ctx, soon); err != nil {
		t.Fatalf("PutSession(soon): %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Session(ctx, "soon")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Session(soon): %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("session still returned 10s after it expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
