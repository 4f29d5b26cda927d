package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse"
)

// Metrics are Gatehouse's Prometheus metrics. The HTTP layer uses the
// request and decision counters; the service the rest.
type Metrics struct {
	reg prometheus.Registerer

	Requests      *prometheus.CounterVec // route, code
	Decisions     *prometheus.CounterVec // result (allow, deny, unauthenticated), kind
	verify        prometheus.Histogram
	logins        *prometheus.CounterVec // result
	reaperRuns    *prometheus.CounterVec // result
	reaperRemoved prometheus.Counter
	auditWaits    prometheus.Counter
	auditLostN    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// keeps them unregistered (tests, benchmarks).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_decisions_total", Help: "Authentication and authorization decisions by result and token kind.",
		}, []string{"result", "kind"}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_token_verify_seconds", Help: "Time to verify a presented token (parse, cache, compare).",
			Buckets: []float64{1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3},
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_logins_total", Help: "Password logins by result (succeeded, failed, throttled, busy).",
		}, []string{"result"}),
		reaperRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_reaper_runs_total", Help: "Reaper runs by result.",
		}, []string{"result"}),
		reaperRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_reaper_removed_tokens_total", Help: "Expired tokens removed by the reaper.",
		}),
		auditWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_queue_waits_total", Help: "Times a request waited because the audit queue was full.",
		}),
		auditLostN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_events_lost_total", Help: "Audit events that could not be written after retries.",
		}),
	}
	m.register(m.Requests, m.Decisions, m.verify, m.logins, m.reaperRuns, m.reaperRemoved, m.auditWaits, m.auditLostN)
	// Export zeros from the start, so that rates and alerts work before
	// the first event of each kind.
	for _, r := range []string{"succeeded", "failed", "throttled", "busy"} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.reaperRuns.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) register(cs ...prometheus.Collector) {
	if m.reg == nil {
		return
	}
	for _, c := range cs {
		m.reg.MustRegister(c)
	}
}

func (m *Metrics) observeVerify(d time.Duration) { m.verify.Observe(d.Seconds()) }

func (m *Metrics) login(result string) { m.logins.WithLabelValues(result).Inc() }

func (m *Metrics) reaped(n int, err error) {
	if err != nil {
		m.reaperRuns.WithLabelValues("error").Inc()
		return
	}
	m.reaperRuns.WithLabelValues("ok").Inc()
	m.reaperRemoved.Add(float64(n))
}

func (m *Metrics) auditWait()      { m.auditWaits.Inc() }
func (m *Metrics) auditLost(n int) { m.auditLostN.Add(float64(n)) }
func (m *Metrics) auditDepth(f func() float64) {
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_audit_queue_depth", Help: "Request audit events waiting to be written.",
	}, f))
}

// activeTokens exports the number of live cached tokens by kind.
func (m *Metrics) activeTokens(count func() map[gatehouse.TokenKind]int) {
	m.register(&tokenCollector{count: count, desc: prometheus.NewDesc(
		"gatehouse_active_tokens", "Live tokens by kind.", []string{"kind"}, nil)})
}

type tokenCollector struct {
	count func() map[gatehouse.TokenKind]int
	desc  *prometheus.Desc
}

func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.count()
	for _, k := range []gatehouse.TokenKind{gatehouse.KindSession, gatehouse.KindAPI, gatehouse.KindProject} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[k]), string(k))
	}
}
