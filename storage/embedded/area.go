package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// The spatial index says which devices were in which grid cell in which
// hour: one key per (level, week, device, cell, hour), no value.
//
//	geo/<level 1><week 2><device id 4><cell 4><hour 4>
//	devid/<user>\x00<device> -> device id, 4 bytes
//	devname/<device id>      -> <user>\x00<device>
//
// A level-L grid has 2^L columns of 360/2^L degrees and 2^L rows of
// 180/2^L degrees; cell is row<<L | column. Level 13 cells are about 4.9
// by 2.4 km at the equator (3.1 by 2.4 km at 50°), level 9 about 78 by 39
// km, level 5 about 1250 by 625 km, level 1 a hemisphere's half. A query
// reads the index at the finest level that covers its box in a few cells:
// for each week of its range and each device it may see, one seek per row
// of cells, then the device-hours found. So its cost follows the weeks,
// devices and what it finds, not how much history there is. Weeks and
// devices come first in the key so that what one batch of fixes adds (one
// device, recent weeks) lands on a few neighbouring pages, however large
// the index grows. A device that stays put adds one key per level and
// hour; one that moves adds one per cell it crosses. Entries of deleted
// locations stay until reindex: they only cost a look at an hour that has
// nothing left.
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

const geoKeyLen = 15

func cellOf(level uint8, lat, lon float64) uint32 {
	n := uint32(1) << level
	x := uint32(min(max((lon+180)/360*float64(n), 0), float64(n-1)))
	y := uint32(min(max((lat+90)/180*float64(n), 0), float64(n-1)))
	return y<<level | x
}

func geoKey(level uint8, cell, hour, dev uint32) []byte {
	k := make([]byte, geoKeyLen)
	k[0] = level
	binary.BigEndian.PutUint16(k[1:], weekOf(hour))
	binary.BigEndian.PutUint32(k[3:], dev)
	binary.BigEndian.PutUint32(k[7:], cell)
	binary.BigEndian.PutUint32(k[11:], hour)
	return k
}

// weekOf is the week (168 hours from the UNIX epoch) of an hour.
func weekOf(hour uint32) uint16 { return uint16(min(hour/168, math.MaxUint16)) }

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

// cellRange is the cells of columns x0..x1 in rows y0..y1.
type cellRange struct{ x0, x1, y0, y1 uint32 }

// cover returns the level and the cell ranges of q's box: one, or two
// across the antimeridian.
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

// areaPage collects up to q.Limit+1 matches, week by week and hour by
// hour: the index gives the device-hours of each week in the box, and the
// devices of each hour are read for it.
func (s *Store) areaPage(ctx context.Context, tx *bolt.Tx, q *storage.AreaQuery) ([]storage.StoredLocation, error) {
	level, ranges := cover(q)
	type device struct {
		id           uint32
		user, device string
	}
	var devices []device
	err := tx.Bucket(bucketDevID).ForEach(func(k, v []byte) error {
		u, d, ok := bytes.Cut(k, []byte{0})
		if ok && len(v) == 4 && (q.Allow == nil || q.Allow(string(u), string(d))) {
			devices = append(devices, device{binary.BigEndian.Uint32(v), string(u), string(d)})
		}
		return nil
	})
	if err != nil || len(devices) == 0 {
		return nil, err
	}
	geo := tx.Bucket(bucketGeo)
	c := geo.Cursor()
	from, to := hourOf(q.From), hourOf(q.To)
	var page []storage.StoredLocation
	var cache blockCache
	var rr recordReader
	for week := int(weekOf(from)); week <= int(weekOf(to)); week++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Jump over weeks without a key at this level.
		k, _ := c.Seek(binary.BigEndian.AppendUint16([]byte{level}, uint16(week)))
		if k == nil || k[0] != level {
			break
		}
		if w := int(binary.BigEndian.Uint16(k[1:])); w > week {
			if week = w; week > int(weekOf(to)) {
				break
			}
		}
		// hours[h] lists the devices (indexes into devices) in the box
		// in hour h of this week.
		hours := map[uint32][]int{}
		for di, d := range devices {
			prefix := geoKey(level, 0, uint32(week)*168, d.id)[:7]
			if k, _ := c.Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
				continue // nothing of this device this week
			}
			seen := map[uint32]bool{}
			for _, r := range ranges {
				for y := r.y0; y <= r.y1; y++ {
					first, last := y<<level|r.x0, y<<level|r.x1
					for k, _ := c.Seek(geoKey(level, first, uint32(week)*168, d.id)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
						if binary.BigEndian.Uint32(k[7:]) > last {
							break
						}
						if h := binary.BigEndian.Uint32(k[11:]); h >= from && h <= to && !seen[h] {
							seen[h] = true
							hours[h] = append(hours[h], di)
						}
					}
				}
			}
		}
		for _, hour := range slices.Sorted(maps.Keys(hours)) {
			var found []storage.StoredLocation
			start, end := max(int64(hour)*3600, q.From), min(int64(hour)*3600+3599, q.To)
			for _, di := range hours[hour] {
				d := devices[di]
				db := histDevice(tx, d.user, d.device)
				if db == nil {
					continue
				}
				lc := newLocCursor(db, &cache)
				for lc.seek(start); lc.valid() && lc.tst() <= end; lc.next() {
					l := storage.StoredLocation{Message: storage.Message{User: d.user, Device: d.device}}
					if err := lc.message(&rr, &l.Message); err != nil {
						return nil, err
					}
					if !q.Contains(l.Lat, l.Lon) {
						continue
					}
					l.ID = recordID(lc.key())
					if q.After != nil && !q.After.Before(l.TST, l.User, l.Device, l.ID) {
						continue
					}
					found = append(found, l)
				}
				if err := lc.failed(); err != nil {
					return nil, fmt.Errorf("read %s/%s: %w", d.user, d.device, err)
				}
			}
			slices.SortFunc(found, compareArea)
			page = append(page, found...)
			if len(page) > q.Limit {
				return page[:q.Limit+1], nil
			}
		}
	}
	return page, nil
}

func compareArea(a, b storage.StoredLocation) int {
	return cmp.Or(cmp.Compare(a.TST, b.TST), cmp.Compare(a.User, b.User), cmp.Compare(a.Device, b.Device), cmp.Compare(a.ID, b.ID))
}
