package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
)

// TestTrackPayloads checks that the generated fixes are what the benchmark
// claims: accepted by wherehouse's own parser as locations, about 200 bytes,
// tst advancing by the step.
func TestTrackPayloads(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		start int64
		step  int64
	}{
		{"one second apart", 0, 1740787200, 1},
		{"month spacing", 7, 1735689600, 26},
		{"far publisher number", 123, 1700000000, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrack(tt.n, tt.start, tt.step)
			var prev []byte
			for i := range 5000 {
				p := tr.next()
				if len(p) < 170 || len(p) > 240 {
					t.Fatalf("payload %d is %d bytes, want about 200: %s", i, len(p), p)
				}
				m, err := recorder.Parse("owntracks/load0/dev0", p, time.Now())
				if err != nil {
					t.Fatalf("payload %d rejected: %v: %s", i, err, p)
				}
				if !m.IsLocation() {
					t.Fatalf("payload %d parsed as %q", i, m.Type)
				}
				if want := tt.start + int64(i)*tt.step; m.TST != want {
					t.Fatalf("payload %d has tst %d, want %d", i, m.TST, want)
				}
				if bytes.Equal(p, prev) {
					t.Fatalf("payload %d repeats the previous one", i)
				}
				prev = p
			}
		})
	}
}

func TestParseCounter(t *testing.T) {
	const exposition = `# HELP wherehouse_messages_stored_total Messages durably stored, by _type.
# TYPE wherehouse_messages_stored_total counter
wherehouse_messages_stored_total{type="card"} 3
wherehouse_messages_stored_total{type="location"} 200010
`
	tests := []struct {
		name, text string
		want       float64
	}{
		{"present", exposition, 200010},
		{"nothing stored yet", "# no series\n", 0},
		{"scientific notation", `wherehouse_messages_stored_total{type="location"} 1.2e+06` + "\n", 1.2e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCounter(strings.NewReader(tt.text), storedSeries)
			if err != nil || got != tt.want {
				t.Fatalf("parseCounter = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(100-i) * time.Millisecond
	}
	if got := percentile(d, 0.5); got != 50*time.Millisecond {
		t.Errorf("p50 = %v, want 50ms", got)
	}
	if got := percentile(d, 0.99); got != 99*time.Millisecond {
		t.Errorf("p99 = %v, want 99ms", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

func TestCountPoints(t *testing.T) {
	body := []byte(`{"data":[{"count":5}],"count":3323,"status":200,"version":"dev"}`)
	if got := countPoints(body); got != 3323 {
		t.Errorf("countPoints = %d, want 3323", got)
	}
}
