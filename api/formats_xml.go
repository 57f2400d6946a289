package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wherehouse/wherehouse/storage"
)

// xmlWriter renders format=xml as the Recorder's xml_output (storage.c):
// an <owntracks> root with a <point> per location holding an element per
// member of what format=json gives (the payload, isorcv, isotst, disptst),
// except _type; with fields=, only those members, in that order. Where the
// Recorder prints numbers with printf (six decimals, or rounded for batt,
// vel, cog, tst, alt, dist and trip) this writes them as received, so
// nothing is lost; arrays and objects (inregions), which the Recorder
// leaves empty, are written as their JSON text; and a key that is no XML
// name has its other characters replaced by '_'. The Recorder also points
// at an owntracks.xsl stylesheet that it does not serve at that address;
// this leaves the reference out, so browsers show the document.
type xmlWriter struct {
	cols []string       // fields=, in order; nil for every member
	want map[string]int // cols by name
	vals [][]byte       // per column, this point's value
	buf  []byte
	ts   timeScratch
}

func newXMLWriter(fields string) (*xmlWriter, error) {
	w := &xmlWriter{buf: make([]byte, 0, renderFlushAt+4<<10)}
	if fields != "" {
		for f := range strings.SplitSeq(fields, ",") {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(w.cols, f) {
				w.cols = append(w.cols, f)
			}
		}
		if len(w.cols) == 0 || len(w.cols) > maxCSVColumns {
			return nil, errors.New("fields: name 1 to " + strconv.Itoa(maxCSVColumns) + " members, e.g. fields=tst,lat,lon")
		}
		w.want = make(map[string]int, len(w.cols))
		for i, col := range w.cols {
			w.want[col] = i
		}
		w.vals = make([][]byte, len(w.cols))
	}
	w.buf = append(w.buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<owntracks>\n"...)
	return w, nil
}

func isTimeField(key []byte) bool {
	switch string(key) {
	case "isorcv", "isotst", "disptst":
		return true
	}
	return false
}

func (w *xmlWriter) add(m *storage.Message) {
	times := w.ts.fields(m)
	b := append(w.buf, " <point>\n"...)
	if w.cols == nil {
		for key, val := range members(m.Payload) {
			if string(key) == "_type" || isTimeField(key) {
				continue
			}
			b = w.appendElement(b, key, val)
		}
		for _, f := range times {
			b = w.appendElement(b, []byte(f.key), f.val)
		}
		w.buf = append(b, " </point>\n"...)
		return
	}
	clear(w.vals)
	for key, val := range members(m.Payload) {
		if i, ok := w.want[string(key)]; ok && w.vals[i] == nil && !isTimeField(key) {
			w.vals[i] = val
		}
	}
	for _, f := range times {
		if i, ok := w.want[f.key]; ok {
			w.vals[i] = f.val
		}
	}
	for i, col := range w.cols {
		if w.vals[i] != nil && col != "_type" {
			b = w.appendElement(b, []byte(col), w.vals[i])
		}
	}
	w.buf = append(b, " </point>\n"...)
}

// appendElement appends "  <key>value</key>" and a line break for a JSON
// value: strings decoded and escaped, numbers and literals as written,
// arrays and objects as escaped JSON text.
func (w *xmlWriter) appendElement(dst, key, val []byte) []byte {
	dst = append(dst, "  <"...)
	start := len(dst)
	dst = appendXMLName(dst, key)
	name := dst[start:]
	dst = append(dst, '>')
	switch {
	case len(val) > 0 && val[0] == '"':
		if bytes.IndexByte(val, '\\') < 0 {
			dst = appendXMLBytes(dst, val[1:len(val)-1])
		} else {
			var s string
			json.Unmarshal(val, &s) // validated on ingest
			dst = appendXMLText(dst, s)
		}
	case len(val) > 0 && (val[0] == '{' || val[0] == '['):
		dst = appendXMLBytes(dst, val)
	default:
		dst = append(dst, val...)
	}
	dst = append(dst, "</"...)
	dst = append(dst, dst[start:start+len(name)]...)
	return append(dst, ">\n"...)
}

func (w *xmlWriter) end(string) { w.buf = append(w.buf, "</owntracks>\n"...) }

func (w *xmlWriter) flush(out io.Writer) error { return flushBuf(out, &w.buf) }

func (w *xmlWriter) buffered() int { return len(w.buf) }

// appendXMLName appends key as an XML element name: characters that may
// not appear in a name become '_', and a name that may not start as it
// does gets a leading '_'.
func appendXMLName(dst, key []byte) []byte {
	if len(key) == 0 {
		return append(dst, '_')
	}
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRune(key[i:])
		nameStart := r == '_' || unicode.IsLetter(r)
		if i == 0 && !nameStart {
			dst = append(dst, '_')
		}
		if nameStart || r == '-' || r == '.' || unicode.IsDigit(r) {
			dst = append(dst, key[i:i+size]...)
		} else {
			dst = append(dst, '_')
		}
		i += size
	}
	return dst
}

// appendXMLBytes is appendXMLText for bytes, without a conversion.
func appendXMLBytes(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				dst = append(dst, "&lt;"...)
			case c == '>':
				dst = append(dst, "&gt;"...)
			case c == '&':
				dst = append(dst, "&amp;"...)
			case c == '"':
				dst = append(dst, "&quot;"...)
			case c == '\'':
				dst = append(dst, "&apos;"...)
			case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
				dst = append(dst, '?') // not allowed in XML 1.0
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError || r == 0xFFFE || r == 0xFFFF {
			dst = append(dst, '?')
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// kmlWriter renders format=kml, which the Recorder lacks: a KML 2.2
// Document named user/device with the track as a line (a Placemark with a
// LineString of lon,lat[,alt] positions) named by its first fix's time;
// with a gap, a Placemark per segment. KML has no per-position times in a
// plain LineString; use gpx for those.
type kmlWriter struct {
	buf     []byte
	gap     int64
	count   int
	prevTST int64
	st      stamper
}

func newKMLWriter(user, device string, gap int64) *kmlWriter {
	w := &kmlWriter{buf: make([]byte, 0, renderFlushAt+4<<10), gap: gap}
	w.buf = append(w.buf, `<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
<Document>
<name>`...)
	w.buf = appendXMLText(w.buf, user+"/"+device)
	w.buf = append(w.buf, "</name>\n"...)
	return w
}

func (w *kmlWriter) add(m *storage.Message) {
	b := w.buf
	if w.count > 0 && w.gap > 0 && m.TST-w.prevTST > w.gap {
		b = append(b, kmlSegmentEnd...)
	}
	if w.count == 0 || w.gap > 0 && m.TST-w.prevTST > w.gap {
		b = append(b, "<Placemark>\n<name>"...)
		b = appendBareStamp(b, &w.st, m.TST, 'T', true)
		b = append(b, "</name>\n<LineString>\n<tessellate>1</tessellate>\n<coordinates>\n"...)
	}
	b = strconv.AppendFloat(b, m.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, m.Lat, 'f', -1, 64)
	if alt, ok := payloadNumber(m.Payload, "alt"); ok {
		b = append(b, ',')
		b = strconv.AppendFloat(b, alt, 'f', -1, 64)
	}
	w.buf = append(b, '\n')
	w.count++
	w.prevTST = m.TST
}

const kmlSegmentEnd = "</coordinates>\n</LineString>\n</Placemark>\n"

func (w *kmlWriter) end(string) {
	if w.count > 0 {
		w.buf = append(w.buf, kmlSegmentEnd...)
	}
	w.buf = append(w.buf, "</Document>\n</kml>\n"...)
}

func (w *kmlWriter) flush(out io.Writer) error { return flushBuf(out, &w.buf) }

func (w *kmlWriter) buffered() int { return len(w.buf) }
