package controlplane

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

type metrics struct {
	sessions       prometheus.Gauge
	batches        prometheus.Counter
	changes        prometheus.Counter
	persistSeconds prometheus.Histogram
	droppedChanges prometheus.Counter
	unauthorized   prometheus.Counter
	proxied        *prometheus.CounterVec   // by HTTP status
	httpRequests   *prometheus.CounterVec   // by route and HTTP status
	httpSeconds    *prometheus.HistogramVec // by route

	// The cluster as this replica last read it (AssignInterval).
	replicas         prometheus.Gauge
	assignedAccounts *prometheus.GaugeVec // by replica
	clusterAgents    *prometheus.GaugeVec // by replica
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
		droppedChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_changes_dropped_total",
			Help: "Changes left out of the cache because no backend can store them (a name longer than 253 bytes or not ASCII).",
		}),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_grpc_unauthorized_total",
			Help: "gRPC calls refused because the client certificate was missing or its subject matched no kubesvc.grpc.auth.x509 filter.",
		}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_proxy_requests_total",
			Help: "Requests to the Kubernetes API proxy, by the HTTP status answered (499: the client left first).",
		}, []string{"code"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubesvc_controlplane_http_requests_total",
			Help: "REST requests answered, by route (the endpoint's pattern, method included; \"unmatched\" for none) and HTTP status (499: the client left first).",
		}, []string{"route", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubesvc_controlplane_http_request_duration_seconds",
			Help:    "Time to answer a REST request, by route (a proxied watch or a waiting read counts its whole wait).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		persistSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubesvc_controlplane_batch_persist_seconds",
			Help:    "Time to persist one change batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubesvc_cluster_replicas",
			Help: "Control-plane replicas recorded alive in the database.",
		}),
		assignedAccounts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubesvc_cluster_assigned_accounts",
			Help: "Accounts cached through the agents of each control-plane replica.",
		}, []string{"replica"}),
		clusterAgents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubesvc_cluster_agents",
			Help: "Agents connected to each control-plane replica.",
		}, []string{"replica"}),
	}
	reg.MustRegister(m.sessions, m.batches, m.changes, m.droppedChanges, m.unauthorized, m.proxied, m.httpRequests, m.httpSeconds, m.persistSeconds, m.replicas, m.assignedAccounts, m.clusterAgents)
	return m
}

func (m *metrics) observeBatch(changes int, d time.Duration) {
	m.batches.Inc()
	m.changes.Add(float64(changes))
	m.persistSeconds.Observe(d.Seconds())
}

// observeCluster publishes the spread of agents and accounts.
func (m *metrics) observeCluster(replicas []string, agents, accounts map[string]int) {
	m.replicas.Set(float64(len(replicas)))
	m.assignedAccounts.Reset()
	m.clusterAgents.Reset()
	for _, r := range replicas {
		m.assignedAccounts.WithLabelValues(r).Set(float64(accounts[r]))
		m.clusterAgents.WithLabelValues(r).Set(float64(agents[r]))
	}
}

// groupCommitter is a store whose concurrent writes share transactions
// (store.sqlStore on SQLite).
type groupCommitter interface {
	GroupCommits() (transactions, calls int64)
}

// registerGroupCommits publishes the store's shared transactions: calls
// over transactions is how many agent batches a shared commit carries.
func registerGroupCommits(reg prometheus.Registerer, g groupCommitter) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kubesvc_store_group_commits_total",
			Help: "Transactions that committed the batches of several agent sessions at once (SQLite's group commit).",
		}, func() float64 { n, _ := g.GroupCommits(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kubesvc_store_group_commit_batches_total",
			Help: "Batches committed by those transactions: over kubesvc_store_group_commits_total, the batches per shared commit.",
		}, func() float64 { _, n := g.GroupCommits(); return float64(n) }),
	)
}

// accountStatesCollector publishes kubesvc_controlplane_accounts{state},
// read from the registry when scraped.
type accountStatesCollector struct {
	reg  *registry
	desc *prometheus.Desc
}

func newAccountStatesCollector(reg *registry) *accountStatesCollector {
	return &accountStatesCollector{reg: reg, desc: prometheus.NewDesc("kubesvc_controlplane_accounts",
		"Accounts of the agents connected to this replica, by the state their agent reports (SYNCING, WATCHING, ERROR, STANDBY): alert on ERROR; an account WATCHING may still have streams it cannot serve (see its errorMessage).",
		[]string{"state"}, nil)}
}

func (c *accountStatesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *accountStatesCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.reg.accountStates()
	for _, st := range []kubesvcv1.AccountStatus_State{kubesvcv1.AccountStatus_SYNCING, kubesvcv1.AccountStatus_WATCHING,
		kubesvcv1.AccountStatus_ERROR, kubesvcv1.AccountStatus_STANDBY} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n[st]), st.String())
	}
}
