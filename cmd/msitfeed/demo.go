package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// runDemo runs `msitfeed demo`: it serves the project's sample pages of the
// site on loopback, crawls them into a temporary database and serves the
// feeds, so a newcomer sees the whole pipeline work without internet.
func (m *Main) runDemo(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("demo")
	listen := fs.String("listen", "", "HTTP address for the feeds (default: the config's listen)")
	keep := fs.Bool("keep", false, "keep the temporary directory (database, mails) after exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
		cfg.BaseURL = "http://" + *listen
	}

	dir, err := os.MkdirTemp("", "msitfeed-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}

	// The sample site, on a loopback port of its own.
	site := msittest.NewSite(msittest.SamplePosts())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listen for the sample site: %w", err)
	}
	siteSrv := &http.Server{Handler: site, ReadHeaderTimeout: 5 * time.Second}
	go siteSrv.Serve(ln)
	defer siteSrv.Close()

	// The sample site has the five built-in boards only; boards added in
	// the configuration would fail their crawl there.
	for slug := range cfg.Boards {
		if !config.IsBuiltinBoard(slug) {
			delete(cfg.Boards, slug)
		}
	}
	cfg.Database = filepath.Join(dir, "demo.db")
	cfg.Source.URL = "http://" + ln.Addr().String()
	cfg.Source.Rate = 50 // our own loopback server, not the ministry's
	cfg.Source.Pages = 10
	cfg.SMTP.Transport = "file"
	cfg.SMTP.Dir = filepath.Join(dir, "mail")
	if cfg.Mail.From == "" {
		cfg.Mail.From = "msitfeed demo <demo@localhost>"
	}

	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer d.Close()
	store, err := newStore(cfg, d)
	if err != nil {
		return err
	}
	crawler, err := m.newCrawler(cfg, store)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "sample site on %s, database %s\n", cfg.Source.URL, cfg.Database)
	runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{})
	if err != nil && !errors.Is(err, feeds.ErrCrawlFailed) {
		return fmt.Errorf("demo: %w", err)
	}
	total := 0
	for _, r := range runs {
		fmt.Fprintf(m.Stdout, "crawled %-10s %3d posts in %d requests %s\n", r.Board, r.New, r.Requests, r.Error)
		total += r.New
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(m.Stdout, "\n%d posts stored. Feeds:\n", total)
	for _, b := range append([]string{feeds.AllSlug}, store.Registry.Slugs()...) {
		fmt.Fprintf(m.Stdout, "  %s/feeds/%s.atom  (.rss, .json)\n", cfg.BaseURL, b)
	}
	fmt.Fprintf(m.Stdout, "Open %s/ in a browser; mails from the subscribe form go to %s. Ctrl-C stops.\n", cfg.BaseURL, cfg.SMTP.Dir)
	return m.serve(ctx, cfg, d, false, m.ready)
}
