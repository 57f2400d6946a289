package embedded

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// TestReconcileAfterDelete is a crash after a deletion committed in
// history but before the last position was recomputed: Open must not keep
// the deleted (newer) last position.
func TestReconcileAfterDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		del  func(t *testing.T, s *Store)
		want []storage.Message
	}{
		{"newest deleted", func(t *testing.T, s *Store) {
			if _, err := s.DeleteRange(t.Context(), "alice", "phone", base+2, base+2); err != nil {
				t.Fatal(err)
			}
		}, []storage.Message{fix("alice", "phone", base+1), fix("bob", "watch", base)}},
		{"newest hidden", func(t *testing.T, s *Store) {
			if _, err := s.HideLocations(t.Context(), "alice", "phone", base+2, "", true); err != nil {
				t.Fatal(err)
			}
		}, []storage.Message{fix("alice", "phone", base+1), fix("bob", "watch", base)}},
		{"device deleted", func(t *testing.T, s *Store) {
			if _, err := s.DeleteDevice(t.Context(), "alice", "phone"); err != nil {
				t.Fatal(err)
			}
		}, []storage.Message{fix("bob", "watch", base)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openDir(t, dir)
			mustAppend(t, s, fix("alice", "phone", base+1), fix("alice", "phone", base+2), fix("bob", "watch", base))
			closeStore(t, s)
			statePath := filepath.Join(dir, StateFile)
			saved, err := os.ReadFile(statePath)
			if err != nil {
				t.Fatal(err)
			}

			s = openDir(t, dir)
			tc.del(t, s)
			closeStore(t, s)
			if err := os.WriteFile(statePath, saved, 0o600); err != nil { // the state update never reached the disk
				t.Fatal(err)
			}

			s = openDir(t, dir)
			defer closeStore(t, s)
			if got := lastLocations(t, s); !equalMessages(got, tc.want) {
				t.Errorf("LastLocations after reopen = %+v, want %+v", got, tc.want)
			}
		})
	}
}
