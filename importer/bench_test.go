package importer_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
)

// benchPoints is how many locations one benchmark import holds: a year of
// a phone reporting every 2.5 minutes.
const benchPoints = 200_000

// recLines is a .rec month file of n Android-like locations.
func recLines(n int) []byte {
	var b bytes.Buffer
	tst := int64(1714521600)
	for i := range n {
		t := tst + int64(i)*150
		fmt.Fprintf(&b, "%s\t*                 \t"+
			`{"_type":"location","_id":"%08x","acc":%d,"alt":%d,"batt":%d,"bs":1,"conn":"w","created_at":%d,`+
			`"inregions":[],"lat":%.7f,"lon":%.7f,"m":1,"source":"fused","t":"u","tid":"ph","tst":%d,"vac":3,"vel":%d}`+"\n",
			time.Unix(t, 0).UTC().Format("2006-01-02T15:04:05Z"), i, 5+i%20, 30+i%15, 100-i%100, t+2,
			52.5+float64(i%1000)*1e-5, 13.4+float64(i%977)*1e-5, t, i%50)
	}
	return b.Bytes()
}

// takeoutRecords is a Records.json of n records.
func takeoutRecords(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"locations":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		t := time.Unix(1514764800+int64(i)*60, 0).UTC()
		fmt.Fprintf(&b, `{"latitudeE7":%d,"longitudeE7":%d,"accuracy":%d,"velocity":%d,"heading":%d,"altitude":%d,`+
			`"verticalAccuracy":3,"source":"WIFI","deviceTag":1234567890,"platformType":"ANDROID","timestamp":"%s"}`,
			525200066+i%1000, 134049540+i%977, 5+i%30, i%10, i%360, 30+i%15, t.Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

// BenchmarkImport measures the direct path of "wherehouse import": parse,
// validate with recorder.Parse, append in batches of 10,000 to a fresh
// embedded store on disk (one fsync per batch), device state included.
func BenchmarkImport(b *testing.B) {
	for _, bc := range []struct {
		name, format string
		input        []byte
	}{
		{"rec", importer.FormatRec, recLines(benchPoints)},
		{"takeout", importer.FormatTakeout, takeoutRecords(benchPoints)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.input)))
			var n int64
			for b.Loop() {
				b.StopTimer()
				store := openStore(b)
				im := importer.New(store, importer.Options{Observe: recorder.NewDeviceTracker(store, discard).Observe})
				b.StartTimer()
				sum, err := im.Import(b.Context(), bytes.NewReader(bc.input),
					importer.Source{Name: "bench", Format: bc.format, User: "alice", Device: "phone"}, importer.RunOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if sum.New != benchPoints {
					b.Fatalf("%d new, want %d", sum.New, benchPoints)
				}
				n += sum.New
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
