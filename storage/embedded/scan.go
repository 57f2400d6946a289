package embedded

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// scanChunk is how many records ScanLocations hands out per read
// transaction: what its caller renders from them is held in memory until
// the transaction ends.
const scanChunk = 256

// ScanLocations is Locations for a caller that renders the records and
// writes the result out between reads, like a long /api/0/locations. fn
// runs inside a read transaction: it must not block (no network I/O), and
// the message and its payload are only valid during the call (the memory
// is reused for the next record), so nothing is allocated per record.
// flush runs after every chunk of records, with no transaction open: a
// slow client never holds one (which would stall bbolt's writer when the
// file grows). An error from fn or flush stops the walk and is returned.
func (s *Store) ScanLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error, flush func() error) error {
	if q.From > q.To {
		return nil
	}
	q.From = max(q.From, 0)
	q.To = min(q.To, maxTST)
	if q.Limit > 0 {
		if err := s.newestLocations(ctx, q, fn); err != nil {
			return err
		}
		return flush()
	}
	sc := scanner{q: q, fn: fn, m: storage.Message{User: q.User, Device: q.Device}}
	start := tstKey(q.From)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := sc.chunk(s.hist, start)
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// scanner is the state ScanLocations keeps across its transactions.
type scanner struct {
	q     storage.LocationQuery
	fn    func(*storage.Message) error
	m     storage.Message
	rr    recordReader
	next  []byte
	cache blockCache
}

// chunk hands out up to scanChunk records from start in one read
// transaction and returns the key to continue from (nil at the end).
func (sc *scanner) chunk(db *bolt.DB, start []byte) ([]byte, error) {
	var next []byte
	err := db.View(func(tx *bolt.Tx) error {
		dev := histDevice(tx, sc.q.User, sc.q.Device)
		if dev == nil {
			return nil
		}
		c := newLocCursor(dev, &sc.cache)
		n := 0
		for c.seekKey(start); c.valid() && c.tst() <= sc.q.To; c.next() {
			if n == scanChunk {
				sc.next = append(sc.next[:0], c.key()...)
				next = sc.next
				return nil
			}
			n++
			sc.m = storage.Message{User: sc.q.User, Device: sc.q.Device}
			sc.rr.arena = sc.rr.arena[:0] // the previous payload is done with
			if err := c.view(&sc.rr, &sc.m); err != nil {
				return fmt.Errorf("read %s/%s at tst %d: %w", sc.q.User, sc.q.Device, c.tst(), err)
			}
			if err := sc.fn(&sc.m); err != nil {
				return err
			}
		}
		return c.failed()
	})
	return next, err
}
