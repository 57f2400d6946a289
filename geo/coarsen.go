package geo

import "math"

// metresPerDegree is the length of one degree of latitude (and of
// longitude at the equator) on the WGS84 sphere approximation.
const metresPerDegree = 111_320.0

// Coarsen snaps a position to the centre of a grid cell about metres wide,
// so a viewer learns only which cell someone is in. Every point of a cell
// maps to the same centre, so repeated fixes reveal nothing finer. The
// longitude step is taken at the cell's latitude band, keeping cells
// roughly square away from the equator.
func Coarsen(lat, lon float64, metres float64) (float64, float64) {
	if metres <= 0 {
		return lat, lon
	}
	latStep := metres / metresPerDegree
	cellLat := math.Floor(lat/latStep)*latStep + latStep/2
	cellLat = math.Max(-90, math.Min(90, cellLat))
	cos := math.Cos(cellLat * math.Pi / 180)
	if cos < 0.01 {
		cos = 0.01
	}
	lonStep := math.Min(360, metres/(metresPerDegree*cos))
	cellLon := math.Floor((lon+180)/lonStep)*lonStep + lonStep/2 - 180
	cellLon = math.Max(-180, math.Min(180, cellLon))
	return round6(cellLat), round6(cellLon)
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }
