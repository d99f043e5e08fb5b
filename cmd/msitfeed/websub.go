package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/ops"
	"github.com/msitfeed/msitfeed/internal/websub"
)

// websubHubs are the hubs every feed names (rel="hub", JSON Feed's hubs):
// msitfeed's own at <base_url>/websub when web.websub is on, then each of
// web.websub_hubs.
func websubHubs(cfg config.Config) []string {
	var hubs []string
	if cfg.Web.WebSub {
		hubs = append(hubs, strings.TrimRight(cfg.BaseURL, "/")+websub.Path)
	}
	return append(hubs, cfg.Web.WebSubHubs...)
}

// startHub starts serve's WebSub side: the hub (web.websub) and the pings
// of external hubs (web.websub_hubs), publishing what the cache's feeds
// show, counted in metrics. It returns nil and a no-op stop when neither is
// configured; stop waits for the hub to finish.
func (m *Main) startHub(ctx context.Context, cfg config.Config, store *feeds.Store, cache *feeds.Cache, metrics *ops.Metrics) (*websub.Hub, func(), error) {
	if !cfg.Web.WebSub && len(cfg.Web.WebSubHubs) == 0 {
		return nil, func() {}, nil
	}
	var hub *websub.Hub
	observe := metrics.WebSub(func(ctx context.Context) (int, error) { return hub.Count(ctx) }).Observe
	hub, err := websub.New(store, websub.Options{
		Feeds:            cache.Options(),
		Local:            cfg.Web.WebSub,
		External:         cfg.Web.WebSubHubs,
		LeaseDefault:     cfg.Web.WebSubLeaseDefault,
		LeaseMin:         cfg.Web.WebSubLeaseMin,
		LeaseMax:         cfg.Web.WebSubLeaseMax,
		AllowPrivate:     cfg.Web.WebSubAllowPrivate,
		MaxSubscriptions: cfg.Web.WebSubMaxSubscriptions,
		MaxPerHost:       cfg.Web.WebSubMaxPerHost,
		UserAgent:        "msitfeed/" + Version + " WebSub hub (+" + cfg.BaseURL + ")",
		Logger:           m.logger(),
		Observe:          observe,
		// External hubs fetch the feed when pinged: it must be the new one.
		OnChange: func(boards []string) { cache.Invalidate(boards...) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	if err := hub.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	stop := func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := hub.Close(closeCtx); err != nil {
			m.logger().Warn("websub close", "err", err)
		}
	}
	return hub, stop, nil
}

// hubEndpoint is the hub's handler for web.Server.WebSub, nil (no route)
// when msitfeed runs no hub of its own.
func hubEndpoint(hub *websub.Hub) http.Handler {
	if hub == nil || hub.URL() == "" {
		return nil
	}
	return hub
}

// withFeedLinks adds the hub's Link headers to the feed responses.
func withFeedLinks(hub *websub.Hub, feed http.Handler) http.Handler {
	if hub == nil {
		return feed
	}
	return hub.FeedLinks(feed)
}

// crawlObserver is the crawler's OnRun in serve: metrics, and the hub
// told at once of a run that changed a board.
func crawlObserver(metrics *ops.Metrics, hub *websub.Hub) func(feeds.CrawlRun) {
	if hub == nil {
		return metrics.ObserveCrawl
	}
	return func(r feeds.CrawlRun) {
		metrics.ObserveCrawl(r)
		hub.CrawlRun(r)
	}
}

const websubUsage = `usage: msitfeed websub <command>

commands:
  list [--format table|json]   every WebSub subscription: topic, callback,
                               lease end, last delivery and its status
`

// runWebSub runs `msitfeed websub ...`.
func (m *Main) runWebSub(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, websubUsage)
		return usagef("websub: no command given (list)")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(m.Stdout, websubUsage)
		return errHelp
	case "list":
		return m.websubList(ctx, configPath, args[1:])
	}
	return usagef("websub: unknown command %q (use list)", args[0])
}

func (m *Main) websubList(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("websub list")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return usagef("websub list: --format must be table or json, got %q", *format)
	}
	_, d, err := m.open(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	subs, err := websub.List(ctx, d)
	if err != nil {
		return err
	}
	now := time.Now()
	if *format == "json" {
		type row struct {
			Topic        string     `json:"topic"`
			Callback     string     `json:"callback"`
			LeaseEnd     time.Time  `json:"lease_end"`
			Expired      bool       `json:"expired"`
			Secret       bool       `json:"signed"`
			LastDelivery *time.Time `json:"last_delivery,omitempty"`
			LastStatus   int        `json:"last_status,omitempty"`
			LastError    string     `json:"last_error,omitempty"`
			Deliveries   int64      `json:"deliveries"`
			Failures     int64      `json:"failures"`
		}
		rows := make([]row, 0, len(subs))
		for _, s := range subs {
			r := row{Topic: s.Topic, Callback: s.Callback, LeaseEnd: s.Expires, Expired: !s.Expires.After(now), Secret: s.Secret != "",
				LastStatus: s.LastStatus, LastError: s.LastError, Deliveries: s.Deliveries, Failures: s.Failures}
			if !s.LastDelivery.IsZero() {
				r.LastDelivery = &s.LastDelivery
			}
			rows = append(rows, r)
		}
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tCALLBACK\tLEASE END\tLAST DELIVERY\tSTATUS")
	for _, s := range subs {
		lease := s.Expires.UTC().Format("2006-01-02 15:04 UTC")
		if !s.Expires.After(now) {
			lease += " (expired)"
		}
		last, status := "never", "-"
		if !s.LastDelivery.IsZero() {
			last = s.LastDelivery.UTC().Format("2006-01-02 15:04:05 UTC")
			switch {
			case s.LastError == "":
				status = fmt.Sprintf("ok %d", s.LastStatus)
			default:
				status = "failed: " + s.LastError
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Topic, s.Callback, lease, last, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(subs) == 0 {
		fmt.Fprintln(m.Stderr, "no WebSub subscriptions")
	}
	return nil
}
