package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchWorld spreads n fences the way people draw them: two in three are
// circles, the rest 10-50 vertex polygons, 50 m to 1 km in radius
// (log-uniform: homes and shops more than parks). Up to 1000 fences share
// a city (30 km square, Berlin); more fill a country (800 km square,
// Germany), a fence per 6 km². Half the fixes are at a fence, the rest
// anywhere, with acc 5-50 m.
func benchWorld(n int) ([]*Fence, []Fix) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	size := 30_000.0
	if n > 1000 {
		size = 800_000
	}
	fences := make([]*Fence, n)
	for i := range fences {
		lat, lon := offset(51.1, 10.4, (rng.Float64()-0.5)*size, (rng.Float64()-0.5)*size)
		if n <= 1000 {
			lat, lon = offset(berlinLat, berlinLon, (rng.Float64()-0.5)*size, (rng.Float64()-0.5)*size)
		}
		radius := 50 * math.Pow(20, rng.Float64())
		var s Shape
		if i%3 == 2 {
			s = newPolygon(false, [][][][2]float64{{star(rng, lat, lon, radius, 10+rng.IntN(41))}})
		} else {
			s, _ = NewCircle(lat, lon, radius)
		}
		fences[i] = &Fence{ID: fmt.Sprint(i), Shape: s, Data: i}
	}
	all := fences[0].Shape.Bound()
	for _, f := range fences {
		all = all.Union(f.Shape.Bound())
	}
	fixes := make([]Fix, 4096)
	for i := range fixes {
		f := fences[rng.IntN(n)].Shape.Bound()
		lat, lon := (f.Min[1]+f.Max[1])/2, (f.Min[0]+f.Max[0])/2
		if i%2 == 1 {
			lat = all.Min[1] + rng.Float64()*(all.Max[1]-all.Min[1])
			lon = all.Min[0] + rng.Float64()*(all.Max[0]-all.Min[0])
		}
		fixes[i] = Fix{Lat: lat, Lon: lon, Acc: 5 + rng.Float64()*45}
	}
	return fences, fixes
}

// BenchmarkEvaluate is the work per incoming location: find the fences
// near it, and step the device's state for each.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000} {
		b.Run(fmt.Sprintf("fences=%d", n), func(b *testing.B) {
			fences, fixes := benchWorld(n)
			ix := NewIndex(fences)
			states := make([]State, n)
			var tst int64 = 1_780_000_000
			candidates, fired := 0, 0
			i := 0
			for b.Loop() {
				fix := fixes[i%len(fixes)]
				i++
				tst += 10
				fix.TST = tst
				ix.Search(fix.Lat, fix.Lon, DefaultHysteresis+fix.Acc, func(f *Fence) bool {
					k := f.Data.(int)
					var tr *Transition
					states[k], tr = Step(f, states[k], fix)
					candidates++
					if tr != nil {
						fired++
					}
					return true
				})
			}
			b.ReportMetric(float64(candidates)/float64(i), "candidates/op")
			b.ReportMetric(float64(fired)/float64(i), "transitions/op")
		})
	}
}

// BenchmarkEvaluateLinear is the baseline for BenchmarkEvaluate: the same
// fences and fixes, with every fence's bounding box checked in turn instead
// of the R-tree. It shows what the index saves as fences grow.
func BenchmarkEvaluateLinear(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000} {
		b.Run(fmt.Sprintf("fences=%d", n), func(b *testing.B) {
			fences, fixes := benchWorld(n)
			states := make([]State, n)
			var tst int64 = 1_780_000_000
			i := 0
			for b.Loop() {
				fix := fixes[i%len(fixes)]
				i++
				tst += 10
				fix.TST = tst
				q := queryBox(fix.Lat, fix.Lon, DefaultHysteresis+fix.Acc)
				for k, f := range fences {
					bd := f.Shape.Bound()
					if q.intersects(box{bd.Min[0], bd.Min[1], bd.Max[0], bd.Max[1]}) {
						states[k], _ = Step(f, states[k], fix)
					}
				}
			}
		})
	}
}

func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("fences=%d", n), func(b *testing.B) {
			fences, fixes := benchWorld(n)
			ix := NewIndex(fences)
			found, i := 0, 0
			for b.Loop() {
				fix := fixes[i%len(fixes)]
				i++
				ix.Search(fix.Lat, fix.Lon, 50, func(*Fence) bool {
					found++
					return true
				})
			}
			b.ReportMetric(float64(found)/float64(i), "found/op")
		})
	}
}

func BenchmarkNewIndex(b *testing.B) {
	fences, _ := benchWorld(100_000)
	for b.Loop() {
		NewIndex(fences)
	}
}

// wobbly is a closed ring of n vertices 95-100% of radius from (lat,
// lon), like a border traced from a map, unlike a star's spikes.
func wobbly(rng *rand.Rand, lat, lon, radius float64, n int) [][2]float64 {
	r := make([][2]float64, 0, n+1)
	for i := range n {
		a := float64(i) / float64(n) * 2 * math.Pi
		d := radius * (0.95 + 0.05*rng.Float64())
		la, lo := offset(lat, lon, d*math.Sin(a), d*math.Cos(a))
		r = append(r, [2]float64{lo, la})
	}
	return append(r, r[0])
}

// BenchmarkStep steps a device outside a fence with fixes near the
// border, where no early exit helps.
func BenchmarkStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	circle, _ := NewCircle(berlinLat, berlinLon, 200)
	shapes := []struct {
		name  string
		shape Shape
	}{
		{"circle", circle},
		{"polygon=10", newPolygon(false, [][][][2]float64{{star(rng, berlinLat, berlinLon, 200, 10)}})},
		{"polygon=50", newPolygon(false, [][][][2]float64{{star(rng, berlinLat, berlinLon, 200, 50)}})},
		{"polygon=10000", newPolygon(false, [][][][2]float64{{wobbly(rng, berlinLat, berlinLon, 20_000, 9_999)}})},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			f := &Fence{ID: "f", Shape: sh.shape}
			bd := sh.shape.Bound()
			fixes := make([]Fix, 1024)
			for i := range fixes {
				fixes[i] = Fix{Lat: bd.Min[1] + rng.Float64()*(bd.Max[1]-bd.Min[1]), Lon: bd.Min[0] + rng.Float64()*(bd.Max[0]-bd.Min[0]), Acc: 10}
			}
			var s State
			var tst int64
			for b.Loop() {
				fix := fixes[tst%int64(len(fixes))]
				tst++
				fix.TST = tst
				s, _ = Step(f, s, fix)
			}
		})
	}
}
