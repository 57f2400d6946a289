package geo

import (
	"math"
	"testing"
)

// distance is the equirectangular approximation, fine at these scales.
func distance(lat1, lon1, lat2, lon2 float64) float64 {
	x := (lon2 - lon1) * math.Cos((lat1+lat2)/2*math.Pi/180)
	y := lat2 - lat1
	return math.Sqrt(x*x+y*y) * metresPerDegree
}

func TestCoarsen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lat, lon float64
		metres   float64
	}{
		{"berlin 1km", 52.520008, 13.404954, 1000},
		{"berlin 100m", 52.520008, 13.404954, 100},
		{"equator 5km", 0.0001, -0.0001, 5000},
		{"south 1km", -33.8688, 151.2093, 1000},
		{"dateline", 10, 179.9999, 1000},
		{"near pole", 89.9, 10, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lat, lon := Coarsen(tc.lat, tc.lon, tc.metres)
			if lat == tc.lat && lon == tc.lon {
				t.Fatal("position unchanged")
			}
			if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
				t.Fatalf("out of range: %v,%v", lat, lon)
			}
			if d := distance(tc.lat, tc.lon, lat, lon); d > tc.metres && tc.lat < 80 {
				t.Errorf("moved %.0f m, more than the cell size %v", d, tc.metres)
			}
			// Nearby points in the same cell give the same answer.
			lat2, lon2 := Coarsen(tc.lat+1e-7, tc.lon+1e-7, tc.metres)
			if d := distance(lat, lon, lat2, lon2); d != 0 && d < tc.metres/2 {
				t.Errorf("a point 1 cm away maps to another cell centre %.1f m off", d)
			}
		})
	}
	if lat, lon := Coarsen(1.234567, 2.345678, 0); lat != 1.234567 || lon != 2.345678 {
		t.Error("precision 0 must not change the position")
	}
}
