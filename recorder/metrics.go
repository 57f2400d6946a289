package recorder

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's Prometheus series.
type Metrics struct {
	received      *prometheus.CounterVec
	stored        *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	duplicates    prometheus.Counter
	empty         prometheus.Counter
	storeErrors   prometheus.Counter
	liveDropped   prometheus.Counter
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_messages_received_total", Help: "Messages received, by transport.",
		}, []string{"transport"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_messages_stored_total", Help: "Messages durably stored, by _type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_messages_rejected_total", Help: "Messages rejected, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_messages_duplicate_total", Help: "Messages received again and not stored twice.",
		}),
		empty: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_messages_empty_total", Help: "Empty messages (retained-message clears) ignored.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_store_errors_total", Help: "Batches the store failed to commit.",
		}),
		liveDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_live_dropped_total", Help: "Live updates a slow listener missed.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wherehouse_commit_batch_messages", Help: "Messages per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wherehouse_commit_seconds", Help: "Time to durably commit a batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.stored, m.rejected, m.duplicates, m.empty,
			m.storeErrors, m.liveDropped, m.batchSize, m.commitSeconds)
	}
	return m
}

// LiveDropped counts a live update a slow listener missed.
func (m *Metrics) LiveDropped() { m.liveDropped.Inc() }
