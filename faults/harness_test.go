package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary built for the run and FuzzImport's database.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	if fuzzDB != nil {
		fuzzDB.Close()
		os.RemoveAll(fuzzDir)
	}
	os.Exit(code)
}

// binary builds the msitfeed command once per test run: the faults are
// injected into the program users run, not into a test double of it.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "msitfeed-faults-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "msitfeed")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/msitfeed/msitfeed/cmd/msitfeed").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cli runs the msitfeed binary with a fixed environment.
type cli struct {
	t   testing.TB
	bin string
	env []string // MSITFEED_* settings, added to the test's environment
}

func newCLI(t testing.TB, env ...string) *cli {
	return &cli{t: t, bin: binary(t), env: env}
}

// with returns a copy of c with more settings.
func (c *cli) with(env ...string) *cli {
	return &cli{t: c.t, bin: c.bin, env: append(slices.Clone(c.env), env...)}
}

func (c *cli) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// run runs one command and returns its output and exit code.
func (c *cli) run(stdin string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := c.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		c.t.Fatalf("msitfeed %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

// must runs one command and fails the test unless it exits 0.
func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("msitfeed %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// daemon is a running `msitfeed serve`.
type daemon struct {
	t      testing.TB
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
	done   chan error
	pid    int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serve starts `msitfeed serve args...` on a free port and waits until it
// answers /healthz. It is stopped with SIGTERM when the test ends.
func (c *cli) serve(args ...string) *daemon {
	c.t.Helper()
	addr := freeAddr(c.t)
	cmd := c.with("MSITFEED_LISTEN=" + addr).command(append([]string{"serve"}, args...)...)
	d := &daemon{t: c.t, cmd: cmd, base: "http://" + addr, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	d.pid = cmd.Process.Pid
	go func() { d.done <- cmd.Wait() }()
	c.t.Cleanup(func() { d.stop() })
	waitFor(c.t, "serve to answer /healthz", 20*time.Second, func() bool {
		select {
		case err := <-d.done:
			d.done <- err
			c.t.Fatalf("serve exited: %v\n%s", err, d.stderr.String())
		default:
		}
		resp, err := http.Get(d.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// stop sends SIGTERM and waits for the exit; it returns the exit error.
func (d *daemon) stop() error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		err = <-d.done
	}
	d.cmd = nil
	return err
}

// get fetches path from the daemon.
func (d *daemon) get(path string) (int, []byte) {
	d.t.Helper()
	return httpGet(d.t, d.base+path)
}

func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM).
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// metric returns the value of one sample of the Prometheus text output,
// e.g. metric(body, `msitfeed_crawl_errors_total{board="press"}`).
func metric(body []byte, sample string) float64 {
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// waitFor polls cond until it holds or the deadline passes. It is used
// only for what another process does, which sends no signal we can wait on.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openDB opens (and migrates) the database at path for the test.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// integrity runs PRAGMA integrity_check and returns its answer ("ok").
func integrity(t testing.TB, path string) string {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var res string
	if err := d.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		return err.Error()
	}
	return res
}

// snapshot maps "board/id" to a hash of everything stored of an item: its
// row and its attachments.
type snapshot map[string]string

func takeSnapshot(t testing.TB, path string) snapshot {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Query(`SELECT i.board, i.ntt_seq_no, i.title, i.url, i.published, i.first_seen, i.updated, i.department,
			i.body, i.summary, i.thumbnail, i.hash, i.list_hash,
			COALESCE((SELECT group_concat(a.position || '|' || a.name || '|' || a.url || '|' || a.type, '\n')
				FROM attachments a WHERE a.board = i.board AND a.ntt_seq_no = i.ntt_seq_no), '')
		FROM items i`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return snapshot{}
		}
		t.Fatal(err)
	}
	defer rows.Close()
	s := snapshot{}
	for rows.Next() {
		var board string
		var id int64
		cols := make([]string, 12)
		ptrs := []any{&board, &id}
		for i := range cols {
			ptrs = append(ptrs, &cols[i])
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(strings.Join(cols, "\x00")))
		s[fmt.Sprintf("%s/%d", board, id)] = hex.EncodeToString(h[:])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// compare counts the items of before that are missing from after (lost)
// and those stored differently (corrupted).
func compare(before, after snapshot) (lost, corrupted int) {
	for k, h := range before {
		switch a, ok := after[k]; {
		case !ok:
			lost++
		case a != h:
			corrupted++
		}
	}
	return lost, corrupted
}

// hit is one request the fake site received.
type hit struct {
	at   time.Time
	path string
	mid  string
}

// upstream is the fake MSIT site behind a request log and a fault hook.
type upstream struct {
	site *msittest.Site
	url  string

	mu    sync.Mutex
	hits  []hit
	fault func(w http.ResponseWriter, r *http.Request) bool
}

func newUpstream(t testing.TB, posts []msittest.Post) *upstream {
	u := &upstream{site: msittest.NewSite(posts)}
	srv := newHTTPServer(t, u)
	u.url = srv
	return u
}

// newHTTPServer serves h on a loopback port until the test ends.
func newHTTPServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.hits = append(u.hits, hit{at: time.Now(), path: r.URL.Path, mid: r.URL.Query().Get("mId")})
	f := u.fault
	u.mu.Unlock()
	if f != nil && f(w, r) {
		return
	}
	u.site.ServeHTTP(w, r)
}

// setFault installs f (nil for none): it answers a request and returns
// true, or returns false to let the site answer.
func (u *upstream) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	u.mu.Lock()
	u.fault = f
	u.mu.Unlock()
}

// mark returns the number of requests so far, to slice the log later.
func (u *upstream) mark() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.hits)
}

// since returns the requests received after mark.
func (u *upstream) since(mark int) []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hits[mark:])
}

// maxInWindow is the most requests that arrived within any window of
// length w.
func maxInWindow(hs []hit, w time.Duration) int {
	times := make([]time.Time, len(hs))
	for i, h := range hs {
		times[i] = h.at
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// smallPosts is the first n sample posts of every board: a site small
// enough to crawl at a modest rate in a second or two.
func smallPosts(n int) []msittest.Post {
	seen := map[string]int{}
	var out []msittest.Post
	for _, p := range msittest.SamplePosts() {
		if seen[p.Board] < n {
			seen[p.Board]++
			out = append(out, p)
		}
	}
	return out
}

// boardMID is the site's mId of a board slug.
func boardMID(slug string) string {
	for _, b := range msittest.Boards() {
		if b.Slug == slug {
			return b.MID
		}
	}
	return ""
}

// isList reports whether r asks for a list page of the board with mid.
func isList(r *http.Request, mid string) bool {
	return strings.HasSuffix(r.URL.Path, "/bbs/list.do") && (mid == "" || r.URL.Query().Get("mId") == mid)
}

// boardLine returns the line of `msitfeed boards` output for slug.
func boardLine(out, slug string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, slug+" ") {
			return l
		}
	}
	return ""
}

// allFeeds lists every feed path the service serves.
func allFeeds() []string {
	var out []string
	for _, b := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, f := range []string{"rss", "atom", "json"} {
			out = append(out, "/feeds/"+b+"."+f)
		}
	}
	return out
}
