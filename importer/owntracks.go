package importer

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/wherehouse/wherehouse/recorder"
)

// readOwnTracks reads OwnTracks payloads: one JSON object per line (as in
// fixtures/tracks), or lines "topic payload" as "mosquitto_sub -v" prints
// them, or one JSON array of payloads. A line's topic gives the user and
// device unless the source names them.
func readOwnTracks(r *run, br *bufio.Reader) error {
	s := jsonStream{br: br}
	if first, err := s.peek(); err == nil && first == '[' {
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
