package embedded

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// TestPackModel drives a store with tiny blocks through random appends
// (in order, late, repeated), deletions, hides and thinning, and checks
// after every step that it holds exactly what a plain map says it should.
func TestPackModel(t *testing.T) {
	for seed := range uint64(6) {
		cfg := tinyPack
		if seed%2 == 1 {
			cfg = packConfig{keep: 3, trigger: 9, block: 4}
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			testPackModel(t, seed, cfg)
		})
	}
}

func testPackModel(t *testing.T, seed uint64, cfg packConfig) {
	ctx := t.Context()
	s := openDir(t, t.TempDir())
	defer s.Close()
	s.pack = cfg
	rng := rand.New(rand.NewPCG(seed, 1))
	model := map[string]storage.Message{} // key -> visible location
	hidden := map[string]bool{}
	next := int64(1000)
	payload := func(tst int64, v int) []byte {
		return fmt.Appendf(nil, `{"_type":"location","lat":%d.5,"lon":-%d.25,"tst":%d,"v":%d}`, v%80, v%170, tst, v)
	}
	keyOf := func(m *storage.Message) string { return string(recordKey(m.TST, messageHash(m))) }
	var all []storage.Message
	for step := range 200 {
		switch op := rng.IntN(10); {
		case op < 6: // append a batch: new fixes, some late, some again
			var batch []storage.Message
			n := 1 + rng.IntN(6)
			if rng.IntN(5) == 0 {
				n = 10 + rng.IntN(30) // an import's batch: packed straight away
			}
			for range n {
				var m storage.Message
				switch r := rng.IntN(10); {
				case r < 6 || len(all) == 0:
					next += int64(rng.IntN(3))
					m = storage.Message{TST: next, Payload: payload(next, rng.IntN(1000))}
				case r < 8:
					tst := next - int64(rng.IntN(200))
					m = storage.Message{TST: tst, Payload: payload(tst, rng.IntN(1000))}
				default:
					m = all[rng.IntN(len(all))]
				}
				m.User, m.Device, m.Type, m.Topic = "u", "d", "location", "owntracks/u/d"
				m.Received = 1700000000000 + int64(step)
				m.Lat, m.Lon = 1.5, -2.25
				batch = append(batch, m)
			}
			dup, err := s.Append(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range batch {
				k := keyOf(&m)
				_, seen := model[k]
				if dup[i] != (seen || hidden[k]) {
					t.Fatalf("step %d: append of tst %d: dup %v, model has it: %v", step, m.TST, dup[i], seen || hidden[k])
				}
				if !dup[i] {
					model[k] = m
					all = append(all, m)
				}
			}
		case op < 7: // delete a range
			from := next - int64(rng.IntN(300))
			to := from + int64(rng.IntN(40))
			if _, err := s.DeleteRange(ctx, "u", "d", from, to); err != nil {
				t.Fatal(err)
			}
			for k, m := range model {
				if m.TST >= from && m.TST <= to {
					delete(model, k)
				}
			}
			for k := range hidden {
				if tst := keyTST([]byte(k)); tst >= from && tst <= to {
					delete(hidden, k)
				}
			}
		case op < 8 && len(model) > 0: // hide or delete one point
			keys := slices.Sorted(maps.Keys(model))
			k := keys[rng.IntN(len(keys))]
			tst, id := keyTST([]byte(k)), recordID([]byte(k))
			if rng.IntN(2) == 0 {
				if n, err := s.HideLocations(ctx, "u", "d", tst, id, true); err != nil || n != 1 {
					t.Fatalf("hide: %d, %v", n, err)
				}
				hidden[k] = true
			} else if n, err := s.DeleteLocations(ctx, "u", "d", tst, id); err != nil || n != 1 {
				t.Fatalf("delete: %d, %v", n, err)
			}
			delete(model, k)
		case op < 9: // thin what is older than a point
			before, every := next-int64(rng.IntN(200)), int64(2+rng.IntN(5))
			if _, err := s.ThinLocations(ctx, "u", "d", before, every); err != nil {
				t.Fatal(err)
			}
			keys := slices.Sorted(maps.Keys(model))
			iv := int64(-1)
			for _, k := range keys {
				tst := keyTST([]byte(k))
				if tst >= before {
					break
				}
				if tst/every != iv {
					iv = tst / every
					continue
				}
				delete(model, k)
			}
		default: // unhide one
			for k := range hidden {
				if n, err := s.HideLocations(ctx, "u", "d", keyTST([]byte(k)), recordID([]byte(k)), false); err != nil || n != 1 {
					t.Fatalf("unhide: %d, %v", n, err)
				}
				delete(hidden, k)
				model[k] = messageByKey(all, k, keyOf)
				break
			}
		}
		checkModel(t, s, step, model)
	}
	if blocks := countBlocks(t, s); blocks == 0 {
		t.Fatal("nothing was packed")
	}
}

func messageByKey(all []storage.Message, k string, keyOf func(*storage.Message) string) storage.Message {
	for i := len(all) - 1; i >= 0; i-- { // the newest: the same fix may have been deleted and sent again
		if m := all[i]; keyOf(&m) == k {
			return m
		}
	}
	panic("no message with key")
}

// checkModel compares the store's locations with the model, forwards,
// backwards (newest n) and point by point.
func checkModel(t *testing.T, s *Store, step int, model map[string]storage.Message) {
	t.Helper()
	ctx := t.Context()
	keys := slices.Sorted(maps.Keys(model))
	var got []string
	err := s.Locations(ctx, storage.LocationQuery{User: "u", Device: "d", From: 0, To: maxTST}, func(m *storage.Message) error {
		got = append(got, string(recordKey(m.TST, messageHash(m))))
		want := model[string(recordKey(m.TST, messageHash(m)))]
		if !bytes.Equal(m.Payload, want.Payload) || m.Received != want.Received || m.Topic != want.Topic || m.Lat != want.Lat {
			t.Fatalf("step %d: read %+v, want %+v", step, m, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("step %d: store holds %d locations, model %d\n got %x\nwant %x", step, len(got), len(keys), got, keys)
	}
	if len(keys) == 0 {
		return
	}
	n := min(len(keys), 5)
	var newest []string
	err = s.Locations(ctx, storage.LocationQuery{User: "u", Device: "d", From: 0, To: maxTST, Limit: n}, func(m *storage.Message) error {
		newest = append(newest, string(recordKey(m.TST, messageHash(m))))
		return nil
	})
	if err != nil || !slices.Equal(newest, keys[len(keys)-n:]) {
		t.Fatalf("step %d: newest %d: %x, %v; want %x", step, n, newest, err, keys[len(keys)-n:])
	}
	mid := keyTST([]byte(keys[len(keys)/2]))
	at, err := s.LocationsAt(ctx, "u", "d", mid)
	if err != nil {
		t.Fatal(err)
	}
	visible := 0
	for _, l := range at {
		if !l.Hidden {
			visible++
		}
	}
	wantAt := 0
	for _, k := range keys {
		if keyTST([]byte(k)) == mid {
			wantAt++
		}
	}
	if visible != wantAt {
		t.Fatalf("step %d: %d visible at tst %d, want %d", step, visible, mid, wantAt)
	}
	last, err := s.LastLocations(ctx, "u", "d")
	if err != nil || len(last) != 1 || last[0].TST != keyTST([]byte(keys[len(keys)-1])) {
		t.Fatalf("step %d: last %+v, %v; want tst %d", step, last, err, keyTST([]byte(keys[len(keys)-1])))
	}
}

func countBlocks(t *testing.T, s *Store) int {
	n := 0
	s.hist.View(func(tx *bolt.Tx) error {
		if b := histBucket(tx, "u", "d", bucketPak); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}
