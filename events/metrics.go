package events

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events        *prometheus.CounterVec
	evaluated     prometheus.Counter
	late          prometheus.Counter
	storeErrors   prometheus.Counter
	publishErrors prometheus.Counter
	sendDropped   prometheus.Counter
	fences        prometheus.Gauge
	evalSeconds   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wherehouse_fence_events_total", Help: "Enter and leave events recorded, by event and source.",
		}, []string{"event", "source"}),
		evaluated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_fence_locations_evaluated_total", Help: "Locations evaluated against fences.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_fence_locations_late_total", Help: "Locations older than the newest evaluated for their device, not evaluated.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_fence_store_errors_total", Help: "Fence transitions the store failed to record.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_fence_publish_errors_total", Help: "Events not published on MQTT.",
		}),
		sendDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wherehouse_fence_publish_dropped_total", Help: "Events not published on MQTT because the queue was full.",
		}),
		fences: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wherehouse_fences", Help: "Server-side fences.",
		}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wherehouse_fence_batch_seconds", Help: "Time to evaluate and record one batch of messages.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.evaluated, m.late, m.storeErrors, m.publishErrors, m.sendDropped, m.fences, m.evalSeconds)
	}
	return m
}
