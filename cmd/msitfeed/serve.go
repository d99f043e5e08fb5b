package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/accesslog"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/ops"
	"github.com/msitfeed/msitfeed/internal/web"
	"github.com/msitfeed/msitfeed/internal/websub"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/scheduler"
)

// runServe runs `msitfeed serve`: the HTTP server and the scheduler in one
// process until SIGINT or SIGTERM. Several may run on one database: one
// holds the scheduler lease and runs the jobs, the others stand by.
func (m *Main) runServe(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("serve")
	noSched := fs.Bool("no-scheduler", false, "serve HTTP only; do not crawl or send digests")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	accessLog := fs.Bool("access-log", true, "log every HTTP request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := m.setLogFormat(*logFormat); err != nil {
		return err
	}
	cfg, d, err := m.open(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	m.accessLog = *accessLog
	return m.serve(ctx, cfg, d, !*noSched, m.ready)
}

// serve runs the HTTP server (and, if withScheduler, the scheduler) until
// ctx is done, then shuts down in order: stop accepting, let running jobs
// reach a safe point, close the cache. ready, if set, receives the bound
// address once the server listens.
func (m *Main) serve(ctx context.Context, cfg config.Config, d *sql.DB, withScheduler bool, ready chan<- string) error {
	log := m.logger()
	store, err := newStore(cfg, d)
	if err != nil {
		return err
	}
	pages, err := web.NewFeedPages(store.Registry, cfg.BaseURL, cfg.Source.URL)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cache, err := feeds.NewCache(ctx, store, feeds.Options{
		BaseURL:   cfg.BaseURL,
		SourceURL: cfg.Source.URL,
		Limit:     cfg.Feeds.Limit,
		Page:      pages,
		Logger:    log,
		Hubs:      websubHubs(cfg),
	})
	if err != nil {
		return err
	}
	defer cache.Close()
	metrics := ops.NewMetricsFor(store.Registry)
	metrics.WatchFilteredFeeds(cache.FilteredStats)
	feedHandler := feeds.NewHandler(cache)
	feedHandler.Observe = metrics.ObserveFeed
	// The hub stops after the HTTP server and the scheduler.
	hub, stopHub, err := m.startHub(ctx, cfg, store, cache, metrics)
	if err != nil {
		return err
	}
	defer stopHub()
	interval, err := crawlInterval(cfg.Schedule.Crawl)
	if err != nil {
		return err
	}
	ml, err := mailer.New(ctx, cfg, d)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ml.Boards = store.Registry
	var lines *accesslog.Log
	if m.accessLog {
		// Request lines, in the logger's format, wait in memory and are
		// written each second, whenever 64 KiB of them wait, and at the
		// end: this Close runs after the HTTP server has stopped.
		lines = accesslog.New(m.logWriter(), accesslog.Options{Format: m.logFormat})
		defer func() {
			if err := lines.Close(); err != nil {
				log.Warn("access log", "err", err)
			}
		}()
	}
	subs := mailer.NewSubscribers(d)
	subs.Boards = store.Registry
	srv, err := web.New(web.Server{
		Store:          store,
		Boards:         store.Registry,
		Feeds:          withFeedLinks(hub, feedHandler),
		WebSub:         hubEndpoint(hub),
		Metrics:        metrics.Handler(),
		Ready:          &ops.Readiness{DB: d, Store: store, Interval: interval},
		BaseURL:        cfg.BaseURL,
		SiteURL:        cfg.Source.URL,
		Logger:         log,
		Subscribers:    subs,
		Mailer:         ml,
		SignupClosed:   cfg.Mail.From == "",
		ClientIPHeader: cfg.Web.ClientIPHeader,
		AccessLog:      m.accessLog,
		AccessLines:    lines,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		// After the HTTP server has stopped: let confirmation mails finish.
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(closeCtx); err != nil {
			log.Warn("web close", "err", err)
		}
	}()

	var sched *scheduler.Scheduler
	if withScheduler {
		sched, err = m.newScheduler(cfg, d, store, cache, metrics, hub)
		if err != nil {
			return err
		}
		// Another instance holding the lease is no error: this one stands
		// by and takes the jobs over if that one stops or dies.
		if err := sched.Start(ctx); err != nil {
			return fmt.Errorf("serve: start scheduler: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if sched != nil {
			sched.Stop(context.Background())
		}
		return fmt.Errorf("serve: listen on %s: %w (set listen in the config)", cfg.Listen, err)
	}
	httpSrv := web.NewHTTPServer(cfg.Listen, srv, log)
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "base_url", cfg.BaseURL, "scheduler", withScheduler)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	if err := web.Shutdown(httpSrv, 10*time.Second); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if sched != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := sched.Stop(stopCtx); err != nil {
			log.Error("scheduler stop", "err", err)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// newScheduler builds the crawl and digest jobs.
func (m *Main) newScheduler(cfg config.Config, d *sql.DB, store *feeds.Store, cache *feeds.Cache, metrics *ops.Metrics, hub *websub.Hub) (*scheduler.Scheduler, error) {
	crawler, err := m.newCrawler(cfg, store)
	if err != nil {
		return nil, err
	}
	crawler.OnRun = crawlObserver(metrics, hub)
	s := scheduler.New(d, m.logger())
	s.OnRun = metrics.ObserveJob
	s.LeaseTTL = cfg.Schedule.Lease
	if cfg.Instance != "" {
		s.Instance = cfg.Instance
	}
	interval, err := crawlInterval(cfg.Schedule.Crawl)
	if err != nil {
		return nil, err
	}
	if err := s.Add(scheduler.Job{
		Name: "crawl",
		Spec: cfg.Schedule.Crawl,
		// A minute, or a tenth of a shorter interval.
		Jitter:     min(time.Minute, interval/10),
		RunIfNever: true,
		Run: func(ctx context.Context) error {
			_, err := crawler.Crawl(ctx, feeds.CrawlOptions{})
			cache.Invalidate()
			return err
		},
	}); err != nil {
		return nil, usagef("config schedule.crawl: %v", err)
	}
	digest, err := m.digestJob(cfg, d, store.Registry, metrics)
	if err != nil {
		return nil, err
	}
	if digest != nil {
		if err := s.Add(scheduler.Job{Name: "digest", Spec: cfg.Schedule.Digest, Run: digest}); err != nil {
			return nil, usagef("config schedule.digest: %v", err)
		}
	}
	return s, nil
}

// crawlInterval is the time between two crawl slots of spec, for /readyz.
func crawlInterval(spec string) (time.Duration, error) {
	sched, err := scheduler.ParseSpec(spec)
	if err != nil {
		return 0, usagef("config schedule.crawl: %v", err)
	}
	first := sched.Next(time.Now())
	return sched.Next(first).Sub(first), nil
}

// setLogFormat switches the logger to text or JSON.
func (m *Main) setLogFormat(format string) error {
	switch format {
	case "text":
		m.log = slog.New(slog.NewTextHandler(m.logWriter(), nil))
		m.logFormat = accesslog.Text
	case "json":
		m.log = slog.New(slog.NewJSONHandler(m.logWriter(), nil))
		m.logFormat = accesslog.JSON
	default:
		return usagef("--log-format must be text or json, got %q", format)
	}
	return nil
}

// digestJob returns the scheduled digest run, or nil when mail.from is not
// set (the daemon then only crawls and serves; it says so in the log).
func (m *Main) digestJob(cfg config.Config, d *sql.DB, boards *feeds.Registry, metrics *ops.Metrics) (func(context.Context) error, error) {
	if cfg.Mail.From == "" {
		m.logger().Warn("mail.from is not set: digests are not scheduled")
		return nil, nil
	}
	ml, err := mailer.New(context.Background(), cfg, d)
	if err != nil {
		return nil, err
	}
	ml.Log = m.logger()
	ml.Boards = boards
	ml.OnDelivery = metrics.ObserveMail
	return func(ctx context.Context) error {
		res, err := ml.SendDigest(ctx)
		if errors.Is(err, mailer.ErrSendRunning) {
			m.logger().Warn("digest send already running in another process; skipped")
			return nil
		}
		m.logger().Info("digest job", "sent", res.Sent(), "digests", len(res.Digests))
		return err
	}, nil
}
