package faults

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// countItems counts stored posts, 0 before the schema exists.
func countItems(t testing.TB, path string) int {
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.QueryRow(`SELECT count(*) FROM items`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// slowSite delays every answer of u by d, so a crawl lasts long enough
// to be killed in the middle.
func slowSite(u *upstream, d time.Duration) {
	u.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
			return true
		case <-time.After(d):
		}
		return false
	})
}

// TestKillDuringCrawl SIGKILLs `msitfeed crawl` three times at different
// points of a backfill, then lets it finish: nothing stored is lost or
// changed by a kill, the database stays intact, and the last crawl
// completes what the killed ones left.
func TestKillDuringCrawl(t *testing.T) {
	posts := msittest.SamplePosts()
	u := newUpstream(t, posts)
	slowSite(u, 10*time.Millisecond)
	dbPath := t.TempDir() + "/msitfeed.db"
	c := newCLI(t, upstreamEnv(dbPath, u.url, 2)...).with("MSITFEED_SOURCE_RATE=1000", "MSITFEED_SOURCE_PAGES=10")
	prev := snapshot{}
	for _, at := range []int{10, 50, 90} {
		cmd := c.command("crawl")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("%d posts stored", at), 60*time.Second, func() bool { return countItems(t, dbPath) >= at })
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		res := integrity(t, dbPath)
		now := takeSnapshot(t, dbPath)
		lost, corrupted := compare(prev, now)
		if res != "ok" || lost != 0 || corrupted != 0 {
			t.Errorf("after SIGKILL at %d posts: integrity %q, %d lost, %d corrupted", at, res, lost, corrupted)
		}
		if len(now) >= len(posts) {
			t.Fatalf("the crawl finished before the kill (%d posts)", len(now))
		}
		boards := c.must("boards")
		t.Logf("FIGURES kill crawl | SIGKILL with %d posts stored | integrity %s | %d lost, %d corrupted | boards says: %q", len(now), res, lost, corrupted,
			strings.Join(strings.Fields(boardLine(boards, strings.Fields(boardsInterrupted(boards))[0])), " "))
		prev = now
	}
	c.must("crawl")
	final := takeSnapshot(t, dbPath)
	lost, corrupted := compare(prev, final)
	if res := integrity(t, dbPath); res != "ok" || lost != 0 || corrupted != 0 || len(final) != len(posts) {
		t.Errorf("after the last crawl: integrity %q, %d posts of %d, %d lost, %d corrupted", res, len(final), len(posts), lost, corrupted)
	}
	t.Logf("FIGURES kill crawl | after restart | %d/%d posts, %d lost, %d corrupted, integrity ok", len(final), len(posts), lost, corrupted)
}

// boardsInterrupted returns the first board line of `boards` output that
// says its crawl was interrupted, or the first board line.
func boardsInterrupted(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[1:] {
		if strings.Contains(l, "interrupted") {
			return l
		}
	}
	return lines[1]
}

// TestKillDuringDigest SIGKILLs `msitfeed digest send` after 60 of 200
// messages: the next send resumes the digest and nobody gets it twice,
// except the messages in flight at the kill, which carry the same
// Message-ID both times.
func TestKillDuringDigest(t *testing.T) {
	const concurrency = 4
	e := newMailEnv(t, 200, smtptest.Faults{Delay: 20 * time.Millisecond}, fmt.Sprintf("MSITFEED_SMTP_CONCURRENCY=%d", concurrency))
	cmd := e.c.command("digest", "send")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.smtp.WaitFor(60):
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for 60 messages")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	accepted := e.smtp.Count()
	sentAtKill, _, _, _ := e.ledger()
	res := integrity(t, e.path)
	if res != "ok" {
		t.Errorf("integrity after SIGKILL: %q", res)
	}
	out, errs, code := e.send()
	if code != 0 || !strings.Contains(out, "digest 1 resumed") {
		t.Fatalf("send after the kill: exit %d\n%s%s", code, out, errs)
	}
	twice := e.checkOnce(1, e.emails)
	if twice > concurrency {
		t.Errorf("%d got the digest twice; at most %d messages were in flight", twice, concurrency)
	}
	sent, failed, pending, _ := e.ledger()
	var digests int
	e.db.QueryRow(`SELECT count(*) FROM digests`).Scan(&digests)
	if sent != len(e.emails) || failed+pending != 0 || digests != 1 {
		t.Errorf("ledger: %d sent, %d failed, %d pending, %d digests", sent, failed, pending, digests)
	}
	t.Logf("FIGURES kill digest | SIGKILL after %d accepted (%d in the ledger), %d connections | integrity %s | %d/%d once, %d twice with the same Message-ID (bound %d) |",
		accepted, sentAtKill, concurrency, res, len(e.emails)-twice, len(e.emails), twice, concurrency)
}

// migrationTables are the tables each embedded migration creates.
var migrationTables = map[string][]string{
	"0001_items.sql":   {"boards", "items", "attachments", "crawl_runs", "settings", "locks"},
	"0002_mailer.sql":  {"subscribers", "digests", "deliveries"},
	"0003_jobs.sql":    {"jobs"},
	"0004_revisit.sql": {"index items_board_checked", "column items.checked", "column crawl_runs.revisited"},
	"0005_fields.sql": {"column items.date_from", "column crawl_runs.list_rows", "column crawl_runs.missing_title",
		"column crawl_runs.missing_date", "column crawl_runs.missing_department", "column crawl_runs.degraded"},
	"0006_seq.sql": {"column items.seq", "index items_seq", "column digests.seq_start", "column digests.seq_end", "index items_updated"},
	"0007_websub.sql": {"websub_subscriptions", "index websub_subscriptions_board", "index websub_subscriptions_host",
		"index websub_subscriptions_expires", "websub_published"},
	"0008_match.sql": {"column subscribers.match_pattern", "column deliveries.match_pattern"},
}

// schemaState says which migrations are recorded and whether each one's
// tables exist all or not at all; a half-applied one is an error.
func schemaState(t *testing.T, path string) (applied int, half []string) {
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, tables := range migrationTables {
		var rec int
		d.QueryRow(`SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&rec)
		present := 0
		for _, obj := range tables {
			var n int
			switch kind, name, _ := strings.Cut(obj, " "); kind {
			case "index":
				d.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&n)
			case "column":
				table, col, _ := strings.Cut(name, ".")
				d.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, col).Scan(&n)
			default:
				d.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, obj).Scan(&n)
			}
			present += n
		}
		switch {
		case rec == 1 && present == len(tables):
			applied++
		case rec == 0 && present == 0:
		default:
			half = append(half, fmt.Sprintf("%s recorded %d with %d of %d tables", name, rec, present, len(tables)))
		}
	}
	return applied, half
}

// TestKillDuringMigration SIGKILLs msitfeed while it creates and migrates
// a new database, at random points, many times: each migration is there
// whole or not at all, and the next start finishes the job.
func TestKillDuringMigration(t *testing.T) {
	c := newCLI(t)
	rng := rand.New(rand.NewPCG(7, 7))
	dist := map[int]int{}
	const kills = 30
	for i := range kills {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("m%d.db", i))
		cmd := c.with("MSITFEED_DATABASE=" + path).command("boards")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the file to appear, then kill at a random point of the
		// next few milliseconds, where the migrations run.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(path); err == nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond) // a random point, on purpose
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(path); err != nil {
			dist[-1]++ // killed before the file was created
			continue
		}
		if res := integrity(t, path); res != "ok" {
			t.Errorf("kill %d: integrity %q", i, res)
		}
		applied, half := schemaState(t, path)
		if len(half) > 0 {
			t.Errorf("kill %d: half-applied migrations: %v", i, half)
		}
		dist[applied]++
		if _, errs, code := c.with("MSITFEED_DATABASE="+path).run("", "boards"); code != 0 {
			t.Errorf("kill %d: next start: exit %d %s", i, code, errs)
		}
		if applied, half := schemaState(t, path); applied != len(migrationTables) || len(half) > 0 {
			t.Errorf("kill %d: after restart %d migrations applied, %v", i, applied, half)
		}
	}
	t.Logf("FIGURES kill migration | %d SIGKILLs at random points of a first start | killed before the file existed: %d; with 0/1/2/3/4 migrations applied: %d/%d/%d/%d/%d; half-applied: 0 | every next start migrated fully",
		kills, dist[-1], dist[0], dist[1], dist[2], dist[3], dist[4])
}

// TestFailingMigrationLeavesTheOldSchema injects a migration that fails
// half-way, in a copy of a database with data: migration 0002 is marked
// not applied and one of its later tables is left in the way, so its first
// statements succeed and a later one fails. Nothing of it may stay, and the
// data must be as it was.
func TestFailingMigrationLeavesTheOldSchema(t *testing.T) {
	u := newUpstream(t, smallPosts(postsPerBoard))
	dir := t.TempDir()
	orig := dir + "/orig.db"
	newCLI(t, upstreamEnv(orig, u.url, 1)...).with("MSITFEED_SOURCE_RATE=1000").must("crawl")
	before := takeSnapshot(t, orig)

	cp := dir + "/copy.db"
	d, err := sql.Open("sqlite", "file:"+orig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`VACUUM INTO ?`, cp); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = sql.Open("sqlite", "file:"+cp)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE deliveries`, `DROP TABLE subscribers`, `DELETE FROM schema_migrations WHERE name = '0002_mailer.sql'`} {
		if _, err := d.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()

	_, errs, code := newCLI(t, "MSITFEED_DATABASE="+cp).run("", "boards")
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "0002_mailer.sql") || !strings.Contains(errs, cp) {
		t.Errorf("start on a failing migration: exit %d, stderr %q; want exit 1, one line naming the file and the migration", code, errs)
	}
	d, err = sql.Open("sqlite", "file:"+cp)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var subs, recorded int
	d.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('subscribers', 'subscribers_status')`).Scan(&subs)
	d.QueryRow(`SELECT count(*) FROM schema_migrations WHERE name = '0002_mailer.sql'`).Scan(&recorded)
	after := takeSnapshot(t, cp)
	lost, corrupted := compare(before, after)
	res := integrity(t, cp)
	if subs != 0 || recorded != 0 || lost != 0 || corrupted != 0 || res != "ok" {
		t.Errorf("after the failed migration: %d of its objects left, recorded %d, %d lost, %d corrupted, integrity %q", subs, recorded, lost, corrupted, res)
	}
	t.Logf("FIGURES failing migration | 0002 re-run against a table in its way (fails at its 3rd statement) | exit %d: %s | objects left from it: %d; recorded: %d; %d/%d posts intact; integrity %s",
		code, strings.TrimSpace(errs), subs, recorded, len(after)-corrupted, len(before), res)
}

// TestFullDisk puts the database on an 8 MiB tmpfs (room for the WAL of a long crawl), fills the rest of it,
// and crawls a site with new, large posts: the crawl fails with a clear
// line and exit 1, and nothing stored is lost or corrupted. With room made
// again, a crawl completes.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v: %s); as root a read-only file does not stop writes, so there is no honest fallback", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	u := newUpstream(t, smallPosts(postsPerBoard))
	dbPath := mnt + "/msitfeed.db"
	c := newCLI(t, upstreamEnv(dbPath, u.url, 1)...).with("MSITFEED_SOURCE_RATE=1000", "MSITFEED_SOURCE_PAGES=10")
	c.must("crawl")
	before := takeSnapshot(t, dbPath)

	big := strings.Repeat("<p>A long paragraph of a very long post, repeated to take room on the disk. </p>\n", 400)
	for i := range 60 {
		u.site.AddPost(msittest.Post{Board: "press", ID: int64(20000 + i), Title: fmt.Sprintf("Long post %d", i), Date: "2024-11-30",
			Department: "X", BodyHTML: big})
	}
	var st syscall.Statfs_t
	syscall.Statfs(mnt, &st)
	free := int64(st.Bavail) * st.Bsize
	filler := mnt + "/filler"
	if err := os.WriteFile(filler, make([]byte, free-256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.run("", "crawl")
	full := strings.Contains(strings.ToLower(errs), "full")
	lastLine := errs[strings.LastIndex(strings.TrimSuffix(errs, "\n"), "\n")+1:]
	if code != 1 || !strings.HasPrefix(lastLine, "msitfeed: ") || !full {
		t.Errorf("crawl on a full disk: exit %d, stderr %q; want exit 1, one line saying the disk is full", code, errs)
	}
	// An import larger than the room left: all of it or none, never part.
	const importRows = 5000
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range importRows {
		fmt.Fprintf(&csv, "reader%05d@example.org\n", i)
	}
	_, _, importCode := c.run(csv.String(), "subscribers", "import", "-")
	var subs int
	var short int
	{
		d, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		d.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&subs)
		d.QueryRow(`SELECT count(*) FROM items WHERE ntt_seq_no >= 20000 AND (length(body) - length(replace(body, 'A long paragraph', ''))) / 16 <> 400`).Scan(&short)
		d.Close()
	}
	if (importCode == 0) != (subs == importRows) || (subs != 0 && subs != importRows) || short != 0 {
		t.Errorf("on a full disk: import exit %d with %d of %d subscribers stored, %d new posts stored cut short", importCode, subs, importRows, short)
	}
	res := integrity(t, dbPath)
	during := takeSnapshot(t, dbPath)
	lost, corrupted := compare(before, during)
	if res != "ok" || lost != 0 || corrupted != 0 {
		t.Errorf("on a full disk: integrity %q, %d lost, %d corrupted", res, lost, corrupted)
	}
	os.Remove(filler)
	c.must("crawl")
	final := takeSnapshot(t, dbPath)
	l2, c2 := compare(during, final)
	if l2 != 0 || c2 != 0 || len(final) != len(before)+60 || integrity(t, dbPath) != "ok" {
		t.Errorf("with room again: %d posts (want %d), %d lost, %d corrupted", len(final), len(before)+60, l2, c2)
	}
	t.Logf("FIGURES full disk | 8 MiB tmpfs filled to 256 KiB free, 60 new 30 KB posts | crawl exit %d: %s | %d/%d earlier posts intact (%d new ones stored whole before the disk filled), %d lost, %d corrupted, integrity %s; subscribers import exit %d, %d rows stored | room again: %d posts, integrity ok |\n%s",
		code, strings.TrimSpace(lastLine), len(before)-lost-corrupted, len(before), len(during)-len(before), lost, corrupted, res, importCode, subs, len(final), out)
}

// TestTwoProcessesOnOneDatabase runs two `msitfeed crawl` at once on one
// database while a third process serves the feeds: both crawls end well
// or say why, every post is stored once, every feed read during them
// parses, and the database is intact.
func TestTwoProcessesOnOneDatabase(t *testing.T) {
	posts := msittest.SamplePosts()
	u := newUpstream(t, posts)
	slowSite(u, 2*time.Millisecond)
	dbPath := t.TempDir() + "/msitfeed.db"
	c := newCLI(t, upstreamEnv(dbPath, u.url, 2)...).with("MSITFEED_SOURCE_RATE=1000", "MSITFEED_SOURCE_PAGES=10")
	c.must("boards") // create the schema first, so the readers have tables
	d := c.serve("--no-scheduler")

	var wg sync.WaitGroup
	codes := make([]int, 2)
	stderrs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stderrs[i], codes[i] = c.run("", "crawl")
		}()
	}
	stop := make(chan struct{})
	readsDone := make(chan struct{})
	reads, bad := 0, 0
	go func() {
		defer close(readsDone)
		parser := gofeed.NewParser()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Get(d.base + "/feeds/all.atom")
			if err != nil {
				bad++
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			reads++
			if _, err := parser.Parse(bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusOK {
				bad++
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readsDone
	var dup int
	dbh := openDB(t, dbPath)
	dbh.QueryRow(`SELECT count(*) FROM (SELECT board, ntt_seq_no FROM items GROUP BY 1, 2 HAVING count(*) > 1)`).Scan(&dup)
	n := countItems(t, dbPath)
	res := integrity(t, dbPath)
	for i, code := range codes {
		if code != 0 {
			t.Errorf("crawl %d: exit %d: %s", i, code, stderrs[i])
		}
	}
	if n != len(posts) || dup != 0 || res != "ok" || bad != 0 {
		t.Errorf("%d posts (want %d), %d doubled, integrity %q, %d of %d feed reads failed", n, len(posts), dup, res, bad, reads)
	}
	t.Logf("FIGURES two processes | two crawls at once + serve reading all.atom | exits %v | %d/%d posts, %d doubled, integrity %s | %d feed reads, %d failed |",
		codes, n, len(posts), dup, res, reads, bad)
}
