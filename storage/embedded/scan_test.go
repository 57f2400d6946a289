package embedded

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// scanAll collects what ScanLocations hands out, copying each message (it
// is only valid during the call), and counts the flushes.
func scanAll(t *testing.T, s *Store, q storage.LocationQuery) ([]storage.Message, int) {
	t.Helper()
	var out []storage.Message
	flushes := 0
	err := s.ScanLocations(t.Context(), q, func(m *storage.Message) error {
		c := *m
		c.Payload = bytes.Clone(m.Payload)
		out = append(out, c)
		return nil
	}, func() error { flushes++; return nil })
	if err != nil {
		t.Fatalf("ScanLocations: %v", err)
	}
	return out, flushes
}

func locations(t *testing.T, s *Store, q storage.LocationQuery) []storage.Message {
	t.Helper()
	var out []storage.Message
	if err := s.Locations(t.Context(), q, func(m *storage.Message) error {
		out = append(out, *m)
		return nil
	}); err != nil {
		t.Fatalf("Locations: %v", err)
	}
	return out
}

// TestScanLocationsMatchesLocations: the same messages as Locations, for
// ranges that end inside, at and past the chunk boundaries.
func TestScanLocationsMatchesLocations(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer closeStore(t, s)
	const n = 2*scanChunk + 10
	msgs := make([]storage.Message, n)
	for i := range msgs {
		msgs[i] = fix("alice", "phone", base+int64(i)*10)
	}
	mustAppend(t, s, msgs...)
	mustAppend(t, s, fix("alice", "tablet", base), fix("bob", "phone", base+5))
	tests := []struct {
		name        string
		q           storage.LocationQuery
		want        int
		wantFlushes int
	}{
		{"all", storage.LocationQuery{User: "alice", Device: "phone", From: 0, To: base + n*10}, n, 3},
		{"one chunk", storage.LocationQuery{User: "alice", Device: "phone", From: base, To: base + (scanChunk-1)*10}, scanChunk, 1},
		{"a chunk and one", storage.LocationQuery{User: "alice", Device: "phone", From: base, To: base + scanChunk*10}, scanChunk + 1, 2},
		{"from inside", storage.LocationQuery{User: "alice", Device: "phone", From: base + 15, To: base + 35}, 2, 1},
		{"newest", storage.LocationQuery{User: "alice", Device: "phone", From: 0, To: base + n*10, Limit: 3}, 3, 1},
		{"other device", storage.LocationQuery{User: "alice", Device: "tablet", From: 0, To: base + n*10}, 1, 1},
		{"no device", storage.LocationQuery{User: "carol", Device: "phone", From: 0, To: base + n*10}, 0, 1},
		{"empty range", storage.LocationQuery{User: "alice", Device: "phone", From: base + 1, To: base + 9}, 0, 1},
		{"reversed range", storage.LocationQuery{User: "alice", Device: "phone", From: base + 10, To: base}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, flushes := scanAll(t, s, tc.q)
			want := locations(t, s, tc.q)
			if len(got) != tc.want || !equalMessages(got, want) {
				t.Fatalf("ScanLocations gave %d messages, Locations %d, want %d the same", len(got), len(want), tc.want)
			}
			if flushes != tc.wantFlushes {
				t.Errorf("%d flushes, want %d", flushes, tc.wantFlushes)
			}
		})
	}
}

// TestScanLocationsStops: an error from fn or flush, or a cancelled
// context, ends the walk and is returned.
func TestScanLocationsStops(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer closeStore(t, s)
	msgs := make([]storage.Message, scanChunk+5)
	for i := range msgs {
		msgs[i] = fix("alice", "phone", base+int64(i))
	}
	mustAppend(t, s, msgs...)
	q := storage.LocationQuery{User: "alice", Device: "phone", From: 0, To: base + 1e6}
	errStop := errors.New("stop")

	calls := 0
	err := s.ScanLocations(t.Context(), q, func(*storage.Message) error {
		if calls++; calls == 3 {
			return errStop
		}
		return nil
	}, func() error { return nil })
	if !errors.Is(err, errStop) || calls != 3 {
		t.Errorf("fn error: err %v after %d calls, want %v after 3", err, calls, errStop)
	}

	calls = 0
	err = s.ScanLocations(t.Context(), q, func(*storage.Message) error { calls++; return nil }, func() error { return errStop })
	if !errors.Is(err, errStop) || calls != scanChunk {
		t.Errorf("flush error: err %v after %d calls, want %v after %d", err, calls, errStop, scanChunk)
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	err = s.ScanLocations(ctx, q, func(*storage.Message) error { calls++; return nil }, func() error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != scanChunk {
		t.Errorf("cancelled: err %v after %d calls, want %v after %d", err, calls, context.Canceled, scanChunk)
	}
}
