package embedded

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// PutFence creates or replaces a fence.
func (s *Store) PutFence(ctx context.Context, f storage.Fence) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.ID == "" {
		return errors.New("put fence: empty id")
	}
	return s.putJSON(prefixFence+f.ID, f, nil)
}

// Fence returns one fence.
func (s *Store) Fence(ctx context.Context, id string) (storage.Fence, error) {
	var f storage.Fence
	if err := ctx.Err(); err != nil {
		return f, err
	}
	err := s.getJSON(prefixFence+id, &f)
	return f, err
}

// DeleteFence removes a fence, then its states. A crash between the two
// leaves states of a fence that no longer exists; nothing evaluates them.
func (s *Store) DeleteFence(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.deleteKey(prefixFence + id); err != nil {
		return err
	}
	err := s.hist.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFenceState)
		var keys [][]byte
		err := b.ForEach(func(k, _ []byte) error {
			if fenceOfStateKey(k) == id {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Delete after the walk: a cursor skips keys when the bucket
		// changes under it.
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete states of fence %s: %w", id, err)
	}
	return nil
}

// ListFences returns the fences of owner, or every fence for "".
func (s *Store) ListFences(ctx context.Context, owner string) ([]storage.Fence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := listJSON[storage.Fence](s, prefixFence)
	if err != nil {
		return nil, fmt.Errorf("list fences: %w", err)
	}
	out := all[:0]
	for _, f := range all {
		if owner == "" || f.Owner == owner {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b storage.Fence) int {
		return cmp.Or(cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
