package importer

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// fix is a position from a non-OwnTracks source, turned into an OwnTracks
// location payload. NaN marks an absent optional field.
type fix struct {
	tst                     int64
	lat, lon                float64
	acc, alt, vac, vel, cog float64
	batt                    float64
	tid                     string
}

var nan = math.NaN()

func newFix() fix {
	return fix{acc: nan, alt: nan, vac: nan, vel: nan, cog: nan, batt: nan}
}

// appendJSON appends the payload. The same fix always gives the same bytes,
// so importing a file again stores nothing twice. The numbers the apps send
// as integers (acc, alt, vac, vel in km/h, cog, batt; OwnTracks booklet,
// JSON) are rounded.
func (f *fix) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"_type":"location"`...)
	if f.tid != "" {
		dst = append(dst, `,"tid":`...)
		dst = strconv.AppendQuote(dst, f.tid)
	}
	dst = append(dst, `,"tst":`...)
	dst = strconv.AppendInt(dst, f.tst, 10)
	dst = append(dst, `,"lat":`...)
	dst = strconv.AppendFloat(dst, f.lat, 'f', -1, 64)
	dst = append(dst, `,"lon":`...)
	dst = strconv.AppendFloat(dst, f.lon, 'f', -1, 64)
	for _, o := range [...]struct {
		name string
		v    float64
	}{{"acc", f.acc}, {"alt", f.alt}, {"vac", f.vac}, {"vel", f.vel}, {"cog", f.cog}, {"batt", f.batt}} {
		if math.IsNaN(o.v) || math.IsInf(o.v, 0) {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, o.name...)
		dst = append(dst, '"', ':')
		dst = strconv.AppendInt(dst, int64(math.Round(o.v)), 10)
	}
	return append(dst, '}')
}

// defaultTID is the tracker id the apps default to: the device name's
// last two characters.
func defaultTID(device string) string {
	r := []rune(device)
	if len(r) > 2 {
		r = r[len(r)-2:]
	}
	return string(r)
}

// validPosition reports whether lat/lon are finite and on the globe.
func validPosition(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// parseLatLng reads Google's position strings: "52.5200066°, 13.404954°"
// (Timeline.json) and "geo:52.520007,13.404954" (the iOS export).
func parseLatLng(s string) (lat, lon float64, ok bool) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "geo:"))
	s = strings.ReplaceAll(s, "°", "")
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil || !validPosition(lat, lon) {
		return 0, 0, false
	}
	return lat, lon, true
}

// parseTime reads a time given as an RFC 3339 string, or a number of UNIX
// seconds (milliseconds when it is too large to be seconds), and returns
// whole UNIX seconds.
func parseTime(v gjson.Result) (int64, bool) {
	switch v.Type {
	case gjson.String:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v.Str))
		if err != nil {
			if n, err := strconv.ParseFloat(v.Str, 64); err == nil {
				return unixSeconds(n)
			}
			return 0, false
		}
		return t.Unix(), true
	case gjson.Number:
		return unixSeconds(v.Num)
	}
	return 0, false
}

// unixSeconds takes n as seconds, or as milliseconds past year 5000.
func unixSeconds(n float64) (int64, bool) {
	if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
		return 0, false
	}
	if n > 1e11 {
		n /= 1000
	}
	return int64(n), true
}

// number returns v as a number, NaN when it is not one (numeric strings
// count: Takeout writes some numbers as strings).
func number(v gjson.Result) float64 {
	switch v.Type {
	case gjson.Number:
		return v.Num
	case gjson.String:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.Str), 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

// emitFix builds the payload of f and hands it to the run.
func (r *run) emitFix(f *fix, pos int) error {
	if f.tid == "" {
		f.tid = defaultTID(r.src.Device)
	}
	r.scratch = f.appendJSON(r.scratch[:0])
	return r.message(r.base, r.scratch, 0, pos)
}
