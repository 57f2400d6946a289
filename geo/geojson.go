package geo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// object holds the members of a GeoJSON object that ParseGeometry reads
// (RFC 7946): a geometry, a Feature or a FeatureCollection.
type object struct {
	Type        string            `json:"type"`
	Coordinates json.RawMessage   `json:"coordinates"`
	Geometry    json.RawMessage   `json:"geometry"`
	Properties  json.RawMessage   `json:"properties"`
	Features    []json.RawMessage `json:"features"`
}

// ParseGeometry parses a GeoJSON geometry (RFC 7946) holding a Polygon or
// MultiPolygon, or a Point with a radius. A Feature holding one of them,
// or a FeatureCollection of exactly one such Feature, is accepted too.
//
// For a Point, radius (metres) must be more than 0; when radius is 0 and
// the Point comes in a Feature, the Feature's properties.radius is used.
// The circle is checked as by NewCircle. For polygons radius is ignored.
//
// A polygon's rings must be closed (first and last position equal: an
// open ring is refused rather than closed, as it often means the input was
// cut short) with at least 4 positions, coordinates in range, at most
// 10,000 positions in all, and each ring must enclose an area. Positions
// may carry an altitude, which is dropped. Rings may wind either way: the
// inside is found by the even-odd rule, so holes work either way too.
//
// Errors are plain sentences for the person who drew the fence.
func ParseGeometry(b []byte, radius float64) (Shape, error) {
	o, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	if o.Type == "FeatureCollection" {
		if len(o.Features) != 1 {
			return nil, fmt.Errorf("a FeatureCollection must hold exactly one feature, not %d", len(o.Features))
		}
		if o, err = decodeObject(o.Features[0]); err != nil {
			return nil, err
		}
		if o.Type != "Feature" {
			return nil, fmt.Errorf("a FeatureCollection must hold a Feature, not %s", typeName(o.Type))
		}
	}
	if o.Type == "Feature" {
		if radius == 0 {
			if radius, err = propertyRadius(o.Properties); err != nil {
				return nil, err
			}
		}
		if isNull(o.Geometry) {
			return nil, errors.New("the feature has no geometry")
		}
		if o, err = decodeObject(o.Geometry); err != nil {
			return nil, err
		}
	}
	switch o.Type {
	case "Point":
		return parsePoint(o.Coordinates, radius)
	case "Polygon":
		var rings [][][]float64
		if err := json.Unmarshal(o.Coordinates, &rings); err != nil || rings == nil {
			return nil, coordinatesError("Polygon", "an array of rings, each an array of [longitude, latitude] positions", err)
		}
		return parsePolygons(false, [][][][]float64{rings})
	case "MultiPolygon":
		var polys [][][][]float64
		if err := json.Unmarshal(o.Coordinates, &polys); err != nil || polys == nil {
			return nil, coordinatesError("MultiPolygon", "an array of polygons, each an array of rings of [longitude, latitude] positions", err)
		}
		return parsePolygons(true, polys)
	case "LineString", "MultiLineString", "MultiPoint", "GeometryCollection", "Feature", "FeatureCollection":
		return nil, fmt.Errorf("a %s cannot be a fence; use a Polygon, a MultiPolygon or a Point with a radius", o.Type)
	default:
		return nil, fmt.Errorf("%s is not a GeoJSON geometry; use a Polygon, a MultiPolygon or a Point with a radius", typeName(o.Type))
	}
}

func decodeObject(b []byte) (object, error) {
	var o object
	err := json.Unmarshal(b, &o)
	if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
		if te.Field == "" {
			return o, errors.New("the fence must be a GeoJSON object")
		}
		return o, fmt.Errorf("the GeoJSON member %q must not be a %s", te.Field, te.Value)
	}
	if err != nil {
		return o, fmt.Errorf("the fence is not valid JSON: %w", err)
	}
	return o, nil
}

func typeName(t string) string {
	if t == "" {
		return "an object without a type"
	}
	return strconv.Quote(t)
}

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// propertyRadius reads a Feature's properties.radius; 0 when absent.
func propertyRadius(props json.RawMessage) (float64, error) {
	if isNull(props) {
		return 0, nil
	}
	var p struct {
		Radius json.RawMessage `json:"radius"`
	}
	if err := json.Unmarshal(props, &p); err != nil {
		return 0, errors.New("the feature's properties must be an object or null")
	}
	if isNull(p.Radius) {
		return 0, nil
	}
	var r float64
	if err := json.Unmarshal(p.Radius, &r); err != nil {
		return 0, errors.New("the feature's radius must be a number of metres")
	}
	return r, nil
}

func coordinatesError(typ, want string, err error) error {
	if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) && len(te.Value) > 7 && te.Value[:7] == "number " {
		return fmt.Errorf("the %s has a coordinate out of range (%s)", typ, te.Value[7:])
	}
	return fmt.Errorf("the %s coordinates must be %s", typ, want)
}

func parsePoint(raw json.RawMessage, radius float64) (Shape, error) {
	var pos []float64
	if err := json.Unmarshal(raw, &pos); err != nil || len(pos) < 2 {
		return nil, coordinatesError("Point", "[longitude, latitude]", err)
	}
	if err := checkPosition(pos[1], pos[0]); err != nil {
		return nil, fmt.Errorf("the Point's %w", err)
	}
	if radius == 0 {
		return nil, errors.New("a Point needs a radius in metres to be a fence")
	}
	return NewCircle(pos[1], pos[0], radius)
}

// parsePolygons checks the parts of a Polygon (one part) or MultiPolygon.
func parsePolygons(multi bool, polys [][][][]float64) (Shape, error) {
	if len(polys) == 0 {
		return nil, errors.New("the MultiPolygon has no polygons")
	}
	n := 0
	for _, rings := range polys {
		for _, r := range rings {
			n += len(r)
		}
	}
	if n > maxVertices {
		return nil, fmt.Errorf("the fence has %d positions; at most %d are allowed", n, maxVertices)
	}
	coords := make([][][][2]float64, len(polys))
	for pi, rings := range polys {
		name := "the polygon"
		if multi {
			name = fmt.Sprintf("polygon %d", pi+1)
		}
		if len(rings) == 0 {
			return nil, fmt.Errorf("%s has no rings", name)
		}
		coords[pi] = make([][][2]float64, len(rings))
		for ri, r := range rings {
			ring := fmt.Sprintf("polygon ring %d", ri+1)
			if multi {
				ring = fmt.Sprintf("polygon %d ring %d", pi+1, ri+1)
			}
			out, err := parseRing(ring, r)
			if err != nil {
				return nil, err
			}
			coords[pi][ri] = out
		}
	}
	return newPolygon(multi, coords), nil
}

func parseRing(name string, r [][]float64) ([][2]float64, error) {
	out := make([][2]float64, len(r))
	for i, pos := range r {
		if len(pos) < 2 {
			return nil, fmt.Errorf("%s position %d has %d numbers; a position is [longitude, latitude]", name, i+1, len(pos))
		}
		if err := checkPosition(pos[1], pos[0]); err != nil {
			return nil, fmt.Errorf("%s position %d: %w", name, i+1, err)
		}
		out[i] = [2]float64{pos[0], pos[1]}
	}
	if len(out) < 4 {
		return nil, fmt.Errorf("%s has %d positions; a ring needs at least 4, first and last equal", name, len(out))
	}
	if first, last := out[0], out[len(out)-1]; first != last {
		return nil, fmt.Errorf("%s is not closed: its last position %s must equal its first %s", name, formatPos(last), formatPos(first))
	}
	if ringArea(out) < minRingArea {
		return nil, fmt.Errorf("%s encloses no area", name)
	}
	return out, nil
}

// ringArea is the area in square metres by the shoelace formula in an
// equirectangular projection at the first position's latitude.
func ringArea(r [][2]float64) float64 {
	o := r[0]
	cos := math.Cos(o[1] * radPerDeg)
	var sum float64
	for i := 1; i < len(r); i++ {
		ax, ay := (r[i-1][0]-o[0])*cos, r[i-1][1]-o[1]
		bx, by := (r[i][0]-o[0])*cos, r[i][1]-o[1]
		sum += ax*by - bx*ay
	}
	return math.Abs(sum) / 2 * degreeLen * degreeLen
}

func formatPos(p [2]float64) string {
	return "[" + formatNum(p[0]) + ", " + formatNum(p[1]) + "]"
}

func formatNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// GeometryJSON renders a shape as a GeoJSON geometry: a circle as its
// centre Point (the radius is kept beside it, see CircleOf), a polygon as
// the Polygon or MultiPolygon it was parsed from, without altitudes. A
// Shape not made by this package renders as null.
func GeometryJSON(s Shape) []byte {
	switch s := s.(type) {
	case *circle:
		b := []byte(`{"type":"Point","coordinates":`)
		b = appendPos(b, [2]float64{s.lon, s.lat})
		return append(b, '}')
	case *polygon:
		b := []byte(`{"type":"Polygon","coordinates":`)
		parts := s.coords
		if s.multi {
			b = []byte(`{"type":"MultiPolygon","coordinates":[`)
		}
		for pi, rings := range parts {
			if pi > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for ri, r := range rings {
				if ri > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				for i, p := range r {
					if i > 0 {
						b = append(b, ',')
					}
					b = appendPos(b, p)
				}
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		if s.multi {
			b = append(b, ']')
		}
		return append(b, '}')
	}
	return []byte("null")
}

func appendPos(b []byte, p [2]float64) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, p[0], 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p[1], 'f', -1, 64)
	return append(b, ']')
}
