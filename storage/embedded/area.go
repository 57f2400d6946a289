package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// The spatial index says which devices were in which grid cell in which
// hour: one key per (level, cell, hour, device), no value.
//
//	geo/<level 1><cell 4><hour 4><device id 4>
//	devid/<user>\x00<device> -> device id, 4 bytes
//	devname/<device id>      -> <user>\x00<device>
//
// A level-L grid has 2^L columns of 360/2^L degrees and 2^L rows of
// 180/2^L degrees; cell is row<<L | column. Level 13 cells are about 4.9
// by 2.4 km at the equator (3.1 by 2.4 km at 50°), level 9 about 78 by 39
// km, level 5 about 1250 by 625 km, level 1 a hemisphere's half. A query
// reads the index at the finest level that covers its
// box in a few cells, then the matching device-hours of history, so its
// cost follows what it finds, not how much history there is. A device
// that stays put adds one key per level and hour; one that moves adds one
// per cell it crosses. Entries of deleted locations stay until reindex:
// they only cost a look at an hour that has nothing left.
var (
	bucketGeo     = []byte("geo")
	bucketDevID   = []byte("devid")
	bucketDevName = []byte("devname")
	keyNextDevice = []byte("nextdevice")
)

var geoLevels = [...]uint8{13, 9, 5, 1}

// maxCover is the most cells a query reads at one level before it moves
// to a coarser one.
const maxCover = 64

const geoKeyLen = 13

func cellOf(level uint8, lat, lon float64) uint32 {
	n := uint32(1) << level
	x := uint32(min(max((lon+180)/360*float64(n), 0), float64(n-1)))
	y := uint32(min(max((lat+90)/180*float64(n), 0), float64(n-1)))
	return y<<level | x
}

func geoKey(level uint8, cell, hour, dev uint32) []byte {
	k := make([]byte, geoKeyLen)
	k[0] = level
	binary.BigEndian.PutUint32(k[1:], cell)
	binary.BigEndian.PutUint32(k[5:], hour)
	binary.BigEndian.PutUint32(k[9:], dev)
	return k
}

func hourOf(tst int64) uint32 { return uint32(min(max(tst, 0)/3600, math.MaxUint32)) }

// geoMark is what a device was last indexed under: an Append skips fixes
// that would write the same keys again.
type geoMark struct {
	hour  uint32
	cells [len(geoLevels)]uint32
}

// indexer writes index keys during one Append; its caches are merged
// into the store's only after the commit, so a rolled-back Append leaves
// no cache entry behind that claims a key exists.
type indexer struct {
	s     *Store
	gen   int // of the caches when the indexer started
	geo   *bolt.Bucket
	ids   map[string]uint32
	marks map[uint32]geoMark
	keys  map[[geoKeyLen]byte]struct{} // to put, in key order, by flush
}

func (s *Store) newIndexer(tx *bolt.Tx) *indexer {
	s.geoMu.Lock()
	gen := s.geoGen
	s.geoMu.Unlock()
	return &indexer{s: s, gen: gen, geo: tx.Bucket(bucketGeo), ids: map[string]uint32{}, marks: map[uint32]geoMark{}, keys: map[[geoKeyLen]byte]struct{}{}}
}

// add indexes location m.
func (ix *indexer) add(tx *bolt.Tx, m *storage.Message) error {
	dev, err := ix.deviceID(tx, m.User, m.Device)
	if err != nil {
		return err
	}
	mark := geoMark{hour: hourOf(m.TST)}
	for i, l := range geoLevels {
		mark.cells[i] = cellOf(l, m.Lat, m.Lon)
	}
	last, ok := ix.marks[dev]
	if !ok {
		ix.s.geoMu.Lock()
		last, ok = ix.s.geoMarks[dev]
		ix.s.geoMu.Unlock()
	}
	if ok && last == mark {
		return nil
	}
	for i, l := range geoLevels {
		if ok && last.hour == mark.hour && last.cells[i] == mark.cells[i] {
			continue
		}
		ix.keys[[geoKeyLen]byte(geoKey(l, mark.cells[i], mark.hour, dev))] = struct{}{}
	}
	ix.marks[dev] = mark
	return nil
}

// flush puts the keys gathered by add, in order: neighbouring keys share
// pages, so sorted puts touch each page once.
func (ix *indexer) flush() error {
	keys := make([][geoKeyLen]byte, 0, len(ix.keys))
	for k := range ix.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [geoKeyLen]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := range keys {
		if err := ix.geo.Put(keys[i][:], nil); err != nil {
			return fmt.Errorf("index locations: %w", err)
		}
	}
	clear(ix.keys)
	return nil
}

// deviceID returns the ID of a device, giving it one the first time.
func (ix *indexer) deviceID(tx *bolt.Tx, user, device string) (uint32, error) {
	name := user + "\x00" + device
	if id, ok := ix.ids[name]; ok {
		return id, nil
	}
	ix.s.geoMu.Lock()
	id, ok := ix.s.devIDs[name]
	ix.s.geoMu.Unlock()
	if ok {
		ix.ids[name] = id
		return id, nil
	}
	id, err := deviceIDTx(tx, name)
	if err != nil {
		return 0, err
	}
	ix.ids[name] = id
	return id, nil
}

// deviceIDTx looks a device's ID up in tx, allocating one if it has none.
func deviceIDTx(tx *bolt.Tx, name string) (uint32, error) {
	ids := tx.Bucket(bucketDevID)
	if v := ids.Get([]byte(name)); len(v) == 4 {
		return binary.BigEndian.Uint32(v), nil
	}
	meta := tx.Bucket(bucketMeta)
	var id uint32 = 1
	if v := meta.Get(keyNextDevice); len(v) == 4 {
		id = binary.BigEndian.Uint32(v)
	}
	if err := meta.Put(keyNextDevice, binary.BigEndian.AppendUint32(nil, id+1)); err != nil {
		return 0, err
	}
	raw := binary.BigEndian.AppendUint32(nil, id)
	if err := ids.Put([]byte(name), raw); err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketDevName).Put(raw, []byte(name)); err != nil {
		return 0, err
	}
	return id, nil
}

// commit merges the indexer's caches into the store's, after the commit.
func (ix *indexer) commit() {
	ix.s.geoMu.Lock()
	defer ix.s.geoMu.Unlock()
	if ix.gen != ix.s.geoGen {
		return // a reindex dropped the keys the marks stand for
	}
	for name, id := range ix.ids {
		ix.s.devIDs[name] = id
	}
	for dev, m := range ix.marks {
		ix.s.geoMarks[dev] = m
	}
}

// forgetIndexCaches drops the caches, as after a reindex.
func (s *Store) forgetIndexCaches() {
	s.geoMu.Lock()
	defer s.geoMu.Unlock()
	s.devIDs = map[string]uint32{}
	s.geoMarks = map[uint32]geoMark{}
	s.geoGen++
}

// cover returns the level and the cell ranges (columns x0..x1 per row
// range y0..y1; two column ranges across the antimeridian) of q's box.
type cellRange struct{ x0, x1, y0, y1 uint32 }

func cover(q *storage.AreaQuery) (uint8, []cellRange) {
	for i, l := range geoLevels {
		var rs []cellRange
		y0, y1 := cellOf(l, q.MinLat, 0)>>l, cellOf(l, q.MaxLat, 0)>>l
		mask := uint32(1)<<l - 1
		if q.MinLon <= q.MaxLon {
			rs = append(rs, cellRange{cellOf(l, 0, q.MinLon) & mask, cellOf(l, 0, q.MaxLon) & mask, y0, y1})
		} else {
			rs = append(rs, cellRange{cellOf(l, 0, q.MinLon) & mask, mask, y0, y1}, cellRange{0, cellOf(l, 0, q.MaxLon) & mask, y0, y1})
		}
		n := 0
		for _, r := range rs {
			n += int(r.x1-r.x0+1) * int(r.y1-r.y0+1)
		}
		if n <= maxCover || i == len(geoLevels)-1 {
			return l, rs
		}
	}
	panic("unreachable")
}

// LocationsIn answers an area query from the index: one read transaction
// per page, so a page is bounded by q.Limit.
func (s *Store) LocationsIn(ctx context.Context, q storage.AreaQuery, fn func(*storage.StoredLocation) error) (*storage.AreaCursor, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if q.From > q.To {
		return nil, nil
	}
	q.From, q.To = max(q.From, 0), min(q.To, maxTST)
	if q.After != nil && q.After.TST > q.From {
		q.From = q.After.TST
	}
	var page []storage.StoredLocation
	err := s.hist.View(func(tx *bolt.Tx) error {
		var err error
		page, err = s.areaPage(ctx, tx, &q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("area query: %w", err)
	}
	var next *storage.AreaCursor
	if len(page) > q.Limit {
		page = page[:q.Limit]
		l := page[len(page)-1]
		next = &storage.AreaCursor{TST: l.TST, User: l.User, Device: l.Device, ID: l.ID}
	}
	for i := range page {
		if err := fn(&page[i]); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// areaPage collects up to q.Limit+1 matches, hour by hour: the index's
// cells are merged by hour, and the devices of each hour read for it.
func (s *Store) areaPage(ctx context.Context, tx *bolt.Tx, q *storage.AreaQuery) ([]storage.StoredLocation, error) {
	level, ranges := cover(q)
	geo := tx.Bucket(bucketGeo)
	from, to := hourOf(q.From), hourOf(q.To)
	type cellCursor struct {
		c      *bolt.Cursor
		prefix []byte
		k      []byte
	}
	var cells []*cellCursor
	for _, r := range ranges {
		for y := r.y0; y <= r.y1; y++ {
			for x := r.x0; x <= r.x1; x++ {
				cc := &cellCursor{c: geo.Cursor(), prefix: geoKey(level, y<<level|x, 0, 0)[:5]}
				cc.k, _ = cc.c.Seek(geoKey(level, y<<level|x, from, 0))
				cells = append(cells, cc)
			}
		}
	}
	valid := func(cc *cellCursor) bool {
		return cc.k != nil && bytes.HasPrefix(cc.k, cc.prefix) && binary.BigEndian.Uint32(cc.k[5:]) <= to
	}
	names := tx.Bucket(bucketDevName)
	allowed := map[uint32]*[2]string{} // nil: not allowed
	var page []storage.StoredLocation
	var cache blockCache
	var rr recordReader
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The smallest hour any cell has left, and its devices.
		hour, found := uint32(math.MaxUint32), false
		for _, cc := range cells {
			if valid(cc) {
				hour, found = min(hour, binary.BigEndian.Uint32(cc.k[5:])), true
			}
		}
		if !found {
			return page, nil
		}
		devs := map[uint32]bool{}
		for _, cc := range cells {
			for valid(cc) && binary.BigEndian.Uint32(cc.k[5:]) == hour {
				devs[binary.BigEndian.Uint32(cc.k[9:])] = true
				cc.k, _ = cc.c.Next()
			}
		}
		var found0 []storage.StoredLocation
		for _, dev := range slices.Sorted(mapKeysU32(devs)) {
			who, seen := allowed[dev]
			if !seen {
				who = nil
				if v := names.Get(binary.BigEndian.AppendUint32(nil, dev)); v != nil {
					if u, d, ok := bytes.Cut(v, []byte{0}); ok && (q.Allow == nil || q.Allow(string(u), string(d))) {
						who = &[2]string{string(u), string(d)}
					}
				}
				allowed[dev] = who
			}
			if who == nil {
				continue
			}
			db := histDevice(tx, who[0], who[1])
			if db == nil {
				continue
			}
			start, end := max(int64(hour)*3600, q.From), min(int64(hour)*3600+3599, q.To)
			c := newLocCursor(db, &cache)
			for c.seek(start); c.valid() && c.tst() <= end; c.next() {
				l := storage.StoredLocation{Message: storage.Message{User: who[0], Device: who[1]}}
				if err := c.message(&rr, &l.Message); err != nil {
					return nil, err
				}
				if !q.Contains(l.Lat, l.Lon) {
					continue
				}
				l.ID = recordID(c.key())
				if q.After != nil && !q.After.Before(l.TST, l.User, l.Device, l.ID) {
					continue
				}
				found0 = append(found0, l)
			}
			if err := c.failed(); err != nil {
				return nil, fmt.Errorf("read %s/%s: %w", who[0], who[1], err)
			}
		}
		slices.SortFunc(found0, compareArea)
		page = append(page, found0...)
		if len(page) > q.Limit {
			return page[:q.Limit+1], nil
		}
	}
}

func compareArea(a, b storage.StoredLocation) int {
	return cmp.Or(cmp.Compare(a.TST, b.TST), cmp.Compare(a.User, b.User), cmp.Compare(a.Device, b.Device), cmp.Compare(a.ID, b.ID))
}

func mapKeysU32(m map[uint32]bool) func(func(uint32) bool) {
	return func(yield func(uint32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
