package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/wherehouse/wherehouse/storage"
)

// PutSession stores a session; buntdb drops it when it expires. One that
// has already expired is not stored (and replaces nothing).
func (s *Store) PutSession(ctx context.Context, sess storage.Session) error {
	key := prefixSession + sess.ID
	ttl := time.Until(sess.Expires)
	if ttl <= 0 {
		if err := s.deleteKey(key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	}
	return s.putJSON(key, sess, &buntdb.SetOptions{Expires: true, TTL: ttl})
}

// Session returns a live session.
func (s *Store) Session(ctx context.Context, id string) (storage.Session, error) {
	var sess storage.Session
	if err := s.getJSON(prefixSession+id, &sess); err != nil {
		return storage.Session{}, err
	}
	// buntdb sweeps expired keys only once a second.
	if !time.Now().Before(sess.Expires) {
		return storage.Session{}, fmt.Errorf("session: %w", storage.ErrNotFound)
	}
	return sess, nil
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.deleteKey(prefixSession + id)
}

// DeleteUserSessions removes every session of user. Sessions are few (one
// per browser login), so a scan of them all is cheap.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) error {
	return s.state.Update(func(tx *buntdb.Tx) error {
		var keys []string
		err := scanPrefix(tx, prefixSession, func(key, value string) error {
			var sess storage.Session
			if err := json.Unmarshal([]byte(value), &sess); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			if sess.User == user {
				keys = append(keys, key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
		return nil
	})
}
