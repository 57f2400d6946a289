package api

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/storage"
)

// field is a member added to a stored payload on output.
type field struct {
	key string
	val []byte // JSON
}

func stringField(key, v string) field {
	b, _ := json.Marshal(v)
	return field{key, b}
}

const (
	isoLayout  = "2006-01-02T15:04:05Z"
	dispLayout = "2006-01-02 15:04:05"
)

// appendStamp appends t (UTC) as a quoted "YYYY-MM-DD<sep>HH:MM:SS" plus
// "Z" when z is set: the Recorder's isotst/disptst, written by hand since
// it runs for every point of a long track.
func appendStamp(dst []byte, t time.Time, sep byte, z bool) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	dst = append(dst, '"')
	if y < 0 || y > 9999 {
		dst = t.AppendFormat(dst, "2006-01-02")
	} else {
		dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
		dst = append2(dst, int(mo))
		dst = append(dst, '-')
		dst = append2(dst, d)
	}
	dst = append(dst, sep)
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	dst = append2(dst, sec)
	if z {
		dst = append(dst, 'Z')
	}
	return append(dst, '"')
}

func append2(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }

// timeFields are the Recorder's added time members.
func timeFields(m *storage.Message) []field {
	var ts timeScratch
	return ts.fields(m)
}

// timeScratch builds time members into reused memory, for long streams.
type timeScratch struct {
	buf []byte
	f   [3]field
}

func (ts *timeScratch) fields(m *storage.Message) []field {
	buf := ts.buf[:0]
	buf = appendStamp(buf, m.ReceivedTime(), 'T', true)
	rcv := len(buf)
	tst := time.Unix(m.TST, 0)
	buf = appendStamp(buf, tst, 'T', true)
	iso := len(buf)
	buf = appendStamp(buf, tst, ' ', false)
	ts.buf = buf
	ts.f = [3]field{{"isorcv", buf[:rcv:rcv]}, {"isotst", buf[rcv:iso:iso]}, {"disptst", buf[iso:]}}
	return ts.f[:]
}

// appendObject appends payload (a JSON object) with extra members set and,
// when only is non-empty, just the members named in it. The fast path
// splices the extra members before the closing brace without decoding;
// the payload is decoded only when a key would otherwise repeat.
func appendObject(dst, payload []byte, extra []field, only map[string]bool) []byte {
	p := bytes.TrimSpace(payload)
	if len(only) == 0 && !mentionsAny(p, extra) && len(p) >= 2 && p[len(p)-1] == '}' {
		body := bytes.TrimSpace(p[:len(p)-1])
		dst = append(dst, body...)
		for i, f := range extra {
			if i > 0 || len(body) > 1 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, f.key...) // our own keys: plain ASCII, nothing to escape
			dst = append(dst, '"', ':')
			dst = append(dst, f.val...)
		}
		return append(dst, '}')
	}
	members := map[string]json.RawMessage{}
	json.Unmarshal(p, &members) // validated on ingest
	for _, f := range extra {
		members[f.key] = f.val
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		if len(only) == 0 || only[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		kb, _ := json.Marshal(k)
		dst = append(dst, kb...)
		dst = append(dst, ':')
		dst = append(dst, members[k]...)
	}
	return append(dst, '}')
}

func mentionsAny(p []byte, extra []field) bool {
	if bytes.Contains(p, []byte(`\u`)) {
		return escapedKeyCollides(p, extra) // a key may be spelled with escapes
	}
	for _, f := range extra {
		if bytes.Contains(p, []byte(`"`+f.key+`"`)) {
			return true
		}
	}
	return false
}

// escapedKeyCollides decodes the top-level keys of p and reports whether
// one of them is an extra member's key.
func escapedKeyCollides(p []byte, extra []field) bool {
	dec := json.NewDecoder(bytes.NewReader(p))
	if _, err := dec.Token(); err != nil {
		return true
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		key, _ := tok.(string)
		for _, f := range extra {
			if f.key == key {
				return true
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return true
		}
	}
	return false
}

// appendFeature appends a GeoJSON Point feature for a location, with the
// properties the Recorder gives its geojson output.
func appendFeature(dst []byte, m *storage.Message) []byte {
	dst = append(dst, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	dst = strconv.AppendFloat(dst, m.Lon, 'f', -1, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, m.Lat, 'f', -1, 64)
	dst = append(dst, `]},"properties":{`...)
	dst = append(dst, `"tst":`...)
	dst = strconv.AppendInt(dst, m.TST, 10)
	dst = append(dst, `,"isotst":`...)
	dst = appendStamp(dst, time.Unix(m.TST, 0), 'T', true)
	// One pass over the payload's top-level members (gjson.GetMany would
	// scan it once per property).
	// The string shares the payload's bytes (no copy); it does not outlive
	// this call and the payload is not modified meanwhile.
	gjson.Parse(unsafe.String(unsafe.SliceData(m.Payload), len(m.Payload))).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "tid", "vel", "acc", "alt", "batt":
			dst = append(dst, ',', '"')
			dst = append(dst, key.Str...)
			dst = append(dst, '"', ':')
			dst = append(dst, value.Raw...)
		}
		return true
	})
	return append(dst, "}}"...)
}
