package geo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Berlin, Alexanderplatz: the centre of most test fences.
const berlinLat, berlinLon = 52.5219, 13.4132

// offset moves (lat, lon) north and east by metres, on the sphere.
func offset(lat, lon, north, east float64) (float64, float64) {
	lat2 := lat + north/degreeLen
	return lat2, lon + east/(degreeLen*math.Cos((lat+lat2)/2*radPerDeg))
}

// haversine is the reference great-circle distance in metres.
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	dLat, dLon := (lat2-lat1)*radPerDeg, (lon2-lon1)*radPerDeg
	a := math.Pow(math.Sin(dLat/2), 2) + math.Cos(lat1*radPerDeg)*math.Cos(lat2*radPerDeg)*math.Pow(math.Sin(dLon/2), 2)
	return 2 * earthRadius * math.Asin(math.Sqrt(a))
}

// square is a closed ring of a square of side metres around (lat, lon),
// counter-clockwise.
func square(lat, lon, side float64) [][2]float64 {
	h := side / 2
	s, w := offset(lat, lon, -h, -h)
	n, e := offset(lat, lon, h, h)
	return [][2]float64{{w, s}, {e, s}, {e, n}, {w, n}, {w, s}}
}

func TestCircleDistance(t *testing.T) {
	c, err := NewCircle(berlinLat, berlinLon, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		north, east float64
		want        float64
	}{
		{"centre", 0, 0, -100},
		{"50 m north", 50, 0, -50},
		{"on the border east", 0, 100, 0},
		{"200 m north", 200, 0, 100},
		{"1 km east", 0, 1000, 900},
		{"30 km south-west", -21213.2, -21213.2, 29900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lat, lon := offset(berlinLat, berlinLon, tc.north, tc.east)
			if got := c.Distance(lat, lon); math.Abs(got-tc.want) > 0.001*math.Abs(tc.want)+0.01 {
				t.Errorf("Distance = %.3f, want %.3f", got, tc.want)
			}
		})
	}
	lat, lon, r, ok := CircleOf(c)
	if !ok || lat != berlinLat || lon != berlinLon || r != 100 {
		t.Errorf("CircleOf = %v %v %v %v", lat, lon, r, ok)
	}
}

func TestNewCircleErrors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		lat, lon, rad float64
		want          string
	}{
		{"zero radius", 52, 13, 0, "the radius must be more than 0 metres"},
		{"negative radius", 52, 13, -5, "the radius must be more than 0 metres"},
		{"huge radius", 52, 13, 100_001, "the radius 100001 m is more than the maximum of 100000 m (100 km)"},
		{"NaN radius", 52, 13, math.NaN(), "the radius must be a number of metres"},
		{"latitude", 91, 13, 10, "circle centre: latitude 91 is out of range (-90 to 90)"},
		{"longitude", 52, -181, 10, "circle centre: longitude -181 is out of range (-180 to 180)"},
		{"NaN", math.NaN(), 13, 10, "circle centre: latitude and longitude must be finite numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCircle(tc.lat, tc.lon, tc.rad)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCircleBound checks that every point of the circle's border, and so
// the circle, lies inside its bound, including near a pole.
func TestCircleBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lat, lon float64
		radius   float64
	}{
		{"berlin", berlinLat, berlinLon, 500},
		{"big", 60, 10, 100_000},
		{"south", -33.87, 151.21, 2000},
		{"near pole", 89.5, 0, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewCircle(tc.lat, tc.lon, tc.radius)
			if err != nil {
				t.Fatal(err)
			}
			b := s.Bound()
			phi, theta := tc.lat*radPerDeg, tc.radius/earthRadius
			for i := range 3600 {
				// Destination point along bearing i/10 degrees.
				brg := float64(i) / 10 * radPerDeg
				lat2 := math.Asin(math.Sin(phi)*math.Cos(theta) + math.Cos(phi)*math.Sin(theta)*math.Cos(brg))
				lon2 := tc.lon*radPerDeg + math.Atan2(math.Sin(brg)*math.Sin(theta)*math.Cos(phi), math.Cos(theta)-math.Sin(phi)*math.Sin(lat2))
				la, lo := lat2/radPerDeg, lon2/radPerDeg
				if !b.Contains([2]float64{lo, la}) {
					t.Fatalf("border point %v,%v outside bound %v", la, lo, b)
				}
				if d := s.Distance(la, lo); math.Abs(d) > 0.01 {
					t.Fatalf("border point %v,%v at distance %v", la, lo, d)
				}
			}
		})
	}
}

func TestPolygonDistance(t *testing.T) {
	outer := square(berlinLat, berlinLon, 1000)
	hole := square(berlinLat, berlinLon, 200)
	eLat, eLon := offset(berlinLat, berlinLon, 0, 3000)
	east := square(eLat, eLon, 1000)
	for _, tc := range []struct {
		name        string
		shape       *polygon
		north, east float64
		want        float64
	}{
		{"square centre", newPolygon(false, [][][][2]float64{{outer}}), 0, 0, -500},
		{"square 100 m inside east", newPolygon(false, [][][][2]float64{{outer}}), 0, 400, -100},
		{"square 100 m north", newPolygon(false, [][][][2]float64{{outer}}), 600, 0, 100},
		{"square corner diagonal", newPolygon(false, [][][][2]float64{{outer}}), 800, 900, 500},
		{"square on the border", newPolygon(false, [][][][2]float64{{outer}}), 500, 123, 0},
		{"hole centre", newPolygon(false, [][][][2]float64{{outer, hole}}), 0, 0, 100},
		{"between hole and outer", newPolygon(false, [][][][2]float64{{outer, hole}}), 0, 300, -200},
		{"clockwise hole", newPolygon(false, [][][][2]float64{{outer, reversed(hole)}}), 0, 0, 100},
		{"multi in second", newPolygon(true, [][][][2]float64{{outer}, {east}}), 0, 3100, -400},
		{"multi between", newPolygon(true, [][][][2]float64{{outer}, {east}}), 0, 1400, 900},
		{"multi in first", newPolygon(true, [][][][2]float64{{outer}, {east}}), -300, 0, -200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lat, lon := offset(berlinLat, berlinLon, tc.north, tc.east)
			if got := tc.shape.Distance(lat, lon); math.Abs(got-tc.want) > 0.001*math.Abs(tc.want)+0.01 {
				t.Errorf("Distance = %.3f, want %.3f", got, tc.want)
			}
		})
	}
}

func reversed(r [][2]float64) [][2]float64 {
	out := make([][2]float64, len(r))
	for i, p := range r {
		out[len(r)-1-i] = p
	}
	return out
}

// TestPolygonLarge checks the projection at the largest fence scale:
// distances of 50 km from the centre of a 100 km square at 60°N, against
// great-circle distances to the square's meridians and parallels.
func TestPolygonLarge(t *testing.T) {
	const lat, lon = 60.0, 10.0
	dLat := 50_000 / degreeLen
	dLon := 1.0 // about 55.6 km at 60°N
	ring := [][2]float64{{lon - dLon, lat - dLat}, {lon + dLon, lat - dLat}, {lon + dLon, lat + dLat}, {lon - dLon, lat + dLat}, {lon - dLon, lat - dLat}}
	p := newPolygon(false, [][][][2]float64{{ring}})
	// The nearest edge from the centre is north or south at 50 km
	// (meridian arcs are exact); the east edge is a meridian at 1°, at
	// great-circle distance asin(sin 1° · cos 60°).
	toEast := math.Asin(math.Sin(dLon*radPerDeg)*math.Cos(lat*radPerDeg)) * earthRadius
	for _, tc := range []struct {
		name     string
		lat, lon float64
		want     float64
	}{
		{"centre", lat, lon, -math.Min(50_000, toEast)},
		{"10 km east of the east edge", lat, lon + dLon + 10_000/(degreeLen*math.Cos(lat*radPerDeg)), 10_000},
		{"80 km north", lat + 80_000/degreeLen, lon, 30_000},
		{"near the east edge", lat + 0.1, lon + dLon*0.99, -haversine(lat+0.1, lon+dLon*0.99, lat+0.1, lon+dLon)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Distance(tc.lat, tc.lon)
			if math.Abs(got-tc.want) > 0.01*math.Abs(tc.want) {
				t.Errorf("Distance = %.1f, want %.1f (1%%)", got, tc.want)
			}
		})
	}
}

// TestPolygonReference compares Distance on random polygons with a brute
// force reference: the sign from a point-in-polygon test in plain
// longitude/latitude, the magnitude from great-circle distances to points
// sampled densely along every edge.
func TestPolygonReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		radius := 100 + rng.Float64()*5000
		var rings [][][2]float64
		n := 5 + rng.IntN(60)
		if i%8 == 7 {
			n = 300 + rng.IntN(700) // several blocks of chunks
		}
		rings = append(rings, star(rng, berlinLat, berlinLon, radius, n))
		if i%3 == 0 {
			rings = append(rings, star(rng, berlinLat, berlinLon, radius/5, 5+rng.IntN(10)))
		}
		p := newPolygon(false, [][][][2]float64{rings})
		points := 50
		if n > 100 {
			points = 8
		}
		for range points {
			lat, lon := offset(berlinLat, berlinLon, (rng.Float64()*2-1)*radius*1.5, (rng.Float64()*2-1)*radius*1.5)
			got := p.Distance(lat, lon)
			want := referenceDistance(rings, lat, lon)
			if math.Abs(want) > 1 && (got < 0) != (want < 0) {
				t.Fatalf("polygon %d point %v,%v: Distance %v, reference %v: sign differs", i, lat, lon, got, want)
			}
			// Edges are straight in different projections; at these
			// sizes they part by centimetres.
			if math.Abs(got-want) > 0.002*math.Abs(want)+0.1 {
				t.Fatalf("polygon %d point %v,%v: Distance %v, reference %v", i, lat, lon, got, want)
			}
		}
	}
}

// star is a closed ring of n vertices at random distances up to radius
// around (lat, lon), in angle order so it never crosses itself.
func star(rng *rand.Rand, lat, lon, radius float64, n int) [][2]float64 {
	r := make([][2]float64, 0, n+1)
	for i := range n {
		a := (float64(i) + rng.Float64()*0.8) / float64(n) * 2 * math.Pi
		d := radius * (0.3 + 0.7*rng.Float64())
		la, lo := offset(lat, lon, d*math.Sin(a), d*math.Cos(a))
		r = append(r, [2]float64{lo, la})
	}
	return append(r, r[0])
}

func referenceDistance(rings [][][2]float64, lat, lon float64) float64 {
	inside := false
	best := math.Inf(1)
	for _, r := range rings {
		for i := 1; i < len(r); i++ {
			a, b := r[i-1], r[i]
			if (a[1] > lat) != (b[1] > lat) && lon < a[0]+(lat-a[1])*(b[0]-a[0])/(b[1]-a[1]) {
				inside = !inside
			}
			// Every point of the edge is within half its length of an
			// end, so an edge whose ends are far enough cannot be nearer.
			if math.Min(haversine(lat, lon, a[1], a[0]), haversine(lat, lon, b[1], b[0]))-haversine(a[1], a[0], b[1], b[0])/2 > best {
				continue
			}
			// The distance along a short edge is unimodal: a
			// golden-section search finds its minimum.
			at := func(f float64) float64 {
				return haversine(lat, lon, a[1]+f*(b[1]-a[1]), a[0]+f*(b[0]-a[0]))
			}
			const g = 0.6180339887498949
			lo, hi := 0.0, 1.0
			m1, m2 := hi-g*(hi-lo), lo+g*(hi-lo)
			f1, f2 := at(m1), at(m2)
			for range 45 {
				if f1 < f2 {
					hi, m2, f2 = m2, m1, f1
					m1 = hi - g*(hi-lo)
					f1 = at(m1)
				} else {
					lo, m1, f1 = m1, m2, f2
					m2 = lo + g*(hi-lo)
					f2 = at(m2)
				}
			}
			best = math.Min(best, math.Min(at(0), math.Min(at(1), at((lo+hi)/2))))
		}
	}
	if inside {
		return -best
	}
	return best
}

// TestDistanceWithin checks the cut-off distance Step uses against the
// full one.
func TestDistanceWithin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 30 {
		radius := 100 + rng.Float64()*20_000
		rings := [][][2]float64{star(rng, berlinLat, berlinLon, radius, 5+rng.IntN(2000))}
		if i%2 == 0 {
			rings = append(rings, star(rng, berlinLat, berlinLon, radius/4, 5+rng.IntN(100)))
		}
		p := newPolygon(false, [][][][2]float64{rings})
		for range 200 {
			lat, lon := offset(berlinLat, berlinLon, (rng.Float64()*2-1)*radius*1.2, (rng.Float64()*2-1)*radius*1.2)
			limit := rng.Float64() * 300
			d, w := p.Distance(lat, lon), p.distanceWithin(lat, lon, limit)
			want := d
			if math.Abs(d) >= limit {
				want = math.Copysign(limit, d)
			}
			if w != want {
				t.Fatalf("polygon %d point %v,%v: distanceWithin(%v) = %v, Distance %v", i, lat, lon, limit, w, d)
			}
		}
	}
}

func TestNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	big := newPolygon(false, [][][][2]float64{{star(rng, berlinLat, berlinLon, 5000, 5000)}})
	f := &Fence{Shape: big}
	fences, _ := benchWorld(1000)
	ix := NewIndex(fences)
	var tst int64
	for name, fn := range map[string]func(){
		"Distance": func() { big.Distance(berlinLat, berlinLon) },
		"Step":     func() { tst++; Step(f, State{Inside: true}, Fix{TST: tst, Lat: berlinLat, Lon: berlinLon, Acc: 10}) },
		"Search": func() {
			n := 0
			ix.Search(berlinLat, berlinLon, 100, func(*Fence) bool { n++; return true })
		},
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s: %v allocations", name, a)
		}
	}
}
