package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// pipeline is the real wiring under test: a fake MSIT site served over
// HTTP, the msitfeed CLI against it, and a temp-dir SQLite database.
type pipeline struct {
	t       *testing.T
	site    *msittest.Site
	siteURL string
	env     []string
	dbPath  string
}

func TestMain(m *testing.M) { dbtest.Main(m) }

func newPipeline(t *testing.T, posts []msittest.Post) *pipeline {
	return newPipelineWith(t, posts, nil)
}

// newPipelineOn is newPipeline on a fresh database of engine, which the
// CLI is given as MSITFEED_DATABASE.
func newPipelineOn(t *testing.T, engine db.Engine, posts []msittest.Post) *pipeline {
	t.Helper()
	p := newPipelineWith(t, posts, nil)
	p.dbPath = dbtest.DSN(t, engine)
	p.env[0] = "MSITFEED_DATABASE=" + p.dbPath
	return p
}

// newPipelineWith is newPipeline with the site's handler wrapped by wrap,
// which may inject faults, and the site built with opts (its shape).
func newPipelineWith(t *testing.T, posts []msittest.Post, wrap func(http.Handler) http.Handler, opts ...msittest.Option) *pipeline {
	t.Helper()
	site := msittest.NewSite(posts, opts...)
	var h http.Handler = site
	if wrap != nil {
		h = wrap(site)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dbPath := filepath.Join(t.TempDir(), "e2e.db")
	return &pipeline{
		t: t, site: site, siteURL: srv.URL, dbPath: dbPath,
		env: []string{
			"MSITFEED_DATABASE=" + dbPath,
			"MSITFEED_SOURCE_URL=" + srv.URL,
			"MSITFEED_SOURCE_RATE=1000",
			"MSITFEED_SOURCE_PAGES=10",
			"MSITFEED_BASE_URL=http://feeds.test",
			"MSITFEED_SOURCE_BACKOFF=10ms",
			"MSITFEED_SOURCE_RETRIES=2",
		},
	}
}

// crawler opens the pipeline's database (closed when the test ends) and
// returns it with a store and a crawler wired from the configuration, as
// serve wires them.
func (p *pipeline) crawler() (*sql.DB, *feeds.Store, *feeds.Crawler) {
	p.t.Helper()
	m := NewMain(nil, io.Discard, io.Discard, p.env)
	cfg, err := m.loadConfig("")
	if err != nil {
		p.t.Fatal(err)
	}
	d, err := db.Open(context.Background(), p.dbPath)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { d.Close() })
	store := feeds.NewStore(d)
	crawler, err := m.newCrawler(cfg, store)
	if err != nil {
		p.t.Fatal(err)
	}
	return d, store, crawler
}

// run runs one msitfeed command and returns its stdout, failing on error.
func (p *pipeline) run(args ...string) string {
	p.t.Helper()
	var out, errb bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errb, p.env)
	if err := m.Run(context.Background(), args); err != nil {
		p.t.Fatalf("msitfeed %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// serve starts `msitfeed serve --no-scheduler` and returns its base URL.
func (p *pipeline) serve() string {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	env := append(slices.Clone(p.env), "MSITFEED_LISTEN=127.0.0.1:0")
	m := NewMain(strings.NewReader(""), io.Discard, io.Discard, env)
	m.ready = ready
	go func() { done <- m.Run(ctx, []string{"serve", "--no-scheduler"}) }()
	p.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			p.t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		p.t.Fatalf("serve exited: %v", err)
	case <-time.After(20 * time.Second):
		p.t.Fatal("serve did not start")
	}
	return ""
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

// truth is what the site says of one post, as a reader should see it.
type truth struct {
	title, link, id string
	published       time.Time
	attachments     []string // download URLs
}

func siteTruth(siteURL string, posts []msittest.Post) map[string]truth {
	ids := map[string]feeds.Board{}
	for _, b := range msittest.Boards() {
		ids[b.Slug] = b
	}
	out := map[string]truth{}
	for _, p := range posts {
		b := ids[p.Board]
		day, _ := time.ParseInLocation("2006-01-02", p.Date, feeds.KST)
		tr := truth{
			title:     p.Title,
			link:      fmt.Sprintf("%s/eng/bbs/view.do?sCode=eng&mId=%s&mPid=%s&bbsSeqNo=%s&nttSeqNo=%d", siteURL, b.MID, b.MPID, b.BBSSeqNo, p.ID),
			id:        feeds.ItemID(p.Board, p.ID),
			published: day,
		}
		for _, a := range p.Attachments {
			tr.attachments = append(tr.attachments, fmt.Sprintf("%s/ssm/file/fileDown.do?atchFileNo=%d&fileOrd=%d&fileBtn=A", siteURL, a.FileNo, a.Ord))
		}
		out[tr.id] = tr
	}
	return out
}

func TestPipeline_CrawlServeRead(t *testing.T) { dbtest.Each(t, pipelineCrawlServeRead) }

func pipelineCrawlServeRead(t *testing.T, engine db.Engine) {
	posts := msittest.SamplePosts()
	p := newPipelineOn(t, engine, posts)
	p.run("crawl")
	want := siteTruth(p.siteURL, posts)
	base := p.serve()

	parser := gofeed.NewParser()
	for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, format := range []string{"rss", "atom", "json"} {
			t.Run(board+"."+format, func(t *testing.T) {
				body := get(t, base+"/feeds/"+board+"."+format+"?limit=500")
				f, err := parser.Parse(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gofeed: %v", err)
				}
				n := 0
				for _, tr := range want {
					if board == feeds.AllSlug || strings.Contains(tr.id, "/"+board+"/") {
						n++
					}
				}
				if len(f.Items) != n {
					t.Fatalf("%d items, want %d", len(f.Items), n)
				}
				for _, it := range f.Items {
					tr, ok := want[it.GUID]
					if !ok {
						t.Fatalf("item id %q is not a post of the site", it.GUID)
					}
					if it.Title != tr.title {
						t.Errorf("%s: title %q, want %q", it.GUID, it.Title, tr.title)
					}
					if it.Link != tr.link {
						t.Errorf("%s: link %q, want %q", it.GUID, it.Link, tr.link)
					}
					if it.PublishedParsed == nil || !it.PublishedParsed.Equal(tr.published) {
						t.Errorf("%s: published %v, want %v", it.GUID, it.Published, tr.published)
					} else if !strings.Contains(it.Published, "+09:00") && !strings.Contains(it.Published, "+0900") {
						t.Errorf("%s: published %q is not written in KST", it.GUID, it.Published)
					}
					var got []string
					for _, e := range it.Enclosures {
						got = append(got, e.URL)
					}
					wantEnc := tr.attachments
					if format == "rss" && len(wantEnc) > 1 {
						wantEnc = nil // RSS has one enclosure: checked below
						if len(got) != 1 || !slices.Contains(tr.attachments, got[0]) {
							t.Errorf("%s: rss enclosure %v, want one of %v", it.GUID, got, tr.attachments)
						}
						for _, a := range tr.attachments {
							if !strings.Contains(it.Content, strings.ReplaceAll(a, "&", "&amp;")) {
								t.Errorf("%s: attachment %s not linked in the content", it.GUID, a)
							}
						}
						continue
					}
					if !slices.Equal(got, wantEnc) {
						t.Errorf("%s: enclosures %v, want %v", it.GUID, got, wantEnc)
					}
				}
			})
		}
	}
}

func TestPipeline_FeedsParseInFeedparser(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Fatal("/usr/bin/python3 is missing: apt-get install python3-feedparser")
	}
	posts := msittest.SamplePosts()
	p := newPipeline(t, posts)
	p.run("crawl")
	base := p.serve()
	script := `
import sys, json, feedparser
out = {}
for url in sys.argv[1:]:
    d = feedparser.parse(url)
    out[url] = {"bozo": int(d.bozo), "exc": str(d.get("bozo_exception", "")), "n": len(d.entries),
                "ids": [e.get("id") for e in d.entries]}
print(json.dumps(out))
`
	var urls []string
	for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, format := range []string{"rss", "atom"} {
			urls = append(urls, base+"/feeds/"+board+"."+format)
		}
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", script}, urls...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("feedparser: %v (is python3-feedparser installed?)", err)
	}
	var res map[string]struct {
		Bozo int
		Exc  string
		N    int
		IDs  []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, u := range urls {
		r := res[u]
		if r.Bozo != 0 {
			t.Errorf("%s: bozo %d: %s", u, r.Bozo, r.Exc)
		}
		if r.N == 0 {
			t.Errorf("%s: no entries", u)
		}
		for _, id := range r.IDs {
			if !strings.HasPrefix(id, "tag:msit.go.kr,2024:eng/") {
				t.Errorf("%s: entry id %q", u, id)
			}
		}
	}
	// JSON Feed: Debian's feedparser does not read it; check it is JSON Feed 1.1.
	var jf struct {
		Version string `json:"version"`
		Items   []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(get(t, base+"/feeds/all.json"), &jf); err != nil || jf.Version != "https://jsonfeed.org/version/1.1" || len(jf.Items) == 0 {
		t.Fatalf("all.json: %v version %q items %d", err, jf.Version, len(jf.Items))
	}
}

func TestPipeline_IncrementalCrawl(t *testing.T) { dbtest.Each(t, pipelineIncrementalCrawl) }

func pipelineIncrementalCrawl(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	posts := msittest.SamplePosts()
	p := newPipelineOn(t, engine, posts)
	// One crawler for every crawl, as the daemon keeps one.
	_, store, crawler := p.crawler()
	if _, err := crawler.Crawl(ctx, feeds.CrawlOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := store.Items(ctx, feeds.AllSlug, 500)
	if err != nil {
		t.Fatal(err)
	}
	versions, _ := store.Versions(ctx)

	t.Run("nothing new costs one request per board and changes nothing", func(t *testing.T) {
		p.site.ResetRequests()
		runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.site.Requests(); got != int64(len(feeds.BoardSlugs())) {
			t.Fatalf("%d requests, want %d (one list page per board)", got, len(feeds.BoardSlugs()))
		}
		for _, r := range runs {
			if r.New != 0 || r.Updated != 0 || r.Requests != 1 {
				t.Errorf("%s: %+v", r.Board, r)
			}
		}
		after, _ := store.Items(ctx, feeds.AllSlug, 500)
		if !slices.EqualFunc(before, after, func(a, b feeds.Item) bool {
			return a.ID == b.ID && a.Hash == b.Hash && a.Updated.Equal(b.Updated)
		}) {
			t.Fatal("items changed")
		}
		v2, _ := store.Versions(ctx)
		for b, v := range versions {
			if v2[b].Version != v.Version {
				t.Errorf("%s version moved %d → %d", b, v.Version, v2[b].Version)
			}
		}
	})

	t.Run("a new post appears at the top", func(t *testing.T) {
		p.site.AddPost(msittest.Post{Board: "press", ID: 1300, Title: "MSIT announces the 2025 budget", Date: "2024-11-30",
			Department: "Budget Division", BodyHTML: "<p>Budget.</p>",
			Attachments: []msittest.Attachment{{Name: "budget.pdf", FileNo: 60000, Ord: 1, Ext: "pdf"}}})
		p.site.ResetRequests()
		runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"press"}})
		if err != nil {
			t.Fatal(err)
		}
		if runs[0].New != 1 || runs[0].Updated != 0 {
			t.Fatalf("run %+v, want 1 new", runs[0])
		}
		if v := p.site.RequestsOf(msittest.KindView); v != 1 {
			t.Fatalf("%d detail pages fetched, want 1", v)
		}
		items, _ := store.Items(ctx, "press", 1)
		if items[0].ID != 1300 || len(items[0].Attachments) != 1 || items[0].Attachments[0].Type != "application/pdf" {
			t.Fatalf("top item %+v", items[0])
		}
	})

	t.Run("an edited post is an update of the same item", func(t *testing.T) {
		old, err := store.Item(ctx, "press", 1284)
		if err != nil {
			t.Fatal(err)
		}
		store.Now = func() time.Time { return time.Now().Add(time.Hour) }
		if !p.site.EditPost("press", 1284, "MSIT Hosts Korea-LAC Digital Forum (corrected)", "<p>Corrected body.</p>") {
			t.Fatal("no such post on the site")
		}
		runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"press"}})
		if err != nil {
			t.Fatal(err)
		}
		if runs[0].New != 0 || runs[0].Updated != 1 {
			t.Fatalf("run %+v, want 1 updated", runs[0])
		}
		got, _ := store.Item(ctx, "press", 1284)
		if got.Title != "MSIT Hosts Korea-LAC Digital Forum (corrected)" || !strings.Contains(got.Body, "Corrected body.") {
			t.Fatalf("item not updated: %q", got.Title)
		}
		if !got.FirstSeen.Equal(old.FirstSeen) || !got.Updated.After(old.Updated) {
			t.Fatalf("first seen %v→%v, updated %v→%v", old.FirstSeen, got.FirstSeen, old.Updated, got.Updated)
		}
		all, _ := store.Items(ctx, "press", 500)
		n := 0
		for _, it := range all {
			if it.ID == 1284 {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("post 1284 stored %d times", n)
		}
		// Readers see the same id with a later updated time.
		base := p.serve()
		f, err := gofeed.NewParser().Parse(bytes.NewReader(get(t, base+"/feeds/press.atom")))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range f.Items {
			if it.GUID == feeds.ItemID("press", 1284) {
				if it.Title != got.Title || it.UpdatedParsed == nil || !it.UpdatedParsed.After(*it.PublishedParsed) {
					t.Fatalf("feed item %q updated %v published %v", it.Title, it.Updated, it.Published)
				}
				return
			}
		}
		t.Fatal("edited post missing from the feed")
	})
}

// A body-only edit leaves the list row as it was, so only fetching the post
// again shows it: each crawl revisits a few recent posts not fetched for a
// day, the longest unchecked first, until every one in the window was seen.
func TestPipeline_RevisitFindsBodyOnlyEdits(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, msittest.SamplePosts())
	d, store, crawler := p.crawler()
	if crawler.RevisitMax != 10 || crawler.RevisitAfter != 24*time.Hour || crawler.RevisitWindow != 14*24*time.Hour {
		t.Fatalf("defaults: revisit %d posts, after %v, window %v", crawler.RevisitMax, crawler.RevisitAfter, crawler.RevisitWindow)
	}
	notice := []string{"notice"}
	if _, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: notice}); err != nil {
		t.Fatal(err)
	}

	// The sample posts are from 2024: put the clock two days after the
	// crawl, and the window back to the 12th newest notice.
	posts := p.site.Posts("notice")
	if len(posts) < 20 {
		t.Fatalf("%d sample notices", len(posts))
	}
	now := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond) // as stored
	store.Now = func() time.Time { return now }
	oldest, err := store.Item(ctx, "notice", posts[11].ID)
	if err != nil {
		t.Fatal(err)
	}
	var window []int64 // the posts published since the 12th newest
	for _, pp := range posts {
		if it, err := store.Item(ctx, "notice", pp.ID); err == nil && !it.Published.Before(oldest.Published) {
			window = append(window, pp.ID)
		}
	}
	inWindow := len(window)
	crawler.RevisitWindow = now.Sub(oldest.Published)
	crawler.RevisitMax = 5
	inside, outside := posts[7].ID, posts[19].ID
	before, _ := store.Item(ctx, "notice", inside)
	for _, id := range []int64{inside, outside} {
		if !p.site.EditPost("notice", id, "", fmt.Sprintf("<p>Corrected body of %d.</p>", id)) {
			t.Fatalf("no post %d", id)
		}
	}

	seen := map[int64]bool{}
	caught := false
	rounds := (inWindow + crawler.RevisitMax - 1) / crawler.RevisitMax
	for round := 1; round <= rounds; round++ {
		p.site.ResetRequests()
		runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: notice})
		if err != nil {
			t.Fatal(err)
		}
		r := runs[0]
		want := min(crawler.RevisitMax, inWindow-len(seen))
		if r.Revisited != want || p.site.RequestsOf(msittest.KindView) != int64(want) || p.site.RequestsOf(msittest.KindList) != 1 {
			t.Fatalf("round %d: run %+v, %d post and %d list requests; want %d revisited, 1 list page",
				round, r, p.site.RequestsOf(msittest.KindView), p.site.RequestsOf(msittest.KindList), want)
		}
		if r.Updated > 0 {
			caught = true
		}
		for _, id := range window {
			if checkedAt(t, d, id).Equal(now) {
				seen[id] = true
			}
		}
	}
	if !caught || len(seen) != inWindow {
		t.Fatalf("after %d rounds: edit caught %v, %d of %d posts in the window revisited", rounds, caught, len(seen), inWindow)
	}
	got, _ := store.Item(ctx, "notice", inside)
	if !strings.Contains(got.Body, "Corrected body") || !got.Updated.Equal(now) || !got.FirstSeen.Equal(before.FirstSeen) || got.Title != before.Title {
		t.Fatalf("edited post: body %q, updated %v (want %v), first seen %v → %v", got.Body, got.Updated, now, before.FirstSeen, got.FirstSeen)
	}
	if out, _ := store.Item(ctx, "notice", outside); strings.Contains(out.Body, "Corrected body") {
		t.Fatalf("a post older than the window was fetched again")
	}

	// Everything in the window was fetched just now: the next crawl is one
	// list page again, and the revisits kept the list hashes (no post is
	// fetched because its row looks changed).
	p.site.ResetRequests()
	runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: notice})
	if err != nil {
		t.Fatal(err)
	}
	if p.site.Requests() != 1 || runs[0].Revisited != 0 || runs[0].Updated != 0 {
		t.Fatalf("crawl after the revisits: %d requests, run %+v", p.site.Requests(), runs[0])
	}
	if last, _ := store.LastRun(ctx, "notice"); last.Revisited != 0 {
		t.Fatalf("last run recorded %d revisited", last.Revisited)
	}

	// A post gone from the site is logged and skipped, not a failed crawl.
	now = now.Add(48 * time.Hour)
	crawler.RevisitWindow += 48 * time.Hour
	if !p.site.RemovePost("notice", posts[3].ID) {
		t.Fatal("no post to remove")
	}
	runs, err = crawler.Crawl(ctx, feeds.CrawlOptions{Boards: notice})
	if err != nil || runs[0].Error != "" || runs[0].Revisited != crawler.RevisitMax-1 {
		t.Fatalf("revisit with a removed post: %v, run %+v", err, runs[0])
	}
	if _, err := store.Item(ctx, "notice", posts[3].ID); err != nil {
		t.Fatalf("the removed post was deleted from the store: %v", err)
	}
}

// checkedAt reads when notice post id was last fetched.
func checkedAt(t *testing.T, d *sql.DB, id int64) time.Time {
	t.Helper()
	var s string
	if err := d.QueryRow(`SELECT checked FROM items WHERE board = 'notice' AND ntt_seq_no = ?`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z07:00", s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
