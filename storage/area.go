package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// AreaQuery asks where devices were inside a bounding box during a time
// range: "where was I near here, between these dates".
type AreaQuery struct {
	// The box, in degrees. MinLon > MaxLon is a box across the
	// antimeridian.
	MinLat, MinLon, MaxLat, MaxLon float64
	From, To                       int64 // fix time, UNIX seconds, inclusive
	// Allow says which devices may be searched; nil allows every device.
	// It is called once per device a query meets.
	Allow func(user, device string) bool
	// Limit is the most locations one call hands out (a page).
	Limit int
	// After continues a previous page: only locations ordered after it.
	After *AreaCursor
}

// AreaCursor is a position in the order of an area query's answer: by
// tst, then user, device and ID.
type AreaCursor struct {
	TST          int64
	User, Device string
	ID           string
}

// Before reports whether c comes before the location (tst, user, device,
// id): whether a page that ended at c goes on with it.
func (c *AreaCursor) Before(tst int64, user, device, id string) bool {
	switch {
	case tst != c.TST:
		return c.TST < tst
	case user != c.User:
		return c.User < user
	case device != c.Device:
		return c.Device < device
	}
	return c.ID < id
}

// Check reports what is wrong with q's box and range, if anything.
func (q *AreaQuery) Check() error {
	for _, v := range []float64{q.MinLat, q.MinLon, q.MaxLat, q.MaxLon} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("the box must be finite numbers")
		}
	}
	switch {
	case q.MinLat < -90 || q.MaxLat > 90:
		return errors.New("latitudes must be within -90 and 90")
	case q.MinLon < -180 || q.MinLon > 180 || q.MaxLon < -180 || q.MaxLon > 180:
		return errors.New("longitudes must be within -180 and 180")
	case q.MinLat > q.MaxLat:
		return fmt.Errorf("the box's south edge %g is north of its north edge %g", q.MinLat, q.MaxLat)
	case q.Limit <= 0:
		return errors.New("limit must be positive")
	}
	return nil
}

// Contains reports whether (lat, lon) is inside q's box, edges included.
func (q *AreaQuery) Contains(lat, lon float64) bool {
	if lat < q.MinLat || lat > q.MaxLat {
		return false
	}
	if q.MinLon <= q.MaxLon {
		return lon >= q.MinLon && lon <= q.MaxLon
	}
	return lon >= q.MinLon || lon <= q.MaxLon
}

// Areas answers area queries from a spatial index over history.
type Areas interface {
	// LocationsIn calls fn for the visible locations inside q's box and
	// range, of the devices q allows, ordered by tst, user, device and
	// ID, after q.After, at most q.Limit of them. It returns where the
	// next page starts, nil when there is nothing more.
	LocationsIn(ctx context.Context, q AreaQuery, fn func(*StoredLocation) error) (*AreaCursor, error)
}
