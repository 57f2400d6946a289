package main

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// node is a decoded JSON value, members in their order: what the
// Recorder's JSON library (ccan/json, JsonNode) builds for every payload.
// Strings are unescaped and numbers parsed to float64 on decode, and both
// written again on encode, as json_decode and json_stringify do.
type node struct {
	kind byte // '{', '[', '"', '0' (number), 't', 'f', 'n'
	key  string
	str  string
	num  float64
	kids []node
}

var errSyntax = errors.New("invalid JSON")

// decode parses one JSON value that fills b.
func decode(b []byte) (node, error) {
	p := parser{b: b}
	v, err := p.value()
	if err != nil {
		return v, err
	}
	if p.ws(); p.i != len(b) {
		return v, errSyntax
	}
	return v, nil
}

// member returns the value of an object's member named key.
func (n *node) member(key string) *node {
	for i := range n.kids {
		if n.kids[i].key == key {
			return &n.kids[i]
		}
	}
	return nil
}

// set appends a member, or replaces the value of one of that name.
func (n *node) set(key string, v node) {
	v.key = key
	if m := n.member(key); m != nil {
		*m = v
		return
	}
	n.kids = append(n.kids, v)
}

type parser struct {
	b     []byte
	i     int
	stack []node // members of the containers being parsed
}

// roomToAdd is the spare capacity of a decoded object, for the members the
// Recorder adds to each location.
const roomToAdd = 3

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() (node, error) {
	p.ws()
	if p.i >= len(p.b) {
		return node{}, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.container('{', '}')
	case c == '[':
		return p.container('[', ']')
	case c == '"':
		s, err := p.str()
		return node{kind: '"', str: s}, err
	case c == 't':
		return p.word("true", 't')
	case c == 'f':
		return p.word("false", 'f')
	case c == 'n':
		return p.word("null", 'n')
	case c == '-' || c >= '0' && c <= '9':
		j := p.i
		for j < len(p.b) && (p.b[j] >= '0' && p.b[j] <= '9' || p.b[j] == '-' || p.b[j] == '+' || p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E') {
			j++
		}
		f, err := strconv.ParseFloat(string(p.b[p.i:j]), 64)
		p.i = j
		return node{kind: '0', num: f}, err
	}
	return node{}, errSyntax
}

func (p *parser) word(w string, kind byte) (node, error) {
	if len(p.b)-p.i < len(w) || string(p.b[p.i:p.i+len(w)]) != w {
		return node{}, errSyntax
	}
	p.i += len(w)
	return node{kind: kind}, nil
}

// container parses an object or an array; p.i is at its opening bracket.
func (p *parser) container(open, close byte) (node, error) {
	n := node{kind: open}
	base := len(p.stack)
	defer func() { p.stack = p.stack[:base] }()
	p.i++
	for first := true; ; first = false {
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == close && first {
			p.i++
			return n, nil
		}
		var key string
		if open == '{' {
			var err error
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return n, errSyntax
			}
			if key, err = p.str(); err != nil {
				return n, err
			}
			if p.ws(); p.i >= len(p.b) || p.b[p.i] != ':' {
				return n, errSyntax
			}
			p.i++
		}
		v, err := p.value()
		if err != nil {
			return n, err
		}
		v.key = key
		p.stack = append(p.stack, v)
		p.ws()
		if p.i >= len(p.b) {
			return n, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case close:
			p.i++
			kids := p.stack[base:]
			n.kids = append(make([]node, 0, len(kids)+roomToAdd), kids...)
			return n, nil
		default:
			return n, errSyntax
		}
	}
}

// str parses a string; p.i is at its opening quote.
func (p *parser) str() (string, error) {
	start := p.i
	escaped := false
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			p.i = j + 1
			if !escaped {
				return string(p.b[start+1 : j]), nil
			}
			var s string // rare: let encoding/json undo the escapes
			err := json.Unmarshal(p.b[start:j+1], &s)
			return s, err
		}
	}
	return "", errSyntax
}

// appendJSON writes n as JSON, as json_stringify.
func appendJSON(b []byte, n *node) []byte {
	switch n.kind {
	case '{', '[':
		close := byte('}')
		if n.kind == '[' {
			close = ']'
		}
		b = append(b, n.kind)
		for i := range n.kids {
			if i > 0 {
				b = append(b, ',')
			}
			if n.kind == '{' {
				b = appendString(b, n.kids[i].key)
				b = append(b, ':')
			}
			b = appendJSON(b, &n.kids[i])
		}
		return append(b, close)
	case '"':
		return appendString(b, n.str)
	case '0':
		// Whole numbers without an exponent, as "%.16g" prints them.
		if n.num == math.Trunc(n.num) && math.Abs(n.num) < 1e15 {
			return strconv.AppendInt(b, int64(n.num), 10)
		}
		return strconv.AppendFloat(b, n.num, 'g', -1, 64)
	case 't':
		return append(b, "true"...)
	case 'f':
		return append(b, "false"...)
	}
	return append(b, "null"...)
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r) // invalid bytes become U+FFFD
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}
