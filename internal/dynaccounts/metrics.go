package dynaccounts

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubesvc/kubesvc/internal/store"
)

// states are every lifecycle state, for the gauge's labels.
func states() []string {
	return []string{Inactive, ToMigrate, Activating, Active, Failed, Orphaned, ToDeactivate, Deactivating, Deleting, DeleteFailed}
}

// metrics are the feature's, on the control plane's /metrics.
type metrics struct {
	accounts *prometheus.GaugeVec // by state
}

// newMetrics registers the metrics on reg (none when nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{accounts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubesvc_dynamic_accounts",
		Help: "Dynamic accounts in kubesvc_accounts by state, as this replica's reconciler last read them (every replica reads the same table).",
	}, []string{"state"})}
	if reg != nil {
		reg.MustRegister(m.accounts)
	}
	return m
}

// observe publishes how many rows are in each state (0 for the others).
func (m *metrics) observe(rows []store.Account) {
	n := map[string]int{}
	for _, a := range rows {
		n[a.State]++
	}
	for _, s := range states() {
		m.accounts.WithLabelValues(s).Set(float64(n[s]))
	}
}
