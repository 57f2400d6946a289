package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// A device's locations live in two tiers: loose records in its loc bucket
// (one key each, as they arrive) and packed blocks in its pak bucket (see
// block.go). Blocks never overlap each other, but a loose record may fall
// inside a block's range (a late fix). No record is in both tiers.
// locCursor walks both as one sequence in key order, in one direction:
// seek then next, or seekLast/seekAtMost then prev.
type locCursor struct {
	loc, pak *bolt.Cursor // nil when the bucket does not exist

	k0, v0 []byte // current loose record, nil when none is left

	cache *blockCache
	recs  []blockRec // records of the current block, nil when none is left
	bi    int        // current index in recs
	err   error      // a block that did not decode stops the walk

	packed bool // the current record is recs[bi], else k0
	back   bool // walking backwards
	done   bool
}

// blockCache keeps the block a cursor decoded last, so a walk split over
// several read transactions does not decode a block again when it
// continues inside it. The block is only reused while it is byte for byte
// what is stored.
type blockCache struct {
	dec  blockDecoder
	key  []byte
	raw  []byte
	recs []blockRec
}

func (bc *blockCache) decode(k, v []byte) ([]blockRec, error) {
	if bc.recs != nil && bytes.Equal(k, bc.key) && bytes.Equal(v, bc.raw) {
		return bc.recs, nil
	}
	bc.recs = nil
	recs, err := bc.dec.decode(v)
	if err != nil {
		return nil, err
	}
	bc.key, bc.raw, bc.recs = append(bc.key[:0], k...), append(bc.raw[:0], v...), recs
	return recs, nil
}

// newLocCursor returns a cursor over the locations of a device bucket
// (hist/<user>/<device>); db may be nil. cache may be nil.
func newLocCursor(db *bolt.Bucket, cache *blockCache) *locCursor {
	if cache == nil {
		cache = &blockCache{}
	}
	c := &locCursor{cache: cache}
	if db == nil {
		return c
	}
	if b := db.Bucket(bucketLoc); b != nil {
		c.loc = b.Cursor()
	}
	if b := db.Bucket(bucketPak); b != nil {
		c.pak = b.Cursor()
	}
	return c
}

// seek positions c at the first record with tst >= from.
func (c *locCursor) seek(from int64) { c.seekKey(tstKey(from)) }

// seekKey positions c at the first record whose key is >= k (a whole key,
// or a tst alone: 8 bytes).
func (c *locCursor) seekKey(k []byte) {
	c.back = false
	if c.loc != nil {
		c.k0, c.v0 = c.loc.Seek(k)
	}
	if c.pak != nil {
		// The block holding k starts at or before it.
		bk, bv := c.pak.Seek(k)
		if bk == nil || !bytes.Equal(bk, k) {
			var pk, pv []byte
			if bk == nil {
				pk, pv = c.pak.Last()
			} else {
				pk, pv = c.pak.Prev()
			}
			if pk != nil {
				bk, bv = pk, pv
			} else {
				bk, bv = c.pak.First()
			}
		}
		tst, h := keyTST(k), uint64(0)
		if len(k) == keyLen {
			h = keyHashOf(k)
		}
		for c.load(bk, bv); c.recs != nil; c.load(c.pak.Next()) {
			c.bi, _ = slices.BinarySearchFunc(c.recs, tst, func(r blockRec, t int64) int { return cmp.Compare(r.tst, t) })
			for c.bi < len(c.recs) && c.recs[c.bi].tst == tst && c.recs[c.bi].keyHash() < h {
				c.bi++
			}
			if c.bi < len(c.recs) {
				break
			}
		}
	}
	c.pick()
}

// seekAtMost positions c at the last record with tst <= to, for prev.
func (c *locCursor) seekAtMost(to int64) {
	c.back = true
	after := tstKey(to + 1)
	if c.loc != nil {
		if k, _ := c.loc.Seek(after); k == nil {
			c.k0, c.v0 = c.loc.Last()
		} else {
			c.k0, c.v0 = c.loc.Prev()
		}
	}
	if c.pak != nil {
		var k, v []byte
		if k, _ = c.pak.Seek(after); k == nil {
			k, v = c.pak.Last()
		} else {
			k, v = c.pak.Prev()
		}
		c.load(k, v)
		if c.recs != nil {
			c.bi = len(c.recs) - 1
			for c.bi >= 0 && c.recs[c.bi].tst > to {
				c.bi--
			}
			if c.bi < 0 { // cannot happen: the block starts before after
				c.recs = nil
			}
		}
	}
	c.pick()
}

// load decodes block (k, v) as the current one; nil k means none is left.
func (c *locCursor) load(k, v []byte) {
	c.recs = nil
	if k == nil || c.err != nil {
		return
	}
	recs, err := c.cache.decode(k, v)
	if err != nil {
		c.err = fmt.Errorf("block at tst %d: %w", keyTST(k), err)
		return
	}
	c.recs = recs
	c.bi = 0
	if c.back {
		c.bi = len(recs) - 1
	}
}

// pick makes the smaller (forwards) or greater (backwards) of the two
// tiers' records the current one.
func (c *locCursor) pick() {
	c.done = false
	switch {
	case c.err != nil:
		c.done = true
	case c.k0 == nil && c.recs == nil:
		c.done = true
	case c.k0 == nil:
		c.packed = true
	case c.recs == nil:
		c.packed = false
	default:
		r := &c.recs[c.bi]
		t0 := keyTST(c.k0)
		less := r.tst < t0 || r.tst == t0 && r.keyHash() < binary.BigEndian.Uint64(c.k0[8:])
		c.packed = less != c.back
	}
}

// valid reports whether c is at a record.
func (c *locCursor) valid() bool { return !c.done }

// next moves to the following record (forwards), prev to the preceding
// one (backwards).
func (c *locCursor) next() { c.step() }
func (c *locCursor) prev() { c.step() }

func (c *locCursor) step() {
	if c.done {
		return
	}
	if !c.packed {
		if c.back {
			c.k0, c.v0 = c.loc.Prev()
		} else {
			c.k0, c.v0 = c.loc.Next()
		}
		if c.k0 != nil && len(c.k0) != keyLen {
			c.k0 = nil
		}
	} else if c.back {
		if c.bi--; c.bi < 0 {
			c.load(c.pak.Prev())
		}
	} else if c.bi++; c.bi >= len(c.recs) {
		c.load(c.pak.Next())
	}
	c.pick()
}

// tst is the current record's fix time.
func (c *locCursor) tst() int64 {
	if c.packed {
		return c.recs[c.bi].tst
	}
	return keyTST(c.k0)
}

// key is the current record's key.
func (c *locCursor) key() []byte {
	if c.packed {
		return c.recs[c.bi].key()
	}
	return bytes.Clone(c.k0)
}

// message fills m (TST included) from the current record, copying its
// payload into rr.
func (c *locCursor) message(rr *recordReader, m *storage.Message) error {
	if c.packed {
		c.recs[c.bi].message(rr, m)
		return nil
	}
	m.TST = keyTST(c.k0)
	return rr.decode(c.v0, m)
}

// view fills m like message, but a packed record's payload is not copied:
// it is only valid until the cursor moves to another block.
func (c *locCursor) view(rr *recordReader, m *storage.Message) error {
	if c.packed {
		r := &c.recs[c.bi]
		m.TST, m.Received, m.Lat, m.Lon, m.Type, m.Payload = r.tst, r.received, r.lat, r.lon, r.typ, r.payload
		if r.topic != rr.topic {
			rr.topic = r.topic
		}
		m.Topic = rr.topic
		return nil
	}
	m.TST = keyTST(c.k0)
	return rr.decode(c.v0, m)
}

// failed returns the error that ended the walk early, if any.
func (c *locCursor) failed() error { return c.err }
