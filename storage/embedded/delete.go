package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/buntdb"
	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// Deletions run in batches: a read transaction finds up to
// storage.DeleteBatch records, a write transaction deletes them. The
// writer lock is held only for the deletes, never for the search, and each
// batch commits (or not) as a whole, so a crash leaves a consistent store
// with part of the range deleted; reconcileLast repairs the last position
// at the next Open.

// histBucket returns hist/<user>/<device>/<kind>, nil if it does not exist.
func histBucket(tx *bolt.Tx, user, device string, kind []byte) *bolt.Bucket {
	db := histDevice(tx, user, device)
	if db == nil {
		return nil
	}
	return db.Bucket(kind)
}

// histDevice returns hist/<user>/<device>, nil if it does not exist.
func histDevice(tx *bolt.Tx, user, device string) *bolt.Bucket {
	ub := tx.Bucket(bucketHist).Bucket([]byte(user))
	if ub == nil {
		return nil
	}
	return ub.Bucket([]byte(device))
}

// recordID is the ID of a history record: the hash half of its key.
func recordID(k []byte) string { return hex.EncodeToString(k[8:keyLen]) }

// findSame returns the key under which b holds exactly m (nil if none),
// probing hash values as putOnce does.
func findSame(b *bolt.Bucket, m *storage.Message) []byte {
	h := messageHash(m)
	for range 16 {
		k := recordKey(m.TST, h)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		if samePayload(v, m) {
			return k
		}
		h++
	}
	return nil
}

// isHidden reports whether location m is stored hidden. cache keeps each
// device's hid bucket (nil for none) for the rest of the transaction.
func isHidden(hist *bolt.Bucket, cache map[[2]string]*bolt.Bucket, m *storage.Message) bool {
	id := [2]string{m.User, m.Device}
	hb, ok := cache[id]
	if !ok {
		if ub := hist.Bucket([]byte(m.User)); ub != nil {
			if db := ub.Bucket([]byte(m.Device)); db != nil {
				hb = db.Bucket(bucketHid)
			}
		}
		cache[id] = hb
	}
	return hb != nil && findSame(hb, m) != nil
}

// doomed is one record a deletion batch removes: a history record of a
// kind (loc, hid, msg), or a fence event when kind is nil.
type doomed struct {
	kind []byte
	key  []byte
}

// DeleteRange removes every message and fence event of one device with
// from <= tst <= to, in batches.
func (s *Store) DeleteRange(ctx context.Context, user, device string, from, to int64) (storage.Deleted, error) {
	var total storage.Deleted
	if err := checkNames(user, device); err != nil {
		return total, fmt.Errorf("delete range: %w", err)
	}
	if from > to {
		return total, ctx.Err()
	}
	from, to = max(from, 0), min(to, maxTST)
	err := s.deleteRange(ctx, user, device, from, to, &total)
	if total.Total() > 0 {
		err = errors.Join(err, s.afterDelete(user, device))
	}
	if err != nil {
		return total, fmt.Errorf("delete %s/%s from %d to %d: %w", user, device, from, to, err)
	}
	return total, nil
}

func (s *Store) deleteRange(ctx context.Context, user, device string, from, to int64, total *storage.Deleted) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []doomed
		err := s.hist.View(func(tx *bolt.Tx) error {
			var err error
			batch, err = findRange(tx, user, device, from, to)
			return err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		n, err := s.deleteBatch(user, device, batch)
		total.Add(n)
		if err != nil {
			return err
		}
	}
}

// findRange returns up to storage.DeleteBatch records of one device in
// [from, to]: history of every kind, then fence events.
func findRange(tx *bolt.Tx, user, device string, from, to int64) ([]doomed, error) {
	var out []doomed
	lc := newLocCursor(histDevice(tx, user, device), nil)
	for lc.seek(from); lc.valid() && lc.tst() <= to && len(out) < storage.DeleteBatch; lc.next() {
		out = append(out, doomed{bucketLoc, lc.key()})
	}
	if err := lc.failed(); err != nil {
		return nil, err
	}
	for _, kind := range [][]byte{bucketHid, bucketMsg} {
		b := histBucket(tx, user, device, kind)
		if b == nil {
			continue
		}
		c := b.Cursor()
		for k, _ := c.Seek(tstKey(from)); k != nil && len(out) < storage.DeleteBatch; k, _ = c.Next() {
			if len(k) != keyLen || keyTST(k) > to {
				break
			}
			out = append(out, doomed{kind, bytes.Clone(k)})
		}
	}
	prefix := devicePrefix(user, device)
	c := tx.Bucket(bucketEvents).Cursor()
	start := append(bytes.Clone(prefix), tstKey(from)...)
	for k, _ := c.Seek(start); k != nil && len(out) < storage.DeleteBatch; k, _ = c.Next() {
		if !bytes.HasPrefix(k, prefix) || len(k) < len(prefix)+8 || keyTST(k[len(prefix):]) > to {
			break
		}
		out = append(out, doomed{nil, bytes.Clone(k)})
	}
	return out, nil
}

// deleteBatch deletes the records of one device in one transaction and
// counts those that were still there. Deleted events take their webhook
// deliveries with them.
func (s *Store) deleteBatch(user, device string, batch []doomed) (storage.Deleted, error) {
	var n storage.Deleted
	err := s.hist.Update(func(tx *bolt.Tx) error {
		n = storage.Deleted{}
		prefix := devicePrefix(user, device)
		eb, ib := tx.Bucket(bucketEvents), tx.Bucket(bucketEventID)
		events := map[string]bool{}
		var locs [][]byte
		for _, d := range batch {
			if bytes.Equal(d.kind, bucketLoc) {
				locs = append(locs, d.key)
				continue
			}
			if d.kind == nil {
				if eb.Get(d.key) == nil {
					continue
				}
				if err := eb.Delete(d.key); err != nil {
					return fmt.Errorf("delete event: %w", err)
				}
				id := d.key[len(prefix)+8:]
				if err := ib.Delete(id); err != nil {
					return fmt.Errorf("unindex event %s: %w", id, err)
				}
				events[string(id)] = true
				n.Events++
				continue
			}
			b := histBucket(tx, user, device, d.kind)
			if b == nil || b.Get(d.key) == nil {
				continue
			}
			if err := b.Delete(d.key); err != nil {
				return fmt.Errorf("delete record at tst %d: %w", keyTST(d.key), err)
			}
			if bytes.Equal(d.kind, bucketMsg) {
				n.Messages++
			} else {
				n.Locations++
			}
		}
		if dev := histDevice(tx, user, device); dev != nil && len(locs) > 0 {
			gone, err := removeLocations(dev, locs, s.pack)
			if err != nil {
				return err
			}
			n.Locations += len(gone)
		}
		return dropDeliveries(tx, events)
	})
	if err != nil {
		return storage.Deleted{}, err
	}
	return n, nil
}

// dropDeliveries removes the webhook deliveries of deleted events, pending
// and logged: their bodies hold the event's position.
func dropDeliveries(tx *bolt.Tx, events map[string]bool) error {
	if len(events) == 0 {
		return nil
	}
	var d struct {
		ID    string `json:"id"`
		Event string `json:"event"`
	}
	for _, name := range [][]byte{bucketOutbox, bucketDeliveries} {
		b := tx.Bucket(name)
		var keys, ids [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode delivery %q: %w", k, err)
			}
			if events[d.Event] {
				keys = append(keys, bytes.Clone(k))
				ids = append(ids, []byte(d.ID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("delete delivery %s: %w", ids[i], err)
			}
			if bytes.Equal(name, bucketOutbox) {
				if err := tx.Bucket(bucketOutboxID).Delete(ids[i]); err != nil {
					return fmt.Errorf("unindex delivery %s: %w", ids[i], err)
				}
			}
		}
	}
	return nil
}

// afterDelete drops the device's history buckets once they are empty (so
// it leaves DataUsers and Devices) and recomputes its last position.
func (s *Store) afterDelete(user, device string) error {
	var empty bool
	err := s.hist.View(func(tx *bolt.Tx) error {
		empty = histDevice(tx, user, device) != nil && deviceEmpty(tx, user, device)
		return nil
	})
	if err == nil && empty {
		err = s.hist.Update(func(tx *bolt.Tx) error {
			if histDevice(tx, user, device) == nil || !deviceEmpty(tx, user, device) {
				return nil // an Append came in between
			}
			ub := tx.Bucket(bucketHist).Bucket([]byte(user))
			if err := ub.DeleteBucket([]byte(device)); err != nil {
				return fmt.Errorf("drop bucket of %s/%s: %w", user, device, err)
			}
			if k, _ := ub.Cursor().First(); k == nil {
				return tx.Bucket(bucketHist).DeleteBucket([]byte(user))
			}
			return nil
		})
	}
	return errors.Join(err, s.recomputeLast(user, device))
}

// deviceEmpty reports whether a device's history buckets hold nothing.
func deviceEmpty(tx *bolt.Tx, user, device string) bool {
	for _, kind := range [][]byte{bucketLoc, bucketPak, bucketHid, bucketMsg} {
		if b := histBucket(tx, user, device, kind); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				return false
			}
		}
	}
	return true
}

// newestLocation returns the newest location of device bucket db: the
// highest tst, and among several at that tst the last received. nil if
// there is none.
func newestLocation(db *bolt.Bucket, user, device string) (*storage.Message, error) {
	c := newLocCursor(db, nil)
	c.seekAtMost(maxTST)
	if !c.valid() {
		return nil, c.failed()
	}
	tst := c.tst()
	var best *storage.Message
	for ; c.valid() && c.tst() == tst; c.prev() {
		m := &storage.Message{User: user, Device: device}
		if err := c.message(&recordReader{}, m); err != nil {
			return nil, fmt.Errorf("read last record of %s/%s: %w", user, device, err)
		}
		if best == nil || newerThan(m, best) {
			best = m
		}
	}
	return best, c.failed()
}

// recomputeLast sets a device's last position to its newest visible
// location, or removes it when none is left.
func (s *Store) recomputeLast(user, device string) error {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	var m *storage.Message
	err := s.hist.View(func(tx *bolt.Tx) error {
		db := histDevice(tx, user, device)
		if db == nil {
			return nil
		}
		var err error
		m, err = newestLocation(db, user, device)
		return err
	})
	if err != nil {
		return fmt.Errorf("recompute last position of %s/%s: %w", user, device, err)
	}
	err = s.state.Update(func(tx *buntdb.Tx) error {
		key := lastKey(user, device)
		if m == nil {
			_, err := tx.Delete(key)
			if errors.Is(err, buntdb.ErrNotFound) {
				return nil
			}
			return err
		}
		b, err := json.Marshal(lastFromMessage(m))
		if err != nil {
			return err
		}
		_, _, err = tx.Set(key, string(b), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("recompute last position of %s/%s: %w", user, device, err)
	}
	return nil
}

// resetLast makes the last positions agree exactly with newest (keyed
// user/device): records that differ are rewritten, and those of devices
// not in newest are removed.
func (s *Store) resetLast(newest map[string]*storage.Message) error {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	err := s.state.Update(func(tx *buntdb.Tx) error {
		current := map[string]string{}
		err := scanPrefix(tx, prefixLast, func(key, value string) error {
			current[key] = value
			return nil
		})
		if err != nil {
			return err
		}
		for key := range current {
			if newest[strings.TrimPrefix(key, prefixLast)] == nil {
				if _, err := tx.Delete(key); err != nil {
					return err
				}
			}
		}
		for _, m := range newest {
			b, err := json.Marshal(lastFromMessage(m))
			if err != nil {
				return err
			}
			key := lastKey(m.User, m.Device)
			if current[key] == string(b) {
				continue
			}
			if _, _, err := tx.Set(key, string(b), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset last positions: %w", err)
	}
	return nil
}

// DeleteLocations removes the locations of one device at tst, hidden or
// not: all of them, or the one with id.
func (s *Store) DeleteLocations(ctx context.Context, user, device string, tst int64, id string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.hist.Update(func(tx *bolt.Tx) error {
		n = 0
		db := histDevice(tx, user, device)
		if db == nil {
			return nil
		}
		gone, err := removeLocations(db, locKeysAt(db, tst, id), s.pack)
		if err != nil {
			return err
		}
		n = len(gone)
		for _, kind := range [][]byte{bucketHid} {
			b := histBucket(tx, user, device, kind)
			if b == nil {
				continue
			}
			for _, k := range keysAt(b, tst, id) {
				if err := b.Delete(k); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err == nil && n == 0 {
		err = storage.ErrNotFound
	}
	if n > 0 {
		err = errors.Join(err, s.afterDelete(user, device))
	}
	if err != nil {
		return n, fmt.Errorf("delete locations of %s/%s at tst %d: %w", user, device, tst, err)
	}
	return n, nil
}

// keysAt returns the keys in b at tst: all of them, or the one with id.
func keysAt(b *bolt.Bucket, tst int64, id string) [][]byte {
	var out [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(tstKey(tst)); k != nil && len(k) == keyLen && keyTST(k) == tst; k, _ = c.Next() {
		if id == "" || recordID(k) == id {
			out = append(out, bytes.Clone(k))
		}
	}
	return out
}

// locKeysAt returns the keys of device bucket db's locations at tst, loose
// or packed: all of them, or the one with id.
func locKeysAt(db *bolt.Bucket, tst int64, id string) [][]byte {
	var out [][]byte
	c := newLocCursor(db, nil)
	for c.seek(tst); c.valid() && c.tst() == tst; c.next() {
		if k := c.key(); id == "" || recordID(k) == id {
			out = append(out, k)
		}
	}
	return out
}

// HideLocations moves the matching locations at tst from loc to hid
// (hidden) or back. Moving keeps the record byte for byte.
func (s *Store) HideLocations(ctx context.Context, user, device string, tst int64, id string, hidden bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dst := bucketHid
	if !hidden {
		dst = bucketLoc
	}
	n := 0
	err := s.hist.Update(func(tx *bolt.Tx) error {
		n = 0
		db := histDevice(tx, user, device)
		if db == nil {
			return storage.ErrNotFound
		}
		var keys [][]byte
		if hidden {
			keys = locKeysAt(db, tst, id)
		} else if sb := db.Bucket(bucketHid); sb != nil {
			keys = keysAt(sb, tst, id)
		}
		if len(keys) == 0 {
			var there [][]byte
			if hidden {
				if b := db.Bucket(bucketHid); b != nil {
					there = keysAt(b, tst, id)
				}
			} else {
				there = locKeysAt(db, tst, id)
			}
			if len(there) == 0 {
				return storage.ErrNotFound
			}
			return nil // already as asked
		}
		to, err := db.CreateBucketIfNotExists(dst)
		if err != nil {
			return fmt.Errorf("create %s bucket: %w", dst, err)
		}
		var moved []storage.Message
		if hidden {
			if moved, err = removeLocations(db, keys, s.pack); err != nil {
				return err
			}
		} else {
			sb := db.Bucket(bucketHid)
			for _, k := range keys {
				m := storage.Message{TST: tst}
				if err := decodeValue(sb.Get(k), &m); err != nil {
					return fmt.Errorf("read record at tst %d: %w", tst, err)
				}
				if err := sb.Delete(k); err != nil {
					return err
				}
				moved = append(moved, m)
			}
		}
		for i := range moved {
			moved[i].User, moved[i].Device = user, device
			if _, err := putOnce(to, &moved[i]); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if n > 0 && err == nil {
		err = s.recomputeLast(user, device)
	}
	if err != nil {
		return n, fmt.Errorf("hide locations of %s/%s at tst %d: %w", user, device, tst, err)
	}
	return n, nil
}

// LocationsAt returns every location of one device at tst, hidden or not.
func (s *Store) LocationsAt(ctx context.Context, user, device string, tst int64) ([]storage.StoredLocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []storage.StoredLocation{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		db := histDevice(tx, user, device)
		if db == nil {
			return nil
		}
		c := newLocCursor(db, nil)
		for c.seek(tst); c.valid() && c.tst() == tst; c.next() {
			l := storage.StoredLocation{Message: storage.Message{User: user, Device: device}, ID: recordID(c.key())}
			if err := c.message(&recordReader{}, &l.Message); err != nil {
				return fmt.Errorf("read record at tst %d: %w", tst, err)
			}
			out = append(out, l)
		}
		if err := c.failed(); err != nil {
			return err
		}
		for _, kind := range [][]byte{bucketHid} {
			b := histBucket(tx, user, device, kind)
			if b == nil {
				continue
			}
			for _, k := range keysAt(b, tst, "") {
				l := storage.StoredLocation{Message: storage.Message{User: user, Device: device, TST: tst}, ID: recordID(k), Hidden: bytes.Equal(kind, bucketHid)}
				if err := decodeValue(b.Get(k), &l.Message); err != nil {
					return fmt.Errorf("read record at tst %d: %w", tst, err)
				}
				out = append(out, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read locations of %s/%s at tst %d: %w", user, device, tst, err)
	}
	slices.SortFunc(out, func(a, b storage.StoredLocation) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// HiddenLocations streams the hidden locations in q's range, readChunk per
// read transaction (fn runs outside it).
func (s *Store) HiddenLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.StoredLocation) error) error {
	if q.From > q.To {
		return ctx.Err()
	}
	q.From, q.To = max(q.From, 0), min(q.To, maxTST)
	start := tstKey(q.From)
	for start != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []storage.StoredLocation
		err := s.hist.View(func(tx *bolt.Tx) error {
			b := histBucket(tx, q.User, q.Device, bucketHid)
			next := start
			start = nil
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.Seek(next); k != nil && len(k) == keyLen && keyTST(k) <= q.To; k, v = c.Next() {
				if len(batch) == readChunk {
					start = bytes.Clone(k)
					return nil
				}
				l := storage.StoredLocation{Message: storage.Message{User: q.User, Device: q.Device, TST: keyTST(k)}, ID: recordID(k), Hidden: true}
				if err := decodeValue(v, &l.Message); err != nil {
					return fmt.Errorf("read %s/%s at tst %d: %w", q.User, q.Device, l.TST, err)
				}
				batch = append(batch, l)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteDevice removes everything recorded about one device.
func (s *Store) DeleteDevice(ctx context.Context, user, device string) (storage.Deleted, error) {
	var total storage.Deleted
	if err := checkNames(user, device); err != nil {
		return total, fmt.Errorf("delete device: %w", err)
	}
	found := histDeviceExists(s, user, device)
	err := s.deleteRange(ctx, user, device, 0, maxTST, &total)
	if err != nil {
		return total, fmt.Errorf("delete device %s/%s: %w", user, device, err)
	}
	if err := s.afterDelete(user, device); err != nil {
		return total, fmt.Errorf("delete device %s/%s: %w", user, device, err)
	}
	err = s.hist.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFenceState)
		prefix := devicePrefix(user, device)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
			found = true
		}
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("delete fence states of %s/%s: %w", user, device, err)
	}
	err = s.state.Update(func(tx *buntdb.Tx) error {
		path := devicePath(user, device)
		keys := []string{prefixDevice + path, prefixLast + path}
		err := scanPrefix(tx, prefixCmd+path+"/", func(key, _ string) error {
			keys = append(keys, key)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			_, err := tx.Delete(k)
			if errors.Is(err, buntdb.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			found = true
		}
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("delete state of %s/%s: %w", user, device, err)
	}
	if !found && total.Total() == 0 {
		return total, fmt.Errorf("device %s/%s: %w", user, device, storage.ErrNotFound)
	}
	return total, nil
}

func histDeviceExists(s *Store, user, device string) bool {
	found := false
	s.hist.View(func(tx *bolt.Tx) error {
		found = histDevice(tx, user, device) != nil
		return nil
	})
	return found
}

// DeleteUserData deletes every device of user found anywhere: history,
// device states, last positions, queued commands, fence states, events.
func (s *Store) DeleteUserData(ctx context.Context, user string) (storage.Deleted, error) {
	var total storage.Deleted
	devices, err := s.userDevices(user)
	if err != nil {
		return total, err
	}
	if len(devices) == 0 {
		return total, fmt.Errorf("data of %s: %w", user, storage.ErrNotFound)
	}
	for _, d := range devices {
		n, err := s.DeleteDevice(ctx, user, d)
		total.Add(n)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return total, err
		}
	}
	return total, nil
}

// userDevices returns, sorted, every device of user that anything is
// stored about.
func (s *Store) userDevices(user string) ([]string, error) {
	set := map[string]bool{}
	err := s.hist.View(func(tx *bolt.Tx) error {
		if ub := tx.Bucket(bucketHist).Bucket([]byte(user)); ub != nil {
			ub.ForEachBucket(func(k []byte) error {
				set[string(k)] = true
				return nil
			})
		}
		prefix := append([]byte(user), 0)
		for _, name := range [][]byte{bucketFenceState, bucketEvents} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if d, _, ok := bytes.Cut(k[len(prefix):], []byte{0}); ok {
					set[string(d)] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find devices of %s: %w", user, err)
	}
	err = s.state.View(func(tx *buntdb.Tx) error {
		for _, prefix := range []string{prefixDevice, prefixLast, prefixCmd} {
			err := scanPrefix(tx, prefix+user+"/", func(key, _ string) error {
				d, _, _ := strings.Cut(strings.TrimPrefix(key, prefix+user+"/"), "/")
				set[d] = true
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find devices of %s: %w", user, err)
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}
