package importer

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/recorder"
)

// readOwnTracks reads OwnTracks payloads: one JSON object per line (as in
// fixtures/tracks), or lines "topic payload" as "mosquitto_sub -v" prints
// them, or one JSON array of payloads, or the {"data":[...]} answer of
// /api/0/locations?format=json (the Recorder's, and "wherehouse export").
// A line's topic gives the user and device unless the source names them.
func readOwnTracks(r *run, br *bufio.Reader) error {
	s := jsonStream{br: br}
	first, err := s.peek()
	if err == nil && first == '{' {
		if head, _ := br.Peek(16); bytes.HasPrefix(head, []byte(`{"data"`)) || bytes.HasPrefix(head, []byte(`{"count"`)) {
			r.byRecord = true
			return readLocationsAnswer(r, &s)
		}
	}
	if err == nil && first == '[' {
		r.byRecord = true
		if r.base == "" {
			return inputError("a JSON array of messages: say whose they are with --user and --device")
		}
		if err := s.array(func(elem []byte, n int) error { return r.message(r.base, elem, 0, n) }); err != nil {
			return err
		}
		return s.end()
	}
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
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		topic := r.base
		if line[0] != '{' {
			i := bytes.IndexAny(line, " \t")
			if i < 0 {
				r.skip(lines.n, ReasonLine, "not a JSON object, nor a topic and one")
				continue
			}
			t := string(line[:i])
			if topic = topics[t]; topic == "" {
				topic = r.retopic(t)
				topics[t] = topic
			}
			line = line[i+1:]
		} else if topic == "" {
			return inputError("line %d has no topic: say whose messages these are with --user and --device", lines.n)
		}
		if err := r.message(topic, line, 0, lines.n); err != nil {
			return err
		}
	}
}

// retopic maps a topic <prefix>/<user>/<device>[/...] from a capture to
// owntracks/..., with the source's user and device when it names them.
// A topic of another shape is kept (the parser rejects it).
func (r *run) retopic(t string) string {
	parts := strings.SplitN(t, "/", 4)
	if len(parts) < 3 {
		return t
	}
	if r.src.User != "" {
		parts[1] = r.src.User
	}
	if r.src.Device != "" {
		parts[2] = r.src.Device
	}
	parts[0] = recorder.TopicPrefix
	return strings.Join(parts, "/")
}

// answerAdded are the members /api/0/locations adds to each payload.
var answerAdded = []string{"isorcv", "isotst", "disptst"}

// readLocationsAnswer reads the data array of a /api/0/locations answer:
// payloads as stored plus the times the API adds, which are taken off
// again (isorcv gives the arrival time back).
func readLocationsAnswer(r *run, s *jsonStream) error {
	if r.base == "" {
		return inputError("an /api/0/locations answer: say whose data it is with --user and --device")
	}
	err := s.object(func(key string) error {
		if key != "data" {
			return s.skip()
		}
		return s.array(func(elem []byte, n int) error {
			if !gjson.ValidBytes(elem) || elem[0] != '{' {
				r.skip(n, recorder.ReasonJSON, "not a JSON object: %s", clip(elem))
				return nil
			}
			var received int64
			if at := gjson.GetBytes(elem, "isorcv"); at.Exists() {
				if t, err := time.Parse(time.RFC3339Nano, at.Str); err == nil {
					received = t.UnixMilli()
				}
			}
			return r.message(r.base, withoutMembers(elem, answerAdded), received, n)
		})
	})
	if err != nil {
		return err
	}
	return s.end()
}
