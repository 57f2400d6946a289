package importer

import (
	"bufio"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// readGPX reads the points of a GPX 1.0 or 1.1 file (topografix.com/GPX):
// track points, route points and way points. A point needs lat, lon and
// <time>; <ele> becomes alt, GPX 1.0's <speed> (m/s) and <course>, or the
// same names inside <extensions> (Garmin's TrackPointExtension), become
// vel (km/h) and cog.
func readGPX(r *run, br *bufio.Reader) error {
	dec := xml.NewDecoder(br)
	var (
		in     bool // inside a point
		f      fix
		line   int
		field  string
		text   []byte
		hasTST bool
		bad    string // why the point is skipped
		reason string // and the reason's name
		seen   bool   // a <gpx> element
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !seen {
				return inputError("no <gpx> element: not a GPX file")
			}
			return nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return inputError("not well-formed XML: %v", err)
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "gpx":
				seen = true
			case "trkpt", "rtept", "wpt":
				in, hasTST, bad, field = true, false, "", ""
				f = newFix()
				line, _ = dec.InputPos()
				lat, lon := -1000.0, -1000.0
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "lat":
						lat = parseFloat(a.Value)
					case "lon":
						lon = parseFloat(a.Value)
					}
				}
				if !validPosition(lat, lon) {
					bad, reason = "point without valid lat and lon attributes", ReasonCoordinates
				}
				f.lat, f.lon = lat, lon
			default:
				if in {
					field, text = t.Name.Local, text[:0]
				}
			}
		case xml.CharData:
			if in && field != "" {
				text = append(text, t...)
			}
		case xml.EndElement:
			if !in {
				continue
			}
			switch t.Name.Local {
			case "trkpt", "rtept", "wpt":
				in = false
				switch {
				case bad != "":
					r.skip(line, reason, "%s", bad)
				case !hasTST:
					r.skip(line, ReasonTime, "point without a <time>")
				default:
					if err := r.emitFix(&f, line); err != nil {
						return err
					}
				}
				continue
			}
			v := strings.TrimSpace(string(text))
			switch field {
			case "time":
				tm, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					if bad == "" {
						bad, reason = "time "+strconv.Quote(v)+" is not RFC 3339", ReasonTime
					}
					break
				}
				f.tst, hasTST = tm.Unix(), true
			case "ele":
				f.alt = parseFloat(v)
			case "speed":
				f.vel = parseFloat(v) * 3.6
			case "course":
				f.cog = parseFloat(v)
			}
			field = ""
		}
	}
}

// parseFloat is strconv.ParseFloat, NaN when the text is no number.
func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nan
	}
	return f
}
