package importer

import (
	"bufio"
	"bytes"
	"io"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
)

// The OwnTracks Recorder appends every message it keeps to
// rec/<user>/<device>/YYYY-MM.rec, one line each, written by putrec() in
// owntracks/recorder's recorder.c with the format "%s\t%-18s\t%s\n":
//
//	2024-05-01T07:12:03Z	*                 	{"_type":"location",...}
//
// The time is isotime() (UTC, whole seconds): the payload's tst for
// location, transition and waypoint messages, arrival for the others. The
// topic is relative to owntracks/<user>/<device>: "*" for the base topic,
// "lwt" for a Last Will (published on the base topic), else the subtopic
// ("event", "waypoint", "status", ...). The payload is the JSON as received,
// re-serialised when it held a tab or newline; a non-JSON payload is stored
// as is (the strict parser skips it). Cards and waypoint sets are not in
// .rec files but in cards/ and waypoints/ (see store.go).

// readRec reads .rec lines.
func readRec(r *run, br *bufio.Reader) error {
	lines := lineReader{br: br}
	topics := map[string]string{}
	for {
		line, tooLong, err := lines.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if tooLong {
			r.skip(lines.n, recorder.ReasonSize, "line longer than %d bytes", maxLine)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		stamp, rel, payload, ok := splitRecLine(line)
		if !ok {
			r.skip(lines.n, ReasonLine, "not <time> TAB <topic> TAB <payload>")
			continue
		}
		at, ok := parseRecTime(stamp)
		if !ok {
			r.skip(lines.n, ReasonTime, "time %q is not YYYY-MM-DDTHH:MM:SSZ", clip(stamp))
			continue
		}
		topic, ok := topics[string(rel)]
		if !ok {
			topic = recTopic(r.base, string(rel))
			topics[string(rel)] = topic
		}
		if err := r.message(topic, payload, at.UnixMilli(), lines.n); err != nil {
			return err
		}
	}
}

// splitRecLine splits a .rec line into time, relative topic (trimmed of
// the padding) and payload.
func splitRecLine(line []byte) (stamp, rel, payload []byte, ok bool) {
	i := bytes.IndexByte(line, '\t')
	if i < 0 {
		return nil, nil, nil, false
	}
	j := bytes.IndexByte(line[i+1:], '\t')
	if j < 0 {
		return nil, nil, nil, false
	}
	j += i + 1
	stamp = line[:i]
	if len(stamp) < len("2006-01-02T15:04:05Z") || stamp[4] != '-' || stamp[10] != 'T' {
		return nil, nil, nil, false
	}
	return stamp, bytes.TrimSpace(line[i+1 : j]), line[j+1:], true
}

// parseRecTime reads isotime()'s "2006-01-02T15:04:05Z", digit by digit
// (time.Parse would be a fifth of the import's time), falling back to any
// RFC 3339 time.
func parseRecTime(b []byte) (time.Time, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		num := func(s []byte) (int, bool) {
			n := 0
			for _, c := range s {
				if c < '0' || c > '9' {
					return 0, false
				}
				n = n*10 + int(c-'0')
			}
			return n, true
		}
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		d, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		s, ok6 := num(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61 {
			return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC), true
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t, err == nil
}

// recTopic is the full topic of a .rec line's relative topic.
func recTopic(base, rel string) string {
	switch rel {
	case "*", "-", "", "lwt":
		return base
	}
	return base + "/" + rel
}

// clip shortens what a skip detail quotes.
func clip(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
