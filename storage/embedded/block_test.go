package embedded

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// walk makes n location records of one device like bench/loadgen's: a
// walk with noisy altitude, accuracy and pressure, a fix every step s.
func walk(n int, seed uint64, step int64) []blockRec {
	rng := rand.New(rand.NewPCG(seed, 7))
	lat, lon, heading := 45+float64(seed%10), 2+float64(seed%20), rng.Float64()*6
	tst := int64(1735689600)
	out := make([]blockRec, 0, n)
	for range n {
		heading += (rng.Float64() - 0.5) * 0.3
		speed := 5 + rng.Float64()*25
		d := speed * float64(step)
		lat += d * math.Cos(heading) / 111_320
		lon += d * math.Sin(heading) / (111_320 * math.Cos(lat*math.Pi/180))
		b := []byte(`{"_type":"location","tid":"ab","lat":`)
		b = strconv.AppendFloat(b, lat, 'f', 7, 64)
		b = append(b, `,"lon":`...)
		b = strconv.AppendFloat(b, lon, 'f', 7, 64)
		b = fmt.Appendf(b, `,"alt":%d,"acc":%d,"vac":%d,"vel":%d,"cog":%d,"batt":%d,"bs":1,"conn":"m","m":2,"t":"u","p":101.%d,"tst":%d,"created_at":%d}`,
			30+rng.IntN(40), 3+rng.IntN(20), 2+rng.IntN(8), int(speed*3.6), rng.IntN(360), 90, 100+rng.IntN(900), tst, tst+int64(rng.IntN(3)))
		la, _ := strconv.ParseFloat(strconv.FormatFloat(lat, 'f', 7, 64), 64)
		lo, _ := strconv.ParseFloat(strconv.FormatFloat(lon, 'f', 7, 64), 64)
		r := blockRec{tst: tst, received: tst*1000 + int64(rng.IntN(900)), lat: la, lon: lo, topic: "owntracks/alice/phone", typ: "location", payload: b}
		r.keyHash()
		out = append(out, r)
		tst += step
	}
	return out
}

func TestBlockRoundTrip(t *testing.T) {
	recs := walk(2000, 1, 26)
	recs[7].topic = "owntracks/Alice/phone"
	recs[9].explicit, recs[9].hash = true, recs[9].hash+1
	recs[11].payload = []byte(`{"_type":"location","lat":1,"lon":2,"tst":3,"extra":[1,2,3]}`)
	recs[11].hashed = false
	recs[11].keyHash()
	rawBytes := 0
	packed := 0
	var d blockDecoder
	for i := 0; i < len(recs); i += blockSize {
		chunk := recs[i:min(i+blockSize, len(recs))]
		v := encodeBlock(nil, chunk)
		packed += len(v)
		for _, r := range chunk {
			rawBytes += len(r.payload)
		}
		got, err := d.decode(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(chunk) {
			t.Fatalf("decoded %d records, want %d", len(got), len(chunk))
		}
		for j := range got {
			w, g := chunk[j], got[j]
			if g.tst != w.tst || g.received != w.received || g.lat != w.lat || g.lon != w.lon || g.topic != w.topic || g.typ != w.typ || !bytes.Equal(g.payload, w.payload) {
				t.Fatalf("record %d: got %+v\nwant %+v", i+j, g, w)
			}
			if !bytes.Equal(g.key(), w.key()) {
				t.Fatalf("record %d: key %x, want %x", i+j, g.key(), w.key())
			}
		}
	}
	t.Logf("%d records: payloads %.1f bytes each, packed %.1f bytes each", len(recs), float64(rawBytes)/float64(len(recs)), float64(packed)/float64(len(recs)))
}

func BenchmarkBlockDecode(b *testing.B) {
	recs := walk(blockSize, 3, 26)
	v := encodeBlock(nil, recs)
	var d blockDecoder
	b.SetBytes(int64(len(recs)))
	for b.Loop() {
		if _, err := d.decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlockEncode(b *testing.B) {
	recs := walk(blockSize, 3, 26)
	var buf []byte
	b.SetBytes(int64(len(recs)))
	for b.Loop() {
		buf = encodeBlock(buf[:0], recs)
	}
}

// FuzzDecodeBlock feeds the block decoder arbitrary bytes: it must return
// an error or records, never panic; and what it returns encodes back to
// a block that decodes to the same records.
func FuzzDecodeBlock(f *testing.F) {
	f.Add(encodeBlock(nil, walk(5, 1, 26)))
	odd := walk(3, 2, 1)
	odd[1].payload = []byte(`{"a":"x,y","b":[1,2]}`)
	odd[2].topic, odd[2].lat = "other", 1e-300
	odd[2].explicit, odd[2].hash = true, 42
	f.Add(encodeBlock(nil, odd))
	f.Fuzz(func(t *testing.T, v []byte) {
		var d blockDecoder
		recs, err := d.decode(v)
		if err != nil {
			return
		}
		again := encodeBlock(nil, cloneRecs(recs))
		var d2 blockDecoder
		recs2, err := d2.decode(again)
		if err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		for i := range recs {
			a, b := recs[i], recs2[i]
			if a.tst != b.tst || a.received != b.received || !bytes.Equal(a.payload, b.payload) || a.topic != b.topic ||
				math.Float64bits(a.lat) != math.Float64bits(b.lat) || math.Float64bits(a.lon) != math.Float64bits(b.lon) {
				t.Fatalf("record %d: %+v after a round trip, was %+v", i, b, a)
			}
		}
	})
}
