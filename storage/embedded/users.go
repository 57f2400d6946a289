package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/wherehouse/wherehouse/storage"
)

// CreateUser stores a new account.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user %s: %w", u.Name, err)
	}
	return s.state.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Get(userKey(u.Name)); err == nil {
			return fmt.Errorf("user %s: %w", u.Name, storage.ErrExists)
		}
		_, _, err := tx.Set(userKey(u.Name), string(b), nil)
		return err
	})
}

// UpdateUser replaces an existing account.
func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user %s: %w", u.Name, err)
	}
	return s.state.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Get(userKey(u.Name)); err != nil {
			return notFound(err, "user "+u.Name)
		}
		_, _, err := tx.Set(userKey(u.Name), string(b), nil)
		return err
	})
}

// User returns one account.
func (s *Store) User(ctx context.Context, name string) (storage.User, error) {
	var u storage.User
	err := s.state.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(userKey(name))
		if err != nil {
			return notFound(err, "user "+name)
		}
		return json.Unmarshal([]byte(v), &u)
	})
	return u, err
}

// ListUsers returns every account sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	users := []storage.User{}
	err := s.state.View(func(tx *buntdb.Tx) error {
		var derr error
		err := tx.AscendKeys(prefixUser+"*", func(key, value string) bool {
			var u storage.User
			if derr = json.Unmarshal([]byte(value), &u); derr != nil {
				return false
			}
			users = append(users, u)
			return true
		})
		return errors.Join(err, derr)
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// DeleteUser removes an account. The user's history is kept.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.state.Update(func(tx *buntdb.Tx) error {
		_, err := tx.Delete(userKey(name))
		return notFound(err, "user "+name)
	})
}

// CountUsers returns the number of accounts.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	n := 0
	err := s.state.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys(prefixUser+"*", func(string, string) bool { n++; return true })
	})
	return n, err
}

func notFound(err error, what string) error {
	if errors.Is(err, buntdb.ErrNotFound) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
