package api

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/wherehouse/wherehouse/storage"
)

// recTopicWidth is the width the Recorder pads the topic column to
// (recorder.c RECFORMAT "%s\t%-18s\t%s\n").
const recTopicWidth = 18

// recWriter renders messages as the lines of the Recorder's .rec files,
// which `wherehouse import` and the Recorder's own tools read:
//
//	<UTC time YYYY-MM-DDTHH:MM:SSZ>\t<topic below the device, padded to 18>\t<JSON payload>
//
// The topic column is "*" for the device's own topic, "lwt" for a Last
// Will and the rest of the topic otherwise ("event", "info", ...), as
// recorder.c handle_message names it. The time is the message's tst: the
// Recorder writes a location's, transition's or waypoint's tst there and
// the arrival time for other types, but every line in tst order is what a
// reader of .rec files expects. A payload with line breaks or tabs is
// written compacted, as putrec does, so each message stays one line.
type recWriter struct {
	buf     []byte
	st      stamper
	compact bytes.Buffer
}

func newRecWriter() *recWriter { return &recWriter{buf: make([]byte, 0, renderFlushAt+4<<10)} }

func (w *recWriter) add(m *storage.Message) {
	b := appendBareStamp(w.buf, &w.st, m.TST, 'T', true)
	b = append(b, '\t')
	rel := recTopic(m)
	b = append(b, rel...)
	for i := len(rel); i < recTopicWidth; i++ {
		b = append(b, ' ')
	}
	b = append(b, '\t')
	p := bytes.TrimSpace(m.Payload)
	if bytes.ContainsAny(p, "\n\r\t") {
		w.compact.Reset()
		if json.Compact(&w.compact, p) == nil {
			p = w.compact.Bytes()
		} else { // not JSON (never stored so): keep the line a line
			p = bytes.Map(func(r rune) rune {
				if r == '\n' || r == '\r' || r == '\t' {
					return ' '
				}
				return r
			}, p)
		}
	}
	b = append(b, p...)
	w.buf = append(b, '\n')
}

// recTopic is a message's topic relative to owntracks/<user>/<device>.
func recTopic(m *storage.Message) string {
	if m.Type == "lwt" {
		return "lwt" // recorder.c: an lwt on the base topic would read as a location
	}
	t := strings.TrimPrefix(m.Topic, "/")
	for range 3 { // owntracks/<user>/<device>/
		j := strings.IndexByte(t, '/')
		if j < 0 {
			return "*"
		}
		t = t[j+1:]
	}
	switch t {
	case "":
		return "-"
	case "pico": // OwnTracks Pico publishes locations there
		return "*"
	}
	return t
}

func (w *recWriter) end(string) {}

func (w *recWriter) flush(out io.Writer) error { return flushBuf(out, &w.buf) }

func (w *recWriter) buffered() int { return len(w.buf) }
