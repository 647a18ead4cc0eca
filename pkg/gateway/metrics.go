package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus series, in their own registry so
// they are not mixed with the embedded Kubernetes components' metrics.
type metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	queued     *prometheus.GaugeVec
	coldStarts *prometheus.CounterVec
	coldStart  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	labels := []string{"namespace", "revision"}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "knd_gateway_requests_total",
			Help: "Requests routed to a revision, by response code."}, append(labels, "code")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "knd_gateway_request_duration_seconds",
			Help: "Time from the request's arrival to the end of its response.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, labels),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "knd_gateway_queue_depth",
			Help: "Requests waiting for a free pod of a revision."}, labels),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "knd_gateway_cold_starts_total",
			Help: "Requests that arrived while the revision had no ready pod."}, labels),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "knd_gateway_cold_start_seconds",
			Help: "Time a request waited for the revision's first ready pod.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, labels),
	}
	m.registry.MustRegister(m.requests, m.latency, m.queued, m.coldStarts, m.coldStart)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// revisionMetrics are one revision's series, looked up once rather than
// on every request.
type revisionMetrics struct {
	m         *metrics
	ns, rev   string
	latency   prometheus.Observer
	queued    prometheus.Gauge
	coldStart prometheus.Observer
	colds     prometheus.Counter
	ok        prometheus.Counter // code 200, the common case, without the lock

	mu    sync.Mutex
	codes map[int]prometheus.Counter
}

func (m *metrics) forRevision(ns, rev string) *revisionMetrics {
	return &revisionMetrics{m: m, ns: ns, rev: rev,
		latency:   m.latency.WithLabelValues(ns, rev),
		queued:    m.queued.WithLabelValues(ns, rev),
		coldStart: m.coldStart.WithLabelValues(ns, rev),
		colds:     m.coldStarts.WithLabelValues(ns, rev),
		ok:        m.requests.WithLabelValues(ns, rev, "200"),
		codes:     map[int]prometheus.Counter{}}
}

// observe records one finished request.
func (r *revisionMetrics) observe(code int, took time.Duration) {
	r.latency.Observe(took.Seconds())
	if code == http.StatusOK {
		r.ok.Inc()
		return
	}
	r.mu.Lock()
	c, ok := r.codes[code]
	if !ok {
		c = r.m.requests.WithLabelValues(r.ns, r.rev, strconv.Itoa(code))
		r.codes[code] = c
	}
	r.mu.Unlock()
	c.Inc()
}

// statusRecorder remembers the response code written through it
// and tells onWrite (the timeout watchdog) about every write.
type statusRecorder struct {
	http.ResponseWriter
	code    int
	onWrite func()
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	if s.onWrite != nil && code >= 200 {
		s.onWrite()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if s.onWrite != nil {
		s.onWrite()
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack underneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
