package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	mathbits "math/bits"

	"github.com/wherehouse/wherehouse/storage"
)

// A block packs up to blockSize consecutive location records of one device
// (pak bucket, keyed by the key of its first record) into a fraction of
// their size, losslessly: every payload comes back byte for byte.
//
// Layout:
//
//	version byte (blockVersion)
//	uvarint record count
//	uvarint first tst, uvarint last tst - first tst
//	uvarint-prefixed topic, uvarint-prefixed type (shared by the records)
//	records
//	crc32 (Castagnoli) of everything before, 4 bytes big endian
//
// and each record, in key order:
//
//	flags byte (recTopic, recHash, recRaw)
//	uvarint tst - previous tst
//	varint received - previous received (ms)
//	varint lat bits - previous lat bits, varint lon bits - previous lon bits
//	[recTopic] uvarint-prefixed topic of this record
//	[recHash]  8-byte hash half of its key, when it is not messageHash
//	payload:   [recRaw] uvarint-prefixed payload
//	           else a delta against the previous record's payload: both are
//	           cut after every ',' into the same number of tokens; a bitmap
//	           of changed tokens, then for each changed one uvarint common
//	           prefix, uvarint common suffix, uvarint-prefixed middle.
//
// Consecutive fixes of one device differ in a few digits of a few fields,
// so a record takes 40–70 bytes where its payload alone is ~200. Decoding
// is copying; nothing is decompressed.
const (
	blockVersion = 1
	recTopic     = 1 << 0
	recHash      = 1 << 1
	recRaw       = 1 << 2
	recE7        = 1 << 3 // lat and lon are whole multiples of 1e-7: deltas in those units
	recRcvTST    = 1 << 4 // received is coded as the change of received - 1000*tst
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// blockRec is one record of a block.
type blockRec struct {
	tst      int64
	hash     uint64 // valid when hashed
	hashed   bool
	explicit bool // hash differs from messageHash: kept in the block
	received int64
	lat, lon float64
	topic    string
	typ      string
	payload  []byte
}

// key returns the record's 16-byte key, hashing its payload the first time.
func (r *blockRec) key() []byte {
	return recordKey(r.tst, r.keyHash())
}

func (r *blockRec) keyHash() uint64 {
	if !r.hashed {
		r.hash = messageHash(&storage.Message{Type: r.typ, Payload: r.payload})
		r.hashed = true
	}
	return r.hash
}

// message fills m from r, copying the payload into rr's arena.
func (r *blockRec) message(rr *recordReader, m *storage.Message) {
	m.TST, m.Received, m.Lat, m.Lon, m.Type = r.tst, r.received, r.lat, r.lon, r.typ
	if r.topic != rr.topic {
		rr.topic = r.topic
	}
	m.Topic = rr.topic
	m.Payload = rr.hold(r.payload)
}

// recFromValue decodes a tier-0 record (key k, value v) into a blockRec
// whose payload aliases v.
func recFromValue(k, v []byte) (blockRec, error) {
	r := blockRec{tst: keyTST(k), hash: binary.BigEndian.Uint64(k[8:]), hashed: true}
	if len(v) < 17 || v[0] != valueVersion {
		return r, errCorrupt
	}
	r.lat = math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
	r.lon = math.Float64frombits(binary.BigEndian.Uint64(v[9:]))
	rcv, n := binary.Uvarint(v[17:])
	if n <= 0 {
		return r, errCorrupt
	}
	r.received = int64(rcv)
	rest := v[17+n:]
	topic, rest, err := readBytes(rest)
	if err != nil {
		return r, err
	}
	typ, payload, err := readBytes(rest)
	if err != nil {
		return r, err
	}
	r.topic, r.typ, r.payload = string(topic), string(typ), payload
	r.explicit = r.hash != messageHash(&storage.Message{Type: r.typ, Payload: r.payload})
	return r, nil
}

// encodeBlock appends the block of recs (in key order, at least one, all
// hashed or not explicit) to b.
func encodeBlock(b []byte, recs []blockRec) []byte {
	start := len(b)
	first, last := recs[0], recs[len(recs)-1]
	b = append(b, blockVersion)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	b = binary.AppendUvarint(b, uint64(first.tst))
	b = binary.AppendUvarint(b, uint64(last.tst-first.tst))
	b = appendString(b, first.topic)
	b = appendString(b, first.typ)
	var prev blockRec
	prev.tst, prev.topic = first.tst, first.topic
	var prevTok, tok []int
	for i := range recs {
		r := &recs[i]
		flags := byte(0)
		if r.topic != first.topic {
			flags |= recTopic
		}
		if r.explicit {
			flags |= recHash
		}
		if i > 0 {
			tok = tokens(tok[:0], r.payload)
		}
		if i == 0 || len(tok) != len(prevTok) {
			flags |= recRaw
		}
		rcvDelta, rcvTST := r.received-prev.received, (r.received-1000*r.tst)-(prev.received-1000*prev.tst)
		if abs(rcvTST) < abs(rcvDelta) {
			flags |= recRcvTST
			rcvDelta = rcvTST
		}
		lat, latOK := e7(r.lat)
		lon, lonOK := e7(r.lon)
		if latOK && lonOK {
			flags |= recE7
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(r.tst-prev.tst))
		b = binary.AppendVarint(b, rcvDelta)
		if flags&recE7 != 0 {
			plat, _ := e7(prev.lat)
			plon, _ := e7(prev.lon)
			b = binary.AppendVarint(b, lat-plat)
			b = binary.AppendVarint(b, lon-plon)
		} else {
			b = binary.AppendVarint(b, int64(math.Float64bits(r.lat)-math.Float64bits(prev.lat)))
			b = binary.AppendVarint(b, int64(math.Float64bits(r.lon)-math.Float64bits(prev.lon)))
		}
		if flags&recTopic != 0 {
			b = appendString(b, r.topic)
		}
		if flags&recHash != 0 {
			b = binary.BigEndian.AppendUint64(b, r.hash)
		}
		if flags&recRaw != 0 {
			b = binary.AppendUvarint(b, uint64(len(r.payload)))
			b = append(b, r.payload...)
			tok = tokens(tok[:0], r.payload)
		} else {
			b = appendDelta(b, prev.payload, prevTok, r.payload, tok)
		}
		prev = *r
		prevTok, tok = tok, prevTok
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// tokens appends to ends the end offset of every token of p: p is cut
// after each ','.
func tokens(ends []int, p []byte) []int {
	off := 0
	for {
		i := bytes.IndexByte(p[off:], ',')
		if i < 0 {
			return append(ends, len(p))
		}
		off += i + 1
		ends = append(ends, off)
	}
}

// appendDelta encodes p (token ends tok) against q (token ends qtok), which
// have the same number of tokens.
func appendDelta(b, q []byte, qtok []int, p []byte, tok []int) []byte {
	mask := len(b)
	b = append(b, make([]byte, (len(tok)+7)/8)...)
	ps, qs := 0, 0
	for i := range tok {
		pt, qt := p[ps:tok[i]], q[qs:qtok[i]]
		ps, qs = tok[i], qtok[i]
		if bytes.Equal(pt, qt) {
			continue
		}
		b[mask+i/8] |= 1 << (i % 8)
		n := min(len(pt), len(qt))
		cp := 0
		for cp < n && pt[cp] == qt[cp] {
			cp++
		}
		cs := 0
		for cs < n-cp && pt[len(pt)-1-cs] == qt[len(qt)-1-cs] {
			cs++
		}
		b = appendToken(b, pt[cp:len(pt)-cs], cp, cs, len(pt) == len(qt))
	}
	return b
}

// blockHeader is what a block says about itself before its records.
type blockHeader struct {
	count             int
	firstTST, lastTST int64
}

// readBlockHeader reads the header of block v without checking the rest.
func readBlockHeader(v []byte) (blockHeader, error) {
	var h blockHeader
	if len(v) < 5 || v[0] != blockVersion {
		return h, errCorrupt
	}
	p := v[1:]
	var vals [3]uint64
	for i := range vals {
		x, n := binary.Uvarint(p)
		if n <= 0 {
			return h, errCorrupt
		}
		vals[i], p = x, p[n:]
	}
	if vals[0] == 0 || vals[0] > math.MaxInt32 || vals[1] > maxTST || vals[2] > maxTST-vals[1] {
		return h, errCorrupt
	}
	h.count, h.firstTST, h.lastTST = int(vals[0]), int64(vals[1]), int64(vals[1]+vals[2])
	return h, nil
}

// blockDecoder decodes blocks into reused memory.
type blockDecoder struct {
	recs  []blockRec
	arena []byte   // payloads of recs
	spans [][2]int // where each payload is in arena
	ptok  []int    // token ends of the previous payload
	tok   []int
}

// decode replaces d.recs with the records of block v. The records alias
// d's memory until the next decode.
func (d *blockDecoder) decode(v []byte) ([]blockRec, error) {
	h, err := readBlockHeader(v)
	if err != nil {
		return nil, err
	}
	if len(v) < 4 || crc32.Checksum(v[:len(v)-4], crcTable) != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	p := v[1 : len(v)-4]
	for range 3 {
		_, n := binary.Uvarint(p)
		p = p[n:]
	}
	topic, p, err := readBytes(p)
	if err != nil {
		return nil, err
	}
	typ, p, err := readBytes(p)
	if err != nil {
		return nil, err
	}
	if h.count > len(p) { // every record takes at least one byte
		return nil, errCorrupt
	}
	d.recs = d.recs[:0]
	d.arena = d.arena[:0]
	sharedTopic, sharedType := string(topic), string(typ)
	prev := blockRec{tst: h.firstTST}
	var prevStart, prevEnd int
	spans := d.spans[:0]
	for i := range h.count {
		if len(p) == 0 {
			return nil, errCorrupt
		}
		flags := p[0]
		p = p[1:]
		if flags&^(recTopic|recHash|recRaw|recE7|recRcvTST) != 0 || (i == 0 && flags&recRaw == 0) {
			return nil, errCorrupt
		}
		r := blockRec{topic: sharedTopic, typ: sharedType}
		var dt uint64
		var dr, dlat, dlon int64
		if dt, p, err = uvarint(p); err != nil {
			return nil, err
		}
		if dr, p, err = varint(p); err != nil {
			return nil, err
		}
		if dlat, p, err = varint(p); err != nil {
			return nil, err
		}
		if dlon, p, err = varint(p); err != nil {
			return nil, err
		}
		if dt > uint64(h.lastTST-prev.tst) {
			return nil, errCorrupt
		}
		r.tst = prev.tst + int64(dt)
		if flags&recRcvTST != 0 {
			r.received = prev.received - 1000*prev.tst + 1000*r.tst + dr
		} else {
			r.received = prev.received + dr
		}
		if flags&recE7 != 0 {
			plat, _ := e7(prev.lat)
			plon, _ := e7(prev.lon)
			r.lat, r.lon = float64(plat+dlat)/1e7, float64(plon+dlon)/1e7
		} else {
			r.lat = math.Float64frombits(math.Float64bits(prev.lat) + uint64(dlat))
			r.lon = math.Float64frombits(math.Float64bits(prev.lon) + uint64(dlon))
		}
		if flags&recTopic != 0 {
			var t []byte
			if t, p, err = readBytes(p); err != nil {
				return nil, err
			}
			r.topic = string(t)
		}
		if flags&recHash != 0 {
			if len(p) < 8 {
				return nil, errCorrupt
			}
			r.hash, r.hashed, r.explicit = binary.BigEndian.Uint64(p), true, true
			p = p[8:]
		}
		start := len(d.arena)
		if flags&recRaw != 0 {
			var raw []byte
			if raw, p, err = readBytes(p); err != nil {
				return nil, err
			}
			d.arena = append(d.arena, raw...)
			d.tok = tokens(d.tok[:0], raw)
		} else {
			q := d.arena[prevStart:prevEnd]
			if d.arena, d.tok, p, err = decodeDelta(d.arena, q, d.ptok, p, d.tok[:0]); err != nil {
				return nil, err
			}
		}
		d.ptok, d.tok = d.tok, d.ptok
		spans = append(spans, [2]int{start, len(d.arena)})
		prevStart, prevEnd = start, len(d.arena)
		d.recs = append(d.recs, r)
		prev = r
	}
	if len(p) != 0 || prev.tst != h.lastTST {
		return nil, errCorrupt
	}
	d.spans = spans
	for i := range d.recs { // the arena may have moved while growing
		d.recs[i].payload = d.arena[spans[i][0]:spans[i][1]:spans[i][1]]
	}
	return d.recs, nil
}

// decodeDelta appends to out the payload encoded in p against q (token
// ends qtok) and the ends of its tokens to tok (relative to where the
// payload starts in out), and returns the rest of p. Runs of unchanged
// tokens are copied at once.
func decodeDelta(out, q []byte, qtok []int, p []byte, tok []int) ([]byte, []int, []byte, error) {
	nmask := (len(qtok) + 7) / 8
	if len(p) < nmask {
		return out, tok, nil, errCorrupt
	}
	mask := p[:nmask]
	p = p[nmask:]
	if len(qtok)%8 != 0 && mask[nmask-1]>>(len(qtok)%8) != 0 {
		return out, tok, nil, errCorrupt
	}
	pstart := len(out)
	if cap(tok) < len(qtok) {
		tok = make([]int, 0, 2*len(qtok))
	}
	tok = tok[:len(qtok)] // the payload has q's tokens: tok[j] is the end of the j-th
	// run is where the bytes not copied yet start in q, runIdx the first
	// token whose end is not known yet. A changed token's prefix and
	// suffix are copied with the unchanged tokens around it.
	run, runIdx := 0, 0
	for mi, bits8 := range mask {
		for bits8 != 0 {
			i := mi*8 + mathbits.TrailingZeros8(bits8)
			bits8 &= bits8 - 1
			start, end := 0, qtok[i]
			if i > 0 {
				start = qtok[i-1]
			}
			// The changed token's head byte, then what follows it (see
			// appendToken); decoded here, inline: this is the inner loop
			// of every read of packed history.
			if len(p) == 0 {
				return out, tok, nil, errCorrupt
			}
			head := p[0]
			p = p[1:]
			qlen := end - start
			var cs int
			switch head & 3 {
			case tokSame, tokNibbles:
				n := int(head >> 4)
				cs = int(head >> 2 & 3)
				if n == 0 || cs > 2 || qlen < cs+n {
					return out, tok, nil, errCorrupt
				}
				cp := qlen - n - cs
				off := len(out) - pstart - run
				out = append(out, q[run:start+cp]...)
				for j := runIdx; j < i; j++ {
					tok[j] = qtok[j] + off
				}
				if head&3 == tokSame {
					if len(p) < n {
						return out, tok, nil, errCorrupt
					}
					out = append(out, p[:n]...)
					p = p[n:]
					break
				}
				nb := (n + 1) / 2
				if len(p) < nb {
					return out, tok, nil, errCorrupt
				}
				for _, x := range p[:n/2] {
					pair := nibblePairs[x]
					if pair[0] == 0 || pair[1] == 0 {
						return out, tok, nil, errCorrupt
					}
					out = append(out, pair[0], pair[1])
				}
				if n%2 == 1 {
					x := p[nb-1]
					if x&0x0f != 0x0f || nibblePairs[x][0] == 0 {
						return out, tok, nil, errCorrupt
					}
					out = append(out, nibblePairs[x][0])
				}
				p = p[nb:]
			default:
				if head != tokGeneral {
					return out, tok, nil, errCorrupt
				}
				var cp64, cs64 uint64
				var mid []byte
				var err error
				if cp64, p, err = uvarint(p); err != nil {
					return out, tok, nil, err
				}
				if cs64, p, err = uvarint(p); err != nil {
					return out, tok, nil, err
				}
				if mid, p, err = readBytes(p); err != nil {
					return out, tok, nil, err
				}
				if cp64 > uint64(qlen) || cs64 > uint64(qlen)-cp64 {
					return out, tok, nil, errCorrupt
				}
				cs = int(cs64)
				off := len(out) - pstart - run
				out = append(out, q[run:start+int(cp64)]...)
				for j := runIdx; j < i; j++ {
					tok[j] = qtok[j] + off
				}
				out = append(out, mid...)
			}
			tok[i] = len(out) - pstart + cs
			run, runIdx = end-cs, i+1
		}
	}
	off := len(out) - pstart - run
	out = append(out, q[run:]...)
	for j := runIdx; j < len(qtok); j++ {
		tok[j] = qtok[j] + off
	}
	return out, tok, p, nil
}

func uvarint(p []byte) (uint64, []byte, error) {
	x, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return x, p[n:], nil
}

func varint(p []byte) (int64, []byte, error) {
	x, n := binary.Varint(p)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return x, p[n:], nil
}

// blockSize is how many records a packed block holds.
const blockSize = 512

// A changed token is coded in one of three kinds, named by the low two
// bits of its first byte. Most changes replace a few characters of a
// number by as many others (the digits of lat, lon, tst), so two kinds say
// only the length of what changed (bits 4-7, 1-15) and of the unchanged
// end (bits 2-3, 0-2), the third with the changed characters packed two
// to a byte.
const (
	tokGeneral = 0 // uvarint prefix, uvarint suffix, uvarint-prefixed middle follow
	tokSame    = 1 // the middle follows
	tokNibbles = 2 // the middle follows as nibbles (nibbleChars), high nibble first
)

const nibbleChars = "0123456789.-eE+"

var nibbleOf = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(nibbleChars) {
		t[nibbleChars[i]] = byte(i)
	}
	return t
}()

func appendToken(b, mid []byte, cp, cs int, sameLen bool) []byte {
	if !sameLen || cs > 2 || len(mid) == 0 || len(mid) > 15 {
		b = append(b, tokGeneral)
		b = binary.AppendUvarint(b, uint64(cp))
		b = binary.AppendUvarint(b, uint64(cs))
		b = binary.AppendUvarint(b, uint64(len(mid)))
		return append(b, mid...)
	}
	head := byte(cs<<2 | len(mid)<<4)
	for _, c := range mid {
		if nibbleOf[c] == 0xff {
			b = append(b, head|tokSame)
			return append(b, mid...)
		}
	}
	b = append(b, head|tokNibbles)
	for i := 0; i < len(mid); i += 2 {
		x := nibbleOf[mid[i]] << 4
		if i+1 < len(mid) {
			x |= nibbleOf[mid[i+1]]
		} else {
			x |= 0x0f
		}
		b = append(b, x)
	}
	return b
}

// nibblePairs maps a byte of the nibble kind to its two characters: 0 for
// a nibble that is not a character (0x0f is, as the second, padding).
var nibblePairs = func() (t [256][2]byte) {
	for x := range t {
		hi, lo := x>>4, x&0x0f
		if hi < len(nibbleChars) {
			t[x][0] = nibbleChars[hi]
		}
		if lo < len(nibbleChars) {
			t[x][1] = nibbleChars[lo]
		}
	}
	return t
}()

// e7 returns x in units of 1e-7 when that is exact: the case for every
// coordinate written with at most seven decimals, as the apps send them.
func e7(x float64) (int64, bool) {
	e := math.Round(x * 1e7)
	if math.Abs(e) > 1<<53 || float64(int64(e))/1e7 != x || math.Signbit(x) {
		return 0, false
	}
	return int64(e), true
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
