package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// checkNames refuses a user or device name holding '\x00', the key
// separator. Topic levels cannot hold it ([MQTT-4.7.3-2]); this guards the
// keys against any other caller.
func checkNames(user, device string) error {
	if strings.IndexByte(user, 0) >= 0 || strings.IndexByte(device, 0) >= 0 {
		return fmt.Errorf("name %q/%q holds a NUL byte", user, device)
	}
	return nil
}

func putJSONBolt(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	return b.Put(k, raw)
}

// RecordTransitions stores states, new events and their deliveries in one
// durable (fsync'd) transaction. A delivery is stored only when this call
// stored its event.
func (s *Store) RecordTransitions(ctx context.Context, states []storage.FenceState, events []storage.Event, deliveries []storage.Delivery) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range states {
		if err := checkNames(states[i].User, states[i].Device); err != nil {
			return nil, fmt.Errorf("record fence state: %w", err)
		}
	}
	for i := range events {
		if err := checkNames(events[i].User, events[i].Device); err != nil {
			return nil, fmt.Errorf("record event: %w", err)
		}
		if events[i].ID == "" {
			return nil, errors.New("record event: empty id")
		}
	}
	fresh := make([]bool, len(events))
	err := s.hist.Update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketFenceState)
		for i := range states {
			st := &states[i]
			k := fenceStateKey(st.User, st.Device, st.Fence)
			if st.IsDefault() {
				if err := sb.Delete(k); err != nil {
					return fmt.Errorf("delete fence state: %w", err)
				}
				continue
			}
			if err := putJSONBolt(sb, k, st); err != nil {
				return fmt.Errorf("put fence state: %w", err)
			}
		}
		eb, ib := tx.Bucket(bucketEvents), tx.Bucket(bucketEventID)
		stored := make(map[string]bool, len(events))
		for i := range events {
			e := &events[i]
			if ib.Get([]byte(e.ID)) != nil {
				continue
			}
			k := eventKey(e)
			if err := putJSONBolt(eb, k, e); err != nil {
				return fmt.Errorf("put event %s: %w", e.ID, err)
			}
			if err := ib.Put([]byte(e.ID), k); err != nil {
				return fmt.Errorf("index event %s: %w", e.ID, err)
			}
			fresh[i] = true
			stored[e.ID] = true
		}
		for i := range deliveries {
			if d := &deliveries[i]; stored[d.Event] {
				if err := saveDelivery(tx, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record %d transitions: %w", len(events), err)
	}
	return fresh, nil
}

// saveDelivery puts d in the outbox while it is pending and in its
// webhook's log once it is finished, replacing any outbox entry of its ID.
func saveDelivery(tx *bolt.Tx, d *storage.Delivery) error {
	if d.ID == "" {
		return errors.New("save delivery: empty id")
	}
	ob, oi := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxID)
	id := []byte(d.ID)
	if old := oi.Get(id); old != nil {
		if err := ob.Delete(bytes.Clone(old)); err != nil {
			return fmt.Errorf("delete outbox entry %s: %w", d.ID, err)
		}
	}
	if d.Status == storage.DeliveryDelivered || d.Status == storage.DeliveryFailed {
		if err := oi.Delete(id); err != nil {
			return fmt.Errorf("unindex delivery %s: %w", d.ID, err)
		}
		lb := tx.Bucket(bucketDeliveries)
		if err := putJSONBolt(lb, logKey(d), d); err != nil {
			return fmt.Errorf("log delivery %s: %w", d.ID, err)
		}
		return trimLog(lb, d.Webhook)
	}
	k := outboxKey(d)
	if err := putJSONBolt(ob, k, d); err != nil {
		return fmt.Errorf("queue delivery %s: %w", d.ID, err)
	}
	if err := oi.Put(id, k); err != nil {
		return fmt.Errorf("index delivery %s: %w", d.ID, err)
	}
	return nil
}

// trimLog drops the oldest entries of a webhook's log beyond
// storage.DeliveryLogSize.
func trimLog(lb *bolt.Bucket, webhook string) error {
	prefix := logPrefix(webhook)
	var keys [][]byte
	c := lb.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys[:max(len(keys)-storage.DeliveryLogSize, 0)] {
		if err := lb.Delete(k); err != nil {
			return fmt.Errorf("trim log of webhook %s: %w", webhook, err)
		}
	}
	return nil
}

// FenceStates returns every stored state, ordered by user, device and fence.
func (s *Store) FenceStates(ctx context.Context) ([]storage.FenceState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []storage.FenceState{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFenceState).ForEach(func(k, v []byte) error {
			var st storage.FenceState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("decode fence state %q: %w", k, err)
			}
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read fence states: %w", err)
	}
	return out, nil
}

// Events calls fn for every matching event in ascending TST order (ties in
// user, device and ID order). q.To 0 means no upper bound. Events are few
// next to locations, so the matches are read in one transaction and fn is
// called after it ends (fn may use the store).
func (s *Store) Events(ctx context.Context, q storage.EventQuery, fn func(*storage.Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if q.To == 0 {
		q.To = math.MaxInt64
	}
	q.From = max(q.From, 0)
	if q.From > q.To {
		return nil
	}
	var out []storage.Event
	err := s.hist.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		var prefix, start []byte
		oneDevice := q.User != "" && q.Device != ""
		switch {
		case oneDevice:
			prefix = devicePrefix(q.User, q.Device)
			start = binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(q.From))
		case q.User != "":
			prefix = append([]byte(q.User), 0)
			start = prefix
		}
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if oneDevice && len(k) >= len(prefix)+8 && keyTST(k[len(prefix):]) > q.To {
				break
			}
			var e storage.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %q: %w", k, err)
			}
			if e.TST < q.From || e.TST > q.To || (q.Device != "" && e.Device != q.Device) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	// Keys sort by user, device, tst and ID; a stable sort on TST keeps
	// that order among equal fix times.
	slices.SortStableFunc(out, func(a, b storage.Event) int { return cmp.Compare(a.TST, b.TST) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	for i := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

// DueDeliveries returns up to limit (all for limit <= 0) pending deliveries
// with Next <= now, soonest first.
func (s *Store) DueDeliveries(ctx context.Context, now int64, limit int) ([]storage.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []storage.Delivery{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if keyTST(k) > max(now, 0) {
				break
			}
			var d storage.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode delivery %q: %w", k[8:], err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", err)
	}
	return out, nil
}

// NextDelivery returns the earliest Next in the outbox.
func (s *Store) NextDelivery(ctx context.Context) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	var next int64
	var ok bool
	err := s.hist.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketOutbox).Cursor().First()
		if k == nil {
			return nil
		}
		// The key clamps a negative Next to 0; the value has it exactly.
		var d struct {
			Next int64 `json:"next"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode delivery %q: %w", k[8:], err)
		}
		next, ok = d.Next, true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("read next delivery: %w", err)
	}
	return next, ok, nil
}

// UpdateDelivery replaces a pending delivery; storage.ErrNotFound if the
// outbox has none of d.ID (it finished, or its webhook was deleted).
func (s *Store) UpdateDelivery(ctx context.Context, d storage.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.hist.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOutboxID).Get([]byte(d.ID)) == nil {
			return storage.ErrNotFound
		}
		return saveDelivery(tx, &d)
	})
	if err != nil {
		return fmt.Errorf("update delivery %s: %w", d.ID, err)
	}
	return nil
}

// Deliveries returns a webhook's pending deliveries (newest Created first),
// then its log (newest Finished first), at most limit (all for limit <= 0).
func (s *Store) Deliveries(ctx context.Context, webhook string, limit int) ([]storage.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []storage.Delivery{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var d storage.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode delivery %q: %w", k[8:], err)
			}
			if d.Webhook == webhook {
				out = append(out, d)
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(out, func(a, b storage.Delivery) int {
			return cmp.Or(cmp.Compare(b.Created, a.Created), cmp.Compare(b.ID, a.ID))
		})
		prefix := logPrefix(webhook)
		var logged []storage.Delivery
		c := tx.Bucket(bucketDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var d storage.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode logged delivery %q: %w", k[len(prefix)+8:], err)
			}
			logged = append(logged, d)
		}
		slices.Reverse(logged)
		out = append(out, logged...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read deliveries of webhook %s: %w", webhook, err)
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
