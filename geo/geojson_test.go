package geo

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
)

// A 1 km square around Alexanderplatz, and a 200 m hole in it.
const (
	squareRing = `[[13.40582,52.51740],[13.42058,52.51740],[13.42058,52.52640],[13.40582,52.52640],[13.40582,52.51740]]`
	holeRing   = `[[13.41172,52.52100],[13.41468,52.52100],[13.41468,52.52280],[13.41172,52.52280],[13.41172,52.52100]]`
	farRing    = `[[13.50000,52.40000],[13.51000,52.40000],[13.51000,52.41000],[13.50000,52.40000]]`
)

func TestParseGeometry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		json   string
		radius float64
		circle bool
		// The distance at Alexanderplatz (berlinLat, berlinLon).
		want float64
	}{
		{"point", `{"type":"Point","coordinates":[13.4132,52.5219]}`, 100, true, -100},
		{"point with altitude", `{"type":"Point","coordinates":[13.4132,52.5219,34]}`, 100, true, -100},
		{"feature point radius property", `{"type":"Feature","properties":{"radius":250},"geometry":{"type":"Point","coordinates":[13.4132,52.5219]}}`, 0, true, -250},
		{"feature point argument wins", `{"type":"Feature","properties":{"radius":250},"geometry":{"type":"Point","coordinates":[13.4132,52.5219]}}`, 50, true, -50},
		{"polygon", `{"type":"Polygon","coordinates":[` + squareRing + `]}`, 0, false, -499.3},
		{"polygon radius ignored", `{"type":"Polygon","coordinates":[` + squareRing + `]}`, 100, false, -499.3},
		{"polygon with hole", `{"type":"Polygon","coordinates":[` + squareRing + `,` + holeRing + `]}`, 0, false, 100},
		{"multipolygon", `{"type":"MultiPolygon","coordinates":[[` + squareRing + `],[` + farRing + `]]}`, 0, false, -499.3},
		{"feature polygon", `{"type":"Feature","properties":null,"geometry":{"type":"Polygon","coordinates":[` + squareRing + `]}}`, 0, false, -499.3},
		{"feature collection", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"home"},"geometry":{"type":"Polygon","coordinates":[` + squareRing + `]}}]}`, 0, false, -499.3},
		{"altitudes dropped", `{"type":"Polygon","coordinates":[[[13.40582,52.51740,30],[13.42058,52.51740,31],[13.42058,52.52640,32],[13.40582,52.52640],[13.40582,52.51740,30]]]}`, 0, false, -499.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseGeometry([]byte(tc.json), tc.radius)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, ok := CircleOf(s); ok != tc.circle {
				t.Errorf("CircleOf ok = %v, want %v", ok, tc.circle)
			}
			if got := s.Distance(berlinLat, berlinLon); math.Abs(got-tc.want) > 1 {
				t.Errorf("Distance = %.1f, want %.1f", got, tc.want)
			}
			// GeometryJSON parses back to the same shape.
			g := GeometryJSON(s)
			r := tc.radius
			if _, _, cr, ok := CircleOf(s); ok {
				r = cr
			}
			back, err := ParseGeometry(g, r)
			if err != nil {
				t.Fatalf("GeometryJSON %s: %v", g, err)
			}
			if !bytes.Equal(GeometryJSON(back), g) || back.Bound() != s.Bound() {
				t.Errorf("round trip %s became %s", g, GeometryJSON(back))
			}
		})
	}
}

func TestParseGeometryErrors(t *testing.T) {
	many := make([]string, 0, 10_001)
	for i := range 10_000 {
		a := float64(i) / 10_000 * 2 * math.Pi
		many = append(many, fmt.Sprintf("[%f,%f]", 13.4+0.01*math.Cos(a), 52.5+0.01*math.Sin(a)))
	}
	many = append(many, many[0])
	for _, tc := range []struct {
		name   string
		json   string
		radius float64
		want   string
	}{
		{"not json", `{"type":`, 0, "the fence is not valid JSON: unexpected end of JSON input"},
		{"not an object", `[1,2]`, 0, "the fence must be a GeoJSON object"},
		{"type not a string", `{"type":5}`, 0, `the GeoJSON member "type" must not be a number`},
		{"no type", `{"coordinates":[1,2]}`, 0, "an object without a type is not a GeoJSON geometry; use a Polygon, a MultiPolygon or a Point with a radius"},
		{"unknown type", `{"type":"Circle"}`, 0, `"Circle" is not a GeoJSON geometry; use a Polygon, a MultiPolygon or a Point with a radius`},
		{"line", `{"type":"LineString","coordinates":[[1,2],[3,4]]}`, 0, "a LineString cannot be a fence; use a Polygon, a MultiPolygon or a Point with a radius"},
		{"geometry collection", `{"type":"GeometryCollection","geometries":[]}`, 0, "a GeometryCollection cannot be a fence; use a Polygon, a MultiPolygon or a Point with a radius"},
		{"point without radius", `{"type":"Point","coordinates":[13.4,52.5]}`, 0, "a Point needs a radius in metres to be a fence"},
		{"point negative radius", `{"type":"Point","coordinates":[13.4,52.5]}`, -1, "the radius must be more than 0 metres"},
		{"point huge radius", `{"type":"Point","coordinates":[13.4,52.5]}`, 200_000, "the radius 200000 m is more than the maximum of 100000 m (100 km)"},
		{"point one number", `{"type":"Point","coordinates":[13.4]}`, 10, "the Point coordinates must be [longitude, latitude]"},
		{"point strings", `{"type":"Point","coordinates":["13.4","52.5"]}`, 10, "the Point coordinates must be [longitude, latitude]"},
		{"point latitude", `{"type":"Point","coordinates":[13.4,92.5]}`, 10, "the Point's latitude 92.5 is out of range (-90 to 90)"},
		{"point overflow", `{"type":"Point","coordinates":[13.4,1e999]}`, 10, "the Point has a coordinate out of range (1e999)"},
		{"feature radius not a number", `{"type":"Feature","properties":{"radius":"big"},"geometry":{"type":"Point","coordinates":[13.4,52.5]}}`, 0, "the feature's radius must be a number of metres"},
		{"feature properties not an object", `{"type":"Feature","properties":[1],"geometry":{"type":"Point","coordinates":[13.4,52.5]}}`, 0, "the feature's properties must be an object or null"},
		{"feature without geometry", `{"type":"Feature","properties":{},"geometry":null}`, 0, "the feature has no geometry"},
		{"feature of feature", `{"type":"Feature","geometry":{"type":"Feature","geometry":null}}`, 0, "a Feature cannot be a fence; use a Polygon, a MultiPolygon or a Point with a radius"},
		{"empty collection", `{"type":"FeatureCollection","features":[]}`, 0, "a FeatureCollection must hold exactly one feature, not 0"},
		{"two features", `{"type":"FeatureCollection","features":[{},{}]}`, 0, "a FeatureCollection must hold exactly one feature, not 2"},
		{"collection of geometry", `{"type":"FeatureCollection","features":[{"type":"Polygon"}]}`, 0, `a FeatureCollection must hold a Feature, not "Polygon"`},
		{"polygon coordinates missing", `{"type":"Polygon"}`, 0, "the Polygon coordinates must be an array of rings, each an array of [longitude, latitude] positions"},
		{"polygon nesting", `{"type":"Polygon","coordinates":[[1,2],[3,4]]}`, 0, "the Polygon coordinates must be an array of rings, each an array of [longitude, latitude] positions"},
		{"polygon no rings", `{"type":"Polygon","coordinates":[]}`, 0, "the polygon has no rings"},
		{"short ring", `{"type":"Polygon","coordinates":[` + squareRing + `,[[13.41,52.52],[13.412,52.52],[13.41,52.52]]]}`, 0, "polygon ring 2 has 3 positions; a ring needs at least 4, first and last equal"},
		{"open ring", `{"type":"Polygon","coordinates":[[[13.40582,52.51740],[13.42058,52.51740],[13.42058,52.52640],[13.40582,52.52640]]]}`, 0, "polygon ring 1 is not closed: its last position [13.40582, 52.5264] must equal its first [13.40582, 52.5174]"},
		{"position one number", `{"type":"Polygon","coordinates":[[[13.40582,52.51740],[13.42058],[13.42058,52.52640],[13.40582,52.51740]]]}`, 0, "polygon ring 1 position 2 has 1 numbers; a position is [longitude, latitude]"},
		{"longitude range", `{"type":"Polygon","coordinates":[[[13.40582,52.51740],[193.42058,52.51740],[13.42058,52.52640],[13.40582,52.51740]]]}`, 0, "polygon ring 1 position 2: longitude 193.42058 is out of range (-180 to 180)"},
		{"overflow", `{"type":"Polygon","coordinates":[[[13.40582,52.51740],[1e400,52.51740],[13.42058,52.52640],[13.40582,52.51740]]]}`, 0, "the Polygon has a coordinate out of range (1e400)"},
		{"no area", `{"type":"Polygon","coordinates":[[[13.4,52.5],[13.41,52.51],[13.42,52.52],[13.4,52.5]]]}`, 0, "polygon ring 1 encloses no area"},
		{"same point", `{"type":"Polygon","coordinates":[[[13.4,52.5],[13.4,52.5],[13.4,52.5],[13.4,52.5]]]}`, 0, "polygon ring 1 encloses no area"},
		{"multipolygon empty", `{"type":"MultiPolygon","coordinates":[]}`, 0, "the MultiPolygon has no polygons"},
		{"multipolygon no rings", `{"type":"MultiPolygon","coordinates":[[` + squareRing + `],[]]}`, 0, "polygon 2 has no rings"},
		{"multipolygon short ring", `{"type":"MultiPolygon","coordinates":[[` + squareRing + `],[[[1,2],[3,4],[1,2]]]]}`, 0, "polygon 2 ring 1 has 3 positions; a ring needs at least 4, first and last equal"},
		{"multipolygon nesting", `{"type":"MultiPolygon","coordinates":[` + squareRing + `]}`, 0, "the MultiPolygon coordinates must be an array of polygons, each an array of rings of [longitude, latitude] positions"},
		{"too many positions", `{"type":"Polygon","coordinates":[[` + strings.Join(many, ",") + `]]}`, 0, "the fence has 10001 positions; at most 10000 are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseGeometry([]byte(tc.json), tc.radius)
			if err == nil {
				t.Fatalf("accepted as %s", GeometryJSON(s))
			}
			if err.Error() != tc.want {
				t.Errorf("error\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestParseGeometryMaxVertices(t *testing.T) {
	pos := make([]string, 0, 10_000)
	for i := range 9_999 {
		a := float64(i) / 9_999 * 2 * math.Pi
		pos = append(pos, fmt.Sprintf("[%f,%f]", 13.4+0.01*math.Cos(a), 52.5+0.01*math.Sin(a)))
	}
	pos = append(pos, pos[0])
	s, err := ParseGeometry([]byte(`{"type":"Polygon","coordinates":[[`+strings.Join(pos, ",")+`]]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The centre of the 1.1 km wide ellipse is about 680 m inside.
	if d := s.Distance(52.5, 13.4); d > -600 || d < -800 {
		t.Errorf("Distance at the centre = %.0f", d)
	}
}

func TestGeometryJSONForeignShape(t *testing.T) {
	if got := string(GeometryJSON(nil)); got != "null" {
		t.Errorf("GeometryJSON(nil) = %s", got)
	}
}

// FuzzParseGeometry checks that no input panics, and that an accepted
// shape has a finite bound containing every point it calls inside, and a
// finite distance everywhere.
func FuzzParseGeometry(f *testing.F) {
	f.Add([]byte(`{"type":"Polygon","coordinates":[`+squareRing+`,`+holeRing+`]}`), 0.0)
	f.Add([]byte(`{"type":"Point","coordinates":[13.4132,52.5219]}`), 100.0)
	f.Fuzz(func(t *testing.T, b []byte, radius float64) {
		s, err := ParseGeometry(b, radius)
		if err != nil {
			if s != nil {
				t.Fatal("a shape with an error")
			}
			return
		}
		bd := s.Bound()
		for _, v := range []float64{bd.Min[0], bd.Min[1], bd.Max[0], bd.Max[1]} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("bound %v", bd)
			}
		}
		if bd.Min[0] > bd.Max[0] || bd.Min[1] > bd.Max[1] {
			t.Fatalf("empty bound %v", bd)
		}
		for _, p := range [][2]float64{
			{bd.Min[1], bd.Min[0]}, {bd.Max[1], bd.Max[0]},
			{(bd.Min[1] + bd.Max[1]) / 2, (bd.Min[0] + bd.Max[0]) / 2},
			{0, 0}, {52.52, 13.4}, {-90, -180}, {90, 180},
		} {
			d := s.Distance(p[0], p[1])
			if math.IsNaN(d) || math.IsInf(d, 0) {
				t.Fatalf("Distance(%v) = %v", p, d)
			}
		}
		r := radius
		if _, _, cr, ok := CircleOf(s); ok {
			r = cr
		}
		if _, err := ParseGeometry(GeometryJSON(s), r); err != nil {
			t.Fatalf("GeometryJSON %s does not parse back: %v", GeometryJSON(s), err)
		}
	})
}
