package faults

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// The upstream faults run against the binary: `msitfeed crawl` stores a
// good crawl, then the fault is switched on, new posts appear on every
// board, and `msitfeed serve` (with its scheduler, whose first crawl runs at
// start) crawls through the fault while /metrics, /readyz and the feeds are
// read from it. `msitfeed boards` reads the result afterwards.

// crawlRate is source.rate in these tests: modest, so a request log can
// show the limiter holds, and fast enough to keep the tests short.
const crawlRate = 20

// postsPerBoard keeps the fake site small: one list page per board.
const postsPerBoard = 4

// upstreamFault is one fault of the site.
type upstreamFault struct {
	name     string
	injected string   // what the site does, for the table
	env      []string // extra settings for this fault
	retries  int      // source.retries
	// install returns the fault hook for the site.
	install func(t *testing.T, u *upstream, f *faultFigures) func(w http.ResponseWriter, r *http.Request) bool
	// failing is the board whose crawl must fail; "" when none must.
	failing string
	// quiet is a board whose feed must stay as it was although its crawl
	// succeeds (the site shows it empty).
	quiet string
}

// faultFigures is what a fault hook measures at the site.
type faultFigures struct {
	mu      sync.Mutex
	served  int   // faulty answers given
	bytes   int64 // body bytes written by the fault
	other   int   // requests that reached another host
	gaps    []time.Duration
	lastHit time.Time
}

func (f *faultFigures) count(n int64) {
	f.mu.Lock()
	f.served++
	f.bytes += n
	now := time.Now()
	if !f.lastHit.IsZero() {
		f.gaps = append(f.gaps, now.Sub(f.lastHit))
	}
	f.lastHit = now
	f.mu.Unlock()
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb is about 100 KB of gzip that inflates to 100 MiB of spaces.
func gzipBomb() []byte {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write([]byte("<!DOCTYPE html><html><body>"))
		chunk := bytes.Repeat([]byte(" "), 1<<20)
		for range 100 {
			zw.Write(chunk)
		}
		zw.Close()
		bomb = buf.Bytes()
	})
	return bomb
}

func upstreamFaults() []upstreamFault {
	press := boardMID("press")
	return []upstreamFault{
		{
			name: "none (control)", injected: "nothing", retries: 2,
			install: func(*testing.T, *upstream, *faultFigures) func(http.ResponseWriter, *http.Request) bool { return nil },
		},
		{
			name: "30% of responses 500", injected: "every request (robots.txt, lists, posts) answered 500 with p=0.3, seeded", retries: 4,
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				var mu sync.Mutex
				rng := rand.New(rand.NewPCG(2024, 11))
				return func(w http.ResponseWriter, r *http.Request) bool {
					mu.Lock()
					bad := rng.Float64() < 0.3
					mu.Unlock()
					if bad {
						f.count(0)
						http.Error(w, "internal error", http.StatusInternalServerError)
					}
					return bad
				}
			},
		},
		{
			name: "429 with Retry-After", injected: "press list: 429, Retry-After: 1, every time", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					f.count(0)
					w.Header().Set("Retry-After", "1")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return true
				}
			},
		},
		{
			name: "2-second responses", injected: "press list answers after 2 s; source.timeout 500ms", retries: 1, failing: "press",
			env: []string{"MSITFEED_SOURCE_TIMEOUT=500ms"},
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					f.count(0)
					select {
					case <-r.Context().Done():
						return true
					case <-time.After(2 * time.Second):
					}
					return false // then the real page, too late
				}
			},
		},
		{
			name: "HTML cut mid-body (list)", injected: "press list: Content-Length of the whole page, half of it sent, connection closed", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					cutConnection(t, u.site, w, r, f)
					return true
				}
			},
		},
		{
			name: "HTML cut mid-body (post)", injected: "new press post's page: chunked, half sent, connection closed", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, "/bbs/view.do") || r.URL.Query().Get("nttSeqNo") != strconv.Itoa(newPostID("press")) {
						return false
					}
					cutConnection(t, u.site, w, r, f)
					return true
				}
			},
		},
		{
			name: "post page cut short, clean end", injected: "new press post's page ends in the middle of its body text, with its own Content-Length", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, "/bbs/view.do") || r.URL.Query().Get("nttSeqNo") != strconv.Itoa(newPostID("press")) {
						return false
					}
					rec := httptest.NewRecorder()
					u.site.ServeHTTP(rec, r)
					page := rec.Body.Bytes()
					half := page[:bytes.Index(page, []byte("Posted while"))+len("Posted while")]
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					w.Write(half)
					f.count(int64(len(half)))
					return true
				}
			},
		},
		{
			name: "zero rows, status 200", injected: "press list: the site's own empty-board page (\"no posts\")", retries: 2, quiet: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				empty := msittest.NewSite(nil)
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					f.count(0)
					empty.ServeHTTP(w, r)
					return true
				}
			},
		},
		{
			name: "redesigned list page", injected: "press list: new markup (cards, no rows), status 200", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				page := `<!DOCTYPE html><html><body><div id="wrap"><h2>Press Releases</h2><div class="new_board_grid">` +
					strings.Repeat(`<div class="card"><a href="#">Something changed here</a><p>2024.11.30</p></div>`, 10) + `</div></div></body></html>`
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					f.count(int64(len(page)))
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					w.Write([]byte(page))
					return true
				}
			},
		},
		{
			name: "redirect to another host", injected: "press list: 302 to the same path on another host", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				other := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					f.mu.Lock()
					f.other++
					f.mu.Unlock()
					u.site.ServeHTTP(w, r)
				}))
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					f.count(0)
					http.Redirect(w, r, other+r.URL.RequestURI(), http.StatusFound)
					return true
				}
			},
		},
		{
			name: "20 MB page", injected: "press list: 20 MB of HTML, chunked (no Content-Length); source.max_bytes 8 MiB", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				chunk := bytes.Repeat([]byte("<p>padding padding padding padding padding padding padding</p>\n"), 1024)
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					var n int64
					for n < 20<<20 {
						m, err := w.Write(chunk)
						n += int64(m)
						if err != nil {
							break
						}
					}
					f.count(n)
					return true
				}
			},
		},
		{
			name: "gzip bomb", injected: "press list: ~100 KB gzip inflating to 100 MiB, Content-Encoding: gzip", retries: 2, failing: "press",
			install: func(t *testing.T, u *upstream, f *faultFigures) func(http.ResponseWriter, *http.Request) bool {
				body := gzipBomb()
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !isList(r, press) {
						return false
					}
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					w.Header().Set("Content-Encoding", "gzip")
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					n, _ := w.Write(body)
					f.count(int64(n))
					return true
				}
			},
		},
	}
}

// cutConnection answers r with the first half of what the site would
// send, then closes the connection without finishing the response.
func cutConnection(t *testing.T, site *msittest.Site, w http.ResponseWriter, r *http.Request, f *faultFigures) {
	rec := httptest.NewRecorder()
	site.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	half := body[:len(body)/2]
	if strings.HasSuffix(r.URL.Path, "/list.do") {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n", len(body))
		buf.Write(half)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", len(half))
		buf.Write(half)
		buf.WriteString("\r\n")
	}
	buf.Flush()
	f.count(int64(len(half)))
}

// newPostID is the id of the post added to board while the fault is on.
func newPostID(board string) int {
	return map[string]int{"notice": 9001, "press": 9002, "photo": 9003, "trends": 9004, "newsletter": 9005}[board]
}

// upstreamEnv is the configuration every upstream test shares.
func upstreamEnv(dbPath, siteURL string, retries int) []string {
	return []string{
		"MSITFEED_DATABASE=" + dbPath,
		"MSITFEED_SOURCE_URL=" + siteURL,
		"MSITFEED_SOURCE_RATE=" + strconv.Itoa(crawlRate),
		"MSITFEED_SOURCE_BACKOFF=50ms",
		"MSITFEED_SOURCE_RETRIES=" + strconv.Itoa(retries),
		"MSITFEED_BASE_URL=http://feeds.test",
	}
}

// fetchFeeds returns every feed's body by path.
func fetchFeeds(t *testing.T, d *daemon) map[string][]byte {
	out := map[string][]byte{}
	for _, p := range allFeeds() {
		code, body := d.get(p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
		out[p] = body
	}
	return out
}

// waitForCrawlJob waits until the daemon's scheduler has finished one crawl
// and returns its /metrics.
func waitForCrawlJob(t *testing.T, d *daemon) []byte {
	var body []byte
	waitFor(t, "the scheduled crawl to finish", 60*time.Second, func() bool {
		_, body = d.get("/metrics")
		return metric(body, `msitfeed_job_runs_total{job="crawl",result="ok"}`) >= 1 ||
			metric(body, `msitfeed_job_runs_total{job="crawl",result="error"}`) >= 1
	})
	return body
}

func TestUpstreamFaults(t *testing.T) {
	binary(t) // build before the parallel subtests start their clocks
	gzipBomb()
	for _, fc := range upstreamFaults() {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			runUpstreamFault(t, fc)
		})
	}
}

func runUpstreamFault(t *testing.T, fc upstreamFault) {
	u := newUpstream(t, smallPosts(postsPerBoard))
	dbPath := t.TempDir() + "/msitfeed.db"
	c := newCLI(t, append(upstreamEnv(dbPath, u.url, fc.retries), fc.env...)...)

	// A good crawl, and what readers see of it.
	m0 := u.mark()
	c.must("crawl")
	firstHits := u.since(m0)
	firstWin := maxInWindow(firstHits, time.Second)
	if firstWin > crawlRate+1 {
		t.Errorf("first crawl: %d requests in one second, rate is %d/s", firstWin, crawlRate)
	}
	before := takeSnapshot(t, dbPath)
	if len(before) != 5*postsPerBoard {
		t.Fatalf("first crawl stored %d posts, want %d", len(before), 5*postsPerBoard)
	}
	pre := c.serve("--no-scheduler")
	feedsBefore := fetchFeeds(t, pre)
	pre.stop()

	// The fault, and a new post on every board.
	figs := &faultFigures{}
	for _, b := range feeds.BoardSlugs() {
		u.site.AddPost(msittest.Post{Board: b, ID: int64(newPostID(b)), Title: "New on " + b + " during the fault",
			Date: "2024-11-30", Department: "Test Division", BodyHTML: "<p>Posted while the site misbehaved.</p>"})
	}
	u.setFault(fc.install(t, u, figs))
	m1 := u.mark()
	d := c.serve()
	metrics := waitForCrawlJob(t, d)
	_, ready := d.get("/readyz")
	readyCode, _ := d.get("/readyz")
	feedsAfter := fetchFeeds(t, d)
	rss := peakRSS(d.pid)
	if err := d.stop(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM\n%s", err, d.stderr.String())
	}
	hits := u.since(m1)
	u.setFault(nil)

	after := takeSnapshot(t, dbPath)
	lost, corrupted := compare(before, after)
	if lost != 0 || corrupted != 0 {
		t.Errorf("%d posts lost, %d corrupted", lost, corrupted)
	}

	// Which boards failed, by the store's own record.
	runs := lastRuns(t, dbPath)
	var failed []string
	for _, b := range feeds.BoardSlugs() {
		if runs[b].Error != "" {
			failed = append(failed, b)
		}
	}
	if fc.failing != "" && !slices.Equal(failed, []string{fc.failing}) {
		t.Errorf("failed boards %v, want [%s]", failed, fc.failing)
	}
	if fc.failing == "" && fc.name != "30% of responses 500" && len(failed) > 0 {
		t.Errorf("failed boards %v, want none", failed)
	}

	// Feeds: a failed (or quiet) board's feeds are byte for byte those of
	// the last good crawl; every other board shows its new post.
	unchanged, kept := 0, 0
	for _, b := range feeds.BoardSlugs() {
		key := fmt.Sprintf("%s/%d", b, newPostID(b))
		if !slices.Contains(failed, b) && b != fc.quiet {
			if _, ok := after[key]; !ok {
				t.Errorf("%s crawled without error but its new post is not stored", b)
			}
			continue
		}
		if _, ok := after[key]; ok && b != fc.quiet {
			t.Errorf("%s failed but its new post was stored", b)
		}
		for _, f := range []string{"rss", "atom", "json"} {
			kept++
			p := "/feeds/" + b + "." + f
			if !bytes.Equal(feedsBefore[p], feedsAfter[p]) {
				t.Errorf("%s changed after a failed crawl", p)
			} else {
				unchanged++
			}
		}
	}

	// The operator sees it: boards, /metrics, /readyz.
	boards := c.must("boards")
	for _, b := range failed {
		if line := boardLine(boards, b); !strings.Contains(line, "error:") || !strings.Contains(line, fmt.Sprintf(" %d ", postsPerBoard)) {
			t.Errorf("boards does not show %s's failure with its %d posts kept:\n%s", b, postsPerBoard, boards)
		}
	}
	errorsTotal := 0.0
	for _, b := range feeds.BoardSlugs() {
		v := metric(metrics, fmt.Sprintf(`msitfeed_crawl_errors_total{board="%s"}`, b))
		if want := map[bool]float64{true: 1, false: 0}[slices.Contains(failed, b)]; v != want {
			t.Errorf("msitfeed_crawl_errors_total{board=%q} = %v, want %v", b, v, want)
		}
		errorsTotal += v
	}
	if readyCode != http.StatusOK {
		t.Errorf("/readyz %d with %d of 5 boards failing: %s", readyCode, len(failed), ready)
	}

	// Requests: bounded, and never faster than source.rate.
	baseline := 1 + 2*len(feeds.BoardSlugs()) // robots.txt, then a list page and the new post per board
	bound := (1 + fc.retries) * baseline
	if len(hits) > bound {
		t.Errorf("%d requests, more than the bound %d", len(hits), bound)
	}
	win := maxInWindow(hits, time.Second)
	if win > crawlRate+1 {
		t.Errorf("%d requests within one second; source.rate is %d", win, crawlRate)
	}
	if figs.other > 0 {
		t.Errorf("%d requests reached the other host", figs.other)
	}
	extra := ""
	switch fc.name {
	case "429 with Retry-After":
		minGap := slices.Min(figs.gaps)
		if minGap < time.Second {
			t.Errorf("retried after %v, before Retry-After: 1", minGap)
		}
		extra = fmt.Sprintf("; retries waited ≥ %v", minGap.Round(10*time.Millisecond))
	case "redirect to another host":
		extra = fmt.Sprintf("; other host got %d requests", figs.other)
	case "20 MB page", "gzip bomb":
		extra = fmt.Sprintf("; %d KiB sent per attempt", figs.bytes/int64(max(figs.served, 1))/1024)
	case "30% of responses 500":
		extra = fmt.Sprintf("; %d answers were 500", figs.served)
	}
	// The site recovers: the next crawl stores every new post, complete,
	// and still changes nothing that was stored.
	c.must("crawl")
	healed := takeSnapshot(t, dbPath)
	if l, c := compare(before, healed); l != 0 || c != 0 {
		t.Errorf("after recovery: %d lost, %d corrupted", l, c)
	}
	d2 := openDB(t, dbPath)
	for _, b := range feeds.BoardSlugs() {
		it, err := feeds.NewStore(d2).Item(context.Background(), b, int64(newPostID(b)))
		if err != nil || !strings.Contains(it.Body, "Posted while the site misbehaved.") {
			t.Errorf("after recovery, %s's new post: %v, body %q", b, err, it.Body)
		}
	}
	status := "ok"
	if len(failed) > 0 {
		status = "error: " + strings.Join(failed, ",")
	}
	t.Logf("FIGURES | %s | %s | %d | %d | %d/%d byte-equal | %s | %d | %v | %d (bound %d) | %d, first crawl %d of %d (rate %d/s) | %d MiB%s |",
		fc.name, fc.injected, lost, corrupted, unchanged, kept, status, readyCode, errorsTotal,
		len(hits), bound, win, firstWin, len(firstHits), crawlRate, rss/1024, extra)
}

// lastRuns reads the latest crawl run of every board.
func lastRuns(t *testing.T, path string) map[string]feeds.CrawlRun {
	d := openDB(t, path)
	runs, err := feeds.NewStore(d).LastRuns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestUpstreamReadyzOnlyWhenEveryBoardFails checks /readyz through both
// cases: one board failing keeps the service ready, every board failing
// makes it 503, and one good crawl makes it ready again.
func TestUpstreamReadyzOnlyWhenEveryBoardFails(t *testing.T) {
	u := newUpstream(t, smallPosts(postsPerBoard))
	dbPath := t.TempDir() + "/msitfeed.db"
	c := newCLI(t, upstreamEnv(dbPath, u.url, 1)...)
	c.must("crawl")
	failList := func(mid string) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !isList(r, mid) {
				return false
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
	}
	readyz := func() (int, string) {
		d := c.serve("--no-scheduler")
		defer d.stop()
		code, body := d.get("/readyz")
		return code, strings.TrimSpace(string(body))
	}
	steps := []struct {
		name  string
		fault func(http.ResponseWriter, *http.Request) bool
		want  int
	}{
		{"one board fails", failList(boardMID("press")), http.StatusOK},
		{"every board fails", failList(""), http.StatusServiceUnavailable},
		{"the site is back", nil, http.StatusOK},
	}
	for _, s := range steps {
		u.setFault(s.fault)
		_, _, code := c.run("", "crawl")
		if (s.fault != nil) != (code == 1) {
			t.Errorf("%s: crawl exit %d", s.name, code)
		}
		got, body := readyz()
		if got != s.want {
			t.Errorf("%s: /readyz %d (%s), want %d", s.name, got, body, s.want)
		}
		t.Logf("FIGURES readyz | %s | %d | %.80s", s.name, got, body)
	}
}
