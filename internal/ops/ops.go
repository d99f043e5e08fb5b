// Package ops is what an operator watches: Prometheus metrics for crawls,
// feed requests, mail and jobs, and the /readyz check. It observes the other
// packages through hooks wired in cmd/msitfeed; nothing here writes data.
package ops

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Metrics holds msitfeed's Prometheus collectors in a registry of its own.
type Metrics struct {
	Registry *prometheus.Registry

	crawlRuns     *prometheus.CounterVec
	crawlErrors   *prometheus.CounterVec
	crawlRequests *prometheus.CounterVec
	crawlItems    *prometheus.CounterVec
	lastCrawl     *prometheus.GaugeVec
	fieldsMissing *prometheus.CounterVec
	degraded      *prometheus.GaugeVec
	feedRequests  *prometheus.CounterVec
	feedCounters  sync.Map // feedKey → prometheus.Counter
	mail          *prometheus.CounterVec
	jobRuns       *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
}

// NewMetrics is NewMetricsFor the built-in boards.
func NewMetrics() *Metrics { return NewMetricsFor(nil) }

// NewMetricsFor registers every collector, with the Go runtime and process
// collectors, in a new registry; each board of boards (nil: the built-in
// boards) shows in the crawl counters at 0 before its first crawl.
func NewMetricsFor(boards *feeds.Registry) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		crawlRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_crawl_runs_total", Help: "Crawl runs per board and result (ok, error).",
		}, []string{"board", "result"}),
		crawlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_crawl_errors_total", Help: "Failed crawl runs per board.",
		}, []string{"board"}),
		crawlRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_crawl_requests_total", Help: "HTTP requests made to the site per board.",
		}, []string{"board"}),
		crawlItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_crawl_items_total", Help: "Items stored per board and kind (new, updated).",
		}, []string{"board", "kind"}),
		lastCrawl: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "msitfeed_crawl_last_success_timestamp_seconds", Help: "End of the last successful crawl per board.",
		}, []string{"board"}),
		fieldsMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_list_fields_missing_total", Help: "List rows whose field (title, date, department) could not be read, per board.",
		}, []string{"board", "field"}),
		degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "msitfeed_crawl_degraded", Help: "1 when a board's last crawl read the site only in part (a field missing from most list rows, or an empty list where posts were), else 0.",
		}, []string{"board"}),
		feedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_feed_requests_total", Help: "Feed requests per format and status code (200, 304, ...).",
		}, []string{"format", "code"}),
		mail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_mail_total", Help: "Mail delivery attempts per outcome (sent, failed, retried).",
		}, []string{"outcome"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msitfeed_job_runs_total", Help: "Scheduled job runs per job and result.",
		}, []string{"job", "result"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "msitfeed_job_duration_seconds", Help: "Duration of scheduled jobs (crawl, digest).",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"job"}),
	}
	m.Registry.MustRegister(m.crawlRuns, m.crawlErrors, m.crawlRequests, m.crawlItems, m.lastCrawl, m.fieldsMissing, m.degraded,
		m.feedRequests, m.mail, m.jobRuns, m.jobDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, b := range boards.Slugs() {
		m.crawlRuns.WithLabelValues(b, "ok")
		m.crawlRuns.WithLabelValues(b, "error")
		m.crawlErrors.WithLabelValues(b)
	}
	for _, o := range []string{"sent", "failed", "retried"} {
		m.mail.WithLabelValues(o)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveCrawl records a finished crawl run (feeds.Crawler.OnRun).
func (m *Metrics) ObserveCrawl(r feeds.CrawlRun) {
	result := "ok"
	if r.Error != "" {
		result = "error"
		m.crawlErrors.WithLabelValues(r.Board).Inc()
	} else {
		m.lastCrawl.WithLabelValues(r.Board).Set(float64(time.Now().Unix()))
	}
	m.crawlRuns.WithLabelValues(r.Board, result).Inc()
	m.crawlRequests.WithLabelValues(r.Board).Add(float64(r.Requests))
	m.crawlItems.WithLabelValues(r.Board, "new").Add(float64(r.New))
	m.crawlItems.WithLabelValues(r.Board, "updated").Add(float64(r.Updated))
	for field, n := range r.Missing() {
		m.fieldsMissing.WithLabelValues(r.Board, field).Add(float64(n))
	}
	if r.Error == "" {
		degraded := 0.0
		if r.Degraded != "" {
			degraded = 1
		}
		m.degraded.WithLabelValues(r.Board).Set(degraded)
	}
}

// ObserveMail records one delivery outcome: sent, failed or retried.
func (m *Metrics) ObserveMail(outcome string) {
	m.mail.WithLabelValues(outcome).Inc()
}

// ObserveJob records a scheduled job run (scheduler.Scheduler.OnRun).
func (m *Metrics) ObserveJob(name string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.jobRuns.WithLabelValues(name, result).Inc()
	m.jobDuration.WithLabelValues(name).Observe(d.Seconds())
}

// ObserveFeed counts one feed response by format and status code
// (feeds.Handler.Observe).
func (m *Metrics) ObserveFeed(format feeds.Format, code int) {
	f := string(format)
	if f == "" {
		f = "other"
	}
	m.feedCounter(f, code).Inc()
}

// feedCounter returns the feed request counter for format and code, looked
// up once per pair: a label lookup hashes its values on every call, and this
// is the hottest path of the server.
func (m *Metrics) feedCounter(format string, code int) prometheus.Counter {
	key := feedKey{format, code}
	if c, ok := m.feedCounters.Load(key); ok {
		return c.(prometheus.Counter)
	}
	c := m.feedRequests.WithLabelValues(format, strconv.Itoa(code))
	m.feedCounters.Store(key, c)
	return c
}

type feedKey struct {
	format string
	code   int
}

// Readiness decides /readyz: the database is reachable and writable, and not every board
// of the store's registry had its last crawl fail or is older than three
// crawl intervals.
type Readiness struct {
	DB       *sql.DB
	Store    *feeds.Store
	Interval time.Duration // the crawl interval
	Now      func() time.Time
}

// Check returns nil when ready, else an error saying why not.
func (rd *Readiness) Check(ctx context.Context) error {
	if err := rd.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	if err := writable(ctx, rd.DB); err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	runs, err := rd.Store.LastRuns(ctx)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return nil // never crawled yet: the first crawl is under way
	}
	now := time.Now()
	if rd.Now != nil {
		now = rd.Now()
	}
	var bad []string
	boards := rd.Store.Registry.Slugs()
	for _, b := range boards {
		r, ok := runs[b]
		switch {
		case !ok:
			bad = append(bad, b+": never crawled")
		case r.Error != "":
			bad = append(bad, b+": last crawl failed: "+r.Error)
		case rd.Interval > 0 && now.Sub(r.Started) > 3*rd.Interval:
			bad = append(bad, fmt.Sprintf("%s: last crawl %s ago", b, now.Sub(r.Started).Round(time.Minute)))
		}
	}
	if len(bad) == len(boards) {
		return fmt.Errorf("no board is healthy: %s", strings.Join(bad, "; "))
	}
	return nil
}

// writable checks the database would take a write, without changing data.
func writable(ctx context.Context, d *sql.DB) error {
	return db.EngineOf(d).CheckWritable(ctx, d)
}

// ServeHTTP answers 200 "ready" or 503 with the reason.
func (rd *Readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := rd.Check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		// One line, whatever the driver's error holds.
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		return
	}
	fmt.Fprintln(w, "ready")
}
