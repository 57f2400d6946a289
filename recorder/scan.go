package recorder

import (
	"encoding/json"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A single-pass scanner for payloads. encoding/json's Decoder.Token was a
// quarter of the server's CPU at high message rates and allocated for every
// token; this checks the grammar of RFC 8259 as json.Valid does and keeps
// the top-level members as slices of the payload, without copying.
// scan_test.go compares it with encoding/json, and fuzzes the comparison.

// maxDepth bounds the nesting of objects and arrays, the top-level object
// counting as 1. OwnTracks messages nest a few levels at most; without a
// bound a 256 KiB payload of brackets costs deep recursion for nothing.
const maxDepth = 64

// maxPlainNumber is the longest number without an exponent that is known to
// be finite without parsing it: it has at most that many integer digits, so
// its magnitude is below 1e308 < math.MaxFloat64.
const maxPlainNumber = 308

// member is one top-level member of a payload object.
type member struct {
	key   []byte          // unescaped; a slice of the payload unless the key has escapes
	value json.RawMessage // a slice of the payload, without surrounding whitespace
	hash  uint32          // keyHash(key)
}

// object holds the top-level members of a payload object in order. The
// first ones are kept in an array, so that an object on the stack holds a
// typical location without allocating.
type object struct {
	n     int
	small [24]member     // members 0 to 23: Android and iOS locations have about 20
	more  []member       // members from 24
	seen  uint64         // bit hash>>26 is set for every key: most missing keys skip the search
	index map[string]int // key → member, once there are more than len(small)
}

// member returns the i-th member.
func (o *object) member(i int) *member {
	if i < len(o.small) {
		return &o.small[i]
	}
	return &o.more[i-len(o.small)]
}

// find returns the position of the member with key and hash h, or -1.
func find[T string | []byte](o *object, key T, h uint32) int {
	if o.index != nil {
		if i, ok := o.index[string(key)]; ok {
			return i
		}
		return -1
	}
	if o.seen&(1<<(h>>26)) == 0 {
		return -1
	}
	for i := range o.n {
		if m := &o.small[i]; m.hash == h && string(m.key) == string(key) {
			return i
		}
	}
	return -1
}

// get returns the raw value of the member named name.
func (o *object) get(name string) (json.RawMessage, bool) {
	i := find(o, name, keyHash(name))
	if i < 0 {
		return nil, false
	}
	return o.member(i).value, true
}

// add appends a member; it reports false if key is already there.
func (o *object) add(key []byte, value json.RawMessage) bool {
	h := keyHash(key)
	if find(o, key, h) >= 0 {
		return false
	}
	o.seen |= 1 << (h >> 26)
	if o.n < len(o.small) {
		// Field by field: building a member and copying it stalled on
		// store forwarding, a visible part of the scan's profile.
		m := &o.small[o.n]
		m.key, m.value, m.hash = key, value, h
	} else {
		if o.index == nil {
			// Past a handful of keys, comparing with every earlier one
			// would make a payload of many short members quadratic.
			o.index = make(map[string]int, 2*o.n)
			for i := range o.n {
				o.index[string(o.small[i].key)] = i
			}
		}
		o.index[string(key)] = o.n
		o.more = append(o.more, member{key: key, value: value, hash: h})
	}
	o.n++
	return true
}

// keyHash hashes a key's length and first and last bytes: constant time,
// and enough to tell apart the keys of OwnTracks messages, which differ
// there (acc, alt, lat, lon, tid, tst, vac, vel …).
func keyHash[T string | []byte](key T) uint32 {
	h := uint32(len(key)) << 16
	if len(key) > 0 {
		h |= uint32(key[0])<<8 | uint32(key[len(key)-1])
	}
	return h * 0x9e3779b1 // Fibonacci hashing: the top bits depend on all of h
}

// scanner walks a payload once; pos is the offset of the next byte.
type scanner struct {
	data []byte
	pos  int
}

// scanObject checks that data, which must be valid UTF-8, is exactly one
// JSON object with only whitespace around it, with unique top-level keys
// (compared unescaped), finite numbers and at most maxDepth levels of
// nesting, and sets o to its top-level members.
func scanObject(data []byte, o *object) error {
	s := scanner{data: data}
	s.space()
	if !s.at('{') {
		return s.expected("a JSON object")
	}
	if err := s.object(1, o); err != nil {
		return err
	}
	s.space()
	if s.pos != len(s.data) {
		return reject(ReasonJSON, "trailing data after the JSON object at offset %d", s.pos)
	}
	return nil
}

// object scans the object at s.pos, nested depth levels deep. It records
// the members in top, if not nil.
func (s *scanner) object(depth int, top *object) error {
	start := s.pos
	s.pos++ // '{'
	s.space()
	if s.at('}') {
		s.pos++
		return nil
	}
	for {
		if !s.at('"') {
			return s.expected("a string key")
		}
		kstart := s.pos
		escaped, err := s.str()
		if err != nil {
			return err
		}
		kend := s.pos
		s.space()
		if !s.at(':') {
			return s.expected("':' after an object key")
		}
		s.pos++
		s.space()
		vstart := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if top != nil {
			key := s.data[kstart+1 : kend-1]
			if escaped {
				key = unescape(key)
			}
			if !top.add(key, s.data[vstart:s.pos]) {
				return reject(ReasonJSON, "duplicate key %q at offset %d", clip(key), kstart)
			}
		}
		s.space()
		if s.at(',') {
			s.pos++
			s.space()
			continue
		}
		if s.at('}') {
			s.pos++
			return nil
		}
		if s.pos == len(s.data) {
			return reject(ReasonJSON, "unexpected end of payload: the object at offset %d is not closed", start)
		}
		return s.expected("',' or '}' after an object member")
	}
}

// array scans the array at s.pos, nested depth levels deep.
func (s *scanner) array(depth int) error {
	start := s.pos
	s.pos++ // '['
	s.space()
	if s.at(']') {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.at(',') {
			s.pos++
			s.space()
			continue
		}
		if s.at(']') {
			s.pos++
			return nil
		}
		if s.pos == len(s.data) {
			return reject(ReasonJSON, "unexpected end of payload: the array at offset %d is not closed", start)
		}
		return s.expected("',' or ']' after an array element")
	}
}

// value scans one value in a container nested depth levels deep.
func (s *scanner) value(depth int) error {
	if s.pos == len(s.data) {
		return s.expected("a value")
	}
	switch c := s.data[s.pos]; c {
	case '"':
		_, err := s.str()
		return err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return s.number()
	case '{', '[':
		if depth >= maxDepth {
			return reject(ReasonJSON, "nesting deeper than %d levels at offset %d", maxDepth, s.pos)
		}
		if c == '{' {
			return s.object(depth+1, nil)
		}
		return s.array(depth + 1)
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.expected("a value")
}

// plain marks the bytes that stand for themselves inside a string. Bytes
// from 0x80 are parts of UTF-8 sequences, already validated.
var plain = func() (t [256]bool) {
	for c := 0x20; c < len(t); c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string at s.pos and reports whether it has escapes.
func (s *scanner) str() (escaped bool, err error) {
	data, start := s.data, s.pos
	i := start + 1
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i == len(data) {
			s.pos = i
			return false, reject(ReasonJSON, "unexpected end of payload: the string at offset %d is not closed", start)
		}
		switch data[i] {
		case '"':
			s.pos = i + 1
			return escaped, nil
		case '\\':
			escaped = true
			if i+1 == len(data) {
				s.pos = i + 1
				return false, reject(ReasonJSON, "unexpected end of payload: the string at offset %d is not closed", start)
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(data[i+2:]) < 0 {
					s.pos = i
					return false, reject(ReasonJSON, "offset %d: \\u is not followed by 4 hex digits", i)
				}
				i += 6
			default:
				s.pos = i + 1
				return false, s.expected("an escape character (one of \"\\/bfnrtu)")
			}
		default:
			s.pos = i
			return false, reject(ReasonJSON, "offset %d: control character %U in a string", i, data[i])
		}
	}
}

// hex4 decodes the 4 hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape decodes the escapes of a scanned string's contents as
// encoding/json does, so keys compare as they decode: a surrogate that is not
// half of a valid pair becomes U+FFFD.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] != '\\' {
			out = append(out, b[i])
			i++
			continue
		}
		c := b[i+1]
		i += 2
		switch c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A valid pair is consumed whole; otherwise only the
				// first half is replaced and the next escape stands alone.
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(b[i+2:])); d != unicode.ReplacementChar {
						out = utf8.AppendRune(out, d)
						i += 6
						break
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, c)
		}
	}
	return out
}

// number scans the number at s.pos, checking the grammar of RFC 8259 §6 and
// that it is finite (strconv would give ±Inf for 1e999).
func (s *scanner) number() error {
	data, start := s.data, s.pos
	i := start
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		s.pos = i
		return s.expected("a digit")
	}
	if i < len(data) && data[i] == '.' {
		if i+1 == len(data) || !isDigit(data[i+1]) {
			s.pos = i + 1
			return s.expected("a digit after the decimal point")
		}
		i = digits(data, i+1)
	}
	exp := i < len(data) && (data[i] == 'e' || data[i] == 'E')
	if exp {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i == len(data) || !isDigit(data[i]) {
			s.pos = i
			return s.expected("a digit in the exponent")
		}
		i = digits(data, i)
	}
	s.pos = i
	if exp || i-start > maxPlainNumber {
		if _, err := number(json.RawMessage(data[start:i])); err != nil {
			return reject(ReasonJSON, "number %s at offset %d: %v", clip(data[start:i]), start, err)
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits returns the offset of the first non-digit at or after i.
func digits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// literal scans true, false or null.
func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.expected(`"` + word + `"`)
	}
	s.pos += len(word)
	return nil
}

// space skips JSON whitespace (RFC 8259 §2: not \f, \v or Unicode spaces).
func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// at reports whether the next byte is c.
func (s *scanner) at(c byte) bool { return s.pos < len(s.data) && s.data[s.pos] == c }

// expected rejects the payload for what is at s.pos.
func (s *scanner) expected(what string) error {
	if s.pos >= len(s.data) {
		return reject(ReasonJSON, "unexpected end of payload at offset %d: expected %s", s.pos, what)
	}
	r, _ := utf8.DecodeRune(s.data[s.pos:])
	return reject(ReasonJSON, "offset %d: expected %s, found %q", s.pos, what, r)
}

// clip shortens b for an error message.
func clip(b []byte) string {
	const n = 40
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
