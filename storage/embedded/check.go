package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// Check verifies the store without changing it: bbolt's own page checks;
// every record decodes and sits under the key its payload hashes to;
// every block's checksum, order and range, and that no loose record
// repeats a packed one; every location's spatial index keys; and that
// the last positions agree with history. progress, if not nil, gets the
// number of locations checked now and then.
func (s *Store) Check(ctx context.Context, progress func(done int)) (storage.CheckReport, error) {
	var r storage.CheckReport
	if fi, err := os.Stat(s.path); err == nil {
		r.FileBytes = fi.Size()
	}
	newest := map[string]*storage.Message{}
	// bbolt's page check reads the whole file in one transaction; the
	// records are then checked a device per transaction, so writers that
	// must grow the file wait for one device at most.
	var devices [][2]string
	checked := map[string]bool{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			r.Problem("file: %v", err)
		}
		var err error
		devices, err = historyDevices(tx)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("check: %w", err)
	}
	for _, d := range devices {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		err := s.hist.View(func(tx *bolt.Tx) error {
			db := histDevice(tx, d[0], d[1])
			if db == nil {
				return nil // deleted meanwhile
			}
			r.Devices++
			checked[d[0]+"/"+d[1]] = true
			m, err := s.checkDevice(tx, db, d[0], d[1], &r, progress)
			if m != nil {
				newest[m.User+"/"+m.Device] = m
			}
			return err
		})
		if err != nil {
			return r, fmt.Errorf("check %s/%s: %w", d[0], d[1], err)
		}
	}
	err = s.hist.View(func(tx *bolt.Tx) error {
		r.Events = tx.Bucket(bucketEvents).Stats().KeyN
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("check: %w", err)
	}
	last, err := s.LastLocations(ctx, "", "")
	if err != nil {
		return r, fmt.Errorf("check: %w", err)
	}
	for _, l := range last {
		m := newest[l.User+"/"+l.Device]
		// A fix that arrived after its device was checked (a running
		// server) makes the last position newer: that is no problem.
		switch {
		case !checked[l.User+"/"+l.Device]:
			// A device that appeared after the check began.
		case m == nil:
			r.Problem("%s/%s: a last position but no location in history", l.User, l.Device)
		case l.TST < m.TST || l.TST == m.TST && l.Received < m.Received:
			r.Problem("%s/%s: last position at tst %d, newest location in history at %d", l.User, l.Device, l.TST, m.TST)
		}
		delete(newest, l.User+"/"+l.Device)
	}
	for k := range newest {
		r.Problem("%s: locations in history but no last position", k)
	}
	return r, nil
}

func (s *Store) checkDevice(tx *bolt.Tx, db *bolt.Bucket, user, device string, r *storage.CheckReport, progress func(int)) (*storage.Message, error) {
	where := user + "/" + device
	geo := tx.Bucket(bucketGeo)
	var dev uint32
	if v := tx.Bucket(bucketDevID).Get([]byte(user + "\x00" + device)); len(v) == 4 {
		dev = binary.BigEndian.Uint32(v)
	}
	var last geoMark
	haveLast := false
	indexed := func(tst int64, lat, lon float64) {
		if dev == 0 {
			return // reported once below
		}
		mark := geoMark{hour: hourOf(tst)}
		for i, l := range geoLevels {
			mark.cells[i] = cellOf(l, lat, lon)
		}
		if haveLast && mark == last {
			return // the keys of the fix before, already seen
		}
		for i, l := range geoLevels {
			if geo.Get(geoKey(l, mark.cells[i], mark.hour, dev)) == nil {
				r.Problem("%s: location at tst %d is missing from the spatial index (level %d); run wherehouse reindex", where, tst, l)
				return
			}
		}
		last, haveLast = mark, true
	}
	pak := db.Bucket(bucketPak)
	if pak != nil {
		var dec blockDecoder
		var prevLast []byte
		err := pak.ForEach(func(k, v []byte) error {
			r.Blocks++
			recs, err := dec.decode(v)
			if err != nil {
				r.Problem("%s: block at tst %d: %v", where, keyTST(k), err)
				return nil
			}
			if !bytes.Equal(recs[0].key(), k) {
				r.Problem("%s: block at tst %d is not keyed by its first record", where, keyTST(k))
			}
			if prevLast != nil && bytes.Compare(recs[0].key(), prevLast) <= 0 {
				r.Problem("%s: block at tst %d overlaps the one before", where, keyTST(k))
			}
			for i := range recs {
				rec := &recs[i]
				if i > 0 && compareRecs(recs[i-1], *rec) >= 0 {
					r.Problem("%s: block at tst %d is out of order at record %d", where, keyTST(k), i)
				}
				if !json.Valid(rec.payload) {
					r.Problem("%s: packed location at tst %d is not JSON", where, rec.tst)
				}
				indexed(rec.tst, rec.lat, rec.lon)
				r.Locations++
				r.Packed++
				if progress != nil && r.Locations%100000 == 0 {
					progress(r.Locations)
				}
			}
			prevLast = recs[len(recs)-1].key()
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if dev == 0 && (db.Bucket(bucketLoc) != nil || db.Bucket(bucketPak) != nil) {
		r.Problem("%s: has no spatial index ID; run wherehouse reindex", where)
	}
	var lookup packedLookup
	for _, kind := range [][]byte{bucketLoc, bucketHid, bucketMsg} {
		b := db.Bucket(kind)
		if b == nil {
			continue
		}
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != keyLen {
				r.Problem("%s/%s: key %x is not a record key", where, kind, k)
				return nil
			}
			m := storage.Message{TST: keyTST(k)}
			if err := decodeValue(v, &m); err != nil {
				r.Problem("%s/%s: record at tst %d: %v", where, kind, m.TST, err)
				return nil
			}
			if h := keyHashOf(k) - messageHash(&m); h >= 16 {
				r.Problem("%s/%s: record at tst %d is not under the key its payload hashes to", where, kind, m.TST)
			}
			switch {
			case bytes.Equal(kind, bucketMsg):
				r.Messages++
			case bytes.Equal(kind, bucketHid):
				r.Hidden++
			default:
				r.Locations++
				indexed(m.TST, m.Lat, m.Lon)
				if pak != nil {
					m.Type = "location"
					if both, err := lookup.has(pak, &m); err != nil || both {
						r.Problem("%s: location at tst %d is both loose and packed", where, m.TST)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	m, err := newestLocation(db, user, device)
	if err != nil {
		r.Problem("%s: %v", where, err)
		return nil, nil
	}
	return m, nil
}

// Reindex rebuilds what is derived from the stored records: the spatial
// index (dropped and written again from every location), the packing
// (every device's loose locations but the newest are packed) and the last
// positions. progress, if not nil, gets the number of locations done now
// and then. It runs in many short transactions; a crash in the middle
// leaves an index that a second run completes.
func (s *Store) Reindex(ctx context.Context, progress func(done int)) error {
	err := s.hist.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketGeo); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		_, err := tx.CreateBucket(bucketGeo)
		return err
	})
	if err != nil {
		return fmt.Errorf("reindex: drop the spatial index: %w", err)
	}
	s.forgetIndexCaches()
	var devices [][2]string
	err = s.hist.View(func(tx *bolt.Tx) error {
		var err error
		devices, err = historyDevices(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	done := 0
	for _, d := range devices {
		if err := s.reindexDevice(ctx, d[0], d[1], &done, progress); err != nil {
			return fmt.Errorf("reindex %s/%s: %w", d[0], d[1], err)
		}
	}
	if err := s.reconcileLast(ctx); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	return nil
}

func (s *Store) reindexDevice(ctx context.Context, user, device string, done *int, progress func(int)) error {
	// Pack first, in steps of maxPack records.
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		more := false
		err := s.hist.Update(func(tx *bolt.Tx) error {
			db := histDevice(tx, user, device)
			if db == nil {
				return nil
			}
			n, err := packDevice(db, s.pack)
			more = n >= s.pack.trigger
			s.loose[user+"/"+device+"/loc"] = n
			return err
		})
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	start := tstKey(0)
	var cache blockCache
	for start != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []storage.Message
		err := s.hist.View(func(tx *bolt.Tx) error {
			c := newLocCursor(histDevice(tx, user, device), &cache)
			from := start
			start = nil
			var rr recordReader
			for c.seekKey(from); c.valid(); c.next() {
				if len(batch) == 4*readChunk {
					start = c.key()
					return nil
				}
				m := storage.Message{User: user, Device: device}
				if err := c.message(&rr, &m); err != nil {
					return err
				}
				m.Payload = nil // the index needs only where and when
				batch = append(batch, m)
			}
			return c.failed()
		})
		if err != nil {
			return err
		}
		var ix *indexer
		err = s.hist.Update(func(tx *bolt.Tx) error {
			ix = s.newIndexer(tx)
			for i := range batch {
				if err := ix.add(tx, &batch[i]); err != nil {
					return err
				}
			}
			return ix.flush()
		})
		if err != nil {
			return err
		}
		ix.commit()
		*done += len(batch)
		if progress != nil {
			progress(*done)
		}
	}
	return nil
}

// historyDevices lists the user and device of every device with history.
func historyDevices(tx *bolt.Tx) ([][2]string, error) {
	var out [][2]string
	hist := tx.Bucket(bucketHist)
	err := hist.ForEachBucket(func(user []byte) error {
		return hist.Bucket(user).ForEachBucket(func(device []byte) error {
			out = append(out, [2]string{string(user), string(device)})
			return nil
		})
	})
	return out, err
}
