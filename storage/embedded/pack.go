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

// packConfig says when loose locations are packed into blocks: once a
// device has trigger loose records, all but its newest keep are packed,
// block records per block. The newest stay loose so the live end of a
// track is not rewritten with every fix.
type packConfig struct {
	keep, trigger, block int
}

var defaultPack = packConfig{keep: 32, trigger: 32 + 2*blockSize, block: blockSize}

// packDevice packs the oldest loose locations of device bucket db into
// blocks, keeping the newest cfg.keep loose, and returns how many are
// left loose. Late records land in the block whose range holds them;
// others extend the block before them or start new ones. It runs inside
// the caller's write transaction.
func packDevice(db *bolt.Bucket, cfg packConfig) (int, error) {
	loc := db.Bucket(bucketLoc)
	if loc == nil {
		return 0, nil
	}
	// The newest cfg.keep stay: find the first of them.
	c := loc.Cursor()
	bound, _ := c.Last()
	for i := 1; i < cfg.keep && bound != nil; i++ {
		bound, _ = c.Prev()
	}
	if bound == nil {
		return 0, nil // cfg.keep or fewer
	}
	bound = bytes.Clone(bound)
	loose := make([]blockRec, 0, min(maxPack, 2*cfg.trigger))
	keys := make([][]byte, 0, cap(loose))
	var arena []byte // the payloads, copied out of bbolt's memory
	more := false
	for k, v := c.First(); k != nil && bytes.Compare(k, bound) < 0; k, v = c.Next() {
		if len(loose) == maxPack {
			more = true
			break
		}
		r, err := recFromValue(k, v)
		if err != nil {
			return 0, fmt.Errorf("pack record at tst %d: %w", keyTST(k), err)
		}
		if cap(arena)-len(arena) < len(r.payload)+keyLen {
			arena = make([]byte, 0, max(64<<10, len(r.payload)+keyLen))
		}
		start := len(arena)
		arena = append(arena, r.payload...)
		arena = append(arena, k...)
		r.payload = arena[start : start+len(r.payload) : start+len(r.payload)]
		loose = append(loose, r)
		keys = append(keys, arena[start+len(r.payload):len(arena):len(arena)])
	}
	if len(loose) == 0 {
		return cfg.keep, nil
	}
	pak, err := db.CreateBucketIfNotExists(bucketPak)
	if err != nil {
		return 0, fmt.Errorf("create pak bucket: %w", err)
	}
	pak.FillPercent = 1 // blocks arrive mostly in key order
	p := packer{pak: pak, cfg: cfg, edits: map[string]*blockEdit{}}
	for i := range loose {
		if err := p.add(&loose[i], keys[i]); err != nil {
			return 0, err
		}
	}
	if err := p.write(); err != nil {
		return 0, err
	}
	if err := dropLoose(db, loc, keys, more); err != nil {
		return 0, err
	}
	if more {
		return cfg.trigger, nil // pack again at the next Append
	}
	return cfg.keep, nil
}

// dropLoose deletes the packed loose records (keys, the oldest of loc).
// When only the newest few remain, the bucket is rebuilt with those: a
// bucket filled in this transaction is one large node until the commit,
// and deleting its first keys one by one would move the rest every time.
func dropLoose(db, loc *bolt.Bucket, keys [][]byte, partial bool) error {
	if partial {
		for _, k := range keys {
			if err := loc.Delete(k); err != nil {
				return fmt.Errorf("delete packed record: %w", err)
			}
		}
		return nil
	}
	var kept [][2][]byte
	c := loc.Cursor()
	for k, v := c.Seek(keys[len(keys)-1]); k != nil; k, v = c.Next() {
		if !bytes.Equal(k, keys[len(keys)-1]) {
			kept = append(kept, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
	}
	if err := db.DeleteBucket(bucketLoc); err != nil {
		return fmt.Errorf("drop packed records: %w", err)
	}
	loc, err := db.CreateBucket(bucketLoc)
	if err != nil {
		return fmt.Errorf("recreate loc bucket: %w", err)
	}
	loc.FillPercent = 0.9
	for _, kv := range kept {
		if err := loc.Put(kv[0], kv[1]); err != nil {
			return fmt.Errorf("keep loose record: %w", err)
		}
	}
	return nil
}

// maxPack bounds the records one packDevice call packs (and holds in
// memory): a store written before packing existed has all its history
// loose, and packs it in steps.
const maxPack = 32 * blockSize

// blockEdit is a block being rewritten or written.
type blockEdit struct {
	oldKey []byte     // its key in pak, nil for a new block
	recs   []blockRec // in key order
	last   int64      // greatest tst of the stored block (recs may go past)
}

type packer struct {
	pak   *bolt.Bucket
	cfg   packConfig
	dec   blockDecoder
	edits map[string]*blockEdit // stored blocks being rewritten, by key
	order []*blockEdit          // every edit, stored and new

	// Where the previous record went: the stored block at or before it
	// (nil: none), the key of the next stored block (nil: none), and the
	// block records after floor's range go to (nil: none yet).
	placed bool
	floor  *blockEdit
	ceil   []byte
	gap    *blockEdit
}

// add assigns one loose record (key k; records come in key order) to a
// block: the stored block whose range holds it, else the end of the
// block before it while that has room, else a new block.
func (p *packer) add(r *blockRec, k []byte) error {
	if !p.placed || p.ceil != nil && bytes.Compare(k, p.ceil) >= 0 {
		c := p.pak.Cursor()
		ck, cv := c.Seek(k)
		fk, fv := ck, cv
		if ck != nil && bytes.Equal(ck, k) {
			ck, _ = c.Next()
		} else if ck == nil {
			fk, fv = c.Last()
		} else {
			fk, fv = c.Prev()
		}
		p.placed, p.floor, p.ceil, p.gap = true, nil, cloneOrNil(ck), nil
		if fk != nil {
			e, err := p.load(fk, fv)
			if err != nil {
				return err
			}
			p.floor = e
		}
	}
	switch f := p.floor; {
	case f != nil && r.tst <= f.last:
		f.recs = append(f.recs, *r)
	case p.gap != nil && len(p.gap.recs) < p.cfg.block:
		p.gap.recs = append(p.gap.recs, *r)
	case p.gap == nil && f != nil && len(f.recs) < p.cfg.block:
		p.gap = f
		f.recs = append(f.recs, *r)
	default:
		p.gap = &blockEdit{recs: append(make([]blockRec, 0, p.cfg.block), *r)}
		p.order = append(p.order, p.gap)
	}
	return nil
}

// load returns the edit of stored block (k, v), decoding it the first time.
func (p *packer) load(k, v []byte) (*blockEdit, error) {
	if e := p.edits[string(k)]; e != nil {
		return e, nil
	}
	recs, err := p.dec.decode(v)
	if err != nil {
		return nil, fmt.Errorf("block at tst %d: %w", keyTST(k), err)
	}
	e := &blockEdit{oldKey: bytes.Clone(k), recs: cloneRecs(recs), last: recs[len(recs)-1].tst}
	p.edits[string(k)] = e
	p.order = append(p.order, e)
	return e, nil
}

// write stores every edited block: sorted, split into blocks of at most
// cfg.block records (evenly), each keyed by its first record.
func (p *packer) write() error {
	for _, e := range p.order {
		if e.oldKey != nil {
			if err := p.pak.Delete(e.oldKey); err != nil {
				return fmt.Errorf("replace block: %w", err)
			}
		}
	}
	for _, e := range p.order {
		if err := putBlocks(p.pak, e.recs, p.cfg.block); err != nil {
			return err
		}
	}
	return nil
}

// putBlocks sorts recs by key and stores them as blocks of at most size
// records each.
func putBlocks(pak *bolt.Bucket, recs []blockRec, size int) error {
	slices.SortStableFunc(recs, compareRecs)
	parts := (len(recs) + size - 1) / size
	for i := range parts {
		chunk := recs[i*len(recs)/parts : (i+1)*len(recs)/parts]
		if err := pak.Put(chunk[0].key(), encodeBlock(make([]byte, 0, 64*len(chunk)), chunk)); err != nil {
			return fmt.Errorf("put block: %w", err)
		}
	}
	return nil
}

func compareRecs(a, b blockRec) int {
	if c := cmp.Compare(a.tst, b.tst); c != 0 {
		return c
	}
	return cmp.Compare(a.keyHash(), b.keyHash())
}

// cloneRecs copies recs and their payloads out of a decoder's memory.
func cloneRecs(recs []blockRec) []blockRec {
	out := slices.Clone(recs)
	size := 0
	for _, r := range recs {
		size += len(r.payload)
	}
	arena := make([]byte, 0, size)
	for i := range out {
		start := len(arena)
		arena = append(arena, out[i].payload...)
		out[i].payload = arena[start:len(arena):len(arena)]
	}
	return out
}

func cloneOrNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

// packedLookup finds packed copies of locations. It keeps the last block
// it decoded, for a run of lookups in one block (a file imported again).
type packedLookup struct {
	dec  blockDecoder
	key  []byte
	recs []blockRec
}

// has reports whether pak holds location m: same tst, same payload.
func (l *packedLookup) has(pak *bolt.Bucket, m *storage.Message) (bool, error) {
	c := pak.Cursor()
	k, v := c.Seek(tstKey(m.TST + 1))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	// Records of one tst may straddle blocks: walk back while they can.
	for ; k != nil; k, v = c.Prev() {
		h, err := readBlockHeader(v)
		if err != nil {
			return false, fmt.Errorf("block at tst %d: %w", keyTST(k), err)
		}
		if h.lastTST < m.TST {
			return false, nil
		}
		if !bytes.Equal(k, l.key) {
			recs, err := l.dec.decode(v)
			if err != nil {
				return false, fmt.Errorf("block at tst %d: %w", keyTST(k), err)
			}
			l.key, l.recs = bytes.Clone(k), recs
		}
		i, _ := slices.BinarySearchFunc(l.recs, m.TST, func(r blockRec, t int64) int { return cmp.Compare(r.tst, t) })
		for ; i < len(l.recs) && l.recs[i].tst == m.TST; i++ {
			if l.recs[i].typ == m.Type && bytes.Equal(l.recs[i].payload, m.Payload) {
				return true, nil
			}
		}
		if h.firstTST < m.TST {
			return false, nil
		}
	}
	return false, nil
}

// removeLocations deletes the locations with the given keys (ascending)
// from device bucket db, loose or packed, and returns those it found, in
// key order (payloads copied). Blocks that lose records are rewritten, or
// deleted when none is left.
func removeLocations(db *bolt.Bucket, keys [][]byte, cfg packConfig) ([]storage.Message, error) {
	var out []storage.Message
	loc, pak := db.Bucket(bucketLoc), db.Bucket(bucketPak)
	type edit struct {
		key  []byte
		recs []blockRec
		gone map[int]bool
	}
	var edits []*edit
	var dec blockDecoder
	for _, k := range keys {
		if loc != nil {
			if v := loc.Get(k); v != nil {
				m := storage.Message{TST: keyTST(k)}
				if err := decodeValue(v, &m); err != nil {
					return nil, fmt.Errorf("read record at tst %d: %w", m.TST, err)
				}
				if err := loc.Delete(k); err != nil {
					return nil, fmt.Errorf("delete record at tst %d: %w", m.TST, err)
				}
				out = append(out, m)
				continue
			}
		}
		if pak == nil {
			continue
		}
		c := pak.Cursor()
		bk, bv := c.Seek(k)
		if bk == nil || !bytes.Equal(bk, k) {
			if bk == nil {
				bk, bv = c.Last()
			} else {
				bk, bv = c.Prev()
			}
		}
		if bk == nil {
			continue
		}
		var e *edit
		if n := len(edits); n > 0 && bytes.Equal(edits[n-1].key, bk) {
			e = edits[n-1]
		} else {
			recs, err := dec.decode(bv)
			if err != nil {
				return nil, fmt.Errorf("block at tst %d: %w", keyTST(bk), err)
			}
			e = &edit{key: bytes.Clone(bk), recs: cloneRecs(recs), gone: map[int]bool{}}
			edits = append(edits, e)
		}
		tst, h := keyTST(k), keyHashOf(k)
		i, _ := slices.BinarySearchFunc(e.recs, tst, func(r blockRec, t int64) int { return cmp.Compare(r.tst, t) })
		for ; i < len(e.recs) && e.recs[i].tst == tst; i++ {
			if !e.gone[i] && e.recs[i].keyHash() == h {
				e.gone[i] = true
				var rr recordReader
				m := storage.Message{}
				e.recs[i].message(&rr, &m)
				out = append(out, m)
				break
			}
		}
	}
	for _, e := range edits {
		if len(e.gone) == 0 {
			continue
		}
		if err := pak.Delete(e.key); err != nil {
			return nil, fmt.Errorf("rewrite block: %w", err)
		}
		var keep []blockRec
		for i, r := range e.recs {
			if !e.gone[i] {
				keep = append(keep, r)
			}
		}
		if len(keep) > 0 {
			if err := putBlocks(pak, keep, cfg.block); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// keyHashOf is the hash half of a record key.
func keyHashOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[8:keyLen]) }
