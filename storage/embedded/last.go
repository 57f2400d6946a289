package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/buntdb"
	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// lastRecord is a last position as kept in state.db. Payload is []byte
// (base64 in JSON), not json.RawMessage: Marshal compacts and HTML-escapes a
// RawMessage, so the payload would not come back byte for byte, and a payload
// that is not valid JSON would fail the update after history committed. A
// record in the old RawMessage form does not decode and is rewritten by
// reconcileLast at the next Open.
type lastRecord struct {
	Topic    string  `json:"topic"`
	TST      int64   `json:"tst"`
	Received int64   `json:"rcv"`
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	Payload  []byte  `json:"payload"`
}

func lastFromMessage(m *storage.Message) lastRecord {
	return lastRecord{Topic: m.Topic, TST: m.TST, Received: m.Received, Lat: m.Lat, Lon: m.Lon, Payload: m.Payload}
}

func (r *lastRecord) message(user, device string) storage.Message {
	return storage.Message{
		User: user, Device: device, Topic: r.Topic, Type: "location",
		TST: r.TST, Received: r.Received, Lat: r.Lat, Lon: r.Lon, Payload: r.Payload,
	}
}

// updateLast replaces last positions that msgs (keyed user/device) are newer than.
func (s *Store) updateLast(newest map[string]*storage.Message) error {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	err := s.state.Update(func(tx *buntdb.Tx) error {
		for _, m := range newest {
			key := lastKey(m.User, m.Device)
			if cur, err := tx.Get(key); err == nil {
				var r lastRecord
				if json.Unmarshal([]byte(cur), &r) == nil {
					old := r.message(m.User, m.Device)
					if !newerThan(m, &old) {
						continue
					}
				}
			}
			b, err := json.Marshal(lastFromMessage(m))
			if err != nil {
				return err
			}
			if _, _, err := tx.Set(key, string(b), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update last positions: %w", err)
	}
	return nil
}

// reconcileLast makes state.db's last positions agree with history: the
// newest location of each device is one cursor step, so this is cheap even
// for years of data. It repairs what a crash between the two files left,
// a deletion whose last position was not recomputed yet included.
func (s *Store) reconcileLast(ctx context.Context) error {
	newest := make(map[string]*storage.Message)
	err := s.hist.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHist).ForEachBucket(func(user []byte) error {
			ub := tx.Bucket(bucketHist).Bucket(user)
			return ub.ForEachBucket(func(device []byte) error {
				m, err := newestLocation(ub.Bucket(device), string(user), string(device))
				if m != nil {
					newest[m.User+"/"+m.Device] = m
				}
				return err
			})
		})
	})
	if err != nil {
		return fmt.Errorf("reconcile last positions: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.resetLast(newest)
}

// LastLocations returns the newest location per device.
func (s *Store) LastLocations(ctx context.Context, user, device string) ([]storage.Message, error) {
	// A prefix scan, not a buntdb pattern: user names may contain '\',
	// '*' or '?', which patterns treat specially.
	prefix := prefixLast
	if user != "" {
		prefix = prefixLast + user + "/"
	}
	var out []storage.Message
	err := s.state.View(func(tx *buntdb.Tx) error {
		return tx.AscendGreaterOrEqual("", prefix, func(key, value string) bool {
			if !strings.HasPrefix(key, prefix) {
				return false
			}
			u, d, ok := strings.Cut(strings.TrimPrefix(key, prefixLast), "/")
			if !ok || (user != "" && u != user) || (device != "" && d != device) {
				return true
			}
			var r lastRecord
			if err := json.Unmarshal([]byte(value), &r); err != nil {
				s.log.Warn("skip unreadable last position", "key", key, "error", err)
				return true
			}
			out = append(out, r.message(u, d))
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read last positions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Device < out[j].Device
	})
	return out, nil
}

// DataUsers returns the users with stored messages.
func (s *Store) DataUsers(ctx context.Context) ([]string, error) {
	var out []string
	err := s.hist.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHist).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users with data: %w", err)
	}
	return out, nil
}

// Devices returns the devices of user with stored messages.
func (s *Store) Devices(ctx context.Context, user string) ([]string, error) {
	out := []string{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		ub := tx.Bucket(bucketHist).Bucket([]byte(user))
		if ub == nil {
			return nil
		}
		return ub.ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices of %s: %w", user, err)
	}
	return out, nil
}
