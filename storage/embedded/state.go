package embedded

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/wherehouse/wherehouse/storage"
)

func devicePath(user, device string) string { return user + "/" + device }

// getJSON reads key into v; ErrNotFound if missing.
func (s *Store) getJSON(key string, v any) error {
	return s.state.View(func(tx *buntdb.Tx) error {
		raw, err := tx.Get(key)
		if err != nil {
			return notFound(err, key)
		}
		return json.Unmarshal([]byte(raw), v)
	})
}

func (s *Store) putJSON(key string, v any, opts *buntdb.SetOptions) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return s.state.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(key, string(b), opts)
		return err
	})
}

func (s *Store) deleteKey(key string) error {
	return s.state.Update(func(tx *buntdb.Tx) error {
		_, err := tx.Delete(key)
		return notFound(err, key)
	})
}

// scanPrefix calls fn for every key starting with prefix, in key order.
// (A prefix scan, not a pattern: user and device names may hold '*'.)
func scanPrefix(tx *buntdb.Tx, prefix string, fn func(key, value string) error) error {
	var ferr error
	err := tx.AscendGreaterOrEqual("", prefix, func(key, value string) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		ferr = fn(key, value)
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

func listJSON[T any](s *Store, prefix string) ([]T, error) {
	out := []T{}
	err := s.state.View(func(tx *buntdb.Tx) error {
		return scanPrefix(tx, prefix, func(key, value string) error {
			var v T
			if err := json.Unmarshal([]byte(value), &v); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// PutDevice stores a device's state.
func (s *Store) PutDevice(ctx context.Context, d storage.Device) error {
	return s.putJSON(prefixDevice+devicePath(d.User, d.Device), d, nil)
}

// Device returns a device's state.
func (s *Store) Device(ctx context.Context, user, device string) (storage.Device, error) {
	var d storage.Device
	err := s.getJSON(prefixDevice+devicePath(user, device), &d)
	return d, err
}

// ListDevices returns device states of user, or of everyone for "".
func (s *Store) ListDevices(ctx context.Context, user string) ([]storage.Device, error) {
	prefix := prefixDevice
	if user != "" {
		prefix += user + "/"
	}
	out, err := listJSON[storage.Device](s, prefix)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Device < out[j].Device
	})
	return out, nil
}

// SetKey stores a sealed secret.
func (s *Store) SetKey(ctx context.Context, user, device string, sealed []byte) error {
	return s.state.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(prefixKey+devicePath(user, device), base64.StdEncoding.EncodeToString(sealed), nil)
		return err
	})
}

// Key returns a sealed secret.
func (s *Store) Key(ctx context.Context, user, device string) ([]byte, error) {
	var out []byte
	err := s.state.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(prefixKey + devicePath(user, device))
		if err != nil {
			return notFound(err, "key of "+devicePath(user, device))
		}
		out, err = base64.StdEncoding.DecodeString(v)
		return err
	})
	return out, err
}

// DeleteKey removes a secret.
func (s *Store) DeleteKey(ctx context.Context, user, device string) error {
	return s.deleteKey(prefixKey + devicePath(user, device))
}

// PutShare stores a share.
func (s *Store) PutShare(ctx context.Context, sh storage.Share) error {
	return s.putJSON(prefixShare+sh.ID, sh, nil)
}

// DeleteShare removes a share.
func (s *Store) DeleteShare(ctx context.Context, id string) error {
	return s.deleteKey(prefixShare + id)
}

// ListShares returns every share.
func (s *Store) ListShares(ctx context.Context) ([]storage.Share, error) {
	return listJSON[storage.Share](s, prefixShare)
}

// PutGroup stores a group.
func (s *Store) PutGroup(ctx context.Context, g storage.Group) error {
	return s.putJSON(prefixGroup+g.Name, g, nil)
}

// DeleteGroup removes a group.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.deleteKey(prefixGroup + name)
}

// ListGroups returns every group.
func (s *Store) ListGroups(ctx context.Context) ([]storage.Group, error) {
	return listJSON[storage.Group](s, prefixGroup)
}

var cmdSeq atomic.Uint64

// QueueCommand queues a cmd payload with a time to live.
func (s *Store) QueueCommand(ctx context.Context, user, device string, payload []byte, ttl time.Duration) error {
	key := fmt.Sprintf("%s%s/%020d-%06d", prefixCmd, devicePath(user, device), time.Now().UnixNano(), cmdSeq.Add(1)%1000000)
	return s.state.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(key, string(payload), &buntdb.SetOptions{Expires: ttl > 0, TTL: ttl})
		return err
	})
}

// TakeCommands removes and returns a device's queued payloads.
func (s *Store) TakeCommands(ctx context.Context, user, device string) ([][]byte, error) {
	var out [][]byte
	err := s.state.Update(func(tx *buntdb.Tx) error {
		var keys []string
		err := scanPrefix(tx, prefixCmd+devicePath(user, device)+"/", func(key, value string) error {
			keys = append(keys, key)
			out = append(out, []byte(value))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
