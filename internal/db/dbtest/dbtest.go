// Package dbtest gives tests a fresh, migrated database of each engine:
// an SQLite file in a temporary directory, and a database in a throwaway
// PostgreSQL cluster that the test binary starts once (initdb and pg_ctl in
// a temporary directory, listening only on a Unix socket there) and removes
// when its tests end. A package that uses it calls Main from TestMain.
package dbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
)

// Engines returns the engines to run store tests on: SQLite always, and
// PostgreSQL when its initdb is on the machine (Main says once when not).
func Engines() []db.Engine {
	if binDir() == "" {
		return []db.Engine{db.SQLite}
	}
	return []db.Engine{db.SQLite, db.Postgres}
}

// Main runs the tests of m and then stops and removes the PostgreSQL
// cluster if one was started. Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	if binDir() == "" {
		fmt.Fprintln(os.Stderr, "dbtest: PostgreSQL tests skipped: no initdb on PATH, in /usr/local/bin or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	code := m.Run()
	if err := stopCluster(); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Open returns a fresh database of engine, migrated, closed (and for
// PostgreSQL dropped) when t ends.
func Open(t testing.TB, engine db.Engine) *sql.DB {
	t.Helper()
	d, err := db.Open(context.Background(), DSN(t, engine))
	if err != nil {
		t.Fatalf("open %s database: %v", engine, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// DSN returns the database setting of a fresh, empty database of engine:
// the path of a file in t's temporary directory, or the URL of a new
// database in the test binary's cluster, dropped when t ends. Open it with
// db.Open as many times as needed (two *sql.DB on one store are two
// processes).
func DSN(t testing.TB, engine db.Engine) string {
	t.Helper()
	if engine != db.Postgres {
		return filepath.Join(t.TempDir(), "msitfeed.db")
	}
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	name := fmt.Sprintf("t%d", c.next.Add(1))
	if _, err := c.admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a test left open (PostgreSQL 13 and later).
		if _, err := c.admin.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return c.url(name)
}

// Each runs f as a subtest named after each engine of Engines: the one
// table of engines the store tests share.
func Each(t *testing.T, f func(t *testing.T, e db.Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// Run runs f as a subtest named after each engine of Engines, each with a
// fresh database of that engine.
func Run(t *testing.T, f func(t *testing.T, d *sql.DB)) {
	t.Helper()
	Each(t, func(t *testing.T, e db.Engine) { f(t, Open(t, e)) })
}

// cluster is the test binary's PostgreSQL server.
type cluster struct {
	dir   string  // temporary directory: data/, the socket, the log
	admin *sql.DB // connected to the "postgres" database
	stop  func() error
	// down stops the server as an outage would (connections cut, the
	// socket gone) and up starts it again on the same data and socket.
	down, up func() error
	next     atomic.Int64
}

func (c *cluster) url(dbname string) string {
	return "postgres://postgres@/" + dbname + "?host=" + c.dir + "&sslmode=disable"
}

var (
	mainCalled atomic.Bool
	once       sync.Once
	running    *cluster
	startErr   error
)

func startCluster() (*cluster, error) {
	if !mainCalled.Load() {
		return nil, errors.New("the package's TestMain must call dbtest.Main, which removes the cluster")
	}
	once.Do(func() { running, startErr = start() })
	return running, startErr
}

// binDir returns the directory of PostgreSQL's initdb and pg_ctl, "" if
// there is none.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if _, err := os.Stat("/usr/local/bin/initdb"); err == nil {
		return "/usr/local/bin"
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return ""
	}
	return filepath.Dir(found[len(found)-1]) // the highest version
}

func start() (*cluster, error) {
	bin := binDir()
	// Short: a Unix socket's path has a limit of about 100 bytes.
	dir, err := os.MkdirTemp("/tmp", "msitfeed-pg-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	// initdb refuses to run as root: run the server as the postgres user,
	// owning the directory.
	var as []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		as = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(append(as[:len(as):len(as)], filepath.Join(bin, name)), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// No TCP (listen_addresses empty); no durability: the cluster is thrown away.
	opts := "-c listen_addresses= -k " + dir + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
	if err := run("pg_ctl", "start", "-w", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.stop = func() error { return run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", data) }
	c.down = c.stop
	c.up = func() error {
		return run("pg_ctl", "start", "-w", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts)
	}
	// A test binary that dies without reaching Main's cleanup (a panic, a
	// -timeout, SIGKILL) leaves no server running: a watchdog in its own
	// session stops and removes the cluster within a second of its end.
	stop := strings.Join(append(append(as[:len(as):len(as)], filepath.Join(bin, "pg_ctl")), "stop", "-m", "immediate", "-D", data), " ")
	watchdog := exec.Command("sh", "-c", `while kill -0 "$1" 2>/dev/null; do sleep 1; done; `+stop+` >/dev/null 2>&1; rm -rf "$2"`,
		"sh", strconv.Itoa(os.Getpid()), dir)
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := watchdog.Start(); err != nil {
		c.stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the cluster's watchdog: %w", err)
	}
	go watchdog.Wait() // reaped if the tests end first
	admin, err := sql.Open("pgx", c.url("postgres"))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		c.stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("connect to the test cluster: %w", err)
	}
	c.admin = admin
	return c, nil
}

// StopPostgres stops the test binary's PostgreSQL server as a crash
// would (pg_ctl stop -m immediate: every connection cut, the socket
// gone), for tests of what instances do while their database is away;
// StartPostgres starts it again. Tests that use them must not run in
// parallel with other tests of the binary that use PostgreSQL.
func StopPostgres(t testing.TB) {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	if err := c.down(); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
}

// StartPostgres starts the server StopPostgres stopped, on the same data
// and socket, and waits until it takes connections.
func StartPostgres(t testing.TB) {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	if err := c.up(); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
}

func stopCluster() error {
	if running == nil {
		return nil
	}
	running.admin.Close()
	err := running.stop()
	if rmErr := os.RemoveAll(running.dir); err == nil && rmErr != nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("stop the test cluster in %s: %w", running.dir, err)
	}
	return nil
}
