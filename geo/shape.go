package geo

import (
	"errors"
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
		return nil, errors.New("the radius must be a number of metres")
	case radius <= 0:
		return nil, errors.New("the radius must be more than 0 metres")
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
		return errors.New("latitude and longitude must be finite numbers")
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
// Edges are grouped in chunks of up to 16 with a bounding box, and chunks
// in blocks of up to 16, so a point skips every block and chunk that can
// neither hold a ray crossing nor come closer than the nearest edge found
// so far: a polygon of thousands of vertices costs little more than its
// nearby edges.
//
// There is no antimeridian support: longitudes are taken as they are, so a
// polygon meant to cross the 180° meridian must be split in two parts of a
// MultiPolygon.
type polygon struct {
	multi  bool
	coords [][][][2]float64 // parts, rings, positions [lon, lat] as given
	vs     []vertex         // every ring's positions, closing one included
	chunks []span           // edges vs[lo]→vs[lo+1] … vs[hi-1]→vs[hi] of one ring
	blocks []span           // chunks[lo:hi] of one part
	parts  []part
	bound  orb.Bound
}

// vertex is one position with the cosine and sine of half its latitude.
type vertex struct{ lat, lon, ch, sh float64 }

// span is a bounding box over vertices (a chunk) or chunks (a block).
type span struct {
	minLat, maxLat, minLon, maxLon float64
	// Cosine and sine of half of minLat and of maxLat: the smallest
	// horizontal scale over the box is at one of them (cos is concave).
	chMin, shMin, chMax, shMax float64
	lo, hi                     int
}

// part is one polygon of a MultiPolygon: blocks[lo:hi].
type part struct{ lo, hi int }

// fanout is how many edges make a chunk and how many chunks a block: 16
// keeps a box test cheap next to the edges it saves on a 10-50 vertex
// fence, and two levels keep a 10,000 vertex one to about 40 boxes and a
// few chunks per point.
const fanout = 16

func newSpan(lo, hi int) span {
	return span{lo: lo, hi: hi, minLat: math.Inf(1), maxLat: math.Inf(-1), minLon: math.Inf(1), maxLon: math.Inf(-1)}
}

func (s *span) add(minLat, maxLat, minLon, maxLon float64) {
	s.minLat, s.maxLat = min(s.minLat, minLat), max(s.maxLat, maxLat)
	s.minLon, s.maxLon = min(s.minLon, minLon), max(s.maxLon, maxLon)
}

func (s *span) finish() {
	s.chMin, s.shMin = math.Cos(s.minLat*halfRad), math.Sin(s.minLat*halfRad)
	s.chMax, s.shMax = math.Cos(s.maxLat*halfRad), math.Sin(s.maxLat*halfRad)
}

func newPolygon(multi bool, coords [][][][2]float64) *polygon {
	p := &polygon{multi: multi, coords: coords}
	n := 0
	for _, rings := range coords {
		for _, r := range rings {
			n += len(r)
		}
	}
	p.vs = make([]vertex, 0, n)
	all := newSpan(0, 0)
	for _, rings := range coords {
		first := len(p.chunks)
		for _, r := range rings {
			base := len(p.vs)
			for _, pos := range r {
				lon, lat := pos[0], pos[1]
				p.vs = append(p.vs, vertex{lat: lat, lon: lon, ch: math.Cos(lat * halfRad), sh: math.Sin(lat * halfRad)})
				all.add(lat, lat, lon, lon)
			}
			last := len(p.vs) - 1
			for lo := base; lo < last; lo += fanout {
				c := newSpan(lo, min(lo+fanout, last))
				for _, v := range p.vs[c.lo : c.hi+1] {
					c.add(v.lat, v.lat, v.lon, v.lon)
				}
				c.finish()
				p.chunks = append(p.chunks, c)
			}
		}
		pt := part{lo: len(p.blocks)}
		for lo := first; lo < len(p.chunks); lo += fanout {
			b := newSpan(lo, min(lo+fanout, len(p.chunks)))
			for _, c := range p.chunks[b.lo:b.hi] {
				b.add(c.minLat, c.maxLat, c.minLon, c.maxLon)
			}
			b.finish()
			p.blocks = append(p.blocks, b)
		}
		pt.hi = len(p.blocks)
		p.parts = append(p.parts, pt)
	}
	p.bound = orb.Bound{
		Min: orb.Point{all.minLon - boundPad, all.minLat - boundPad},
		Max: orb.Point{all.maxLon + boundPad, all.maxLat + boundPad},
	}
	return p
}

func (p *polygon) Bound() orb.Bound { return p.bound }

// Distance is the distance to the nearest edge of any ring, negative when
// the point is inside some part. For parts that overlap (not valid
// GeoJSON) an edge inside the union still counts, which only makes a point
// look nearer to the border than it is.
func (p *polygon) Distance(lat, lon float64) float64 {
	return p.distanceWithin(lat, lon, math.Inf(1))
}

// distanceWithin is Distance when that is less than limit from the
// border, and otherwise -limit or +limit. Edges whose box is farther than
// limit are never looked at, so a point far inside a large polygon costs
// little more than the inside test.
func (p *polygon) distanceWithin(lat, lon, limit float64) float64 {
	c0, s0 := math.Cos(lat*halfRad), math.Sin(lat*halfRad)
	best := limit / degreeLen
	best *= best // squared, in degrees of arc
	cut := best
	if math.IsInf(limit, 1) && len(p.chunks) > 1 {
		best = p.seed(lat, lon, c0, s0)
	}
	inside := false
	for _, pt := range p.parts {
		in := false
		for bi := pt.lo; bi < pt.hi; bi++ {
			b := &p.blocks[bi]
			if !b.crossable(lat, lon) && b.lowerBound(lat, lon, c0, s0) >= best {
				continue
			}
			for ci := b.lo; ci < b.hi; ci++ {
				c := &p.chunks[ci]
				cross := c.crossable(lat, lon)
				near := c.lowerBound(lat, lon, c0, s0) < best
				if !cross && !near {
					continue
				}
				v := &p.vs[c.lo]
				ax, ay := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
				for i := c.lo + 1; i <= c.hi; i++ {
					v := &p.vs[i]
					bx, by := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
					// Even-odd: the edge crosses y = 0 east of the point
					// when its x-intercept (ax·by - ay·bx)/(by - ay) is
					// positive.
					if (ay > 0) != (by > 0) && ((ax*by-ay*bx) > 0) == (by > ay) {
						in = !in
					}
					if near {
						best = min(best, segment2(ax, ay, bx, by))
					}
					ax, ay = bx, by
				}
			}
		}
		inside = inside || in
	}
	d := limit
	if best < cut {
		d = min(math.Sqrt(best)*degreeLen, limit)
	}
	if inside {
		return -d
	}
	return d
}

// seed is the squared distance to the edges of the chunk whose box is
// nearest, in the block whose box is nearest, for a first bound that
// prunes from the start rather than once ring order comes round to the
// nearby edges.
func (p *polygon) seed(lat, lon, c0, s0 float64) float64 {
	nearest := func(spans []span) *span {
		n, lb := &spans[0], math.Inf(1)
		for i := range spans {
			if l := spans[i].lowerBound(lat, lon, c0, s0); l < lb {
				n, lb = &spans[i], l
			}
		}
		return n
	}
	b := nearest(p.blocks)
	c := nearest(p.chunks[b.lo:b.hi])
	best := math.Inf(1)
	v := &p.vs[c.lo]
	ax, ay := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
	for i := c.lo + 1; i <= c.hi; i++ {
		v := &p.vs[i]
		bx, by := (v.lon-lon)*(v.ch*c0-v.sh*s0), v.lat-lat
		best = min(best, segment2(ax, ay, bx, by))
		ax, ay = bx, by
	}
	return best
}

// crossable reports whether a horizontal ray east from the point can
// cross an edge in the box: the box must straddle the latitude and reach
// east of the point.
func (s *span) crossable(lat, lon float64) bool {
	return s.minLat <= lat && s.maxLat > lat && s.maxLon > lon
}

// lowerBound is the squared distance from the point to the box in the
// projection: no edge inside it is nearer. The horizontal gap is scaled
// by the smallest cos((φᵢ+φ)/2) over the box, at its lowest or highest
// latitude.
func (s *span) lowerBound(lat, lon, c0, s0 float64) float64 {
	gy := max(0, s.minLat-lat, lat-s.maxLat)
	gx := max(0, s.minLon-lon, lon-s.maxLon)
	if gx > 0 {
		gx *= min(s.chMin*c0-s.shMin*s0, s.chMax*c0-s.shMax*s0)
	}
	return gx*gx + gy*gy
}

// segment2 is the squared distance from the origin to the segment a-b.
func segment2(ax, ay, bx, by float64) float64 {
	ex, ey := bx-ax, by-ay
	dot := -(ax*ex + ay*ey) // where the origin projects, times |e|²
	l2 := ex*ex + ey*ey
	switch {
	case dot <= 0:
		return ax*ax + ay*ay
	case dot >= l2:
		return bx*bx + by*by
	}
	cr := ax*ey - ay*ex
	return cr * cr / l2
}
