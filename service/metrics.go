package service

import (
	"strconv"
	"sync"
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
	auditDrops    prometheus.Counter
	auditLostN    prometheus.Counter

	// The request path's counters by their labels, so that it neither
	// formats a status code nor hashes label values per request.
	requestCs  sync.Map // requestKey -> prometheus.Counter
	decisionCs sync.Map // decisionKey -> prometheus.Counter
}

type requestKey struct {
	route string
	code  int
}

type decisionKey struct {
	result string
	kind   gatehouse.TokenKind
}

// Request is the counter of Requests for route and code.
func (m *Metrics) Request(route string, code int) prometheus.Counter {
	k := requestKey{route, code}
	if c, ok := m.requestCs.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.requestCs.LoadOrStore(k, m.Requests.WithLabelValues(route, strconv.Itoa(code)))
	return c.(prometheus.Counter)
}

// Decision is the counter of Decisions for result and kind.
func (m *Metrics) Decision(result string, kind gatehouse.TokenKind) prometheus.Counter {
	k := decisionKey{result, kind}
	if c, ok := m.decisionCs.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.decisionCs.LoadOrStore(k, m.Decisions.WithLabelValues(result, string(kind)))
	return c.(prometheus.Counter)
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
		auditDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_refused_requests_total", Help: "Requests refused with 503 because the audit queue was full (the store fell behind): a request is served only if its audit event can be kept.",
		}),
		auditLostN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_events_lost_total", Help: "Audit events that could not be written after retries.",
		}),
	}
	m.register(m.Requests, m.Decisions, m.verify, m.logins, m.reaperRuns, m.reaperRemoved, m.auditDrops, m.auditLostN)
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

func (m *Metrics) auditDropped()   { m.auditDrops.Inc() }
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
