package main

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countItems(t *testing.T, path string) int {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.QueryRow(`SELECT count(*) FROM items`).Scan(&n); err != nil {
		return 0 // not migrated yet
	}
	return n
}

func integrityOK(t *testing.T, path string) {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var res string
	if err := d.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
}

func TestServe_SIGTERMDuringCrawlLosesNothing(t *testing.T) {
	bin := buildBinary(t)
	site := msittest.NewSite(msittest.SamplePosts(), msittest.WithLatency(30*time.Millisecond))
	srv := httptest.NewServer(site)
	defer srv.Close()
	dbPath := filepath.Join(t.TempDir(), "p.db")
	env := append(os.Environ(), "MSITFEED_DATABASE="+dbPath, "MSITFEED_SOURCE_URL="+srv.URL,
		"MSITFEED_SOURCE_RATE=1000", "MSITFEED_SOURCE_PAGES=10", "MSITFEED_LISTEN="+freeAddr(t))

	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first crawl starts at once (it never ran); stop it halfway.
	waitFor(t, "the crawl to store some posts", 30*time.Second, func() bool { return countItems(t, dbPath) >= 10 })
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop after SIGTERM\n%s", stderr.String())
	}
	stored := countItems(t, dbPath)
	if stored >= 5*msittest.SamplePostsPerBoard {
		t.Fatalf("the crawl finished before SIGTERM (%d posts): the test proves nothing", stored)
	}
	integrityOK(t, dbPath)

	// Restart: a crawl completes what was left; nothing doubled.
	c := exec.Command(bin, "crawl")
	c.Env = env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("crawl after restart: %v\n%s", err, out)
	}
	if n := countItems(t, dbPath); n != 5*msittest.SamplePostsPerBoard {
		t.Fatalf("%d posts after restart, want %d (kept %d before)", n, 5*msittest.SamplePostsPerBoard, stored)
	}
	integrityOK(t, dbPath)
}

// lockOwner returns the holder of the named lock in the SQLite file at
// path, "" if none.
func lockOwner(path, name string) string {
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return ""
	}
	defer d.Close()
	var owner string
	d.QueryRow(`SELECT owner FROM locks WHERE name = $1`, name).Scan(&owner)
	return owner
}

func TestServe_SecondServeStandsByAndTakesOver(t *testing.T) {
	bin := buildBinary(t)
	site := msittest.NewSite(msittest.SamplePosts())
	srv := httptest.NewServer(site)
	defer srv.Close()
	dbPath := filepath.Join(t.TempDir(), "two.db")
	base := append(os.Environ(), "MSITFEED_DATABASE="+dbPath, "MSITFEED_SOURCE_URL="+srv.URL, "MSITFEED_SOURCE_RATE=1000")

	first := exec.Command(bin, "serve")
	first.Env = append(base, "MSITFEED_LISTEN="+freeAddr(t), "MSITFEED_INSTANCE=first")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.Process.Signal(syscall.SIGTERM)
		first.Wait()
	}()
	waitFor(t, "the first serve to take the scheduler lease", 20*time.Second, func() bool {
		return strings.HasPrefix(lockOwner(dbPath, "scheduler"), "first:")
	})

	second := exec.Command(bin, "serve")
	addr := freeAddr(t)
	second.Env = append(base, "MSITFEED_LISTEN="+addr, "MSITFEED_INSTANCE=second")
	var stderr syncBuffer
	second.Stderr = &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		second.Process.Signal(syscall.SIGTERM)
		second.Wait()
	}()
	waitFor(t, "the second serve to answer", 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !strings.Contains(stderr.String(), "scheduler standing by") {
		t.Fatalf("second serve does not say it stands by:\n%s", stderr.String())
	}
	if owner := lockOwner(dbPath, "scheduler"); !strings.HasPrefix(owner, "first:") {
		t.Fatalf("the lease is held by %q, want the first serve still", owner)
	}
	// The first stops and releases the lease: the second takes it at its
	// next check, a third of the 15 s lease.
	first.Process.Signal(syscall.SIGTERM)
	first.Wait()
	stopped := time.Now()
	waitFor(t, "the second serve to take the lease", 10*time.Second, func() bool {
		return strings.HasPrefix(lockOwner(dbPath, "scheduler"), "second:")
	})
	t.Logf("the standby took the lease %v after the holder stopped", time.Since(stopped).Round(time.Millisecond))
}

func TestServe_SIGTERMDuringDigestLosesAndDoublesNothing(t *testing.T) {
	bin := buildBinary(t)
	e := newDigestCLIEnv(t, 150, smtptest.Faults{Delay: 20 * time.Millisecond})
	site := httptest.NewServer(msittest.NewSite(msittest.SamplePosts()))
	defer site.Close()
	// The last digest job ran eight days ago: serve sends the missed one at start.
	if _, err := e.db.Exec(`INSERT INTO jobs (name, spec, last_start) VALUES ('digest', '0 9 * * MON', ?)`,
		time.Now().Add(-8*24*time.Hour).Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	extra := []string{"MSITFEED_SMTP_CONCURRENCY=2", "MSITFEED_LISTEN=" + freeAddr(t),
		"MSITFEED_SOURCE_URL=" + site.URL, "MSITFEED_SOURCE_RATE=1000"}
	serve := e.command(bin, extra, "serve")
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, e.smtp.WaitFor(30), "30 digests before SIGTERM")
	serve.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		serve.Process.Kill()
		t.Fatalf("serve did not stop after SIGTERM\n%s", stderr.String())
	}
	var pending int
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&pending)
	if pending == 0 {
		var sent int
		e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&sent)
		t.Fatalf("the digest finished before SIGTERM (%d sent, %d at the server): the test proves nothing\n%s", sent, e.smtp.Count(), stderr.String())
	}
	integrityOK(t, filepath.Join(e.dir, "msitfeed.db"))

	if out, err := e.command(bin, extra, "digest", "send").CombinedOutput(); err != nil {
		t.Fatalf("digest send after restart: %v\n%s", err, out)
	}
	doubled := e.resent(t)
	if doubled > 2 {
		t.Errorf("%d subscribers got the digest twice; at most 2 were in flight", doubled)
	}
	t.Logf("SIGTERM left %d deliveries pending; after restart every subscriber has one digest, %d resent with the same Message-ID", pending, doubled)
}
