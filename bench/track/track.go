// Package track generates the OwnTracks location payloads the benchmark
// tools send and write: one device's walk around Europe at 5–30 m/s, with
// the fields the Android and iOS apps send in move mode (about 205 bytes).
package track

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Track is one device's walk. The same n and seed give the same fixes.
type Track struct {
	TST      int64 // time of the newest fix, UNIX seconds
	tid      string
	lat, lon float64
	heading  float64
	batt     int
	rng      *rand.Rand
}

// New returns device n's walk, seeded with seed, before its first fix at
// tst: the first AppendFix moves it to tst+gap.
func New(n int, seed uint64, tst int64) *Track {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	return &Track{
		TST: tst,
		tid: fmt.Sprintf("%02d", n%100),
		// Spread the devices over Europe.
		lat: 45 + float64(n%10), lon: 2 + float64(n/10%20),
		heading: rng.Float64() * 2 * math.Pi,
		batt:    100, rng: rng,
	}
}

// Gap returns seconds to the next fix: uniform between half and one and a
// half times interval, at least 1 so no two fixes share a tst.
func (t *Track) Gap(interval int64) int64 {
	lo := max(1, interval/2)
	hi := max(lo, interval+interval/2)
	return lo + t.rng.Int64N(hi-lo+1)
}

// AppendFix moves the device on by gap seconds and appends the payload of
// the fix there to b.
func (t *Track) AppendFix(b []byte, gap int64) []byte {
	t.TST += gap
	t.heading += (t.rng.Float64() - 0.5) * 0.3
	speed := 5 + t.rng.Float64()*25 // m/s
	d := speed * float64(gap)
	t.lat += d * math.Cos(t.heading) / 111_320
	t.lon += d * math.Sin(t.heading) / (111_320 * math.Cos(t.lat*math.Pi/180))
	if t.lat > 80 || t.lat < -80 {
		t.heading += math.Pi
	}
	if t.lon > 180 {
		t.lon -= 360
	} else if t.lon < -180 {
		t.lon += 360
	}
	if t.rng.IntN(200) == 0 && t.batt > 5 {
		t.batt--
	}
	cog := int(math.Mod(t.heading*180/math.Pi+720, 360))
	b = append(b, `{"_type":"location","tid":"`...)
	b = append(b, t.tid...)
	b = append(b, `","lat":`...)
	b = strconv.AppendFloat(b, t.lat, 'f', 7, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, t.lon, 'f', 7, 64)
	b = append(b, `,"alt":`...)
	b = strconv.AppendInt(b, int64(30+t.rng.IntN(40)), 10)
	b = append(b, `,"acc":`...)
	b = strconv.AppendInt(b, int64(3+t.rng.IntN(20)), 10)
	b = append(b, `,"vac":`...)
	b = strconv.AppendInt(b, int64(2+t.rng.IntN(8)), 10)
	b = append(b, `,"vel":`...)
	b = strconv.AppendInt(b, int64(speed*3.6), 10)
	b = append(b, `,"cog":`...)
	b = strconv.AppendInt(b, int64(cog), 10)
	b = append(b, `,"batt":`...)
	b = strconv.AppendInt(b, int64(t.batt), 10)
	b = append(b, `,"bs":1,"conn":"m","m":2,"t":"u","p":101.`...)
	b = strconv.AppendInt(b, int64(100+t.rng.IntN(900)), 10)
	b = append(b, `,"tst":`...)
	b = strconv.AppendInt(b, t.TST, 10)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, t.TST+int64(t.rng.IntN(3)), 10)
	return append(b, '}')
}
