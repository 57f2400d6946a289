package api

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

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
	buf      []byte
	f        [3]field
	rcv, tst stamper
}

func (ts *timeScratch) fields(m *storage.Message) []field {
	buf := ts.buf[:0]
	buf = ts.rcv.append(buf, floorDiv(m.Received, 1000), 'T', true)
	rcv := len(buf)
	buf = ts.tst.append(buf, m.TST, 'T', true)
	iso := len(buf)
	buf = ts.tst.append(buf, m.TST, ' ', false)
	ts.buf = buf
	ts.f = [3]field{{"isorcv", buf[:rcv:rcv]}, {"isotst", buf[rcv:iso:iso]}, {"disptst", buf[iso:]}}
	return ts.f[:]
}

// floorDiv is a/b rounded down: the day (or second) an instant before 1970
// falls in.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// stamper writes what appendStamp does for UNIX seconds, keeping the date
// of the day it wrote last: the points of a track mostly share their day,
// and working out a calendar date is most of the cost of a stamp.
type stamper struct {
	day  int64 // days since 1970-01-01 of date, when ok
	date [10]byte
	ok   bool
}

const secondsPerDay = 86400

func (st *stamper) append(dst []byte, sec int64, sep byte, z bool) []byte {
	day, rem := floorDiv(sec, secondsPerDay), int(sec%secondsPerDay)
	if rem < 0 {
		rem += secondsPerDay
	}
	if !st.ok || st.day != day {
		y, mo, d := time.Unix(sec, 0).UTC().Date()
		if y < 0 || y > 9999 {
			st.ok = false
			return appendStamp(dst, time.Unix(sec, 0), sep, z)
		}
		st.date = [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
			byte('0' + mo/10), byte('0' + mo%10), '-', byte('0' + d/10), byte('0' + d%10)}
		st.day, st.ok = day, true
	}
	dst = append(dst, '"')
	dst = append(dst, st.date[:]...)
	dst = append(dst, sep)
	dst = append2(dst, rem/3600)
	dst = append(dst, ':')
	dst = append2(dst, rem/60%60)
	dst = append(dst, ':')
	dst = append2(dst, rem%60)
	if z {
		dst = append(dst, 'Z')
	}
	return append(dst, '"')
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

// mentionsAny reports whether p holds `"key"` for one of the extra keys, or,
// if p has a \u escape, whether one of its top-level keys is an extra key
// (a key may be spelled with escapes). It runs for every point of a long
// track: searching for the bare key (a rarer first byte than the quote)
// and checking the quotes around it is a few times faster than searching
// for the quoted key.
func mentionsAny(p []byte, extra []field) bool {
	if bytes.Contains(p, []byte(`\u`)) {
		return escapedKeyCollides(p, extra)
	}
	for _, f := range extra {
		if quotedIn(p, f.key) {
			return true
		}
	}
	return false
}

// quotedIn is bytes.Contains(p, `"`+key+`"`), without building the needle.
func quotedIn(p []byte, key string) bool {
	s := unsafe.String(unsafe.SliceData(p), len(p)) // read only, not kept
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], key)
		if j < 0 {
			return false
		}
		j += i
		if j > 0 && s[j-1] == '"' && j+len(key) < len(s) && s[j+len(key)] == '"' {
			return true
		}
		i = j + 1
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
// properties the Recorder gives its geojson output (storage.c geo_json:
// name from tid, tst, isotst, vel, acc, alt, address from addr) plus tid
// and batt. Members the fix lacks are left out, where the Recorder writes
// 0 or "".
func appendFeature(dst []byte, m *storage.Message) []byte {
	var st stamper
	return st.appendFeature(dst, m)
}

// appendFeature is appendFeature with the stamper's remembered date.
func (st *stamper) appendFeature(dst []byte, m *storage.Message) []byte {
	dst = append(dst, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	dst = strconv.AppendFloat(dst, m.Lon, 'f', -1, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, m.Lat, 'f', -1, 64)
	dst = append(dst, `]},"properties":{`...)
	dst = append(dst, `"tst":`...)
	dst = strconv.AppendInt(dst, m.TST, 10)
	dst = append(dst, `,"isotst":`...)
	dst = st.append(dst, m.TST, 'T', true)
	// One pass over the payload's top-level members, copying values as
	// written (a JSON parser would also decode every number).
	for key, val := range members(m.Payload) {
		switch string(key) {
		case "tid", "vel", "acc", "alt", "batt":
			dst = append(dst, ',', '"')
			dst = append(dst, key...)
			dst = append(dst, '"', ':')
			dst = append(dst, val...)
			if key[0] == 't' {
				dst = append(dst, `,"name":`...) // the Recorder labels a point with its tid
				dst = append(dst, val...)
			}
		case "addr":
			dst = append(dst, `,"address":`...)
			dst = append(dst, val...)
		}
	}
	return append(dst, "}}"...)
}
