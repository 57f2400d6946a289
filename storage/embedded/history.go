package embedded

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// AllMessages streams every message of one device in ascending tst order:
// the loc and msg buckets merged, readChunk records per read transaction
// (copied out, so fn may block and keep them), locations first where both
// have a record of the same tst.
func (s *Store) AllMessages(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error) error {
	if q.From > q.To {
		return nil
	}
	q.From = max(q.From, 0)
	q.To = min(q.To, maxTST)
	var w historyWalk
	w.q = q
	w.next[0], w.next[1] = tstKey(q.From), tstKey(q.From)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, more, err := w.chunk(s.hist)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// historyWalk is where AllMessages continues in each bucket (loc, msg);
// nil once a bucket is done.
type historyWalk struct {
	q    storage.LocationQuery
	next [2][]byte
}

// chunk reads up to readChunk records, merging the two buckets by key.
func (w *historyWalk) chunk(db *bolt.DB) ([]storage.Message, bool, error) {
	var out []storage.Message
	more := false
	err := db.View(func(tx *bolt.Tx) error {
		var curs [2]*bolt.Cursor
		var keys, vals [2][]byte
		for i, kind := range [2][]byte{bucketLoc, bucketMsg} {
			if w.next[i] == nil {
				continue
			}
			b := histBucket(tx, w.q.User, w.q.Device, kind)
			if b == nil {
				w.next[i] = nil
				continue
			}
			curs[i] = b.Cursor()
			keys[i], vals[i] = curs[i].Seek(w.next[i])
		}
		var rr recordReader
		for {
			for i := range keys {
				if keys[i] != nil && (len(keys[i]) != keyLen || keyTST(keys[i]) > w.q.To) {
					keys[i] = nil
				}
				if keys[i] == nil {
					w.next[i] = nil
				}
			}
			i := 0 // locations first at equal tst
			switch {
			case keys[0] == nil && keys[1] == nil:
				return nil
			case keys[0] == nil || keys[1] != nil && keyTST(keys[1]) < keyTST(keys[0]):
				i = 1
			}
			if len(out) == readChunk {
				for j := range keys {
					if keys[j] != nil {
						w.next[j] = bytes.Clone(keys[j])
					}
				}
				more = true
				return nil
			}
			if out == nil {
				out = make([]storage.Message, 0, readChunk)
			}
			m := storage.Message{User: w.q.User, Device: w.q.Device, TST: keyTST(keys[i])}
			if err := rr.decode(vals[i], &m); err != nil {
				return fmt.Errorf("read %s/%s at tst %d: %w", w.q.User, w.q.Device, m.TST, err)
			}
			out = append(out, m)
			keys[i], vals[i] = curs[i].Next()
		}
	})
	return out, more, err
}
