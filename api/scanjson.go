package api

import "iter"

import "encoding/json"

// memberIter walks the top-level members of a JSON object without decoding
// the values: rendering a long track needs a few members of every payload
// as written, and a full parser would also convert every number.
type memberIter struct {
	p []byte
	i int
}

// members iterates over the top-level members of the JSON object p: keys
// unescaped, values as written.
func members(p []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(key, val []byte) bool) {
		it := newMemberIter(p)
		for {
			key, escaped, val, ok := it.next()
			if !ok {
				return
			}
			if escaped {
				key = unescapeKey(key)
			}
			if !yield(key, val) {
				return
			}
		}
	}
}

func newMemberIter(p []byte) memberIter {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return memberIter{p: p, i: len(p)}
	}
	return memberIter{p: p, i: i + 1}
}

// next returns the next member: its key as written between the quotes,
// whether that has escapes (not decoded), and its value's text. ok is false
// at the end of the object and on malformed input (payloads are validated
// on ingest).
func (it *memberIter) next() (key []byte, escaped bool, val []byte, ok bool) {
	p := it.p
	i := skipSpace(p, it.i)
	if i < len(p) && p[i] == ',' {
		i = skipSpace(p, i+1)
	}
	it.i = len(p) // until a whole member has been read
	if i >= len(p) || p[i] != '"' {
		return nil, false, nil, false
	}
	end, escaped := stringEnd(p, i)
	if end < 0 {
		return nil, false, nil, false
	}
	key = p[i+1 : end-1]
	i = skipSpace(p, end)
	if i >= len(p) || p[i] != ':' {
		return nil, false, nil, false
	}
	i = skipSpace(p, i+1)
	end = valueEnd(p, i)
	if end < 0 {
		return nil, false, nil, false
	}
	it.i = end
	return key, escaped, p[i:end], true
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that opens at p[i], or -1,
// and whether the string has escapes.
func stringEnd(p []byte, i int) (end int, escaped bool) {
	for i++; i < len(p); i++ {
		if !endsString[p[i]] {
			continue
		}
		if p[i] == '"' {
			return i + 1, escaped
		}
		i++ // the escaped byte
		escaped = true
	}
	return -1, escaped
}

// valueEnd returns the index after the value that starts at p[i], or -1.
func valueEnd(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		end, _ := stringEnd(p, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(p); i++ {
			switch p[i] {
			case '"':
				if i, _ = stringEnd(p, i); i < 0 {
					return -1
				}
				i-- // the loop steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	// A number or a literal ends where JSON's punctuation or space begins.
	start := i
	for i < len(p) && !endsScalar[p[i]] {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// unescapeKey decodes a key written with escapes; a key that does not
// decode is returned as written (it then matches no name we look for).
func unescapeKey(key []byte) []byte {
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	var s string
	if json.Unmarshal(q, &s) != nil {
		return key
	}
	return []byte(s)
}

// endsScalar marks the bytes that end a number or a literal.
var endsScalar = func() (t [256]bool) {
	for c := range ' ' + 1 {
		t[c] = true
	}
	t[','], t['}'], t[']'] = true, true, true
	return t
}()

// endsString marks the bytes a string scan stops at.
var endsString = [256]bool{'"': true, '\\': true}
