package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanCases are inputs on which a hand-written scanner tends to differ from
// encoding/json, with the verdict both must reach.
var scanCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"empty object", `{}`, true},
	{"empty", ``, false},
	{"only whitespace", " \t\r\n", false},
	{"whitespace everywhere", " \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n1 \t\r\n, \"b\" : [ 1 , { } , [ ] ] \t\r\n} \t\r\n", true},
	{"form feed before", "\f{}", false},
	{"vertical tab after", "{}\v", false},
	{"no-break space after", "{}\u00a0", false},
	{"NUL after", "{}\x00", false},
	{"BOM", "\ufeff{}", false},
	{"BOM after", "{}\ufeff", false},
	{"two objects", `{}{}`, false},
	{"object then space and object", `{} {}`, false},
	{"top-level array", `[]`, false},
	{"top-level string", `"a"`, false},
	{"top-level number", `1`, false},
	{"top-level true", `true`, false},
	{"unclosed object", `{`, false},
	{"unclosed nested object", `{"a":{`, false},
	{"unclosed array", `{"a":[1`, false},
	{"extra brace", `{"a":1}}`, false},
	{"wrong closer", `{"a":1]`, false},
	{"wrong array closer", `{"a":[1}}`, false},
	{"lone comma", `{,}`, false},
	{"trailing comma", `{"a":1,}`, false},
	{"trailing comma in array", `{"a":[1,]}`, false},
	{"leading comma in array", `{"a":[,1]}`, false},
	{"double comma", `{"a":1,,"b":2}`, false},
	{"missing comma", `{"a":1 "b":2}`, false},
	{"missing colon", `{"a" 1}`, false},
	{"missing value", `{"a":}`, false},
	{"key only", `{"a"}`, false},
	{"number key", `{1:2}`, false},
	{"bare key", `{a:1}`, false},
	{"single quotes", `{'a':1}`, false},
	{"nested duplicate keys", `{"a":{"b":1,"b":2},"c":[{"d":1,"d":1}]}`, true},
	{"duplicate key", `{"a":1,"a":1}`, false},
	{"duplicate key escaped", `{"tid":"a","\u0074id":"b"}`, false},
	{"duplicate key escaped slash", `{"\/":1,"/":2}`, false},
	{"duplicate key non-ASCII", `{"\u00e9":1,"é":2}`, false},
	{"keys differing in case", `{"ssid":1,"SSID":2}`, true},
	{"empty key", `{"":1}`, true},
	{"duplicate empty key", `{"":1,"":2}`, false},
	{"prefix keys", `{"a":1,"ab":2,"abc":3,"b":4,"ba":5}`, true},

	{"escapes", `{"a":"\"\\\/\b\f\n\r\t","b\"":1,"c\\":2}`, true},
	{"unicode escapes", `{"a":"\u0041\u00e9\u2603\uFFFF\u0000"}`, true},
	{"invalid escape", `{"a":"\x"}`, false},
	{"vertical tab escape", `{"a":"\v"}`, false},
	{"zero escape", `{"a":"\0"}`, false},
	{"escaped quote", `{"a":"\'"}`, false},
	{"capital U escape", `{"a":"\U0041"}`, false},
	{"short unicode escape", `{"a":"\u12"}`, false},
	{"non-hex unicode escape", `{"a":"\u12G4"}`, false},
	{"escape at end", `{"a":"\`, false},
	{"unicode escape at end", `{"a":"\u00`, false},
	{"unclosed string", `{"a":"abc`, false},
	{"surrogate pair", `{"a":"\ud83d\ude00"}`, true},
	{"surrogate pair key duplicates UTF-8", `{"\ud83d\ude00":1,"😀":2}`, false},
	{"lone high surrogate", `{"a":"\ud800"}`, true},
	{"lone low surrogate", `{"a":"\udc00"}`, true},
	{"reversed pair", `{"a":"\udc00\ud800"}`, true},
	{"lone surrogates both become U+FFFD", `{"\ud800":1,"\udbff":2}`, false},
	{"lone surrogate duplicates U+FFFD", `{"\ud800":1,"\ufffd":2}`, false},
	{"high surrogate then letter", `{"\ud800\u0041":1,"\ufffdA":2}`, false},
	{"two high surrogates", `{"\ud800\ud800":1,"\ufffd\ufffd":2}`, false},
	{"pair is not a lone surrogate", `{"\ud800":1,"\ud800\udc00":2}`, true},
	{"high surrogate then escaped backslash", `{"\ud800\\u0041":1,"\ufffd\\u0041":2}`, false},
	{"raw NUL in string", "{\"a\":\"\x00\"}", false},
	{"raw unit separator in string", "{\"a\":\"\x1f\"}", false},
	{"raw tab in string", "{\"a\":\"\t\"}", false},
	{"raw newline in key", "{\"a\nb\":1}", false},
	{"DEL in string", "{\"a\":\"\x7f\"}", true},
	{"UTF-8 in strings", `{"Caf\u00e9":"Café ☃ 😀","ключ":"значение"}`, true},
	{"invalid UTF-8", "{\"a\":\"\xff\"}", false},
	{"truncated UTF-8", "{\"a\":\"\xc3\"}", false},
	{"surrogate encoded in UTF-8", "{\"a\":\"\xed\xa0\x80\"}", false},
	{"UTF-8 outside strings", `{"a":1}é`, false},

	{"integers", `{"a":0,"b":-0,"c":123,"d":-123}`, true},
	{"fractions and exponents", `{"a":0.0e-0,"b":-0.0,"c":1.0E+2,"d":1e2,"e":1E-2,"f":12.5e+10}`, true},
	{"leading zero", `{"a":01}`, false},
	{"negative leading zero", `{"a":-01}`, false},
	{"trailing dot", `{"a":1.}`, false},
	{"trailing dot before exponent", `{"a":1.e5}`, false},
	{"leading dot", `{"a":.5}`, false},
	{"plus sign", `{"a":+1}`, false},
	{"minus only", `{"a":-}`, false},
	{"minus space", `{"a":- 1}`, false},
	{"exponent without digits", `{"a":1e}`, false},
	{"exponent sign without digits", `{"a":1e+}`, false},
	{"hex", `{"a":0x10}`, false},
	{"NaN", `{"a":NaN}`, false},
	{"Infinity", `{"a":Infinity}`, false},
	{"minus Infinity", `{"a":-Infinity}`, false},
	{"huge exponent", `{"a":1e999}`, false},
	{"huge negative", `{"a":-1e999}`, false},
	{"huge exponent nested", `{"a":[{"b":[1e999]}]}`, false},
	{"1e308", `{"a":1e308}`, true},
	{"largest float", `{"a":1.7976931348623157e308}`, true},
	{"just past the largest float", `{"a":1.7976931348623159e308}`, false},
	{"underflow", `{"a":1e-400,"b":-1e-400}`, true},
	{"zero with huge exponent", `{"a":0e99999999999999999999}`, true},
	{"308 nines", `{"a":` + strings.Repeat("9", 308) + `}`, true},
	{"308 nines with fraction", `{"a":` + strings.Repeat("9", 308) + `.9}`, true},
	{"1 and 308 zeros", `{"a":1` + strings.Repeat("0", 308) + `}`, true},
	{"309 nines", `{"a":` + strings.Repeat("9", 309) + `}`, false},
	{"400 digits", `{"a":-` + strings.Repeat("1", 400) + `}`, false},
	{"long fraction", `{"a":0.` + strings.Repeat("0", 400) + `1}`, true},
	{"long exponent", `{"a":1e-` + strings.Repeat("0", 400) + `1}`, true},
	{"many significant digits", `{"a":52.520006599999997123456789}`, true},

	{"literals", `{"a":true,"b":false,"c":null,"d":[true,false,null]}`, true},
	{"truncated true", `{"a":tru}`, false},
	{"truncated null at end", `{"a":nul`, false},
	{"capital True", `{"a":True}`, false},
	{"true with suffix", `{"a":truex}`, false},
	{"undefined", `{"a":undefined}`, false},

	{"depth 64 arrays", `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, true},
	{"depth 65 arrays", `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, false},
	{"depth 64 objects", strings.Repeat(`{"a":`, 63) + `{}` + strings.Repeat(`}`, 63), true},
	{"depth 65 objects", strings.Repeat(`{"a":`, 64) + `{}` + strings.Repeat(`}`, 64), false},
	{"depth 10001", `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, false},
	{"deep and unclosed", `{"a":` + strings.Repeat("[", 100), false},

	{"many keys", manyKeys(60, -1), true},
	{"keys filling the array part", manyKeys(23, -1), true},
	{"duplicate of the last key in the array part", manyKeys(24, 23), false},
	{"duplicate as the last key in the array part", manyKeys(23, 0), false},
	{"many keys, duplicate in the array part", manyKeys(20, 3), false},
	{"many keys, duplicate past the array part", manyKeys(60, 3), false},
	{"many keys, late duplicate of a late key", manyKeys(60, 40), false},
}

// manyKeys returns an object with n keys k0, k1, … and, if dup >= 0, a
// last member repeating key dup.
func manyKeys(n, dup int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if dup >= 0 {
		fmt.Fprintf(&b, `"k%d":true,`, dup)
	}
	b.WriteString(`"_type":"x"}`)
	return b.String()
}

// refCheck is the reference verdict, from encoding/json: nil if data is
// valid UTF-8 and json.Valid, an object, with unique top-level keys (as
// decoded), finite numbers and at most maxDepth levels.
func refCheck(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("invalid UTF-8")
	}
	if !json.Valid(data) {
		return errors.New("json.Valid rejects it")
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not an object")
	}
	type frame struct{ object, wantKey bool }
	var stack []frame
	keys := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("json.Valid accepts but Token fails: %w", err)
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		// tok is a key or starts a value in the innermost container.
		isKey := false
		if n := len(stack); n > 0 && stack[n-1].object {
			isKey = stack[n-1].wantKey
			stack[n-1].wantKey = !isKey
		}
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, frame{object: v == '{', wantKey: true})
			if len(stack) > maxDepth {
				return fmt.Errorf("deeper than %d", maxDepth)
			}
		case string:
			if isKey && len(stack) == 1 {
				if keys[v] {
					return fmt.Errorf("duplicate key %q", v)
				}
				keys[v] = true
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return fmt.Errorf("number %s: %w", v, err)
			}
		}
	}
}

// checkScan compares parseObject on data with the reference and, when it
// accepts, its members with json.Unmarshal's.
func checkScan(t *testing.T, data []byte) error {
	t.Helper()
	in := bytes.Clone(data)
	var o object
	err := parseObject(data, &o)
	if !bytes.Equal(data, in) {
		t.Fatalf("parseObject modified its input")
	}
	ref := refCheck(data)
	if err != nil {
		var re *RejectError
		if !errors.As(err, &re) || re.Reason != ReasonJSON {
			t.Fatalf("error %v (%T) is not a %q rejection", err, err, ReasonJSON)
		}
		if ref == nil {
			t.Fatalf("parseObject rejects %q: %v\nbut encoding/json accepts it", clip(data), err)
		}
		return err
	}
	if ref != nil {
		t.Fatalf("parseObject accepts %q, but the reference rejects it: %v", clip(data), ref)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("parseObject accepts %q, json.Unmarshal fails: %v", clip(data), err)
	}
	if o.n != len(want) {
		t.Errorf("parseObject found %d members, json.Unmarshal %d", o.n, len(want))
	}
	for i := range o.n {
		m := o.member(i)
		w, ok := want[string(m.key)]
		if !ok {
			t.Errorf("member %d: key %q not in json.Unmarshal's %v", i, m.key, keysOf(want))
			continue
		}
		if !bytes.Equal(m.value, bytes.TrimSpace(w)) {
			t.Errorf("key %q: value %q, json.Unmarshal %q", m.key, clip(m.value), clip(w))
		}
	}
	for k, w := range want {
		if v, ok := o.get(k); !ok || !bytes.Equal(v, bytes.TrimSpace(w)) {
			t.Errorf("get(%q) = %q, %v; want %q", k, clip(v), ok, clip(w))
		}
	}
	if _, ok := o.get("\x00not a key"); ok {
		t.Errorf("get of a missing key found it")
	}
	return nil
}

func keysOf(m map[string]json.RawMessage) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestScanObjectCases(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			if ref := refCheck([]byte(tc.in)); (ref == nil) != tc.ok {
				t.Fatalf("the reference gives %v, the table says ok=%v", ref, tc.ok)
			}
			err := checkScan(t, []byte(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("parseObject = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestScanObjectFiles runs the differential check on every payload the
// Parse tests use.
func TestScanObjectFiles(t *testing.T) {
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no files in testdata/%s", dir)
		}
		for _, file := range files {
			t.Run(dir+"/"+filepath.Base(file), func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				err = checkScan(t, data)
				if dir == "good" && err != nil {
					t.Errorf("parseObject: %v", err)
				}
			})
		}
	}
}

// TestScanObjectErrors checks that a rejection says where and what was
// expected.
func TestScanObjectErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string // substrings of the error
	}{
		{`hello`, []string{"offset 0", "expected a JSON object", "'h'"}},
		{`[]`, []string{"offset 0", "expected a JSON object", "'['"}},
		{`{"a":1,}`, []string{"offset 7", "expected a string key", "'}'"}},
		{`{"a" 1}`, []string{"offset 5", "expected ':'"}},
		{`{"a":1 "b":2}`, []string{"offset 7", "expected ',' or '}'"}},
		{`{"a":[1 2]}`, []string{"offset 8", "expected ',' or ']'"}},
		{`{"a":1`, []string{"end of payload", "object at offset 0"}},
		{`{"a":[1`, []string{"end of payload", "array at offset 5"}},
		{`{"a":"bc`, []string{"end of payload", "string at offset 5"}},
		{`{"a":`, []string{"end of payload", "expected a value"}},
		{`{"a":01}`, []string{"offset 6", "expected ',' or '}'", "'1'"}},
		{`{"a":1.}`, []string{"offset 7", "digit after the decimal point"}},
		{`{"a":1e}`, []string{"offset 7", "digit in the exponent"}},
		{`{"a":-x}`, []string{"offset 6", "expected a digit", "'x'"}},
		{`{"a":nul}`, []string{"offset 5", `expected "null"`}},
		{`{"a":1e999}`, []string{"number 1e999 at offset 5", "not a finite number"}},
		{`{"a":"\q"}`, []string{"offset 7", "escape character", "'q'"}},
		{`{"a":"\u12x4"}`, []string{"offset 6", `\u is not followed by 4 hex digits`}},
		{"{\"a\":\"\x01\"}", []string{"offset 6", "control character U+0001"}},
		{`{"tid":1,"\u0074id":2}`, []string{"duplicate key \"tid\" at offset 9"}},
		{`{"a":1} x`, []string{"trailing data", "offset 8"}},
		{`{"a":1}é`, []string{"trailing data", "offset 7"}},
		{`{"a":` + strings.Repeat("[", 64), []string{"nesting deeper than 64", "offset 68"}},
		{"{\"a\":\"\xff\"}", []string{"not valid UTF-8"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var o object
			err := parseObject([]byte(tc.in), &o)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestScanObjectNoAllocs checks that a typical location is scanned
// without allocating: that is what the scanner is for.
func TestScanObjectNoAllocs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "good", "ios_location.json"))
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		var o object
		if err := parseObject(data, &o); err != nil {
			t.Fatal(err)
		}
		if _, ok := o.get("lat"); !ok {
			t.Fatal("no lat")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per scan, want 0", allocs)
	}
}

// FuzzScanObject checks parseObject against encoding/json: what it accepts
// json.Valid accepts and json.Unmarshal decodes to the same members; what
// it rejects is invalid JSON, not an object, or breaks the duplicate-key,
// finite-number or depth rules.
func FuzzScanObject(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.in))
	}
	for _, b := range SeedPayloads(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScan(t, data)
	})
}
