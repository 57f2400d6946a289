package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// PutWebhook creates or replaces a webhook.
func (s *Store) PutWebhook(ctx context.Context, w storage.Webhook) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.ID == "" {
		return errors.New("put webhook: empty id")
	}
	return s.putJSON(prefixWebhook+w.ID, w, nil)
}

// Webhook returns one webhook.
func (s *Store) Webhook(ctx context.Context, id string) (storage.Webhook, error) {
	var w storage.Webhook
	if err := ctx.Err(); err != nil {
		return w, err
	}
	err := s.getJSON(prefixWebhook+id, &w)
	return w, err
}

// DeleteWebhook removes a webhook, then its pending deliveries and its log.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.deleteKey(prefixWebhook + id); err != nil {
		return err
	}
	err := s.hist.Update(func(tx *bolt.Tx) error {
		ob, oi := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxID)
		var pending [][]byte
		err := ob.ForEach(func(k, v []byte) error {
			var d struct {
				Webhook string `json:"webhook"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode outbox entry: %w", err)
			}
			if d.Webhook == id {
				pending = append(pending, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range pending {
			// The key ends with the delivery ID, after 8 bytes of due time.
			if err := oi.Delete(k[8:]); err != nil {
				return err
			}
			if err := ob.Delete(k); err != nil {
				return err
			}
		}
		lb := tx.Bucket(bucketDeliveries)
		var logged [][]byte
		prefix := logPrefix(id)
		c := lb.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			logged = append(logged, bytes.Clone(k))
		}
		for _, k := range logged {
			if err := lb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete deliveries of webhook %s: %w", id, err)
	}
	return nil
}

// ListWebhooks returns the webhooks of owner, or every webhook for "".
func (s *Store) ListWebhooks(ctx context.Context, owner string) ([]storage.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := listJSON[storage.Webhook](s, prefixWebhook)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out := all[:0]
	for _, w := range all {
		if owner == "" || w.Owner == owner {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b storage.Webhook) int {
		return cmp.Or(cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
