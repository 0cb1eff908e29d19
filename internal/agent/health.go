package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// metricsHandler serves the agent's Prometheus metrics (the names the
// Armory agent documents, and a few of ours).
func (a *Agent) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, f func() int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	counter("kubesvc_connection_count", "Sessions opened with the control plane.", a.stats.Connects.Load)
	counter("kubesvc_disconnection_total", "Sessions with the control plane lost.", a.stats.Disconnects.Load)
	counter("kubesvc_events_sent_total", "Caching events (changes) sent.", a.stats.Changes.Load)
	counter("kubesvc_events_bytes_sent_total", "Bytes of caching events sent.", a.stats.BatchBytes.Load)
	counter("kubesvc_relists_total", "Streams listed from scratch (lists completed).", a.stats.Relists.Load)
	for reason, f := range map[string]func() int64{"refused": a.stats.ListsRefused.Load, "error": a.stats.ListsFailed.Load} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kubesvc_list_failures_total",
			Help:        "Stream lists that failed, each retried with backoff: refused by the API server (forbidden, unauthorized, not found), or another error (the API server unreachable).",
			ConstLabels: prometheus.Labels{"reason": reason}}, func() float64 { return float64(f()) }))
	}
	counter("kubesvc_resumes_total", "Streams resumed from a control-plane resume point.", a.stats.Resumes.Load)
	counter("kubesvc_proxy_requests_total", "Kubernetes API requests relayed for the control plane's proxy.", a.stats.Proxied.Load)
	counter("kubesvc_agent_config_reload_errors_total", "Reloads of the configuration files that failed (the previous configuration stayed in force).", a.stats.ConfigReloadErrors.Load)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kubesvc_agent_config_valid",
		Help: "1 while the configuration files read cleanly, 0 since a reload failed (the previous configuration is in force).",
	}, func() float64 {
		if msg, _ := a.ConfigError(); msg != "" {
			return 0
		}
		return 1
	}))
	counter("kubesvc_proxy_refused_total", "Kubernetes API requests of the control plane's proxy refused (kubernetes.proxy.*, Secrets, tokens, upgrades).", a.stats.ProxyRefused.Load)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kubesvc_proxy_requests_in_flight",
		Help: "Kubernetes API requests being relayed for the control plane's proxy now (watches included).",
	}, func() float64 { return float64(a.stats.ProxyActive.Load()) }))
	// Documented as a counter by Armory; it goes down when resources stop
	// being watched, so it is a gauge here.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kubesvc_resource_agent_total",
		Help: "Resources (streams: a kind, or a kind in one namespace) watched now.",
	}, func() float64 { return float64(a.stats.Streams.Load()) }))
	reg.MustRegister(accountStatesCollector{a: a, desc: prometheus.NewDesc("kubesvc_agent_accounts",
		"Accounts by the state this agent last reported for them (SYNCING, WATCHING, ERROR, STANDBY): alert on ERROR.", []string{"state"}, nil)})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// accountStatesCollector publishes kubesvc_agent_accounts{state} when
// scraped.
type accountStatesCollector struct {
	a    *Agent
	desc *prometheus.Desc
}

func (c accountStatesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c accountStatesCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.a.states.counts()
	for _, st := range []kubesvcv1.AccountStatus_State{kubesvcv1.AccountStatus_SYNCING, kubesvcv1.AccountStatus_WATCHING,
		kubesvcv1.AccountStatus_ERROR, kubesvcv1.AccountStatus_STANDBY} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n[st.String()]), st.String())
	}
}

// healthHandler serves /health (always 200 while the process runs, with
// the connection state, how many accounts are in each state and, while
// the configuration files fail to reload, configError) and the metrics at /metrics and
// /prometheus_metrics.
func (a *Agent) healthHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"status": "UP", "connected": a.Connected(), "agentId": a.cfg.ID,
			"accounts": a.states.counts()}
		if msg, since := a.ConfigError(); msg != "" {
			body["configError"] = map[string]any{"message": msg, "since": since.UTC().Format(time.RFC3339)}
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /prometheus_metrics", metrics)
	return mux
}
