package embedded

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// areaFixture stores walks of several devices around two cities, some
// packed, and returns every stored location.
func areaFixture(t *testing.T, s *Store) []storage.Message {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	var all []storage.Message
	for d := range 6 {
		user, device := fmt.Sprintf("user%d", d%3), fmt.Sprintf("dev%d", d)
		lat, lon := 52.5, 13.4 // Berlin
		if d%2 == 1 {
			lat, lon = 48.85, 2.35 // Paris
		}
		if d == 5 {
			lat, lon = 0.5, 179.99 // by the antimeridian
		}
		tst := int64(1735689600 + d*37)
		var batch []storage.Message
		for range 3000 {
			lat += (rng.Float64() - 0.5) * 0.004
			lon += (rng.Float64() - 0.5) * 0.006
			if lon > 180 {
				lon -= 360
			} else if lon < -180 {
				lon += 360
			}
			tst += int64(20 + rng.IntN(200))
			m := storage.Message{User: user, Device: device, Type: "location", TST: tst, Topic: "owntracks/" + user + "/" + device,
				Lat: lat, Lon: lon, Received: tst * 1000,
				Payload: fmt.Appendf(nil, `{"_type":"location","lat":%.7f,"lon":%.7f,"tst":%d}`, lat, lon, tst)}
			batch = append(batch, m)
		}
		if _, err := s.Append(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	return all
}

func areaKey(m *storage.Message) string {
	return fmt.Sprintf("%020d %s %s %s", m.TST, m.User, m.Device, recordID(recordKey(m.TST, messageHash(m))))
}

func TestLocationsIn(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	s.pack = packConfig{keep: 10, trigger: 100, block: 64}
	all := areaFixture(t, s)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 60 {
		c := all[rng.IntN(len(all))]
		size := []float64{0.002, 0.01, 0.05, 0.5, 20}[i%5]
		q := storage.AreaQuery{MinLat: c.Lat - size, MaxLat: c.Lat + size, MinLon: c.Lon - size, MaxLon: c.Lon + size,
			From: c.TST - int64(rng.IntN(200000)), To: c.TST + int64(rng.IntN(200000)), Limit: 1 + rng.IntN(300)}
		if q.MaxLon > 180 {
			q.MaxLon -= 360 // across the antimeridian
		}
		if q.MinLon < -180 {
			q.MinLon += 360
		}
		q.MinLat, q.MaxLat = max(q.MinLat, -90), min(q.MaxLat, 90)
		if i%3 == 0 {
			q.Allow = func(user, device string) bool { return user != "user1" }
		}
		var want []string
		for j := range all {
			m := &all[j]
			if m.TST >= q.From && m.TST <= q.To && q.Contains(m.Lat, m.Lon) && (q.Allow == nil || q.Allow(m.User, m.Device)) {
				want = append(want, areaKey(m))
			}
		}
		slices.Sort(want)
		var got []string
		pages := 0
		for {
			pages++
			var page []string
			next, err := s.LocationsIn(t.Context(), q, func(l *storage.StoredLocation) error {
				page = append(page, areaKey(&l.Message))
				return nil
			})
			if err != nil {
				t.Fatalf("query %d (%+v): %v", i, q, err)
			}
			if len(page) > q.Limit || next != nil && len(page) != q.Limit {
				t.Fatalf("query %d: a page of %d with limit %d, next %v", i, len(page), q.Limit, next)
			}
			got = append(got, page...)
			if next == nil {
				break
			}
			q.After = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d (%+v): %d locations in %d pages, want %d", i, q, len(got), pages, len(want))
		}
	}
}

// TestLocationsInAllTime asks for the whole world over all time: every
// location, in order, and the walk over weeks ends.
func TestLocationsInAllTime(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	all := areaFixture(t, s)
	q := storage.AreaQuery{MinLat: -90, MinLon: -180, MaxLat: 90, MaxLon: 180, From: 0, To: maxTST, Limit: len(all) + 1}
	n := 0
	last := ""
	next, err := s.LocationsIn(t.Context(), q, func(l *storage.StoredLocation) error {
		k := areaKey(&l.Message)
		if k <= last {
			t.Fatalf("%s after %s", k, last)
		}
		last = k
		n++
		return nil
	})
	if err != nil || next != nil || n != len(all) {
		t.Fatalf("%d of %d locations, next %v, %v", n, len(all), next, err)
	}
}

func TestLocationsInSkipsDeletedAndHidden(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	s.pack = tinyPack
	all := areaFixture(t, s)
	m := all[100]
	if _, err := s.HideLocations(t.Context(), m.User, m.Device, m.TST, "", true); err != nil {
		t.Fatal(err)
	}
	d := all[200]
	if _, err := s.DeleteLocations(t.Context(), d.User, d.Device, d.TST, ""); err != nil {
		t.Fatal(err)
	}
	for _, x := range []storage.Message{m, d} {
		q := storage.AreaQuery{MinLat: x.Lat - 1e-6, MaxLat: x.Lat + 1e-6, MinLon: x.Lon - 1e-6, MaxLon: x.Lon + 1e-6, From: x.TST, To: x.TST, Limit: 10}
		_, err := s.LocationsIn(t.Context(), q, func(l *storage.StoredLocation) error {
			t.Errorf("found %s/%s at %d, which is hidden or deleted", l.User, l.Device, l.TST)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestAreaQueryCheck(t *testing.T) {
	for _, q := range []storage.AreaQuery{
		{MinLat: 10, MaxLat: 5, MaxLon: 1, Limit: 1},
		{MinLat: -91, MaxLat: 5, MaxLon: 1, Limit: 1},
		{MinLon: -181, MaxLat: 5, MaxLon: 1, Limit: 1},
		{MaxLat: 5, MaxLon: 1},
	} {
		if err := q.Check(); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
}

func TestCheckAndReindex(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	s.pack = packConfig{keep: 10, trigger: 100, block: 64}
	all := areaFixture(t, s)
	r, err := s.Check(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 || r.Locations != len(all) || r.Packed == 0 || r.Devices != 6 {
		t.Fatalf("check of a sound store: %+v", r)
	}
	t.Logf("%d locations, %d packed in %d blocks, %.1f bytes each on disk", r.Locations, r.Packed, r.Blocks, r.BytesPerLocation())
	// Lose the spatial index: check says so, reindex repairs it.
	s.hist.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(bucketGeo)
		_, err := tx.CreateBucket(bucketGeo)
		return err
	})
	s.forgetIndexCaches()
	if r, _ := s.Check(t.Context(), nil); len(r.Problems) == 0 {
		t.Fatal("check found nothing wrong without a spatial index")
	}
	if err := s.Reindex(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Check(t.Context(), nil); len(r.Problems) != 0 {
		t.Fatalf("after reindex: %v", r.Problems)
	}
	// A damaged block is reported, not fatal.
	s.hist.Update(func(tx *bolt.Tx) error {
		b := histBucket(tx, all[0].User, all[0].Device, bucketPak)
		k, v := b.Cursor().First()
		v = append([]byte(nil), v...)
		v[len(v)/2] ^= 0xff
		return b.Put(append([]byte(nil), k...), v)
	})
	r, err = s.Check(t.Context(), nil)
	if err != nil || len(r.Problems) == 0 {
		t.Fatalf("check of a damaged block: %+v, %v", r, err)
	}
	t.Log(r.Problems[0])
}
