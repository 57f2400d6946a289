package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/storage"
)

// Output formats of /api/0/locations beyond json and geojson: the
// Recorder's (http.c dispatch), plus kml. The CLI's export also has rec.
const (
	formatGeoJSONPOI = "geojsonpoi"
	formatLineString = "linestring"
	formatXML        = "xml"
	formatKML        = "kml"
	formatRec        = "rec"

	mimeXML = "application/xml; charset=utf-8"
	mimeKML = "application/vnd.google-earth.kml+xml"
	mimeRec = "text/plain; charset=utf-8"
)

// defaultGap is the pause, in seconds, that starts a new segment when the
// request says gap without a value.
const defaultGap = 1800

// trackOptions shape a rendering: from the request or the CLI.
type trackOptions struct {
	user, device string
	fields       string // fields=: the members of json, csv and xml
	gap          int64  // seconds; a longer pause starts a new segment (gpx, kml, linestring); 0 for one
}

// trackFormat is one output format: its media type, its file name
// extension when it is a download ("" when shown inline), and its writer.
type trackFormat struct {
	mime, ext string
	writer    func(o trackOptions, version string) (trackWriter, error)
}

// trackFormats are the formats of /api/0/locations and of export.
var trackFormats = map[string]trackFormat{
	formatJSON: {echo.MIMEApplicationJSON, "", func(o trackOptions, _ string) (trackWriter, error) {
		return newTrackRenderer(formatJSON, fieldSet(o.fields)), nil
	}},
	formatGeoJSON: {echo.MIMEApplicationJSON, "", func(trackOptions, string) (trackWriter, error) {
		return newTrackRenderer(formatGeoJSON, nil), nil
	}},
	formatGeoJSONPOI: {echo.MIMEApplicationJSON, "", func(trackOptions, string) (trackWriter, error) {
		return newPOIWriter(), nil
	}},
	formatLineString: {echo.MIMEApplicationJSON, "", func(o trackOptions, _ string) (trackWriter, error) {
		return newLineWriter(o.gap), nil
	}},
	formatGPX: {mimeGPX, "gpx", func(o trackOptions, version string) (trackWriter, error) {
		g := newGPXWriter(o.user, o.device, version)
		g.gap = o.gap
		return g, nil
	}},
	formatKML: {mimeKML, "kml", func(o trackOptions, _ string) (trackWriter, error) {
		return newKMLWriter(o.user, o.device, o.gap), nil
	}},
	formatCSV: {mimeCSV, "csv", func(o trackOptions, _ string) (trackWriter, error) {
		return newCSVWriter(o.fields)
	}},
	formatXML: {mimeXML, "", func(o trackOptions, _ string) (trackWriter, error) {
		return newXMLWriter(o.fields)
	}},
}

// formatList names the formats of /api/0/locations for error messages.
const formatList = "json, geojson, geojsonpoi, linestring, gpx, kml, csv or xml"

func errUnknownFormat(format string) error {
	return errBadRequest("unsupported format " + strconv.Quote(format) + ": use " + formatList)
}

// gapParam reads gap=SECONDS: absent (or 0) for one segment, present
// without a value for defaultGap.
func gapParam(c *echo.Context) (int64, error) {
	v := param(c, "gap")
	if v == "" {
		if c.QueryParams().Has("gap") {
			return defaultGap, nil
		}
		return 0, nil
	}
	gap, err := strconv.ParseInt(v, 10, 64)
	if err != nil || gap < 0 {
		return 0, errors.New("gap must be a pause in seconds, e.g. gap=1800")
	}
	return gap, nil
}

// poiWriter renders format=geojsonpoi: a FeatureCollection of the
// locations that carry a poi (a point of interest the user named in the
// app), each a Point whose properties are the poi as name, isotst, tst and
// the address (addr) where there is one, as the Recorder's geo_json with
// poi_only; the Recorder writes "address":"" where there is none.
type poiWriter struct {
	buf   []byte
	st    stamper
	count int
}

func newPOIWriter() *poiWriter {
	w := &poiWriter{buf: make([]byte, 0, renderFlushAt+4<<10)}
	w.buf = append(w.buf, `{"type":"FeatureCollection","features":[`...)
	return w
}

func (w *poiWriter) add(m *storage.Message) {
	var poi, addr []byte
	for key, val := range members(m.Payload) {
		switch string(key) {
		case "poi":
			poi = val
		case "addr":
			addr = val
		}
	}
	if len(poi) == 0 || poi[0] != '"' { // the Recorder skips a poi that is no string
		return
	}
	b := w.buf
	if w.count > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	b = strconv.AppendFloat(b, m.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, m.Lat, 'f', -1, 64)
	b = append(b, `]},"properties":{"name":`...)
	b = append(b, poi...)
	b = append(b, `,"tst":`...)
	b = strconv.AppendInt(b, m.TST, 10)
	b = append(b, `,"isotst":`...)
	b = w.st.append(b, m.TST, 'T', true)
	if len(addr) > 0 && addr[0] == '"' {
		b = append(b, `,"address":`...)
		b = append(b, addr...)
	}
	w.buf = append(b, "}}"...)
	w.count++
}

func (w *poiWriter) end(string) { w.buf = append(w.buf, "]}"...) }

func (w *poiWriter) flush(out io.Writer) error { return flushBuf(out, &w.buf) }

func (w *poiWriter) buffered() int { return len(w.buf) }

// lineWriter renders format=linestring: the track as one GeoJSON Feature
// with empty properties and a LineString of [lon,lat] positions, as the
// Recorder's geo_linestring. With a gap it is a MultiLineString, one line
// per segment.
type lineWriter struct {
	buf     []byte
	gap     int64
	count   int
	prevTST int64
}

func newLineWriter(gap int64) *lineWriter {
	w := &lineWriter{buf: make([]byte, 0, renderFlushAt+4<<10), gap: gap}
	if gap > 0 {
		w.buf = append(w.buf, `{"type":"Feature","properties":{},"geometry":{"type":"MultiLineString","coordinates":[`...)
	} else {
		w.buf = append(w.buf, `{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[`...)
	}
	return w
}

func (w *lineWriter) add(m *storage.Message) {
	b := w.buf
	switch {
	case w.count == 0:
		if w.gap > 0 {
			b = append(b, '[')
		}
	case w.gap > 0 && m.TST-w.prevTST > w.gap:
		b = append(b, "],["...)
	default:
		b = append(b, ',')
	}
	b = append(b, '[')
	b = strconv.AppendFloat(b, m.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, m.Lat, 'f', -1, 64)
	w.buf = append(b, ']')
	w.count++
	w.prevTST = m.TST
}

func (w *lineWriter) end(string) {
	if w.gap > 0 && w.count > 0 {
		w.buf = append(w.buf, ']')
	}
	w.buf = append(w.buf, "]}}"...)
}

func (w *lineWriter) flush(out io.Writer) error { return flushBuf(out, &w.buf) }

func (w *lineWriter) buffered() int { return len(w.buf) }

// newExportWriter returns the writer of a format and sets the response's
// headers for it (type, and for downloads a file name).
func newExportWriter(h http.Header, format string, o trackOptions, q storage.LocationQuery, version string) (trackWriter, error) {
	f, ok := trackFormats[strings.ToLower(format)]
	if !ok {
		return nil, errUnknownFormat(format)
	}
	tw, err := f.writer(o, version)
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	h.Set(echo.HeaderContentType, f.mime)
	if f.ext != "" {
		h.Set(echo.HeaderContentDisposition, attachment(q, f.ext))
	}
	return tw, nil
}
