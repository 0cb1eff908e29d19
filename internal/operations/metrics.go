package operations

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubesvc/kubesvc/internal/store"
)

// metrics are the operation API's, on the control plane's /metrics.
type metrics struct {
	finished *prometheus.CounterVec   // by type and state
	duration *prometheus.HistogramVec // by type
}

// newMetrics registers the metrics on reg (none when nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_operations_total",
			Help: "Operations finished by this replica, by type and outcome (succeeded, failed: refused by the cluster, timed out, agent lost).",
		}, []string{"type", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubesvc_controlplane_operation_duration_seconds",
			Help:    "Time from an operation's request to its outcome, cache reflecting it included, by type.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 15),
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.finished, m.duration)
	}
	return m
}

// observe counts a task this replica finished, by its first operation's
// type (a task of several is recorded as "deployManifest+2": the count
// would make a series per batch size).
func (m *metrics) observe(row store.Operation) {
	typ, _, _ := strings.Cut(row.Type, "+")
	m.finished.WithLabelValues(typ, strings.ToLower(row.State)).Inc()
	m.duration.WithLabelValues(typ).Observe(row.FinishedAt.Sub(row.ReceivedAt).Seconds())
}
