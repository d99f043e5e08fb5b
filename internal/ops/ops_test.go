package ops

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

func TestMetricsExposeCrawlsFeedsAndMail(t *testing.T) {
	m := NewMetrics()
	m.ObserveCrawl(feeds.CrawlRun{Board: "press", Requests: 4, New: 3, Updated: 1})
	m.ObserveCrawl(feeds.CrawlRun{Board: "notice", Requests: 2, Error: "list notice page 1: status 503"})
	m.ObserveCrawl(feeds.CrawlRun{Board: "trends", ListRows: 10, MissingDate: 10, MissingDepartment: 2, Degraded: "date missing on 10 of 10 list rows"})
	m.ObserveMail("sent")
	m.ObserveMail("retried")
	m.ObserveJob("digest", 2*time.Second, nil)
	m.ObserveFeed(feeds.FormatAtom, http.StatusOK)
	m.ObserveFeed(feeds.FormatAtom, http.StatusNotModified)
	m.ObserveFeed(feeds.FormatAtom, http.StatusNotModified)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`msitfeed_crawl_runs_total{board="press",result="ok"} 1`,
		`msitfeed_crawl_errors_total{board="notice"} 1`,
		`msitfeed_crawl_requests_total{board="press"} 4`,
		`msitfeed_crawl_items_total{board="press",kind="new"} 3`,
		`msitfeed_crawl_items_total{board="press",kind="updated"} 1`,
		`msitfeed_feed_requests_total{code="200",format="atom"} 1`,
		`msitfeed_feed_requests_total{code="304",format="atom"} 2`,
		`msitfeed_mail_total{outcome="sent"} 1`,
		`msitfeed_mail_total{outcome="retried"} 1`,
		`msitfeed_job_duration_seconds_count{job="digest"} 1`,
		`msitfeed_list_fields_missing_total{board="trends",field="date"} 10`,
		`msitfeed_list_fields_missing_total{board="trends",field="department"} 2`,
		`msitfeed_list_fields_missing_total{board="trends",field="title"} 0`,
		`msitfeed_crawl_degraded{board="trends"} 1`,
		`msitfeed_crawl_degraded{board="press"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestReadiness(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	store := feeds.NewStore(d)
	now := time.Now()
	rd := &Readiness{DB: d, Store: store, Interval: 30 * time.Minute, Now: func() time.Time { return now }}
	status := func() (int, string) {
		rec := httptest.NewRecorder()
		rd.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := status(); code != 200 {
		t.Fatalf("before any crawl: %d %s", code, body)
	}
	record := func(board, errMsg string) {
		id, err := store.StartRun(ctx, board)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.FinishRun(ctx, feeds.CrawlRun{ID: id, Board: board, Error: errMsg}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range feeds.BoardSlugs() {
		record(b, "status 503")
	}
	if code, body := status(); code != 503 || !strings.Contains(body, "press: last crawl failed") {
		t.Fatalf("every board failing: %d %s, want 503 naming the boards", code, body)
	}
	record("press", "")
	if code, body := status(); code != 200 {
		t.Fatalf("one board healthy: %d %s, want 200", code, body)
	}
	now = now.Add(2 * time.Hour) // more than 3 intervals since every run
	if code, body := status(); code != 503 || !strings.Contains(body, "ago") {
		t.Fatalf("stale crawls: %d %s, want 503", code, body)
	}
	d.Close()
	if err := rd.Check(ctx); err == nil || !strings.Contains(err.Error(), "database") {
		t.Fatalf("closed database: %v, want a database error", err)
	}
}

func TestConfiguredBoards(t *testing.T) {
	ctx := context.Background()
	reg, err := feeds.NewRegistry(feeds.Board{Slug: "bodo", Name: "보도자료", MID: "307", MPID: "208", SCode: "user", Dir: "/bbs", Lang: "ko"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("metrics show a configured board before its first crawl", func(t *testing.T) {
		m := NewMetricsFor(reg)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for _, want := range []string{`msitfeed_crawl_runs_total{board="bodo",result="ok"} 0`, `msitfeed_crawl_errors_total{board="press"} 0`} {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("a healthy configured board keeps the service ready", func(t *testing.T) {
		d, err := db.Open(ctx, filepath.Join(t.TempDir(), "ready.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		store := feeds.NewStore(d)
		store.Registry = reg
		rd := &Readiness{DB: d, Store: store, Interval: 30 * time.Minute}
		for _, b := range reg.Slugs() {
			id, err := store.StartRun(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			msg := "status 503"
			if b == "bodo" {
				msg = ""
			}
			if err := store.FinishRun(ctx, feeds.CrawlRun{ID: id, Board: b, Error: msg}); err != nil {
				t.Fatal(err)
			}
		}
		if err := rd.Check(ctx); err != nil {
			t.Errorf("only bodo healthy: %v, want ready", err)
		}
	})
}
