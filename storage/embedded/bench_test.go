package embedded

import (
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// BenchmarkAppendBatch measures the recorder's write path: one durable
// transaction per batch of 256 new location fixes.
func BenchmarkAppendBatch(b *testing.B) {
	const batch = 256
	s := openDir(b, b.TempDir())
	defer closeStore(b, s)
	msgs := make([]storage.Message, batch)
	tst := base
	b.ReportAllocs()
	for b.Loop() {
		for i := range msgs {
			msgs[i] = fix("alice", "phone", tst)
			tst++
		}
		if _, err := s.Append(b.Context(), msgs); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkLocationsDay measures reading a busy day of one device (a fix
// every ~30 s) as the map and the export do: a full Locations walk.
func BenchmarkLocationsDay(b *testing.B) {
	const points = 3000
	s := openDir(b, b.TempDir())
	defer closeStore(b, s)
	msgs := make([]storage.Message, points)
	for i := range msgs {
		msgs[i] = fix("alice", "phone", base+int64(i)*28)
	}
	mustAppend(b, s, msgs...)
	q := storage.LocationQuery{User: "alice", Device: "phone", From: base, To: base + 86400}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := s.Locations(b.Context(), q, func(*storage.Message) error { n++; return nil }); err != nil {
			b.Fatalf("Locations: %v", err)
		}
		if n != points {
			b.Fatalf("Locations walked %d points, want %d", n, points)
		}
	}
	b.ReportMetric(float64(b.N*points)/b.Elapsed().Seconds(), "points/s")
}

// monthPoints is a busy month of one device: a fix every ~27 s.
const monthPoints = 100000

// monthStore holds a month of one device and the query for all of it.
func monthStore(b *testing.B) (*Store, storage.LocationQuery) {
	s := openDir(b, b.TempDir())
	b.Cleanup(func() { closeStore(b, s) })
	msgs := make([]storage.Message, 0, 5000)
	for i := range monthPoints {
		msgs = append(msgs, fix("alice", "phone", base+int64(i)*27))
		if len(msgs) == cap(msgs) {
			mustAppend(b, s, msgs...)
			msgs = msgs[:0]
		}
	}
	return s, storage.LocationQuery{User: "alice", Device: "phone", From: base, To: base + monthPoints*27}
}

// BenchmarkLocationsMonth measures a full Locations walk over a month, as
// a month export does.
func BenchmarkLocationsMonth(b *testing.B) {
	s, q := monthStore(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := s.Locations(b.Context(), q, func(*storage.Message) error { n++; return nil }); err != nil {
			b.Fatalf("Locations: %v", err)
		}
		if n != monthPoints {
			b.Fatalf("Locations walked %d points, want %d", n, monthPoints)
		}
	}
	b.ReportMetric(float64(b.N*monthPoints)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkScanLocationsMonth measures the same walk as the
// /api/0/locations renderer makes it: records handed out in place.
func BenchmarkScanLocationsMonth(b *testing.B) {
	s, q := monthStore(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.ScanLocations(b.Context(), q, func(*storage.Message) error { n++; return nil }, func() error { return nil })
		if err != nil {
			b.Fatalf("ScanLocations: %v", err)
		}
		if n != monthPoints {
			b.Fatalf("ScanLocations walked %d points, want %d", n, monthPoints)
		}
	}
	b.ReportMetric(float64(b.N*monthPoints)/b.Elapsed().Seconds(), "points/s")
}
