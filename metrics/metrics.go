// Package metrics exposes the server's metrics in the Prometheus text
// format, with github.com/prometheus/client_golang.
//
// Every name starts with ivsrt_. Labels take values from small fixed
// sets (operation, error type, media kind, drop reason, sink name), never
// from stages or participants: a server with thousands of participants
// has as many series as one with none. What happens per participant
// (loss, jitter, round-trip time) is reported as distributions.
//
// Counters that other packages keep (forwarding, sinks) are read when
// the metrics are scraped, so the media path pays nothing for them here;
// distributions are observed as things happen, each observation a few
// atomic adds.
package metrics

import (
	"net/http"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MediaStatser is the media plane, read at each scrape.
type MediaStatser interface {
	MediaStats() ivsrt.MediaStats
}

// TURNStats is what the embedded TURN server has done.
type TURNStats struct {
	Allocations, Participants  int    // held now, and by how many participants
	RefusedAuth, QuotaRefusals uint64 // requests refused, since the start
}

// TURNStatser is the embedded TURN server, read at each scrape.
type TURNStatser interface {
	TURNStats() TURNStats
}

// SinkStatuser is the event relay, read at each scrape; its Status may
// return nothing (no sinks, or, in a cluster, the relay runs elsewhere).
type SinkStatuser interface {
	Status() []events.SinkStatus
}

// Registry holds the server's metrics. Its Observe methods implement the
// observer interfaces of api, sfu (ivsrt.ReceptionObserver), events and the
// stores (ivsrt.StoreObserver).
type Registry struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec

	lossRatio  *prometheus.HistogramVec
	jitter     *prometheus.HistogramVec
	rtt        *prometheus.HistogramVec
	deliveries *prometheus.HistogramVec
	storeWrite *prometheus.HistogramVec

	media MediaStatser
	sinks SinkStatuser
	turn  TURNStatser
}

// New returns a registry with the Go runtime's and the process's metrics
// and the server's. media and sinks may be nil, and set later with
// SetMedia and SetSinks (before the first scrape).
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivsrt_api_requests_total",
		Help: "API requests answered, by operation and AWS error type (empty for success).",
	}, []string{"operation", "error"})
	r.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_api_request_duration_seconds",
		Help:    "Time to answer an API request, by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"operation"})
	r.lossRatio = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_subscriber_loss_ratio",
		Help:    "Fraction of packets lost between two receiver reports of a subscriber, one observation per report block, by media kind.",
		Buckets: []float64{0, .005, .01, .02, .05, .1, .2, .5, 1},
	}, []string{"kind"})
	r.jitter = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_subscriber_jitter_seconds",
		Help:    "Interarrival jitter subscribers report, by media kind.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32},
	}, []string{"kind"})
	r.rtt = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_subscriber_rtt_seconds",
		Help:    "Round-trip time to subscribers, from their receiver reports, by media kind.",
		Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2},
	}, []string{"kind"})
	r.deliveries = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_event_delivery_lag_seconds",
		Help:    "Time from an event entering a sink's queue to its receiver taking it, tries included, by sink.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120, 600, 3600},
	}, []string{"sink"})
	r.storeWrite = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivsrt_store_write_duration_seconds",
		Help:    "Time a store write transaction took, retries included, by outcome.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"outcome"})
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests, r.requestSeconds, r.lossRatio, r.jitter, r.rtt, r.deliveries, r.storeWrite,
		scraped{r},
	)
	return r
}

// SetMedia makes the registry report m's activity.
func (r *Registry) SetMedia(m MediaStatser) { r.media = m }

// SetTURN makes the registry report the embedded TURN server t.
func (r *Registry) SetTURN(t TURNStatser) { r.turn = t }

// SetSinks makes the registry report s's sinks.
func (r *Registry) SetSinks(s SinkStatuser) { r.sinks = s }

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: r.reg})
}

// ObserveRequest implements api.RequestObserver.
func (r *Registry) ObserveRequest(operation, errorType string, took time.Duration) {
	r.requests.WithLabelValues(operation, errorType).Inc()
	r.requestSeconds.WithLabelValues(operation).Observe(took.Seconds())
}

// ObserveReception implements ivsrt.ReceptionObserver.
func (r *Registry) ObserveReception(rec ivsrt.Reception) {
	r.lossRatio.WithLabelValues(rec.Kind).Observe(rec.FractionLost)
	r.jitter.WithLabelValues(rec.Kind).Observe(rec.Jitter.Seconds())
	if rec.RTT > 0 {
		r.rtt.WithLabelValues(rec.Kind).Observe(rec.RTT.Seconds())
	}
}

// ObserveDelivery implements events.DeliveryObserver.
func (r *Registry) ObserveDelivery(sink string, lag time.Duration) {
	r.deliveries.WithLabelValues(sink).Observe(lag.Seconds())
}

// ObserveStoreWrite implements ivsrt.StoreObserver.
func (r *Registry) ObserveStoreWrite(took time.Duration, outcome string) {
	r.storeWrite.WithLabelValues(outcome).Observe(took.Seconds())
}
