package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/buntdb"
	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/storetest"
)

var discard = slog.New(slog.DiscardHandler)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), t.TempDir(), discard)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestContractPacked runs the contract with tiny blocks, packed after a
// handful of records, so nearly every record read, deleted, hidden or
// thinned is in a block and most blocks are rewritten along the way.
func TestContractPacked(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), t.TempDir(), discard)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.pack = tinyPack
		return s
	})
}

// tinyPack packs all but the newest loose location as soon as there are 3.
var tinyPack = packConfig{keep: 1, trigger: 3, block: 3}

// openDir opens the store in dir; the caller closes it.
func openDir(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dir, discard)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

const base int64 = 1_700_000_000

func fix(user, device string, tst int64) storage.Message {
	lat := 48.8566 + float64(tst%100)/1e3
	return storage.Message{
		User: user, Device: device, Topic: "owntracks/" + user + "/" + device, Type: "location",
		TST: tst, Received: tst*1000 + 42, Lat: lat, Lon: 2.3522,
		Payload: fmt.Appendf(nil, `{"_type":"location","lat":%v,"lon":2.3522,"tst":%d}`, lat, tst),
	}
}

func mustAppend(t testing.TB, s *Store, msgs ...storage.Message) {
	t.Helper()
	dup, err := s.Append(t.Context(), msgs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if slices.Contains(dup, true) {
		t.Fatalf("Append: dup = %v, want none", dup)
	}
}

func allLocations(t *testing.T, s *Store, user, device string) []storage.Message {
	t.Helper()
	var out []storage.Message
	q := storage.LocationQuery{User: user, Device: device, From: 0, To: math.MaxInt64}
	if err := s.Locations(t.Context(), q, func(m *storage.Message) error {
		out = append(out, *m)
		return nil
	}); err != nil {
		t.Fatalf("Locations: %v", err)
	}
	return out
}

func lastLocations(t *testing.T, s *Store) []storage.Message {
	t.Helper()
	last, err := s.LastLocations(t.Context(), "", "")
	if err != nil {
		t.Fatalf("LastLocations: %v", err)
	}
	return last
}

// equalMessages compares every field, payload bytes included.
func equalMessages(a, b []storage.Message) bool {
	return slices.EqualFunc(a, b, func(x, y storage.Message) bool {
		return x.User == y.User && x.Device == y.Device && x.Topic == y.Topic && x.Type == y.Type &&
			x.TST == y.TST && x.Received == y.Received && x.Lat == y.Lat && x.Lon == y.Lon &&
			bytes.Equal(x.Payload, y.Payload)
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	history := []storage.Message{
		fix("alice", "phone", base),
		{User: "alice", Device: "phone", Topic: "owntracks/alice/phone", Type: "lwt", TST: base + 5, Received: (base + 5) * 1000, Payload: []byte(`{"_type":"lwt","tst":1700000005}`)},
		fix("alice", "phone", base+10),
		fix("bob", "tablet", base+3),
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	users := []storage.User{
		{Name: "alice", PasswordHash: "h1", Admin: true, Created: created},
		{Name: "bob", PasswordHash: "h2", Created: created},
	}

	s := openDir(t, dir)
	mustAppend(t, s, history...)
	for _, u := range users {
		if err := s.CreateUser(t.Context(), u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
	}
	wantPhone := allLocations(t, s, "alice", "phone")
	wantLast := lastLocations(t, s)
	closeStore(t, s)

	s = openDir(t, dir)
	defer closeStore(t, s)

	t.Run("locations", func(t *testing.T) {
		if got := allLocations(t, s, "alice", "phone"); !equalMessages(got, wantPhone) || len(got) != 2 {
			t.Errorf("Locations after reopen = %+v, want %+v", got, wantPhone)
		}
	})
	t.Run("every message", func(t *testing.T) {
		dup, err := s.Append(t.Context(), history)
		if err != nil {
			t.Fatalf("Append again: %v", err)
		}
		if want := []bool{true, true, true, true}; !slices.Equal(dup, want) {
			t.Errorf("Append again: dup = %v, want %v", dup, want)
		}
	})
	t.Run("last", func(t *testing.T) {
		want := []storage.Message{history[2], history[3]}
		if got := lastLocations(t, s); !equalMessages(got, want) || !equalMessages(got, wantLast) {
			t.Errorf("LastLocations after reopen = %+v, want %+v", got, want)
		}
	})
	t.Run("users", func(t *testing.T) {
		got, err := s.ListUsers(t.Context())
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(got) != len(users) {
			t.Fatalf("ListUsers = %+v, want %+v", got, users)
		}
		for i := range got {
			if g, w := got[i], users[i]; g.Name != w.Name || g.PasswordHash != w.PasswordHash || g.Admin != w.Admin || !g.Created.Equal(w.Created) {
				t.Errorf("user %d = %+v, want %+v", i, g, w)
			}
		}
	})
	t.Run("data users", func(t *testing.T) {
		got, err := s.DataUsers(t.Context())
		if err != nil {
			t.Fatalf("DataUsers: %v", err)
		}
		if want := []string{"alice", "bob"}; !slices.Equal(got, want) {
			t.Errorf("DataUsers = %q, want %q", got, want)
		}
	})
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)

	second, err := Open(t.Context(), dir, discard)
	if !errors.Is(err, storage.ErrLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second Open: err = %v, want %v", err, storage.ErrLocked)
	}

	// The refused Open must not have disturbed the first store.
	mustAppend(t, s, fix("alice", "phone", base))
	closeStore(t, s)

	s = openDir(t, dir)
	defer closeStore(t, s)
	if got := allLocations(t, s, "alice", "phone"); len(got) != 1 {
		t.Errorf("after reopen: %d locations, want 1", len(got))
	}
}

// setSchema writes v as the schema version of the closed store in dir.
func setSchema(t *testing.T, dir string, v uint64) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, HistoryFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open history db: %v", err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, v))
	}); err != nil {
		t.Fatalf("set schema %d: %v", v, err)
	}
}

func schema(t *testing.T, dir string) uint64 {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, HistoryFile), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("open history db: %v", err)
	}
	defer db.Close()
	var v uint64
	if err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta).Get(keySchema)
		if len(b) != 8 {
			return fmt.Errorf("schema value %x", b)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	}); err != nil {
		t.Fatalf("read schema: %v", err)
	}
	return v
}

func TestOpenSchema(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint64
		want    error
	}{
		{"current", schemaVersion, nil},
		{"next", schemaVersion + 1, storage.ErrNewerSchema},
		{"far future", math.MaxUint64, storage.ErrNewerSchema},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openDir(t, dir)
			mustAppend(t, s, fix("alice", "phone", base))
			closeStore(t, s)
			setSchema(t, dir, tc.version)

			// Twice: a refused Open must release the lock and leave the
			// version alone.
			for range 2 {
				s, err := Open(t.Context(), dir, discard)
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("Open: err = %v, want %v", err, tc.want)
				}
				if s != nil {
					closeStore(t, s)
				}
			}
			if got := schema(t, dir); got != tc.version {
				t.Errorf("schema after Open = %d, want %d", got, tc.version)
			}
		})
	}
}

func TestReconcileLast(t *testing.T) {
	statePath := func(dir string) string { return filepath.Join(dir, StateFile) }
	for _, tc := range []struct {
		name string
		// damage runs between the second write and the final reopen; saved
		// is a copy of state.db taken after the first write.
		damage func(t *testing.T, dir string, saved []byte)
	}{
		{"state deleted", func(t *testing.T, dir string, _ []byte) {
			if err := os.Remove(statePath(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{"state in old format", func(t *testing.T, dir string, _ []byte) {
			// Before payloads were kept as bytes they were raw JSON, which
			// does not decode any more: Open must rewrite such records.
			db, err := buntdb.Open(statePath(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *buntdb.Tx) error {
				_, _, err := tx.Set(lastKey("alice", "phone"), `{"topic":"owntracks/alice/phone","tst":1700000100,"rcv":9999999999999,"lat":1,"lon":2,"payload":{"_type":"location"}}`, nil)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"state behind history", func(t *testing.T, dir string, saved []byte) {
			// As if the process died after the history commit but
			// before the state update reached the disk.
			if err := os.WriteFile(statePath(dir), saved, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openDir(t, dir)
			mustAppend(t, s, fix("alice", "phone", base), fix("bob", "watch", base+1))
			closeStore(t, s)
			saved, err := os.ReadFile(statePath(dir))
			if err != nil {
				t.Fatal(err)
			}

			s = openDir(t, dir)
			mustAppend(t, s, fix("alice", "phone", base+100), fix("alice", "phone", base+50), fix("carol", "car", base+2))
			mustAppend(t, s, storage.Message{User: "dave", Device: "pc", Type: "card", TST: base, Payload: []byte(`{"_type":"card"}`)})
			want := []storage.Message{fix("alice", "phone", base+100), fix("bob", "watch", base+1), fix("carol", "car", base+2)}
			if got := lastLocations(t, s); !equalMessages(got, want) {
				t.Fatalf("LastLocations before damage = %+v, want %+v", got, want)
			}
			closeStore(t, s)

			tc.damage(t, dir, saved)

			s = openDir(t, dir)
			defer closeStore(t, s)
			if got := lastLocations(t, s); !equalMessages(got, want) {
				t.Errorf("LastLocations after reconcile = %+v, want %+v", got, want)
			}
		})
	}
}
