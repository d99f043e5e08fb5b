package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// runCrawl runs `msitfeed crawl [--board B] [--pages N]`.
func (m *Main) runCrawl(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("crawl")
	board := fs.String("board", "", "crawl only these boards, comma-separated (notice, press, photo, trends, newsletter or a configured one)")
	pages := fs.Int("pages", 0, "backfill this many pages per board")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("crawl: unexpected argument %q (use --board B or --pages N)", fs.Arg(0))
	}
	if *pages < 0 {
		return usagef("crawl: --pages must be 0 or more, got %d", *pages)
	}
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return err
	}
	reg, err := boardRegistry(cfg)
	if err != nil {
		return err
	}
	var boards []string
	if *board != "" {
		for _, b := range strings.Split(*board, ",") {
			if !reg.Has(b) {
				return usagef("crawl: unknown board %q (use %s)", b, strings.Join(reg.Slugs(), ", "))
			}
			boards = append(boards, b)
		}
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer d.Close()
	store := feeds.NewStore(d)
	store.Registry = reg
	crawler, err := m.newCrawler(cfg, store)
	if err != nil {
		return err
	}
	if isTerminal(m.Stderr) {
		crawler.Progress = m.Stderr
	}
	runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: boards, Pages: *pages})
	if crawler.Progress != nil {
		fmt.Fprintln(m.Stderr)
	}
	for _, r := range runs {
		status := "ok"
		if r.Error != "" {
			status = "FAILED: " + r.Error
		} else if r.Degraded != "" {
			status = "DEGRADED: " + r.Degraded
		}
		fmt.Fprintf(m.Stdout, "%-10s pages %d  requests %d  new %d  updated %d  revisited %d  %s\n", r.Board, r.Pages, r.Requests, r.New, r.Updated, r.Revisited, status)
	}
	return err
}

// newCrawler wires the MSIT source and the store from the configuration.
func (m *Main) newCrawler(cfg config.Config, store *feeds.Store) (*feeds.Crawler, error) {
	source, err := m.newSource(cfg, nil)
	if err != nil {
		return nil, err
	}
	overrides := map[string]feeds.Board{}
	for slug, b := range cfg.Boards {
		overrides[slug] = feeds.Board{Slug: slug, MID: b.MID, MPID: b.MPID, BBSSeqNo: b.BBSSeqNo}
	}
	return &feeds.Crawler{
		Store:         store,
		Source:        source,
		Logger:        m.logger(),
		Overrides:     overrides,
		BackfillPages: cfg.Source.Pages,
		RevisitWindow: time.Duration(cfg.Source.RevisitDays) * 24 * time.Hour,
		RevisitAfter:  cfg.Source.RevisitAfter,
		RevisitMax:    cfg.Source.RevisitMax,
	}, nil
}

// newSource wires the polite MSIT client and the source reading the site
// through it from the configuration; onResponse, if set, sees every
// response body the client reads (check --save).
func (m *Main) newSource(cfg config.Config, onResponse func(url string, status int, header http.Header, body []byte)) (*msit.Source, error) {
	base, err := url.Parse(cfg.Source.URL)
	if err != nil {
		return nil, usagef("config source.url: %v", err)
	}
	retries := cfg.Source.Retries
	if retries == 0 {
		retries = -1 // msit reads 0 as "the default"; the config means none
	}
	client := msit.NewClient(msit.Options{
		BaseURL:      cfg.Source.URL,
		Rate:         cfg.Source.Rate,
		Contact:      cfg.Source.Contact,
		Timeout:      cfg.Source.Timeout,
		Retries:      retries,
		BackoffBase:  cfg.Source.Backoff,
		MaxBytes:     cfg.Source.MaxBytes,
		IgnoreRobots: cfg.Source.IgnoreRobots,
		Version:      Version,
		Logger:       m.logger(),
		OnResponse:   onResponse,
	})
	return msit.NewSource(client, base), nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
