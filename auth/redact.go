package auth

import (
	"encoding/json"
	"math"

	"github.com/wherehouse/wherehouse/geo"
)

// revealing are members that would give away more than a coarse position.
var revealing = []string{"SSID", "BSSID", "ssid", "bssid", "inregions", "inrids", "addr", "poi", "image", "imagename", "tag", "desc", "wtst", "rid"}

// Coarsen applies a precision grant to a message payload: lat/lon snapped
// to the grid, acc raised to the cell size, members that reveal places
// removed. It returns the new payload and position. A payload without
// lat/lon is returned unchanged; one that cannot be read is replaced by
// nothing (never leaked).
func Coarsen(payload []byte, lat, lon float64, precision int) ([]byte, float64, float64) {
	if precision <= 0 {
		return payload, lat, lon
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, 0, 0
	}
	_, hasLat := m["lat"]
	_, hasLon := m["lon"]
	if !hasLat || !hasLon {
		return payload, lat, lon
	}
	json.Unmarshal(m["lat"], &lat)
	json.Unmarshal(m["lon"], &lon)
	lat, lon = geo.Coarsen(lat, lon, float64(precision))
	m["lat"], _ = json.Marshal(lat)
	m["lon"], _ = json.Marshal(lon)
	var acc float64
	json.Unmarshal(m["acc"], &acc)
	m["acc"], _ = json.Marshal(int(math.Max(acc, float64(precision))))
	for _, k := range revealing {
		delete(m, k)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, 0, 0
	}
	return out, lat, lon
}
