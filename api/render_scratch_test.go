package api

import (
	"bytes"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/storage"
)

var scratchPayload = []byte(`{"_type":"location","tid":"ph","lat":52.5123456,"lon":13.4123456,"alt":43,"acc":12,"vac":4,"vel":21,"cog":187,"batt":81,"bs":1,"conn":"m","m":2,"t":"u","p":101.532,"tst":1735689600,"created_at":1735689601}`)

func oldMentionsAny(p []byte, extra []field) bool {
	if bytes.Contains(p, []byte(`\u`)) {
		return escapedKeyCollides(p, extra)
	}
	for _, f := range extra {
		if bytes.Contains(p, []byte(`"`+f.key+`"`)) {
			return true
		}
	}
	return false
}

type oldTimeScratch struct {
	buf []byte
	f   [3]field
}

func (ts *oldTimeScratch) fields(m *storage.Message) []field {
	buf := ts.buf[:0]
	buf = appendStamp(buf, m.ReceivedTime(), 'T', true)
	rcv := len(buf)
	tst := time.Unix(m.TST, 0)
	buf = appendStamp(buf, tst, 'T', true)
	iso := len(buf)
	buf = appendStamp(buf, tst, ' ', false)
	ts.buf = buf
	ts.f = [3]field{{"isorcv", buf[:rcv:rcv]}, {"isotst", buf[rcv:iso:iso]}, {"disptst", buf[iso:]}}
	return ts.f[:]
}

func oldAppendFeature(dst []byte, m *storage.Message) []byte {
	dst = append(dst, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	dst = appendFloatS(dst, m.Lon)
	dst = append(dst, ',')
	dst = appendFloatS(dst, m.Lat)
	dst = append(dst, `]},"properties":{`...)
	dst = append(dst, `"tst":`...)
	dst = appendIntS(dst, m.TST)
	dst = append(dst, `,"isotst":`...)
	dst = appendStamp(dst, time.Unix(m.TST, 0), 'T', true)
	gjson.Parse(unsafe.String(unsafe.SliceData(m.Payload), len(m.Payload))).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "tid", "vel", "acc", "alt", "batt":
			dst = append(dst, ',', '"')
			dst = append(dst, key.Str...)
			dst = append(dst, '"', ':')
			dst = append(dst, value.Raw...)
		}
		return true
	})
	return append(dst, "}}"...)
}

var sinkB bool

func BenchmarkScratchMentionsOld(b *testing.B) {
	f := timeFields(&storage.Message{})
	for b.Loop() {
		sinkB = oldMentionsAny(scratchPayload, f)
	}
}

func BenchmarkScratchMentionsNew(b *testing.B) {
	f := timeFields(&storage.Message{})
	for b.Loop() {
		sinkB = mentionsAny(scratchPayload, f)
	}
}

func BenchmarkScratchTimesOld(b *testing.B) {
	var ts oldTimeScratch
	m := storage.Message{TST: 1735689600, Received: 1735689600123}
	for b.Loop() {
		m.TST += 30
		m.Received += 30000
		ts.fields(&m)
	}
}

func BenchmarkScratchTimesNew(b *testing.B) {
	var ts timeScratch
	m := storage.Message{TST: 1735689600, Received: 1735689600123}
	for b.Loop() {
		m.TST += 30
		m.Received += 30000
		ts.fields(&m)
	}
}

func BenchmarkScratchObjectOld(b *testing.B) {
	var ts oldTimeScratch
	m := storage.Message{TST: 1735689600, Received: 1735689600123, Payload: scratchPayload}
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		m.TST += 30
		buf = appendObject(buf[:0], m.Payload, ts.fields(&m), nil)
	}
}

func BenchmarkScratchObjectNew(b *testing.B) {
	var ts timeScratch
	m := storage.Message{TST: 1735689600, Received: 1735689600123, Payload: scratchPayload}
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		m.TST += 30
		buf = appendObject(buf[:0], m.Payload, ts.fields(&m), nil)
	}
}

func BenchmarkScratchFeatureOld(b *testing.B) {
	m := storage.Message{TST: 1735689600, Received: 1735689600123, Lat: 52.5123456, Lon: 13.4123456, Payload: scratchPayload}
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		m.TST += 30
		buf = oldAppendFeature(buf[:0], &m)
	}
}

func BenchmarkScratchFeatureNew(b *testing.B) {
	var st stamper
	m := storage.Message{TST: 1735689600, Received: 1735689600123, Lat: 52.5123456, Lon: 13.4123456, Payload: scratchPayload}
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		m.TST += 30
		buf = st.appendFeature(buf[:0], &m)
	}
}

func appendFloatS(dst []byte, f float64) []byte { return strconv.AppendFloat(dst, f, 'f', -1, 64) }
func appendIntS(dst []byte, i int64) []byte     { return strconv.AppendInt(dst, i, 10) }

var benchPayload = []byte(`{"_type":"location","acc":12,"alt":40,"batt":81,"bs":1,"conn":"w","created_at":1700000000,"lat":52.50123,"lon":13.40123,"tid":"ph","tst":1700000000,"vac":3,"vel":4,"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"home","inregions":["Home"],"m":1,"t":"u"}`)

func BenchmarkScratchMentionsOldBP(b *testing.B) {
	f := timeFields(&storage.Message{})
	for b.Loop() {
		sinkB = oldMentionsAny(benchPayload, f)
	}
}

func BenchmarkScratchMentionsNewBP(b *testing.B) {
	f := timeFields(&storage.Message{})
	for b.Loop() {
		sinkB = mentionsAny(benchPayload, f)
	}
}
