package controlplane

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sessions       prometheus.Gauge
	batches        prometheus.Counter
	changes        prometheus.Counter
	persistSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubesvc_controlplane_agent_sessions",
			Help: "Agent streams currently connected to this replica.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_batches_persisted_total",
			Help: "Change batches persisted and acknowledged.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_changes_persisted_total",
			Help: "Changes (objects, syncs, bookmarks) persisted.",
		}),
		persistSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubesvc_controlplane_batch_persist_seconds",
			Help:    "Time to persist one change batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	reg.MustRegister(m.sessions, m.batches, m.changes, m.persistSeconds)
	return m
}

func (m *metrics) observeBatch(changes int, d time.Duration) {
	m.batches.Inc()
	m.changes.Add(float64(changes))
	m.persistSeconds.Observe(d.Seconds())
}
