package geo

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// Distances are taken on a sphere of the IUGG mean Earth radius. At fence
// scales (up to 100 km) the difference from the WGS84 ellipsoid is a few
// tenths of a percent, well inside a phone's accuracy.
const (
	earthRadius = 6_371_008.8                 // metres
	degreeLen   = earthRadius * math.Pi / 180 // metres per degree of arc
	radPerDeg   = math.Pi / 180               // radians per degree
	halfRad     = math.Pi / 360               // radians per degree, halved
	maxRadius   = 100_000.0                   // metres; the largest circle
	boundPad    = 1e-9                        // degrees (0.1 mm) added to bounds against rounding
	maxVertices = 10_000                      // positions in one polygon or multipolygon
	minRingArea = 1.0                         // square metres a ring must enclose
)

// Shape is a fence's area.
type Shape interface {
	// Bound is the shape's bounding box (lon = X, lat = Y).
	Bound() orb.Bound
	// Distance is the signed distance in metres from (lat, lon) to the
	// border: negative inside, positive outside.
	Distance(lat, lon float64) float64
}

// circle is a spherical cap: every point within radius metres
// (great-circle distance) of the centre.
type circle struct {
	lat, lon, radius float64
	cosLat           float64 // cos of the centre's latitude, for haversine
	bound            orb.Bound
}

// NewCircle returns the circle of radius metres around (lat, lon). The
// radius must be more than 0 and at most 100 km; larger areas are better
// drawn as polygons. A circle reaching over the 180° meridian has its
// bound clipped there, so the part beyond is not found by an Index.
func NewCircle(lat, lon, radius float64) (Shape, error) {
	if err := checkPosition(lat, lon); err != nil {
		return nil, fmt.Errorf("circle centre: %w", err)
	}
	switch {
	case math.IsNaN(radius) || math.IsInf(radius, 0):
		return nil, fmt.Errorf("the radius must be a number of metres")
	case radius <= 0:
		return nil, fmt.Errorf("the radius must be more than 0 metres")
	case radius > maxRadius:
		return nil, fmt.Errorf("the radius %g m is more than the maximum of %g m (100 km)", radius, maxRadius)
	}
	c := &circle{lat: lat, lon: lon, radius: radius, cosLat: math.Cos(lat * radPerDeg)}
	c.bound = capBound(lat, lon, radius)
	return c, nil
}

// capBound is the bounding box of a spherical cap. Its longitude extent is
// the widest point of the cap, asin(sin θ / cos φ), which lies poleward of
// the centre; a cap holding a pole spans every longitude.
func capBound(lat, lon, radius float64) orb.Bound {
	theta := radius / earthRadius
	dLat := theta / radPerDeg
	minLat, maxLat := lat-dLat, lat+dLat
	if minLat <= -90 || maxLat >= 90 {
		return orb.Bound{
			Min: orb.Point{-180, math.Max(-90, minLat-boundPad)},
			Max: orb.Point{180, math.Min(90, maxLat+boundPad)},
		}
	}
	s := math.Sin(theta) / math.Cos(lat*radPerDeg)
	if s >= 1 {
		return orb.Bound{Min: orb.Point{-180, minLat - boundPad}, Max: orb.Point{180, maxLat + boundPad}}
	}
	dLon := math.Asin(s)/radPerDeg + boundPad
	return orb.Bound{
		Min: orb.Point{math.Max(-180, lon-dLon), minLat - boundPad},
		Max: orb.Point{math.Min(180, lon+dLon), maxLat + boundPad},
	}
}

func (c *circle) Bound() orb.Bound { return c.bound }

// Distance is the haversine distance to the centre less the radius.
func (c *circle) Distance(lat, lon float64) float64 {
	sLat := math.Sin((lat - c.lat) * halfRad)
	sLon := math.Sin((lon - c.lon) * halfRad)
	a := sLat*sLat + c.cosLat*math.Cos(lat*radPerDeg)*sLon*sLon
	return 2*earthRadius*math.Asin(math.Sqrt(math.Min(1, a))) - c.radius
}

// CircleOf reports a circle's centre and radius; ok is false for any other
// shape.
func CircleOf(s Shape) (lat, lon, radius float64, ok bool) {
	c, ok := s.(*circle)
	if !ok {
		return 0, 0, 0, false
	}
	return c.lat, c.lon, c.radius, true
}

func checkPosition(lat, lon float64) error {
	switch {
	case math.IsNaN(lat) || math.IsInf(lat, 0) || math.IsNaN(lon) || math.IsInf(lon, 0):
		return fmt.Errorf("latitude and longitude must be finite numbers")
	case lat < -90 || lat > 90:
		return fmt.Errorf("latitude %g is out of range (-90 to 90)", lat)
	case lon < -180 || lon > 180:
		return fmt.Errorf("longitude %g is out of range (-180 to 180)", lon)
	}
	return nil
}

// polygon is a Polygon or a MultiPolygon: the union of its parts, each
// part the even-odd interior of its rings (the outer boundary and holes).
//
// Distance works in a projection centred on the asked point: a vertex at
// (φᵢ, λᵢ) maps to ((λᵢ-λ)·cos((φᵢ+φ)/2), φᵢ-φ) in degrees of arc, the
// equirectangular projection with each vertex scaled at its mean latitude
// with the point. Distances from the point to vertices are then accurate to
// well under 0.1% at 100 km (the error grows with the square of the
// distance), and edges are straight lines between projected vertices. The
// inside test is done in the same projection so the sign never disagrees
// with the magnitude: the distance is continuous and zero on the border.
// cos((φᵢ+φ)/2) comes from the stored cos and sin of φᵢ/2 by the angle sum
// identity, so a vertex costs a few multiplications and no trigonometry.
//
// Edges are grouped in chunks of up to chunkEdges with a bounding box, so
// a point skips every chunk that can neither hold a ray crossing nor come
// closer than the nearest edge found so far: a large polygon costs little
// more than its nearby edges.
//
// There is no antimeridian support: longitudes are taken as they are, so a
// polygon meant to cross the 180° meridian must be split in two parts of a
// MultiPolygon.
type polygon struct {
	multi  bool
	coords [][][][2]float64 // parts, rings, positions [lon, lat] as given
	vs     []vertex         // every ring's positions, closing one included
	chunks []chunk
	parts  []part
	bound  orb.Bound
}

// vertex is one position with the cosine and sine of half its latitude.
type vertex struct{ lat, lon, ch, sh float64 }

// chunk is a run of edges vs[lo]→vs[lo+1] … vs[hi-1]→vs[hi] of one ring.
type chunk struct {
	lo, hi                         int
	minLat, maxLat, minLon, maxLon float64
	// Cosine and sine of half of minLat and of maxLat: the smallest
	// horizontal scale over the chunk is at one of them (cos is concave).
	chMin, shMin, chMax, shMax float64
}

// part is one polygon of a MultiPolygon: chunks[lo:hi].
type part struct{ lo, hi int }

// chunkEdges is how many edges share one bounding box. 16 keeps the box
// test cheap next to the edges it saves on a 10-50 vertex fence.
const chunkEdges = 16

func newPolygon(multi bool, coords [][][][2]float64) *polygon {
	p := &polygon{multi: multi, coords: coords}
	n := 0
	for _, rings := range coords {
		for _, r := range rings {
			n += len(r)
		}
	}
	p.vs = make([]vertex, 0, n)
	p.bound = orb.Bound{Min: orb.Point{math.Inf(1), math.Inf(1)}, Max: orb.Point{math.Inf(-1), math.Inf(-1)}}
	for _, rings := range coords {
		pt := part{lo: len(p.chunks)}
		for _, r := range rings {
			base := len(p.vs)
			for _, pos := range r {
				lon, lat := pos[0], pos[1]
				p.vs = append(p.vs, vertex{lat: lat, lon: lon, ch: math.Cos(lat * halfRad), sh: math.Sin(lat * halfRad)})
				p.bound.Min[0] = math.Min(p.bound.Min[0], lon)
				p.bound.Min[1] = math.Min(p.bound.Min[1], lat)
				p.bound.Max[0] = math.Max(p.bound.Max[0], lon)
				p.bound.Max[1] = math.Max(p.bound.Max[1], lat)
			}
			last := len(p.vs) - 1
			for lo := base; lo < last; lo += chunkEdges {
				c := chunk{lo: lo, hi: min(lo+chunkEdges, last),
					minLat: math.Inf(1), maxLat: math.Inf(-1), minLon: math.Inf(1), maxLon: math.Inf(-1)}
				for _, v := range p.vs[c.lo : c.hi+1] {
					c.minLat, c.maxLat = math.Min(c.minLat, v.lat), math.Max(c.maxLat, v.lat)
					c.minLon, c.maxLon = math.Min(c.minLon, v.lon), math.Max(c.maxLon, v.lon)
				}
				c.chMin, c.shMin = math.Cos(c.minLat*halfRad), math.Sin(c.minLat*halfRad)
				c.chMax, c.shMax = math.Cos(c.maxLat*halfRad), math.Sin(c.maxLat*halfRad)
				p.chunks = append(p.chunks, c)
			}
		}
		pt.hi = len(p.chunks)
		p.parts = append(p.parts, pt)
	}
	p.bound.Min[0] -= boundPad
	p.bound.Min[1] -= boundPad
	p.bound.Max[0] += boundPad
	p.bound.Max[1] += boundPad
	return p
}

func (p *polygon) Bound() orb.Bound { return p.bound }

// Distance is the distance to the nearest edge of any ring, negative when
// the point is inside some part. For parts that overlap (not valid
// GeoJSON) an edge inside the union still counts, which only makes a point
// look nearer to the border than it is.
func (p *polygon) Distance(lat, lon float64) float64 {
	c0, s0 := math.Cos(lat*halfRad), math.Sin(lat*halfRad)
	best := math.Inf(1) // squared, in degrees of arc
	inside := false
	for _, pt := range p.parts {
		in := false
		for ci := pt.lo; ci < pt.hi; ci++ {
			c := &p.chunks[ci]
			// A horizontal ray to the east can cross an edge of the
			// chunk only if the chunk straddles the latitude and has a
			// vertex east of the point.
			cross := c.minLat <= lat && c.maxLat > lat && c.maxLon > lon
			gy := math.Max(0, math.Max(c.minLat-lat, lat-c.maxLat))
			gx := math.Max(0, math.Max(c.minLon-lon, lon-c.maxLon))
			if gx > 0 {
				gx *= math.Min(c.chMin*c0-c.shMin*s0, c.chMax*c0-c.shMax*s0)
			}
			near := gx*gx+gy*gy < best
			if !cross && !near {
				continue
			}
			v := &p.vs[c.lo]
			ax, ay := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
			for i := c.lo + 1; i <= c.hi; i++ {
				v := &p.vs[i]
				bx, by := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
				// Even-odd: the edge crosses y = 0 east of the point when
				// its x-intercept (ax·by - ay·bx)/(by - ay) is positive.
				if (ay > 0) != (by > 0) && ((ax*by-ay*bx) > 0) == (by > ay) {
					in = !in
				}
				if near {
					ex, ey := bx-ax, by-ay
					dot := -(ax*ex + ay*ey)
					var d2 float64
					switch l2 := ex*ex + ey*ey; {
					case dot <= 0:
						d2 = ax*ax + ay*ay
					case dot >= l2:
						d2 = bx*bx + by*by
					default:
						cr := ax*ey - ay*ex
						d2 = cr * cr / l2
					}
					best = math.Min(best, d2)
				}
				ax, ay = bx, by
			}
		}
		inside = inside || in
	}
	d := math.Sqrt(best) * degreeLen
	if inside {
		return -d
	}
	return d
}
