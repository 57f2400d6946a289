package embedded

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// readChunk is how many records one read transaction hands out. Long scans
// are split so a slow HTTP client never holds a transaction open (which
// would stall bbolt's writer when the file grows).
const readChunk = 1024

// maxTST bounds range ends so tst+1 cannot overflow.
const maxTST = 1 << 62

// Append stores msgs in one durable transaction (one fsync for the batch).
func (s *Store) Append(ctx context.Context, msgs []storage.Message) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dup := make([]bool, len(msgs))
	newest := make(map[string]*storage.Message)
	var ix *indexer
	err := s.hist.Update(func(tx *bolt.Tx) error {
		hist := tx.Bucket(bucketHist)
		ix = s.newIndexer(tx)
		buckets := make(map[string]*appendBucket)
		// Values live in one block per transaction (bbolt keeps them
		// until the commit), not one allocation each.
		size := 0
		for i := range msgs {
			size += valueSize(&msgs[i])
		}
		values := make([]byte, 0, size)
		hidden := make(map[[2]string]*bolt.Bucket) // user, device -> its hid bucket, nil if none
		for i := range msgs {
			m := &msgs[i]
			kind := bucketMsg
			if m.IsLocation() {
				kind = bucketLoc
				// A hidden location sent again stays hidden (and single).
				if isHidden(hist, hidden, m) {
					dup[i] = true
					continue
				}
			}
			id := m.User + "/" + m.Device + "/" + string(kind)
			ab := buckets[id]
			if ab == nil {
				b, err := deviceBucket(hist, m.User, m.Device, kind)
				if err != nil {
					return err
				}
				b.FillPercent = 0.9 // keys mostly arrive in ascending tst order
				ab = &appendBucket{b: b, packedLast: -1}
				if k, _ := b.Cursor().Last(); k != nil {
					ab.last = bytes.Clone(k)
				}
				if m.IsLocation() {
					ab.dev = hist.Bucket([]byte(m.User)).Bucket([]byte(m.Device))
					if ab.pak = ab.dev.Bucket(bucketPak); ab.pak != nil {
						if k, v := ab.pak.Cursor().Last(); k != nil {
							h, err := readBlockHeader(v)
							if err != nil {
								return fmt.Errorf("last block of %s/%s: %w", m.User, m.Device, err)
							}
							ab.packedLast = h.lastTST
						}
					}
				}
				buckets[id] = ab
			}
			stored, err := ab.putOnce(m, &values)
			if err != nil {
				return err
			}
			dup[i] = !stored
			if stored && ab.dev != nil {
				ab.added++
			}
			if stored && m.IsLocation() {
				if err := ix.add(tx, m); err != nil {
					return err
				}
				dk := m.User + "/" + m.Device
				if cur := newest[dk]; cur == nil || newerThan(m, cur) {
					newest[dk] = m
				}
			}
		}
		if err := ix.flush(); err != nil {
			return err
		}
		return s.packAppended(buckets, &values)
	})
	if err != nil {
		return nil, fmt.Errorf("append %d messages: %w", len(msgs), err)
	}
	ix.commit()
	if len(newest) > 0 {
		if err := s.updateLast(newest); err != nil {
			return dup, err
		}
	}
	return dup, nil
}

func deviceBucket(hist *bolt.Bucket, user, device string, kind []byte) (*bolt.Bucket, error) {
	ub, err := hist.CreateBucketIfNotExists([]byte(user))
	if err != nil {
		return nil, fmt.Errorf("create bucket for user %q: %w", user, err)
	}
	db, err := ub.CreateBucketIfNotExists([]byte(device))
	if err != nil {
		return nil, fmt.Errorf("create bucket for device %q: %w", device, err)
	}
	kb, err := db.CreateBucketIfNotExists(kind)
	if err != nil {
		return nil, fmt.Errorf("create %s bucket: %w", kind, err)
	}
	return kb, nil
}

// putOnce stores m unless the identical message is already there. A hash
// collision between different payloads moves on to the next hash value.
func putOnce(b *bolt.Bucket, m *storage.Message) (bool, error) {
	h := messageHash(m)
	for range 16 {
		k := recordKey(m.TST, h)
		v := b.Get(k)
		if v == nil {
			if err := b.Put(k, encodeValue(m)); err != nil {
				return false, fmt.Errorf("put record: %w", err)
			}
			return true, nil
		}
		if samePayload(v, m) {
			return false, nil
		}
		h++
	}
	return false, fmt.Errorf("too many hash collisions at tst %d", m.TST)
}

// appendBucket is a device's loc or msg bucket during one Append, with
// its greatest key: a record past that cannot be there yet, so it is put
// without a lookup. Fixes arrive mostly in tst order, live and imported.
type appendBucket struct {
	b    *bolt.Bucket
	last []byte // nil while the bucket is empty

	// For a loc bucket: its device bucket, its pak bucket (nil if none),
	// the greatest tst packed (-1: none), so only older fixes are looked
	// up in blocks, and how many records this Append added.
	dev        *bolt.Bucket
	pak        *bolt.Bucket
	packedLast int64
	lookup     packedLookup
	added      int

	// fresh holds the locations of this Append that come after everything
	// stored, in key order, instead of putting them loose: a large batch
	// of them (an import) is packed straight into blocks by flushFresh.
	fresh []freshRec
}

type freshRec struct {
	key []byte
	m   *storage.Message
}

// findFresh returns the fresh message under key k, nil if none.
func (ab *appendBucket) findFresh(k []byte) *storage.Message {
	i, ok := slices.BinarySearchFunc(ab.fresh, k, func(f freshRec, k []byte) int { return bytes.Compare(f.key, k) })
	if !ok {
		return nil
	}
	return ab.fresh[i].m
}

// putOnce is putOnce for Append: it skips the lookup past the last key and
// encodes the value into *values.
func (ab *appendBucket) putOnce(m *storage.Message, values *[]byte) (bool, error) {
	h := messageHash(m)
	for probe := range 16 {
		k := recordKey(m.TST, h)
		past := ab.last == nil || bytes.Compare(k, ab.last) > 0
		var v []byte
		var fresh *storage.Message
		if !past {
			if v = ab.b.Get(k); v == nil && len(ab.fresh) > 0 {
				fresh = ab.findFresh(k)
			}
		}
		if v == nil && fresh == nil && m.TST <= ab.packedLast && probe == 0 {
			found, err := ab.lookup.has(ab.pak, m)
			if err != nil {
				return false, err
			}
			if found {
				return false, nil
			}
		}
		switch {
		case v == nil && fresh == nil && past && ab.dev != nil && m.TST > ab.packedLast:
			ab.fresh = append(ab.fresh, freshRec{k, m})
			ab.last = k
			return true, nil
		case v == nil && fresh == nil:
			if err := ab.putLoose(k, m, values); err != nil {
				return false, err
			}
			if past {
				ab.last = k
			}
			return true, nil
		case v != nil && samePayload(v, m), fresh != nil && fresh.Type == m.Type && bytes.Equal(fresh.Payload, m.Payload):
			return false, nil
		}
		h++
	}
	return false, fmt.Errorf("too many hash collisions at tst %d", m.TST)
}

func (ab *appendBucket) putLoose(k []byte, m *storage.Message, values *[]byte) error {
	start := len(*values)
	*values = appendValue(*values, m)
	if err := ab.b.Put(k, (*values)[start:len(*values):len(*values)]); err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	return nil
}

// flushFresh stores the fresh locations: all but the newest cfg.keep
// packed into blocks (the device's last block filled up first) when they
// are at least a block's worth, else all loose. It returns how many went
// loose.
func (ab *appendBucket) flushFresh(cfg packConfig, values *[]byte) (int, error) {
	loose := ab.fresh
	if cfg.block > 0 && len(ab.fresh) >= cfg.block+cfg.keep {
		pak, err := ab.dev.CreateBucketIfNotExists(bucketPak)
		if err != nil {
			return 0, fmt.Errorf("create pak bucket: %w", err)
		}
		pak.FillPercent = 1
		p := packer{pak: pak, cfg: cfg, edits: map[string]*blockEdit{}}
		n := len(ab.fresh) - cfg.keep
		for _, f := range ab.fresh[:n] {
			m := f.m
			r := blockRec{tst: m.TST, hash: keyHashOf(f.key), hashed: true, received: m.Received,
				lat: m.Lat, lon: m.Lon, topic: m.Topic, typ: m.Type, payload: m.Payload}
			if err := p.add(&r, f.key); err != nil {
				return 0, err
			}
		}
		if err := p.write(); err != nil {
			return 0, err
		}
		loose = ab.fresh[n:]
	}
	for _, f := range loose {
		if err := ab.putLoose(f.key, f.m, values); err != nil {
			return 0, err
		}
	}
	ab.fresh = nil
	return len(loose), nil
}

// packAppended packs the devices that now have cfg.trigger loose
// locations or more, in Append's transaction. s.loose counts each
// device's loose records; a device not seen since Open is counted once.
func (s *Store) packAppended(buckets map[string]*appendBucket, values *[]byte) error {
	for id, ab := range buckets {
		if ab.dev == nil || ab.added == 0 {
			continue
		}
		if n := len(ab.fresh); n > 0 {
			loose, err := ab.flushFresh(s.pack, values)
			if err != nil {
				return fmt.Errorf("pack %s: %w", id, err)
			}
			ab.added -= n - loose
		}
		n, ok := s.loose[id]
		if !ok {
			n = 0
			c := ab.b.Cursor()
			for k, _ := c.First(); k != nil && n < s.pack.trigger; k, _ = c.Next() {
				n++
			}
		} else {
			n += ab.added
		}
		if n >= s.pack.trigger {
			var err error
			if n, err = packDevice(ab.dev, s.pack); err != nil {
				return fmt.Errorf("pack %s: %w", id, err)
			}
		}
		s.loose[id] = n
	}
	return nil
}

func newerThan(a, b *storage.Message) bool {
	if a.TST != b.TST {
		return a.TST > b.TST
	}
	return a.Received >= b.Received
}

// Locations streams the matching locations in ascending tst order.
func (s *Store) Locations(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error) error {
	if q.From > q.To {
		return nil
	}
	q.From = max(q.From, 0)
	q.To = min(q.To, maxTST)
	if q.Limit > 0 {
		return s.newestLocations(ctx, q, fn)
	}
	start := tstKey(q.From)
	var cache blockCache
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, next, err := s.readForward(q, start, &cache)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// readForward reads up to readChunk records from start and returns the key
// to continue from (nil at the end of the range).
func (s *Store) readForward(q storage.LocationQuery, start []byte, cache *blockCache) ([]storage.Message, []byte, error) {
	var out []storage.Message
	var next []byte
	var rr recordReader
	err := s.hist.View(func(tx *bolt.Tx) error {
		db := histDevice(tx, q.User, q.Device)
		if db == nil {
			return nil
		}
		out = make([]storage.Message, 0, readChunk)
		c := newLocCursor(db, cache)
		for c.seekKey(start); c.valid() && c.tst() <= q.To; c.next() {
			if len(out) == readChunk {
				next = c.key()
				return nil
			}
			m := storage.Message{User: q.User, Device: q.Device}
			if err := c.message(&rr, &m); err != nil {
				return fmt.Errorf("read %s/%s at tst %d: %w", q.User, q.Device, c.tst(), err)
			}
			out = append(out, m)
		}
		return c.failed()
	})
	return out, next, err
}

// newestLocations collects the newest q.Limit matches walking backwards,
// then hands them out oldest first. Memory is bounded by the limit.
func (s *Store) newestLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error) error {
	var out []storage.Message
	err := s.hist.View(func(tx *bolt.Tx) error {
		db := histDevice(tx, q.User, q.Device)
		if db == nil {
			return nil
		}
		c := newLocCursor(db, nil)
		for c.seekAtMost(q.To); c.valid() && len(out) < q.Limit && c.tst() >= q.From; c.prev() {
			m := storage.Message{User: q.User, Device: q.Device}
			rr := recordReader{}
			if err := c.message(&rr, &m); err != nil {
				return fmt.Errorf("read %s/%s at tst %d: %w", q.User, q.Device, c.tst(), err)
			}
			out = append(out, m)
		}
		return c.failed()
	})
	if err != nil {
		return err
	}
	for i := len(out) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

func locBucket(tx *bolt.Tx, user, device string) *bolt.Bucket {
	ub := tx.Bucket(bucketHist).Bucket([]byte(user))
	if ub == nil {
		return nil
	}
	db := ub.Bucket([]byte(device))
	if db == nil {
		return nil
	}
	return db.Bucket(bucketLoc)
}
