package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

// Download formats of /api/0/locations.
const (
	formatGPX = "gpx"
	formatCSV = "csv"

	mimeGPX = "application/gpx+xml"
	mimeCSV = "text/csv; charset=utf-8"
)

// trackWriter renders a track into a buffer that its caller writes out
// between store reads: trackRenderer (json, geojson), gpxWriter, csvWriter
// and the writers of formats.go.
type trackWriter interface {
	add(m *storage.Message)
	end(version string)
	flush(w io.Writer) error
	buffered() int
}

func (r *trackRenderer) buffered() int { return len(r.buf) }

// exportLocations serves /api/0/locations in a format other than plain
// json and geojson, or simplified in any format; the caller has checked
// who may see what.
func (s *Server) exportLocations(c *echo.Context, me storage.User, grant auth.Grant, q storage.LocationQuery, format string) error {
	opts, err := simplifyParams(c)
	if err != nil {
		return errBadRequest(err.Error())
	}
	gap, err := gapParam(c)
	if err != nil {
		return errBadRequest(err.Error())
	}
	o := trackOptions{user: q.User, device: q.Device, fields: param(c, "fields"), gap: gap}
	tw, err := newExportWriter(c.Response().Header(), format, o, q, s.Version)
	if err != nil {
		return err
	}
	if opts.active() {
		return s.simplifiedLocations(c, me, grant, q, opts, tw)
	}
	c.Response().WriteHeader(http.StatusOK)
	s.streamLocations(c.Request().Context(), me, grant, []storage.LocationQuery{q}, tw, c.Response(), nil)
	return nil
}

// streamLocations renders the locations of the queries (in order, with
// ascending tst ranges that do not overlap) that keep accepts (nil: all)
// into w as it reads them, so memory stays flat however long the range.
// The status is sent, so a failure can only end the body early; it is
// logged.
func (s *Server) streamLocations(ctx context.Context, me storage.User, grant auth.Grant, qs []storage.LocationQuery,
	tw trackWriter, w io.Writer, keep func(*storage.Message) bool) {
	pick := func(m *storage.Message) *storage.Message {
		if keep != nil && !keep(m) {
			return nil
		}
		if grant.Precision > 0 {
			coarse, ok := s.redact(me, m)
			if !ok {
				return nil
			}
			return &coarse
		}
		return m
	}
	err := writeTrack(ctx, s.Store, qs, tw, w, s.Version, pick)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.Log.Error("locations stream failed", "user", qs[0].User, "device", qs[0].Device, "error", err)
	}
}

// writeTrack renders the locations of the queries that pick returns (nil
// to leave one out; pick nil for all) into w as it reads them, then the
// end of the document.
func writeTrack(ctx context.Context, store storage.Messages, qs []storage.LocationQuery, tw trackWriter, w io.Writer,
	version string, pick func(*storage.Message) *storage.Message) error {
	n := 0
	add := func(m *storage.Message) error {
		if pick != nil {
			if m = pick(m); m == nil {
				return nil
			}
		}
		tw.add(m)
		n++
		return nil
	}
	// Large writes: few chunks and system calls for a year of points.
	flush := func() error {
		if tw.buffered() < renderFlushAt {
			return nil
		}
		return tw.flush(w)
	}
	var err error
	for _, q := range qs {
		if sc, ok := store.(locationScanner); ok {
			err = sc.ScanLocations(ctx, q, add, flush)
		} else {
			err = store.Locations(ctx, q, func(m *storage.Message) error {
				add(m)
				return flush()
			})
		}
		if err != nil {
			break
		}
	}
	if rel, ok := store.(memoryReleaser); ok && n > releaseAfter {
		defer rel.ReleaseMemory() // a long read mapped many pages; give them back
	}
	if err != nil {
		return err
	}
	tw.end(version)
	return tw.flush(w)
}

// ExportOptions select what Export writes: the messages of one device with
// From <= tst <= To (UNIX seconds), in Format: a format of
// /api/0/locations, or rec for every message type as .rec lines.
type ExportOptions struct {
	User, Device string
	From, To     int64
	Format       string
	Fields       string // the members of json, csv and xml, comma-separated; "" for the default
	Gap          int64  // gpx, kml, linestring: a pause of more seconds starts a new segment; 0 for one segment
}

// ErrExportInvalid wraps export options that cannot be served.
var ErrExportInvalid = errors.New("invalid export")

// ExportFormats lists the formats Export takes.
const ExportFormats = "json, geojson, geojsonpoi, linestring, gpx, kml, csv, xml or rec"

// Export writes opts' messages from store to w as it reads them, for the
// CLI (`wherehouse export`), in the shapes /api/0/locations gives; version
// is the one json and gpx name. Options it cannot serve are an
// ErrExportInvalid before anything is written.
func Export(ctx context.Context, store storage.Messages, version string, opts ExportOptions, w io.Writer) error {
	if opts.User == "" || opts.Device == "" {
		return fmt.Errorf("%w: user and device are required", ErrExportInvalid)
	}
	if opts.Gap < 0 {
		return fmt.Errorf("%w: gap must be a pause in seconds", ErrExportInvalid)
	}
	q := storage.LocationQuery{User: opts.User, Device: opts.Device, From: opts.From, To: opts.To}
	format := strings.ToLower(opts.Format)
	if format == "" {
		format = formatJSON
	}
	if _, ok := trackFormats[format]; !ok && format != formatRec {
		return fmt.Errorf("%w: unsupported format %q: use %s", ErrExportInvalid, opts.Format, ExportFormats)
	}
	if format == formatRec {
		rw := newRecWriter()
		err := store.AllMessages(ctx, q, func(m *storage.Message) error {
			if rw.add(m); rw.buffered() < renderFlushAt {
				return nil
			}
			return rw.flush(w)
		})
		if err != nil {
			return err
		}
		return rw.flush(w)
	}
	o := trackOptions{user: opts.User, device: opts.Device, fields: opts.Fields, gap: opts.Gap}
	tw, err := newExportWriter(http.Header{}, format, o, q, version)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrExportInvalid, err.Error())
	}
	return writeTrack(ctx, store, []storage.LocationQuery{q}, tw, w, version, nil)
}

// attachment is the Content-Disposition of a download:
// <user>-<device>-<from>-<to>.<ext>, with dates alone for whole days.
func attachment(q storage.LocationQuery, ext string) string {
	from, to := time.Unix(q.From, 0).UTC(), time.Unix(q.To, 0).UTC()
	layout := "20060102T150405Z"
	if from.Hour()+from.Minute()+from.Second() == 0 && to.Hour() == 23 && to.Minute() == 59 && to.Second() == 59 {
		layout = "2006-01-02"
	}
	name := fileSafe(q.User) + "-" + fileSafe(q.Device) + "-" + from.Format(layout) + "-" + to.Format(layout) + "." + ext
	return `attachment; filename="` + name + `"`
}

// fileSafe keeps letters, digits, '.', '_' and '-' of a name (devices may
// be called anything) and replaces the rest with '_'.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// gpxWriter renders a track as GPX 1.1: one trk with one trkseg, a trkpt
// per location with ele (from alt) and time (tst). The Recorder writes the
// same structure (storage.c gpx_string), but ele after time, which the
// GPX schema does not allow.
//
// With a gap (gap=SECONDS, which the Recorder lacks) a pause of more than
// that between two fixes starts a new trkseg, so a reader draws no line
// across the time the phone was off.
type gpxWriter struct {
	buf     []byte
	st      stamper
	gap     int64
	count   int
	prevTST int64
}

func newGPXWriter(user, device, version string) *gpxWriter {
	g := &gpxWriter{buf: make([]byte, 0, renderFlushAt+4<<10)}
	g.buf = append(g.buf, `<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="wherehouse `...)
	g.buf = appendXMLText(g.buf, version)
	g.buf = append(g.buf, `" xmlns="http://www.topografix.com/GPX/1/1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">
<trk>
<name>`...)
	g.buf = appendXMLText(g.buf, user+"/"+device)
	g.buf = append(g.buf, "</name>\n<trkseg>\n"...)
	return g
}

func (g *gpxWriter) add(m *storage.Message) {
	b := g.buf
	if g.gap > 0 && g.count > 0 && m.TST-g.prevTST > g.gap {
		b = append(b, "</trkseg>\n<trkseg>\n"...)
	}
	g.count++
	g.prevTST = m.TST
	b = append(b, `<trkpt lat="`...)
	b = strconv.AppendFloat(b, m.Lat, 'f', -1, 64)
	b = append(b, `" lon="`...)
	b = strconv.AppendFloat(b, m.Lon, 'f', -1, 64)
	b = append(b, `">`...)
	if alt, ok := payloadNumber(m.Payload, "alt"); ok {
		b = append(b, "<ele>"...)
		b = strconv.AppendFloat(b, alt, 'f', -1, 64)
		b = append(b, "</ele>"...)
	}
	b = append(b, "<time>"...)
	b = appendBareStamp(b, &g.st, m.TST, 'T', true)
	g.buf = append(b, "</time></trkpt>\n"...)
}

func (g *gpxWriter) end(string) { g.buf = append(g.buf, "</trkseg>\n</trk>\n</gpx>\n"...) }

func (g *gpxWriter) flush(w io.Writer) error { return flushBuf(w, &g.buf) }

func (g *gpxWriter) buffered() int { return len(g.buf) }

// appendXMLText appends s escaped for XML text and attribute values.
func appendXMLText(dst []byte, s string) []byte {
	for _, r := range s {
		switch r {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		default:
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFD {
				r = '?' // not allowed in XML 1.0, or invalid UTF-8
			}
			dst = append(dst, string(r)...)
		}
	}
	return dst
}

// payloadNumber returns the top-level member key of payload if it is a
// finite number.
func payloadNumber(payload []byte, key string) (float64, bool) {
	for k, val := range members(payload) {
		if string(k) == key {
			f, err := strconv.ParseFloat(string(val), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// appendBareStamp is stamper.append without the quotes.
func appendBareStamp(dst []byte, st *stamper, sec int64, sep byte, z bool) []byte {
	start := len(dst)
	dst = st.append(dst, sec, sep, z)
	copy(dst[start:], dst[start+1:len(dst)-1])
	return dst[:len(dst)-2]
}

func flushBuf(w io.Writer, buf *[]byte) error {
	if len(*buf) == 0 {
		return nil
	}
	_, err := w.Write(*buf)
	*buf = (*buf)[:0]
	return err
}

// csvColumns are the default columns of format=csv. The Recorder's default
// is every member of the first location (rows of other shapes then do not
// line up); like it, fields= picks the columns.
var csvColumns = []string{"tst", "isotst", "lat", "lon", "acc", "alt", "vel", "cog", "batt", "tid"}

// maxCSVColumns bounds fields= for csv.
const maxCSVColumns = 64

// csvWriter renders a track as CSV (RFC 4180): a header line, then a line
// per location. tst, lat and lon are the stored fix's; isotst, isorcv and
// disptst are computed as for json; every other column is the payload's
// member of that name (empty when absent or null).
type csvWriter struct {
	cols     []string
	fromJSON map[string]int // payload-backed columns by name
	buf      []byte
	vals     [][]byte // per column, this row's payload value
	ts       timeScratch
}

func newCSVWriter(fields string) (*csvWriter, error) {
	cols := csvColumns
	if fields != "" {
		cols = nil
		for f := range strings.SplitSeq(fields, ",") {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(cols, f) {
				cols = append(cols, f)
			}
		}
		if len(cols) == 0 || len(cols) > maxCSVColumns {
			return nil, errors.New("fields: name 1 to " + strconv.Itoa(maxCSVColumns) + " columns, e.g. fields=tst,lat,lon")
		}
	}
	cw := &csvWriter{cols: cols, fromJSON: map[string]int{}, buf: make([]byte, 0, renderFlushAt+4<<10), vals: make([][]byte, len(cols))}
	for i, col := range cols {
		switch col {
		case "tst", "lat", "lon", "isorcv", "isotst", "disptst":
		default:
			cw.fromJSON[col] = i
		}
	}
	for i, col := range cols {
		if i > 0 {
			cw.buf = append(cw.buf, ',')
		}
		cw.buf = appendCSVField(cw.buf, col)
	}
	cw.buf = append(cw.buf, '\r', '\n')
	return cw, nil
}

func (cw *csvWriter) add(m *storage.Message) {
	clear(cw.vals)
	found := 0
	for k, val := range members(m.Payload) {
		if i, ok := cw.fromJSON[string(k)]; ok && cw.vals[i] == nil {
			cw.vals[i] = val
			if found++; found == len(cw.fromJSON) {
				break
			}
		}
	}
	var times []field // isorcv, isotst, disptst; made when a column asks
	b := cw.buf
	for i, col := range cw.cols {
		if i > 0 {
			b = append(b, ',')
		}
		switch col {
		case "tst":
			b = strconv.AppendInt(b, m.TST, 10)
		case "lat":
			b = strconv.AppendFloat(b, m.Lat, 'f', -1, 64)
		case "lon":
			b = strconv.AppendFloat(b, m.Lon, 'f', -1, 64)
		case "isorcv", "isotst", "disptst":
			if times == nil {
				times = cw.ts.fields(m)
			}
			for _, f := range times {
				if f.key == col {
					b = append(b, f.val[1:len(f.val)-1]...) // no quotes; nothing to escape
				}
			}
		default:
			b = appendCSVValue(b, cw.vals[i])
		}
	}
	cw.buf = append(b, '\r', '\n')
}

func (cw *csvWriter) end(string) {}

func (cw *csvWriter) flush(w io.Writer) error { return flushBuf(w, &cw.buf) }

func (cw *csvWriter) buffered() int { return len(cw.buf) }

// appendCSVValue appends a JSON value as a CSV field: strings decoded,
// numbers and booleans as written, null as nothing, objects and arrays as
// their JSON.
func appendCSVValue(dst, val []byte) []byte {
	switch {
	case len(val) == 0 || string(val) == "null":
		return dst
	case val[0] == '"':
		if bytes.IndexByte(val, '\\') < 0 {
			return appendCSVField(dst, val[1:len(val)-1])
		}
		var s string
		json.Unmarshal(val, &s) // validated on ingest
		return appendCSVField(dst, s)
	case val[0] == '{' || val[0] == '[':
		return appendCSVField(dst, val)
	}
	return append(dst, val...)
}

// appendCSVField appends s, quoted when it holds a comma, quote, line
// break or leading or trailing space (RFC 4180).
func appendCSVField[T string | []byte](dst []byte, s T) []byte {
	quote := len(s) > 0 && (s[0] == ' ' || s[len(s)-1] == ' ')
	for i := 0; i < len(s) && !quote; i++ {
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n'
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}
