package embedded

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// ThinLocations keeps the first visible location of each interval of every
// seconds before before, in batches like DeleteRange.
func (s *Store) ThinLocations(ctx context.Context, user, device string, before, every int64) (int, error) {
	if every <= 0 {
		return 0, fmt.Errorf("thin %s/%s: interval %d s, want > 0", user, device, every)
	}
	before = min(before, maxTST)
	n := 0
	resume := tstKey(0)
	interval := int64(-1) // of the location last kept or seen
	var err error
	for resume != nil {
		if err = ctx.Err(); err != nil {
			break
		}
		var batch [][]byte
		err = s.hist.View(func(tx *bolt.Tx) error {
			db := histDevice(tx, user, device)
			from := resume
			resume = nil
			if db == nil {
				return nil
			}
			c := newLocCursor(db, nil)
			for c.seekKey(from); c.valid() && c.tst() < before; c.next() {
				if iv := c.tst() / every; iv != interval {
					interval = iv
					continue
				}
				batch = append(batch, c.key())
				if len(batch) == storage.DeleteBatch {
					// Continue after k: it is deleted below, so a seek
					// to it lands on its successor.
					resume = batch[len(batch)-1]
					return nil
				}
			}
			return c.failed()
		})
		if err != nil || len(batch) == 0 {
			break
		}
		err = s.hist.Update(func(tx *bolt.Tx) error {
			db := histDevice(tx, user, device)
			if db == nil {
				return nil
			}
			gone, err := removeLocations(db, batch, s.pack)
			n += len(gone)
			return err
		})
		if err != nil {
			break
		}
	}
	if n > 0 {
		// The device's newest location may have been the second of its
		// interval.
		err = errors.Join(err, s.recomputeLast(user, device))
	}
	if err != nil {
		return n, fmt.Errorf("thin %s/%s: %w", user, device, err)
	}
	return n, nil
}

// RetentionPolicy returns user's policy, the zero one if none is stored.
func (s *Store) RetentionPolicy(ctx context.Context, user string) (storage.RetentionPolicy, error) {
	var p storage.RetentionPolicy
	err := s.getJSON(prefixPolicy+user, &p)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.RetentionPolicy{User: user}, nil
	}
	if err != nil {
		return p, fmt.Errorf("read retention policy of %s: %w", user, err)
	}
	return p, nil
}

// PutRetentionPolicy stores p, or removes the stored policy when p keeps
// everything.
func (s *Store) PutRetentionPolicy(ctx context.Context, p storage.RetentionPolicy) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Keep() {
		if err := s.deleteKey(prefixPolicy + p.User); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete retention policy of %s: %w", p.User, err)
		}
		return nil
	}
	if err := s.putJSON(prefixPolicy+p.User, p, nil); err != nil {
		return fmt.Errorf("store retention policy of %s: %w", p.User, err)
	}
	return nil
}

// RetentionPolicies returns every stored policy, ordered by user.
func (s *Store) RetentionPolicies(ctx context.Context) ([]storage.RetentionPolicy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := listJSON[storage.RetentionPolicy](s, prefixPolicy)
	if err != nil {
		return nil, fmt.Errorf("list retention policies: %w", err)
	}
	return out, nil
}
