package importer

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/wherehouse/wherehouse/recorder"
)

// maxLine is the longest line kept: a payload at the parser's limit plus
// the .rec line's time and topic.
const maxLine = recorder.MaxPayload + 1024

// lineReader hands out lines without copying when they fit the reader's
// buffer. A line is valid until the next call.
type lineReader struct {
	br   *bufio.Reader
	n    int    // number of the last line returned
	long []byte // a line longer than the buffer, assembled
}

// next returns the next line without its end of line. tooLong reports a
// line over maxLine (its content is then not returned). At the end it
// returns io.EOF.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	b, err := l.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.long = append(l.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = l.br.ReadSlice('\n')
			if !tooLong && len(l.long)+len(b) <= maxLine {
				l.long = append(l.long, b...)
			} else {
				tooLong = true
			}
		}
		b = l.long
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if len(b) == 0 && errors.Is(err, io.EOF) {
		return nil, false, io.EOF
	}
	l.n++
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if tooLong {
		return nil, true, nil
	}
	return b, false, nil
}
