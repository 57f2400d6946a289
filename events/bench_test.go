package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// BenchmarkObserve is the engine's cost per stored location with no fences
// (what every server pays): the observer's copy, and the evaluation.
func BenchmarkObserve(b *testing.B) {
	ctx := context.Background()
	store, err := embedded.Open(ctx, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	policy, _ := auth.NewPolicy(ctx, store)
	e, err := events.New(ctx, store, policy, slog.New(slog.DiscardHandler), nil, events.Options{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	batch := make([]storage.Message, 100)
	users := make([]string, 10)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	tst := int64(1_740_000_000)
	n := 0
	for b.Loop() {
		for i := range batch {
			tst++
			batch[i] = storage.Message{User: users[i%10], Device: "phone", Type: "location", TST: tst, Lat: 52.5, Lon: 13.4, Acc: 12,
				Payload: []byte(`{"_type":"location","tid":"ph","tst":1740000000,"lat":52.5,"lon":13.4,"acc":12,"alt":40,"vel":4,"batt":80,"conn":"m","created_at":1740000000}`)}
		}
		e.Observe(ctx, batch)
		n += len(batch)
	}
	e.Close()
	<-done
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/location")
}
