package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// instance is one `msitfeed serve` process of a test of several.
type instance struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
}

// startInstances starts n serve processes named a, b, c… on the store of
// env, waits until each answers HTTP, and stops those still running when t
// ends. The first is started alone and holds the scheduler lease before
// the others start.
func startInstances(t *testing.T, bin string, env []string, n int) []*instance {
	t.Helper()
	var out []*instance
	for i := range n {
		in := &instance{name: string(rune('a' + i)), addr: freeAddr(t), stderr: &syncBuffer{}, done: make(chan struct{})}
		in.cmd = exec.Command(bin, "serve")
		in.cmd.Env = append(env[:len(env):len(env)], "MSITFEED_LISTEN="+in.addr, "MSITFEED_INSTANCE="+in.name)
		in.cmd.Stderr = in.stderr
		if err := in.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			in.cmd.Wait()
			close(in.done)
		}()
		t.Cleanup(func() {
			in.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-in.done:
			case <-time.After(30 * time.Second):
				in.cmd.Process.Kill()
				t.Errorf("instance %s did not stop after SIGTERM", in.name)
			}
			if t.Failed() {
				t.Logf("instance %s:\n%s", in.name, in.stderr.String())
			}
		})
		waitFor(t, "instance "+in.name+" to answer", 30*time.Second, func() bool {
			code, _, _ := in.get("/healthz")
			return code == http.StatusOK
		})
		out = append(out, in)
	}
	return out
}

// get fetches path from the instance: status, body and ETag; status 0 if
// the request failed.
func (in *instance) get(path string) (int, string, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + in.addr + path)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("ETag")
}

// leaseHolder returns the instance name of the scheduler lease's holder
// (the owner is "name:random"), "" if none holds it or the database does
// not answer.
func leaseHolder(d *sql.DB) string {
	var owner string
	d.QueryRow(`SELECT owner FROM locks WHERE name = 'scheduler'`).Scan(&owner)
	name, _, _ := strings.Cut(owner, ":")
	return name
}

// instancesEnv returns the environment of serve processes on a fresh store
// of engine crawling site, with a short lease and the crawl spec given.
func instancesEnv(t *testing.T, engine db.Engine, siteURL, crawl string) (env []string, store *sql.DB) {
	t.Helper()
	dsn := dbtest.DSN(t, engine)
	d, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	env = append(os.Environ(), "MSITFEED_DATABASE="+dsn, "MSITFEED_SOURCE_URL="+siteURL,
		"MSITFEED_SOURCE_RATE=1000", "MSITFEED_SOURCE_PAGES=10",
		// One public address, as behind a load balancer.
		"MSITFEED_BASE_URL=https://feeds.example.org",
		"MSITFEED_SCHEDULE_LEASE=2s", "MSITFEED_SCHEDULE_CRAWL="+crawl)
	return env, d
}

func needPostgres(t *testing.T) {
	t.Helper()
	if !slices.Contains(dbtest.Engines(), db.Postgres) {
		t.Skip("no PostgreSQL on this machine (see dbtest)")
	}
}

// Three serve processes on one PostgreSQL: a crawl by the scheduler's
// holder shows in the feeds of the other two within a second, with the
// same ETag on all three, and status names the holder.
func TestInstances_CrawlByOneReachesTheOthers(t *testing.T) {
	needPostgres(t)
	bin := buildBinary(t)
	site := msittest.NewSite(msittest.SamplePosts())
	srv := httptest.NewServer(site)
	defer srv.Close()
	env, d := instancesEnv(t, db.Postgres, srv.URL, "@every 2s")
	ins := startInstances(t, bin, env, 3)
	if h := leaseHolder(d); h != "a" {
		t.Fatalf("lease held by %q, want a, the first to start", h)
	}

	const title = "Cross-instance test post"
	site.AddPost(msittest.Post{Board: "press", ID: 9999, Title: title, Date: msittest.SampleToday().Format("2006-01-02"),
		Department: "Test", BodyHTML: "<p>Seen everywhere.</p>"})
	added := time.Now()
	var stored time.Time
	waitFor(t, "a crawl to store the new post", 20*time.Second, func() bool {
		var n int
		d.QueryRow(`SELECT count(*) FROM items WHERE title = $1`, title).Scan(&n)
		if n == 1 {
			stored = time.Now()
		}
		return n == 1
	})
	var by string
	d.QueryRow(`SELECT last_owner FROM jobs WHERE name = 'crawl'`).Scan(&by)
	if by != "a" {
		t.Errorf("the crawl was run by %q, want a, the lease holder", by)
	}
	// The crawl's transaction has committed: each instance's feed must
	// show the post within a second of our seeing it (polled every 20 ms).
	etags := map[string]string{}
	for _, in := range ins {
		deadline := stored.Add(time.Second)
		for {
			code, body, etag := in.get("/feeds/press.atom")
			if code == http.StatusOK && strings.Contains(body, title) {
				t.Logf("instance %s serves the post %v after it was stored (%v after it was added to the site)",
					in.name, time.Since(stored).Round(time.Millisecond), time.Since(added).Round(time.Millisecond))
				etags[in.name] = etag
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s does not serve the post a second after it was stored (status %d)", in.name, code)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Wait for no crawl in between, then compare: the same bytes, the same ETag.
	time.Sleep(500 * time.Millisecond)
	first := ""
	for _, in := range ins {
		_, body, etag := in.get("/feeds/press.atom")
		if etag == "" {
			t.Errorf("instance %s sends no ETag", in.name)
		}
		if first == "" {
			first = etag + body
		} else if etag+body != first {
			t.Errorf("instance %s serves other bytes or another ETag (%s) than a (%s)", in.name, etag, first[:strings.Index(first, "<")])
		}
	}

	cmd := exec.Command(bin, "status")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^\s+scheduler\s+a:[0-9a-f]+\s+\d{4}-`).Match(out) ||
		!regexp.MustCompile(`(?m)^\s+crawl\s+@every 2s\s+.*\s+a\s+ok`).Match(out) {
		t.Errorf("status does not show a holding the lease and running the crawl:\n%s", out)
	}
}

var jobDone = regexp.MustCompile(`msg="job done" job=crawl slot=(\S+)`)

// slotsRun returns, for each slot in the instances' logs, the instances
// whose crawl of that slot finished.
func slotsRun(ins []*instance) map[string][]string {
	runs := map[string][]string{}
	for _, in := range ins {
		for _, m := range jobDone.FindAllStringSubmatch(in.stderr.String(), -1) {
			runs[m[1]] = append(runs[m[1]], in.name)
		}
	}
	return runs
}

func TestInstances_KilledSchedulerHolderIsReplaced(t *testing.T) {
	dbtest.Each(t, killedSchedulerHolderIsReplaced)
}

// Three serve processes crawl every 2 s; the lease holder is killed with
// SIGKILL: another takes the lease within 4/3 of the 2 s lease and runs the
// next slots, and no slot runs twice (by the logs, and by the crawls the
// database saw).
func killedSchedulerHolderIsReplaced(t *testing.T, engine db.Engine) {
	bin := buildBinary(t)
	site := msittest.NewSite(msittest.SamplePosts())
	srv := httptest.NewServer(site)
	defer srv.Close()
	env, d := instancesEnv(t, engine, srv.URL, "@every 2s")
	ins := startInstances(t, bin, env, 3)
	if h := leaseHolder(d); h != "a" {
		t.Fatalf("lease held by %q, want a", h)
	}
	waitFor(t, "a to run three crawls", 30*time.Second, func() bool { return len(slotsRun(ins[:1])) >= 3 })

	ins[0].cmd.Process.Signal(syscall.SIGKILL)
	<-ins[0].done
	killed := time.Now()
	var next string
	waitFor(t, "another instance to take the lease", 10*time.Second, func() bool {
		next = leaseHolder(d)
		return next == "b" || next == "c"
	})
	took := time.Since(killed)
	// Lease 2 s, checked every 2/3 s: the lease ends at most 2 s after a's
	// last refresh, and a standby sees it within 2/3 s more.
	if took > 2*time.Second*4/3+500*time.Millisecond {
		t.Errorf("takeover %v after SIGKILL, want at most 4/3 of the 2 s lease", took)
	}
	waitFor(t, next+" to run two slots", 20*time.Second, func() bool {
		n := 0
		for _, by := range slotsRun(ins) {
			if by[0] == next {
				n++
			}
		}
		return n >= 2
	})
	for _, in := range ins[1:] {
		in.cmd.Process.Signal(syscall.SIGTERM)
		<-in.done
	}
	runs := slotsRun(ins)
	for slot, by := range runs {
		if len(by) != 1 {
			t.Errorf("slot %s ran %d times (%v)", slot, len(by), by)
		}
	}
	// Each crawl records a run of the press board; a crawl a killed in
	// the middle may have no log line.
	var crawls, claimed int
	d.QueryRow(`SELECT count(*) FROM crawl_runs WHERE board = 'press'`).Scan(&crawls)
	d.QueryRow(`SELECT runs FROM jobs WHERE name = 'crawl'`).Scan(&claimed)
	if crawls < len(runs) || crawls > len(runs)+1 || claimed != crawls {
		t.Errorf("%d crawls of press in the database, %d claimed slots, %d slots finished in the logs: a slot ran twice or a run was not claimed",
			crawls, claimed, len(runs))
	}
	t.Logf("%s: the lease passed from a to %s %v after SIGKILL; %d slots, each run once: %v",
		engine, next, took.Round(time.Millisecond), len(runs), runs)
}

// PostgreSQL stopped in the middle of a crawl and started again: /readyz
// of every instance is 503 with one line while it is down, they reconnect,
// and the next crawl stores every post, served by all three.
func TestInstances_PostgresRestartMidCrawl(t *testing.T) {
	needPostgres(t)
	bin := buildBinary(t)
	posts := msittest.SamplePosts()
	site := msittest.NewSite(posts, msittest.WithLatency(30*time.Millisecond))
	srv := httptest.NewServer(site)
	defer srv.Close()
	env, d := instancesEnv(t, db.Postgres, srv.URL, "@every 3s")
	ins := startInstances(t, bin, env, 3)
	count := func() int {
		var n int
		if err := d.QueryRow(`SELECT count(*) FROM items`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	waitFor(t, "the first crawl to store some posts", 30*time.Second, func() bool { return count() >= 10 })

	before := count()
	dbtest.StopPostgres(t)
	stopped := time.Now()
	if before >= len(posts) {
		t.Fatalf("the first crawl had stored every post (%d) before the stop: the test proves nothing", before)
	}
	if n := count(); n != -1 {
		t.Fatalf("the database still answers after the stop (%d posts)", n)
	}
	for _, in := range ins {
		code, body, _ := in.get("/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unreachable") ||
			strings.Count(strings.TrimSpace(body), "\n") != 0 {
			t.Errorf("instance %s /readyz while PostgreSQL is down: %d %q, want 503 and one line saying the database is unreachable", in.name, code, body)
		}
	}
	t.Logf("/readyz while down: %s", func() string { _, b, _ := ins[1].get("/readyz"); return strings.TrimSpace(b) }())
	time.Sleep(time.Second)
	dbtest.StartPostgres(t)
	t.Logf("PostgreSQL was down %v, stopped with %d of %d posts stored", time.Since(stopped).Round(time.Millisecond), before, len(posts))

	want := len(posts)
	waitFor(t, "the next crawls to store every post", 60*time.Second, func() bool { return count() == want })
	oldest := int64(-1)
	for _, p := range posts {
		if p.Board == "press" && (oldest < 0 || p.ID < oldest) {
			oldest = p.ID
		}
	}
	for _, in := range ins {
		waitFor(t, "instance "+in.name+" to be ready again", 20*time.Second, func() bool {
			code, _, _ := in.get("/readyz")
			return code == http.StatusOK
		})
		// The cache of every instance follows the commits made after the
		// restart: the oldest press release, stored last, is served.
		waitFor(t, "instance "+in.name+" to serve the oldest press release", 5*time.Second, func() bool {
			code, body, _ := in.get("/feeds/press.json")
			return code == http.StatusOK && strings.Contains(body, fmt.Sprintf("nttSeqNo=%d", oldest))
		})
	}
}
