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

// historyWalk is where AllMessages continues in each tier (locations,
// other messages); nil once one is done.
type historyWalk struct {
	q     storage.LocationQuery
	next  [2][]byte
	cache blockCache
}

// chunk reads up to readChunk records, merging locations and other
// messages by tst.
func (w *historyWalk) chunk(db *bolt.DB) ([]storage.Message, bool, error) {
	var out []storage.Message
	more := false
	err := db.View(func(tx *bolt.Tx) error {
		dev := histDevice(tx, w.q.User, w.q.Device)
		if dev == nil {
			w.next = [2][]byte{}
			return nil
		}
		locs := newLocCursor(dev, &w.cache)
		if w.next[0] != nil {
			locs.seekKey(w.next[0])
		} else {
			locs.done = true
		}
		var msgs *bolt.Cursor
		var mk, mv []byte
		if b := dev.Bucket(bucketMsg); b != nil && w.next[1] != nil {
			msgs = b.Cursor()
			mk, mv = msgs.Seek(w.next[1])
		}
		var rr recordReader
		for {
			if locs.valid() && locs.tst() > w.q.To {
				locs.done = true
			}
			if mk != nil && (len(mk) != keyLen || keyTST(mk) > w.q.To) {
				mk = nil
			}
			if !locs.valid() {
				w.next[0] = nil
			}
			if mk == nil {
				w.next[1] = nil
			}
			if !locs.valid() && mk == nil {
				return locs.failed()
			}
			if len(out) == readChunk {
				if locs.valid() {
					w.next[0] = locs.key()
				}
				if mk != nil {
					w.next[1] = bytes.Clone(mk)
				}
				more = true
				return nil
			}
			if out == nil {
				out = make([]storage.Message, 0, readChunk)
			}
			m := storage.Message{User: w.q.User, Device: w.q.Device}
			// Locations first at equal tst.
			if locs.valid() && (mk == nil || locs.tst() <= keyTST(mk)) {
				if err := locs.message(&rr, &m); err != nil {
					return fmt.Errorf("read %s/%s at tst %d: %w", w.q.User, w.q.Device, locs.tst(), err)
				}
				locs.next()
			} else {
				m.TST = keyTST(mk)
				if err := rr.decode(mv, &m); err != nil {
					return fmt.Errorf("read %s/%s at tst %d: %w", w.q.User, w.q.Device, m.TST, err)
				}
				mk, mv = msgs.Next()
			}
			out = append(out, m)
		}
	})
	return out, more, err
}
