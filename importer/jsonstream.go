package importer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxElement bounds one element of a streamed JSON array (a Takeout
// location record is a few hundred bytes, a Timeline segment a few KB).
const maxElement = 16 << 20

// jsonStream walks a large JSON document without holding it: the
// containers a format is made of are entered one token at a time, and the
// elements of their arrays are handed out whole, one at a time, to be read
// with gjson. It checks structure (brackets, strings), not every value:
// elements are validated where they are used.
type jsonStream struct {
	br  *bufio.Reader
	off int64  // bytes consumed, for error positions
	buf []byte // the element last read
}

func (s *jsonStream) errorf(format string, args ...any) error {
	return inputError("JSON at byte %d: %s", s.off, fmt.Sprintf(format, args...))
}

// peek skips white space and returns the next byte without consuming it.
func (s *jsonStream) peek() (byte, error) {
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, s.errorf("unexpected end of input")
			}
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			s.br.Discard(1)
			s.off++
			continue
		case 0xef: // a byte order mark
			if bom, _ := s.br.Peek(3); string(bom) == "\xef\xbb\xbf" {
				s.br.Discard(3)
				s.off += 3
				continue
			}
		}
		return b[0], nil
	}
}

// expect consumes the byte c, after white space.
func (s *jsonStream) expect(c byte) error {
	b, err := s.peek()
	if err != nil {
		return err
	}
	if b != c {
		return s.errorf("want %q, found %q", c, b)
	}
	s.br.Discard(1)
	s.off++
	return nil
}

// value reads one complete value into s.buf (kept only if keep) and
// returns it.
func (s *jsonStream) value(keep bool) ([]byte, error) {
	s.buf = s.buf[:0]
	first, err := s.peek()
	if err != nil {
		return nil, err
	}
	scalar := first != '{' && first != '[' && first != '"'
	if scalar && !isScalarStart(first) {
		return nil, s.errorf("unexpected %q", first)
	}
	depth, inStr, esc, n := 0, false, false, 0
	for {
		chunk, err := s.br.Peek(max(1, s.br.Buffered()))
		if len(chunk) == 0 {
			switch {
			case scalar && n > 0 && errors.Is(err, io.EOF):
				return s.buf, nil // a number at the very end
			case errors.Is(err, io.EOF):
				return nil, s.errorf("unexpected end of input")
			}
			return nil, err
		}
		take, done := len(chunk), false
	scan:
		for i, c := range chunk {
			switch {
			case scalar:
				if isDelimiter(c) {
					take, done = i, true
					break scan
				}
			case inStr:
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						take, done = i+1, true
						break scan
					}
				}
			case c == '"':
				inStr = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					take, done = i+1, true
					break scan
				}
			}
		}
		if keep {
			s.buf = append(s.buf, chunk[:take]...)
		}
		n += take
		s.br.Discard(take)
		s.off += int64(take)
		if done {
			return s.buf, nil
		}
		if n > maxElement {
			return nil, s.errorf("a value over %d bytes", maxElement)
		}
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func isScalarStart(c byte) bool {
	return c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n'
}

// skip consumes one value.
func (s *jsonStream) skip() error {
	_, err := s.value(false)
	return err
}

// key reads an object key and the colon after it.
func (s *jsonStream) key() (string, error) {
	b, err := s.peek()
	if err != nil {
		return "", err
	}
	if b != '"' {
		return "", s.errorf("want a key, found %q", b)
	}
	raw, err := s.value(true)
	if err != nil {
		return "", err
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", s.errorf("bad key %s", clip(raw))
	}
	return k, s.expect(':')
}

// object walks an object: fn is called with each key and must consume
// its value (with skip, array, object or value).
func (s *jsonStream) object(fn func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if b, err := s.peek(); err != nil {
		return err
	} else if b == '}' {
		return s.expect('}')
	}
	for {
		k, err := s.key()
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		b, err := s.peek()
		if err != nil {
			return err
		}
		if b == '}' {
			return s.expect('}')
		}
		if err := s.expect(','); err != nil {
			return err
		}
	}
}

// array hands fn each element of an array, numbered from 1. The element
// is valid until fn returns.
func (s *jsonStream) array(fn func(elem []byte, n int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if b, err := s.peek(); err != nil {
		return err
	} else if b == ']' {
		return s.expect(']')
	}
	for n := 1; ; n++ {
		elem, err := s.value(true)
		if err != nil {
			return err
		}
		if err := fn(elem, n); err != nil {
			return err
		}
		b, err := s.peek()
		if err != nil {
			return err
		}
		if b == ']' {
			return s.expect(']')
		}
		if err := s.expect(','); err != nil {
			return err
		}
	}
}

// end checks that only white space follows the document.
func (s *jsonStream) end() error {
	for {
		b, err := s.br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.off++
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return s.errorf("data after the end of the document")
	}
}
