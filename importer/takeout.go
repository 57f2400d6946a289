package importer

import (
	"bufio"
	"math"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/recorder"
)

// Google's location history comes in four shapes (locationhistoryformat.com
// documents them; public importers such as dedicatedcode/reitti agree):
//
//   - Takeout's Records.json (before 2024), {"locations":[...]}, each record
//     {"latitudeE7":414216106,"longitudeE7":21684775,"accuracy":20,
//     "altitude":150,"verticalAccuracy":10,"velocity":10,"heading":270,
//     "timestamp":"2022-01-12T17:18:24.190Z",...}; older files have
//     "timestampMs":"1486110600090" instead. Velocity is in m/s. Some
//     exports wrote coordinates past ±180° as unsigned 32-bit values.
//   - Takeout's Semantic Location History (before 2024), a file a month
//     (Semantic Location History/2019/2019_JANUARY.json),
//     {"timelineObjects":[...]}, each object a "placeVisit" with
//     "location":{"latitudeE7":...,"longitudeE7":...,"name":...} (or only
//     "centerLatE7"/"centerLngE7") and "duration":{"startTimestamp":
//     "2019-01-02T08:00:00.123Z","endTimestamp":...}, or an
//     "activitySegment" with "startLocation" and "endLocation"
//     {"latitudeE7","longitudeE7"}, a "duration" and a "simplifiedRawPath":
//     {"points":[{"latE7":...,"lngE7":...,"accuracyMeters":10,"timestamp":
//     "..."}]}. Older files spell every time "...TimestampMs":"1546416000123".
//     An activity's "waypointPath" has no times and is passed over, and so
//     are a visit's "childVisits" (places within the place visited).
//   - the phone's Timeline.json (2024 on), {"semanticSegments":[...],
//     "rawSignals":[...],...}: segments with "timelinePath":[{"point":
//     "52.5200066°, 13.404954°","time":"2024-05-01T09:12:00.000+02:00"}] or
//     a "visit" at "topCandidate":{"placeLocation":{"latLng":"..."}} from
//     "startTime" to "endTime"; raw signals with "position":{"LatLng":"...",
//     "accuracyMeters":13,"altitudeMeters":40.2,"speedMetersPerSecond":1.2,
//     "timestamp":"..."}.
//   - the iOS app's export: a bare array of segments with "startTime" and
//     "endTime", "visit":{"topCandidate":{"placeLocation":"geo:52.52,13.40"}}
//     or "timelinePath":[{"point":"geo:52.52,13.40",
//     "durationMinutesOffsetFromStartTime":"12"}].
//
// A visit gives two locations, at its start and its end. Timeline.json's
// activities (movements between visits) are skipped: their paths are in
// timelinePath; a Semantic activity gives its start and end locations at
// its start and end, and the timed points of its simplifiedRawPath
// between them. Files are streamed: Records.json runs to gigabytes.

// readTakeout reads any of the four.
func readTakeout(r *run, br *bufio.Reader) error {
	s := jsonStream{br: br}
	first, err := s.peek()
	if err != nil {
		return err
	}
	if first == '[' {
		if err := s.array(func(elem []byte, n int) error { return r.record(elem, n, r.iosSegment) }); err != nil {
			return err
		}
		return s.end()
	}
	known := false
	err = s.object(func(key string) error {
		switch key {
		case "locations":
			known = true
			return s.array(func(elem []byte, n int) error { return r.record(elem, n, r.takeoutRecord) })
		case "semanticSegments":
			known = true
			return s.array(func(elem []byte, n int) error { return r.record(elem, n, r.semanticSegment) })
		case "rawSignals":
			known = true
			return s.array(func(elem []byte, n int) error { return r.record(elem, n, r.rawSignal) })
		case "timelineObjects":
			known = true
			return s.array(func(elem []byte, n int) error { return r.record(elem, n, r.timelineObject) })
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if !known {
		return inputError("none of locations, timelineObjects, semanticSegments or rawSignals: not Google location history")
	}
	return s.end()
}

// record hands one element of a streamed array to read, once it is known
// to be valid JSON (gjson, which reads it, would take some garbage).
func (r *run) record(elem []byte, n int, read func(gjson.Result, int) error) error {
	if !gjson.ValidBytes(elem) {
		r.skip(n, recorder.ReasonJSON, "not valid JSON: %s", clip(elem))
		return nil
	}
	return read(gjson.ParseBytes(elem), n)
}

// takeoutRecord imports one Records.json location record.
func (r *run) takeoutRecord(rec gjson.Result, n int) error {
	f := newFix()
	var latE7, lonE7 = nan, nan
	var at gjson.Result
	rec.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "latitudeE7":
			latE7 = number(v)
		case "longitudeE7":
			lonE7 = number(v)
		case "timestamp":
			at = v
		case "timestampMs":
			if !at.Exists() {
				at = v
			}
		case "accuracy":
			f.acc = number(v)
		case "altitude":
			f.alt = number(v)
		case "verticalAccuracy":
			f.vac = number(v)
		case "velocity":
			f.vel = number(v) * 3.6
		case "heading":
			f.cog = number(v)
		}
		return true
	})
	f.lat, f.lon = fromE7(latE7, 90), fromE7(lonE7, 180)
	if !validPosition(f.lat, f.lon) {
		r.skip(n, ReasonCoordinates, "record without latitudeE7 and longitudeE7 on the globe")
		return nil
	}
	var ok bool
	if f.tst, ok = parseTime(at); !ok {
		r.skip(n, ReasonTime, "record without timestamp or timestampMs")
		return nil
	}
	return r.emitFix(&f, n)
}

// fromE7 turns an E7 coordinate into degrees, undoing the unsigned 32-bit
// wrap of some exports.
func fromE7(e7, limit float64) float64 {
	if math.IsNaN(e7) {
		return nan
	}
	if e7 > limit*1e7 {
		e7 -= 1 << 32
	}
	return e7 / 1e7
}

// semanticSegment imports a Timeline.json segment: its path points, or a
// visit's place at its start and end.
func (r *run) semanticSegment(seg gjson.Result, n int) error {
	if path := seg.Get("timelinePath"); path.IsArray() {
		for _, p := range path.Array() {
			if err := r.googlePoint(p.Get("point").Str, p.Get("time"), n); err != nil {
				return err
			}
		}
	}
	if place := seg.Get("visit.topCandidate.placeLocation.latLng"); place.Exists() {
		return r.visit(place.Str, seg.Get("startTime"), seg.Get("endTime"), n)
	}
	return nil
}

// rawSignal imports a Timeline.json raw position; Wi-Fi scans and activity
// records are not positions and are passed over.
func (r *run) rawSignal(sig gjson.Result, n int) error {
	pos := sig.Get("position")
	if !pos.Exists() {
		return nil
	}
	ll := pos.Get("LatLng")
	if !ll.Exists() {
		ll = pos.Get("latLng")
	}
	f := newFix()
	var ok bool
	if f.lat, f.lon, ok = parseLatLng(ll.Str); !ok {
		r.skip(n, ReasonCoordinates, "position %q is not \"lat°, lng°\"", ll.Str)
		return nil
	}
	if f.tst, ok = parseTime(pos.Get("timestamp")); !ok {
		r.skip(n, ReasonTime, "position without a timestamp")
		return nil
	}
	f.acc = number(pos.Get("accuracyMeters"))
	f.alt = number(pos.Get("altitudeMeters"))
	f.vel = number(pos.Get("speedMetersPerSecond")) * 3.6
	return r.emitFix(&f, n)
}

// iosSegment imports a segment of the iOS export.
func (r *run) iosSegment(seg gjson.Result, n int) error {
	start := seg.Get("startTime")
	if path := seg.Get("timelinePath"); path.IsArray() {
		t0, ok := parseTime(start)
		for _, p := range path.Array() {
			if !ok {
				r.skip(n, ReasonTime, "timelinePath of a segment without startTime")
				break
			}
			minutes := number(p.Get("durationMinutesOffsetFromStartTime"))
			if math.IsNaN(minutes) {
				minutes = 0
			}
			at := gjson.Result{Type: gjson.Number, Num: float64(t0) + minutes*60}
			if err := r.googlePoint(p.Get("point").Str, at, n); err != nil {
				return err
			}
		}
	}
	if place := seg.Get("visit.topCandidate.placeLocation"); place.Exists() {
		return r.visit(place.Str, start, seg.Get("endTime"), n)
	}
	return nil
}

// visit imports a stay at place, a position string, as two locations, at
// its start and its end.
func (r *run) visit(place string, start, end gjson.Result, n int) error {
	f := newFix()
	var ok bool
	if f.lat, f.lon, ok = parseLatLng(place); !ok {
		r.skip(n, ReasonCoordinates, "visit at %s, not \"lat°, lng°\" or \"geo:lat,lng\"", strconv.Quote(place))
		return nil
	}
	return r.stay(f, start, end, n)
}

// stay imports a stay at f as two locations, at its start and its end (one
// when they are the same or the end is not given).
func (r *run) stay(f fix, start, end gjson.Result, n int) error {
	if err := r.fixAt(f, start, n); err != nil {
		return err
	}
	if end.Exists() && end.Raw != start.Raw {
		return r.fixAt(f, end, n)
	}
	return nil
}

// googlePoint imports a position string at a time.
func (r *run) googlePoint(point string, at gjson.Result, n int) error {
	f := newFix()
	var ok bool
	if f.lat, f.lon, ok = parseLatLng(point); !ok {
		r.skip(n, ReasonCoordinates, "point %s is not \"lat°, lng°\" or \"geo:lat,lng\"", strconv.Quote(point))
		return nil
	}
	return r.fixAt(f, at, n)
}

// fixAt imports f at the time at.
func (r *run) fixAt(f fix, at gjson.Result, n int) error {
	var ok bool
	if f.tst, ok = parseTime(at); !ok {
		r.skip(n, ReasonTime, "point without a time")
		return nil
	}
	return r.emitFix(&f, n)
}

// timelineObject imports an entry of a Semantic Location History month:
// a placeVisit or an activitySegment. Other kinds are passed over.
func (r *run) timelineObject(obj gjson.Result, n int) error {
	if v := obj.Get("placeVisit"); v.Exists() {
		return r.placeVisit(v, n)
	}
	if seg := obj.Get("activitySegment"); seg.Exists() {
		return r.activitySegment(seg, n)
	}
	return nil
}

// placeVisit imports a Semantic place visit: its place at its start and
// at its end. The place is the location's latitudeE7/longitudeE7, else the
// visit's centerLatE7/centerLngE7, which locationhistoryformat.com also
// documents as the place's coordinates.
func (r *run) placeVisit(v gjson.Result, n int) error {
	f, ok := e7Fix(v.Get("location"), "latitudeE7", "longitudeE7")
	if !ok {
		f, ok = e7Fix(v, "centerLatE7", "centerLngE7")
	}
	if !ok {
		r.skip(n, ReasonCoordinates, "placeVisit without a location's latitudeE7 and longitudeE7 on the globe")
		return nil
	}
	d := v.Get("duration")
	return r.stay(f, semanticTime(d, "startTimestamp"), semanticTime(d, "endTimestamp"), n)
}

// activitySegment imports a Semantic activity: its startLocation at its
// start, the points of its simplifiedRawPath that have a time, and its
// endLocation at its end, in that order.
func (r *run) activitySegment(seg gjson.Result, n int) error {
	d := seg.Get("duration")
	if err := r.activityEnd(seg.Get("startLocation"), semanticTime(d, "startTimestamp"), n); err != nil {
		return err
	}
	for _, p := range seg.Get("simplifiedRawPath.points").Array() {
		at := semanticTime(p, "timestamp")
		if !at.Exists() {
			continue // a position without a time, like waypointPath's
		}
		f, ok := e7Fix(p, "latE7", "lngE7")
		if !ok {
			r.skip(n, ReasonCoordinates, "simplifiedRawPath point without latE7 and lngE7 on the globe")
			continue
		}
		f.acc = number(p.Get("accuracyMeters"))
		if err := r.fixAt(f, at, n); err != nil {
			return err
		}
	}
	return r.activityEnd(seg.Get("endLocation"), semanticTime(d, "endTimestamp"), n)
}

// activityEnd imports an activity's start or end location at that time.
func (r *run) activityEnd(loc, at gjson.Result, n int) error {
	f, ok := e7Fix(loc, "latitudeE7", "longitudeE7")
	if !ok {
		r.skip(n, ReasonCoordinates, "activitySegment location without latitudeE7 and longitudeE7 on the globe")
		return nil
	}
	return r.fixAt(f, at, n)
}

// e7Fix returns a fix at the E7 coordinates under obj's keys lat and lon;
// ok is false when they are not a position on the globe.
func e7Fix(obj gjson.Result, lat, lon string) (f fix, ok bool) {
	f = newFix()
	f.lat, f.lon = fromE7(number(obj.Get(lat)), 90), fromE7(number(obj.Get(lon)), 180)
	return f, validPosition(f.lat, f.lon)
}

// semanticTime returns the time under key ("startTimestamp": RFC 3339),
// or under key+"Ms" (UNIX ms as a string), as older files have it.
func semanticTime(obj gjson.Result, key string) gjson.Result {
	if t := obj.Get(key); t.Exists() {
		return t
	}
	return obj.Get(key + "Ms")
}
