package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomFences makes n circles and polygons (radius 30 m to size/20) at
// random within a square of side size metres around (lat, lon).
func randomFences(rng *rand.Rand, n int, lat, lon, size float64) []*Fence {
	fences := make([]*Fence, n)
	for i := range fences {
		cLat, cLon := offset(lat, lon, (rng.Float64()-0.5)*size, (rng.Float64()-0.5)*size)
		radius := 30 + rng.Float64()*math.Min(size/20, maxRadius-30)
		var s Shape
		if i%3 == 2 {
			s = newPolygon(false, [][][][2]float64{{star(rng, cLat, cLon, radius, 10+rng.IntN(41))}})
		} else {
			var err error
			if s, err = NewCircle(cLat, cLon, radius); err != nil {
				panic(err)
			}
		}
		fences[i] = &Fence{ID: fmt.Sprint(i), Shape: s}
	}
	return fences
}

func TestIndexSearch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		size   float64 // metres
		points int
	}{
		{"empty", 0, 10_000, 100},
		{"one", 1, 10_000, 1000},
		{"city", 17, 20_000, 2000},
		{"leaf and a half", 24, 20_000, 2000},
		{"two levels", 300, 30_000, 1000},
		{"country", 5000, 800_000, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.n), 7))
			fences := randomFences(rng, tc.n, berlinLat, berlinLon, tc.size)
			ix := NewIndex(append(fences, nil, &Fence{ID: "no shape"}))
			if ix.Len() != tc.n {
				t.Fatalf("Len = %d, want %d", ix.Len(), tc.n)
			}
			for i := range tc.points {
				lat, lon := offset(berlinLat, berlinLon, (rng.Float64()-0.5)*tc.size*1.2, (rng.Float64()-0.5)*tc.size*1.2)
				if i%4 == 0 && tc.n > 0 {
					// Close to a fence, so most searches find something.
					c := fences[rng.IntN(tc.n)].Shape.Bound().Center()
					lat, lon = c[1], c[0]
				}
				margin := []float64{0, 20, 250, 5000}[i%4]
				var got []string
				ix.Search(lat, lon, margin, func(f *Fence) bool {
					got = append(got, f.ID)
					return true
				})
				var want []string
				q := queryBox(lat, lon, margin)
				for _, f := range fences {
					b := f.Shape.Bound()
					if q.intersects(box{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}) {
						want = append(want, f.ID)
					}
					// Search is sound: every fence within margin is found.
					if d := f.Shape.Distance(lat, lon); d <= margin && !q.intersects(box{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}) {
						t.Fatalf("fence %s at %.3f m is within the margin %v but not found", f.ID, d, margin)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("point %v,%v margin %v: Search found %v, want %v", lat, lon, margin, got, want)
				}
			}
		})
	}
}

func TestIndexSearchStops(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fences := make([]*Fence, 100)
	for i := range fences {
		s, err := NewCircle(berlinLat, berlinLon, 50+rng.Float64()*100)
		if err != nil {
			t.Fatal(err)
		}
		fences[i] = &Fence{ID: fmt.Sprint(i), Shape: s}
	}
	ix := NewIndex(fences)
	calls := 0
	ix.Search(berlinLat, berlinLon, 0, func(*Fence) bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Errorf("fn called %d times after returning false, want 3", calls)
	}
}

func TestQueryBox(t *testing.T) {
	for _, tc := range []struct {
		name             string
		lat, lon, margin float64
	}{
		{"berlin", berlinLat, berlinLon, 1000},
		{"equator", 0, 0, 50_000},
		{"south", -60, 100, 100_000},
		{"near pole", 89.99, 0, 5000},
		{"negative margin", 10, 10, -5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := queryBox(tc.lat, tc.lon, tc.margin)
			// Every point margin metres away lies in the box.
			for i := range 360 {
				a := float64(i) * radPerDeg
				lat, lon := offset(tc.lat, tc.lon, math.Max(0, tc.margin)*math.Sin(a), math.Max(0, tc.margin)*math.Cos(a))
				if lat > 90 {
					continue
				}
				lon = math.Remainder(lon, 360)
				if !q.intersects(box{lon, lat, lon, lat}) {
					t.Fatalf("point %v,%v at %v m is outside the box %+v", lat, lon, tc.margin, q)
				}
			}
		})
	}
}

// TestSearchSound looks for a fence within margin that Search misses,
// with points in the band just outside fences' borders, where a too
// small growth would show.
func TestSearchSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, lat := range []float64{0, berlinLat, -70} {
		t.Run(fmt.Sprint(lat), func(t *testing.T) {
			fences := randomFences(rng, 300, lat, 10, 1_000_000)
			ix := NewIndex(fences)
			for _, f := range fences {
				b := f.Shape.Bound()
				c := b.Center()
				half := (b.Max[1] - b.Min[1]) / 2 * degreeLen
				for range 200 {
					margin := rng.Float64() * 3000
					a := rng.Float64() * 2 * math.Pi
					r := half * (0.3 + 0.7*rng.Float64() + margin/half*rng.Float64())
					pLat, pLon := offset(c[1], c[0], r*math.Sin(a), r*math.Cos(a))
					if d := f.Shape.Distance(pLat, pLon); d > margin {
						continue
					}
					found := false
					ix.Search(pLat, pLon, margin, func(g *Fence) bool {
						found = g == f
						return !found
					})
					if !found {
						t.Fatalf("fence %s at %.3f m from %v,%v is within the margin %v but not found",
							f.ID, f.Shape.Distance(pLat, pLon), pLat, pLon, margin)
					}
				}
			}
		})
	}
}
