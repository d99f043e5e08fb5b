package ops

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/internal/websub"
)

func TestWebSubMetrics(t *testing.T) {
	m := NewMetrics()
	w := m.WebSub(func(context.Context) (int, error) { return 7, nil })
	w.Observe(websub.EventDelivery, "delivered")
	w.Observe(websub.EventDelivery, "delivered")
	w.Observe(websub.EventDelivery, "retried")
	w.Observe(websub.EventRequest, "202")
	w.Observe(websub.EventVerification, "verified")
	w.Observe(websub.EventPing, "ok")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"msitfeed_websub_subscriptions 7",
		`msitfeed_websub_deliveries_total{outcome="delivered"} 2`,
		`msitfeed_websub_deliveries_total{outcome="retried"} 1`,
		`msitfeed_websub_deliveries_total{outcome="failed"} 0`,
		`msitfeed_websub_requests_total{code="202"} 1`,
		`msitfeed_websub_verifications_total{outcome="verified"} 1`,
		`msitfeed_websub_pings_total{outcome="ok"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
