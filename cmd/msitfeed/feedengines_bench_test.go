package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/accesslog"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/internal/ops"
	"github.com/msitfeed/msitfeed/internal/web"
)

// benchPosts are the posts both stores of the engine benchmarks hold: a
// board's default feed of 50 posts with bodies of a press release's length
// (about 8 KB of HTML each, 400 KB of RSS), and a few posts on another board.
func benchPosts() []feeds.Item {
	para := "<p>" + strings.Repeat("The Ministry of Science and ICT announced measures to support research &amp; development. ", 10) + "</p>\n"
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, feeds.KST)
	var items []feeds.Item
	for i := range 60 {
		board := "press"
		if i%6 == 5 {
			board = "notice"
		}
		id := int64(5000 + i)
		items = append(items, feeds.Item{
			Board:      board,
			ID:         id,
			Title:      fmt.Sprintf("MSIT release %d on research funding", i),
			URL:        fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=%d", id),
			Published:  day.AddDate(0, 0, i),
			Department: "Research Policy Division",
			Summary:    "The Ministry announced measures to support research.",
			Body:       strings.Repeat(para, 9),
			Attachments: []feeds.Attachment{{Name: fmt.Sprintf("release-%d.pdf", i),
				URL: fmt.Sprintf("https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=%d&fileOrdr=1", id), Type: "application/pdf"}},
		})
	}
	return items
}

// engineServer is the web server over a fresh store of engine holding
// benchPosts, wired as serve wires it: the default configuration's boards,
// feed pages, the feed cache with its default check interval, the handler
// observed by the metrics, the access log on (lines to io.Discard).
func engineServer(b *testing.B, engine db.Engine, lines *accesslog.Log) *web.Server {
	ctx := context.Background()
	d := dbtest.Open(b, engine)
	cfg := config.Default()
	cfg.BaseURL = "http://127.0.0.1:8080"
	store, err := newStore(cfg, d)
	if err != nil {
		b.Fatal(err)
	}
	// The same clock for both stores, so both render the same bytes.
	stored := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	store.Now = func() time.Time { return stored }
	for _, it := range benchPosts() {
		if _, err := store.Save(ctx, it, "list-hash"); err != nil {
			b.Fatalf("%s: save post %d: %v", engine, it.ID, err)
		}
	}
	pages, err := web.NewFeedPages(store.Registry, cfg.BaseURL, cfg.Source.URL)
	if err != nil {
		b.Fatal(err)
	}
	cache, err := feeds.NewCache(ctx, store, feeds.Options{BaseURL: cfg.BaseURL, SourceURL: cfg.Source.URL, Limit: cfg.Feeds.Limit, Page: pages})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close() })
	metrics := ops.NewMetricsFor(store.Registry)
	h := feeds.NewHandler(cache)
	h.Observe = metrics.ObserveFeed
	srv, err := web.New(web.Server{
		Store:       store,
		Boards:      store.Registry,
		Feeds:       h,
		BaseURL:     cfg.BaseURL,
		SiteURL:     cfg.Source.URL,
		AccessLog:   true,
		AccessLines: lines,
	})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// sinkWriter is a ResponseWriter that keeps the status and the header and
// counts the body's bytes without keeping them.
type sinkWriter struct {
	h     http.Header
	code  int
	bytes int
}

func (w *sinkWriter) Header() http.Header { return w.h }
func (w *sinkWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *sinkWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.bytes += len(p)
	return len(p), nil
}

// BenchmarkFeedEngines is a feed reader's request to the server as serve
// runs it, over a PostgreSQL store against the same over an SQLite store
// holding the same posts, in the same run: for each case (a 200 of the RSS
// document, a 304 to If-None-Match, the 200 of its gzip form) rounds
// alternate the two engines, which went first swapping each round. Reported:
// each engine's ns/op and allocs/op over all rounds, and PostgreSQL's time
// per request over SQLite's per round (pg/sqlite: median, min, max; 1.05
// would be 5% slower). Requests are served from the cache's memory; what
// the engine adds is the cache's check for changes, one query at most every
// CheckInterval (500 ms) while requests come, which falls inside the rounds
// when they last long enough (-benchtime 5s or more).
func BenchmarkFeedEngines(b *testing.B) {
	if !slices.Contains(dbtest.Engines(), db.Postgres) {
		b.Skip("no PostgreSQL on this machine (apt-get install postgresql)")
	}
	lines := accesslog.New(io.Discard, accesslog.Options{})
	defer lines.Close()
	sq := engineServer(b, db.SQLite, lines)
	pg := engineServer(b, db.Postgres, lines)

	const path = "/feeds/press.rss"
	first := func(srv http.Handler, header ...string) *sinkWriter {
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := &sinkWriter{h: http.Header{}}
		srv.ServeHTTP(w, r)
		return w
	}
	// The same posts give the same document on both engines.
	ws, wp := first(sq), first(pg)
	etag := ws.h.Get("Etag")
	if ws.code != 200 || wp.code != 200 || ws.bytes < 100_000 || wp.bytes != ws.bytes || wp.h.Get("Etag") != etag {
		b.Fatalf("GET %s: SQLite %d, %d bytes, ETag %s; PostgreSQL %d, %d bytes, ETag %s",
			path, ws.code, ws.bytes, etag, wp.code, wp.bytes, wp.h.Get("Etag"))
	}
	pgTag := wp.h.Get("Etag")
	sqGz, pgGz := first(sq, "Accept-Encoding", "gzip").h.Get("Etag"), first(pg, "Accept-Encoding", "gzip").h.Get("Etag")

	// Each engine's request carries its own ETags.
	for _, tc := range []struct {
		name   string
		sq, pg []string // header fields
		code   int
	}{
		{"200", nil, nil, 200},
		{"304", []string{"If-None-Match", etag}, []string{"If-None-Match", pgTag}, 304},
		{"gzip", []string{"Accept-Encoding", "gzip, deflate, br"}, []string{"Accept-Encoding", "gzip, deflate, br"}, 200},
		{"gzip-304", []string{"Accept-Encoding", "gzip, deflate, br", "If-None-Match", sqGz},
			[]string{"Accept-Encoding", "gzip, deflate, br", "If-None-Match", pgGz}, 304},
	} {
		b.Run(tc.name, func(b *testing.B) {
			request := func(header []string) *http.Request {
				r := httptest.NewRequest("GET", path, nil)
				for i := 0; i+1 < len(header); i += 2 {
					r.Header.Set(header[i], header[i+1])
				}
				return r
			}
			rSQ, rPG := request(tc.sq), request(tc.pg)
			w := &sinkWriter{h: http.Header{}}
			run := func(h http.Handler, r *http.Request, n int) (time.Duration, uint64, uint64) {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				start := time.Now()
				for range n {
					clear(w.h)
					w.code, w.bytes = 0, 0
					h.ServeHTTP(w, r)
				}
				d := time.Since(start)
				runtime.ReadMemStats(&after)
				if w.code != tc.code {
					b.Fatalf("status %d, want %d", w.code, tc.code)
				}
				return d, after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc
			}
			b.ReportAllocs() // overridden below with PostgreSQL's own
			const rounds = 10
			n := max(b.N/rounds, 1)
			var tSQ, tPG time.Duration
			var aSQ, aPG, bytesPG uint64
			ratios := make([]float64, 0, rounds)
			for i := range rounds {
				var ds, dp time.Duration
				var as, ap, bp uint64
				if i%2 == 0 {
					ds, as, _ = run(sq, rSQ, n)
					dp, ap, bp = run(pg, rPG, n)
				} else {
					dp, ap, bp = run(pg, rPG, n)
					ds, as, _ = run(sq, rSQ, n)
				}
				tSQ, tPG, aSQ, aPG, bytesPG = tSQ+ds, tPG+dp, aSQ+as, aPG+ap, bytesPG+bp
				ratios = append(ratios, float64(dp)/float64(ds))
			}
			slices.Sort(ratios)
			total := float64(n * rounds)
			b.ReportMetric(float64(tPG.Nanoseconds())/total, "ns/op")
			b.ReportMetric(float64(tSQ.Nanoseconds())/total, "sqlite-ns/op")
			b.ReportMetric(float64(aPG)/total, "allocs/op")
			b.ReportMetric(float64(bytesPG)/total, "B/op")
			b.ReportMetric(float64(aSQ)/total, "sqlite-allocs/op")
			b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "pg/sqlite")
			b.ReportMetric(ratios[0], "pg/sqlite-min")
			b.ReportMetric(ratios[rounds-1], "pg/sqlite-max")
		})
	}
}

// BenchmarkChangeToken is the feed cache's check for changes, the one
// database work a serving instance does for its feeds (once per
// CheckInterval while requests come; none while idle), on each engine in
// interleaved rounds: "same" reads db.Engine.ChangeToken on the cache's own
// connection when nothing changed (SQLite's PRAGMA against PostgreSQL's
// snapshot over the Unix socket); "moved" is a check after a commit, the
// token and then the boards' versions (feeds.Store.Versions), which a
// busy instance pays when anything committed since the last check. ns/op
// is PostgreSQL's wall time per check (client and server on this
// machine), sqlite-ns/op SQLite's.
func BenchmarkChangeToken(b *testing.B) {
	if !slices.Contains(dbtest.Engines(), db.Postgres) {
		b.Skip("no PostgreSQL on this machine (apt-get install postgresql)")
	}
	ctx := context.Background()
	cfg := config.Default()
	type engineDB struct {
		conn  *sql.Conn
		store *feeds.Store
	}
	dbs := map[db.Engine]engineDB{}
	for _, e := range []db.Engine{db.SQLite, db.Postgres} {
		d := dbtest.Open(b, e)
		store, err := newStore(cfg, d)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range benchPosts() {
			if _, err := store.Save(ctx, it, "list-hash"); err != nil {
				b.Fatal(err)
			}
		}
		conn, err := d.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		dbs[e] = engineDB{conn, store}
	}
	for _, moved := range []bool{false, true} {
		name := "same"
		if moved {
			name = "moved"
		}
		b.Run(name, func(b *testing.B) {
			check := func(e db.Engine, n int) time.Duration {
				d := dbs[e]
				start := time.Now()
				for range n {
					if _, err := e.ChangeToken(ctx, d.conn); err != nil {
						b.Fatal(err)
					}
					if moved {
						if _, err := d.store.Versions(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				return time.Since(start)
			}
			const rounds = 10
			n := max(b.N/rounds, 1)
			var tSQ, tPG time.Duration
			ratios := make([]float64, 0, rounds)
			for i := range rounds {
				var ds, dp time.Duration
				if i%2 == 0 {
					ds, dp = check(db.SQLite, n), check(db.Postgres, n)
				} else {
					dp, ds = check(db.Postgres, n), check(db.SQLite, n)
				}
				tSQ, tPG = tSQ+ds, tPG+dp
				ratios = append(ratios, float64(dp)/float64(ds))
			}
			slices.Sort(ratios)
			total := float64(n * rounds)
			b.ReportMetric(float64(tPG.Nanoseconds())/total, "ns/op")
			b.ReportMetric(float64(tSQ.Nanoseconds())/total, "sqlite-ns/op")
			b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "pg/sqlite")
		})
	}
}
