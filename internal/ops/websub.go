package ops

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msitfeed/msitfeed/internal/websub"
)

// WebSubMetrics counts what the WebSub hub does; see Metrics.WebSub.
type WebSubMetrics struct {
	requests      *prometheus.CounterVec
	verifications *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	pings         *prometheus.CounterVec
}

// WebSub registers the WebSub hub's metrics beside the others:
// msitfeed_websub_subscriptions, the subscriptions whose lease runs (count
// is called at each scrape), and counters of subscription requests by
// status code, verifications, content distributions and pings to external
// hubs by outcome. Give the result's Observe to websub.Options.Observe.
func (m *Metrics) WebSub(count func(context.Context) (int, error)) *WebSubMetrics {
	w := &WebSubMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_websub_requests_total", Help: "WebSub subscription requests per status code answered (202, 400, ...).",
		}, []string{"code"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_websub_verifications_total", Help: "WebSub verifications of intent and denials per outcome (verified, unsubscribed, refused, denied, error).",
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_websub_deliveries_total", Help: "WebSub content distribution attempts per outcome (delivered, retried, failed, gone, superseded).",
		}, []string{"outcome"}),
		pings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_websub_pings_total", Help: "Publish pings to external WebSub hubs per outcome (ok, retried, failed).",
		}, []string{"outcome"}),
	}
	subscriptions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "msitfeed_websub_subscriptions", Help: "WebSub subscriptions whose lease has not expired.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := count(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	m.Registry.MustRegister(w.requests, w.verifications, w.deliveries, w.pings, subscriptions)
	for _, o := range []string{"delivered", "retried", "failed", "gone", "superseded"} {
		w.deliveries.WithLabelValues(o)
	}
	for _, o := range []string{"verified", "unsubscribed", "refused", "denied", "error"} {
		w.verifications.WithLabelValues(o)
	}
	return w
}

// Observe counts one event of the hub (websub.Options.Observe).
func (w *WebSubMetrics) Observe(event, outcome string) {
	switch event {
	case websub.EventRequest:
		w.requests.WithLabelValues(outcome).Inc()
	case websub.EventVerification:
		w.verifications.WithLabelValues(outcome).Inc()
	case websub.EventDelivery:
		w.deliveries.WithLabelValues(outcome).Inc()
	case websub.EventPing:
		w.pings.WithLabelValues(outcome).Inc()
	}
}
