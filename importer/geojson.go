package importer

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
)

// readGeoJSON reads a GeoJSON (RFC 7946) FeatureCollection, streaming its
// features, or a single Feature. A Point is one location, its time from the
// properties tst, timestamp, time or isotst; a LineString, MultiPoint or
// MultiLineString gives one location per coordinate when its properties
// carry the times (coordTimes, times, or coordinateProperties.times, as
// written by GPX converters such as togeojson). Properties whose _type is
// "location" are taken as the payload itself (what the Recorder's and
// wherehouse's exports hold), so a round trip keeps every field.
func readGeoJSON(r *run, br *bufio.Reader) error {
	s := jsonStream{br: br}
	single := map[string][]byte{} // members of a top-level Feature
	seenFeatures := false
	err := s.object(func(key string) error {
		switch key {
		case "features":
			seenFeatures = true
			return s.array(func(elem []byte, n int) error { return r.record(elem, n, r.feature) })
		case "type", "geometry", "properties":
			v, err := s.value(true)
			single[key] = bytes.Clone(v)
			return err
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if !seenFeatures {
		if gjson.ParseBytes(single["type"]).Str != "Feature" {
			return inputError("neither a GeoJSON FeatureCollection nor a Feature")
		}
		f := []byte(`{"geometry":` + orNull(single["geometry"]) + `,"properties":` + orNull(single["properties"]) + `}`)
		return r.record(f, 1, r.feature)
	}
	return nil
}

func orNull(b []byte) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

// feature imports the locations of one Feature.
func (r *run) feature(feat gjson.Result, n int) error {
	geom := feat.Get("geometry")
	props := feat.Get("properties")
	coords := geom.Get("coordinates")
	switch typ := geom.Get("type").Str; typ {
	case "Point":
		return r.geoPoint(coords, props, gjson.Result{}, n)
	case "LineString", "MultiPoint", "MultiLineString":
		times := props.Get("coordTimes")
		if !times.Exists() {
			times = props.Get("times")
		}
		if !times.Exists() {
			times = props.Get("coordinateProperties.times")
		}
		if !times.IsArray() {
			r.skip(n, ReasonTime, "%s without coordinate times (coordTimes)", typ)
			return nil
		}
		lines, tlines := []gjson.Result{coords}, []gjson.Result{times}
		if typ == "MultiLineString" {
			lines, tlines = coords.Array(), times.Array()
		}
		for i, line := range lines {
			var ts []gjson.Result
			if i < len(tlines) {
				ts = tlines[i].Array()
			}
			for j, c := range line.Array() {
				if j >= len(ts) {
					r.skip(n, ReasonTime, "%s has more coordinates than times", typ)
					break
				}
				if err := r.geoPoint(c, props, ts[j], n); err != nil {
					return err
				}
			}
		}
		return nil
	case "":
		r.skip(n, ReasonCoordinates, "feature without a geometry")
	default:
		r.skip(n, ReasonCoordinates, "geometry %s has no points in time", typ)
	}
	return nil
}

// geoPoint imports one position [lon, lat(, alt)] with the feature's
// properties; at is its own time (from a coordinate time list) if any.
func (r *run) geoPoint(c, props, at gjson.Result, n int) error {
	pos := c.Array()
	if len(pos) < 2 || pos[0].Type != gjson.Number || pos[1].Type != gjson.Number || !validPosition(pos[1].Num, pos[0].Num) {
		r.skip(n, ReasonCoordinates, "coordinates %s are not [lon, lat] on the globe", clip([]byte(c.Raw)))
		return nil
	}
	if !at.Exists() && props.Get("_type").Str == "location" && props.Get("lat").Exists() && props.Get("lon").Exists() {
		return r.message(r.base, []byte(props.Raw), 0, n) // an OwnTracks payload already
	}
	f := newFix()
	f.lon, f.lat = pos[0].Num, pos[1].Num
	if len(pos) > 2 && pos[2].Type == gjson.Number {
		f.alt = pos[2].Num
	}
	var ok bool
	if at.Exists() {
		f.tst, ok = parseTime(at)
	} else {
		f.tst, ok = propertyTime(props)
	}
	if !ok {
		r.skip(n, ReasonTime, "point without a time (properties tst, timestamp or time)")
		return nil
	}
	props.ForEach(func(k, v gjson.Result) bool {
		switch strings.ToLower(k.Str) {
		case "acc", "accuracy":
			f.acc = number(v)
		case "alt", "altitude", "ele", "elevation":
			f.alt = number(v)
		case "vac":
			f.vac = number(v)
		case "vel":
			f.vel = number(v)
		case "speed":
			f.vel = number(v) * 3.6
		case "cog", "course", "heading", "bearing":
			f.cog = number(v)
		case "batt", "battery":
			f.batt = number(v)
		case "tid":
			f.tid = v.Str
		}
		return true
	})
	return r.emitFix(&f, n)
}

// propertyTime finds a point's time in its properties.
func propertyTime(props gjson.Result) (int64, bool) {
	for _, k := range []string{"tst", "timestamp", "time", "isotst", "datetime"} {
		if v := props.Get(k); v.Exists() {
			return parseTime(v)
		}
	}
	return 0, false
}
