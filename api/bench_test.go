package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// benchServer serves a store holding n points of one device, one per 30 s.
func benchServer(b *testing.B, n int) (*Server, string) {
	ctx := context.Background()
	store, err := embedded.Open(ctx, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	const start = 1700000000
	for i := 0; i < n; i += 5000 {
		batch := make([]storage.Message, 0, 5000)
		for j := i; j < min(n, i+5000); j++ {
			tst := int64(start + 30*j)
			batch = append(batch, storage.Message{User: "u", Device: "d", Type: "location", TST: tst, Topic: "owntracks/u/d",
				Received: tst * 1000, Lat: 52.5, Lon: 13.4,
				Payload: fmt.Appendf(nil, `{"_type":"location","acc":12,"alt":40,"batt":81,"bs":1,"conn":"w","created_at":%d,"lat":52.5%04d,"lon":13.4%04d,"tid":"ph","tst":%d,"vac":3,"vel":4,"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"home","inregions":["Home"],"m":1,"t":"u"}`, tst, j%10000, j%10000, tst)})
		}
		if _, err := store.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	accounts := auth.NewAccounts(store)
	if err := accounts.Add(ctx, "u", "password-1", false); err != nil {
		b.Fatal(err)
	}
	policy, _ := auth.NewPolicy(ctx, store)
	s := New(Deps{Store: store, Accounts: accounts, Policy: policy, Live: recorder.NewLive(nil),
		Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(), Version: "bench"})
	return s, fmt.Sprintf("/api/0/locations?user=u&device=d&from=%d&to=%d", start, start+30*n)
}

func benchLocations(b *testing.B, n int, format string) {
	s, path := benchServer(b, n)
	req := httptest.NewRequest(http.MethodGet, path+"&format="+format, nil)
	req.SetBasicAuth("u", "password-1")
	b.ReportAllocs()
	b.ResetTimer()
	var w discardWriter
	for b.Loop() {
		w = discardWriter{header: http.Header{}}
		s.ServeHTTP(&w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	b.SetBytes(w.n)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// benchLocationsLoopback is benchLocations over a real HTTP connection on
// loopback, as make bench times it with curl (no gzip asked for).
func benchLocationsLoopback(b *testing.B, n int, format string) {
	s, path := benchServer(b, n)
	srv := httptest.NewServer(s)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, err := http.NewRequest(http.MethodGet, srv.URL+path+"&format="+format, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth("u", "password-1")
	b.ReportAllocs()
	b.ResetTimer()
	var size int64
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
	}
	b.SetBytes(size)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// discardWriter is a ResponseWriter that keeps only the status and the
// body's length, so a benchmark measures the handler, not a growing buffer.
type discardWriter struct {
	header http.Header
	code   int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += int64(len(p))
	return len(p), nil
}

func BenchmarkLocationsDayJSON(b *testing.B)      { benchLocations(b, 3000, "json") }
func BenchmarkLocationsDayGeoJSON(b *testing.B)   { benchLocations(b, 3000, "geojson") }
func BenchmarkLocationsMonthJSON(b *testing.B)    { benchLocations(b, 100000, "json") }
func BenchmarkLocationsMonthGeoJSON(b *testing.B) { benchLocations(b, 100000, "geojson") }

func BenchmarkLocationsMonthJSONLoopback(b *testing.B) { benchLocationsLoopback(b, 100000, "json") }
func BenchmarkLocationsMonthGeoJSONLoopback(b *testing.B) {
	benchLocationsLoopback(b, 100000, "geojson")
}
