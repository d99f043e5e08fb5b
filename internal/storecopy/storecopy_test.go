package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// seed fills d through the store code of feeds and mailer: posts with
// attachments, a crawl run, subscribers, the token secret.
func seed(t *testing.T, d *sql.DB, posts, subs int) {
	t.Helper()
	ctx := context.Background()
	store := feeds.NewStore(d)
	for i := range posts {
		it := feeds.Item{
			Board: []string{"press", "notice"}[i%2], ID: int64(1000 + i),
			Title:     fmt.Sprintf("Post %d: 6G, AI & \"quotes\" — 한국어", i),
			URL:       fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", 1000+i),
			Published: time.Date(2024, 5, 1+i%28, 0, 0, 0, 0, feeds.KST),
			Body:      "<p>body " + strings.Repeat("x", i%50) + "</p>", Summary: "summary",
		}
		if i%3 == 0 {
			it.Attachments = []feeds.Attachment{{Name: "a.pdf", URL: "https://www.msit.go.kr/a.pdf", Type: "application/pdf"}, {Name: "b.hwp", URL: "https://www.msit.go.kr/b.hwp"}}
		}
		if _, err := store.Save(ctx, it, "list"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.StartRun(ctx, "press"); err != nil {
		t.Fatal(err)
	}
	ss := mailer.NewSubscribers(d)
	for i := range subs {
		if _, err := ss.Add(ctx, mailer.NewSubscriber{Address: fmt.Sprintf("Reader %d <r%d@example.org>", i, i), Status: mailer.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mailer.LoadSecret(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
}

// hashes returns Hash(d) as "table rows hash" lines in name order.
func hashes(t *testing.T, d *sql.DB) string {
	t.Helper()
	ts, err := Hash(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return report(ts)
}

// report formats Copy's tables as hashes does, in name order.
func report(ts []Table) string {
	lines := make([]string, len(ts))
	for i, x := range ts {
		lines[i] = fmt.Sprintf("%s %d %s\n", x.Name, x.Rows, x.Hash)
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// TestCopy copies a seeded SQLite store into an empty store of each
// engine, checks the hashes on both, that new rows get fresh ids, and
// copies a PostgreSQL store back into SQLite.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, e db.Engine) {
		src := dbtest.Open(t, db.SQLite)
		seed(t, src, 30, 40)
		// A table no migration knows, with types SQLite stores as integer
		// and text: PostgreSQL declares them boolean and bytea.
		mustExec(t, src, `CREATE TABLE extra (id INTEGER PRIMARY KEY, flag INTEGER, data BLOB, note TEXT, ratio REAL)`)
		mustExec(t, src, `INSERT INTO extra VALUES (1, 1, x'00ff10', 'héllo', 0.25), (2, 0, NULL, NULL, NULL), (3, NULL, x'', '', -1e300)`)
		dst := dbtest.Open(t, e)
		if e == db.Postgres {
			mustExec(t, dst, `CREATE TABLE extra (id BIGINT PRIMARY KEY, flag BOOLEAN, data BYTEA, note TEXT, ratio DOUBLE PRECISION)`)
		} else {
			mustExec(t, dst, `CREATE TABLE extra (id INTEGER PRIMARY KEY, flag INTEGER, data BLOB, note TEXT, ratio REAL)`)
		}
		before := hashes(t, src)

		var told []Table
		got, err := Copy(ctx, src, dst, func(x Table) { told = append(told, x) })
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(told) != fmt.Sprint(got) {
			t.Errorf("progress was told %v, want %v", told, got)
		}
		if r := report(got); r != before {
			t.Errorf("copy reported\n%swant the source's\n%s", r, before)
		}
		if h := hashes(t, dst); h != before {
			t.Errorf("target hashes\n%swant the source's\n%s", h, before)
		}
		if !strings.Contains(before, "subscribers 40 ") || !strings.Contains(before, "items 30 ") || !strings.Contains(before, "attachments 20 ") || !strings.Contains(before, "settings 1 ") {
			t.Errorf("seeded store is not what the test made:\n%s", before)
		}

		// New rows after the move take ids after the copied ones.
		s, err := mailer.NewSubscribers(dst).Add(ctx, mailer.NewSubscriber{Address: "new@example.org"})
		if err != nil {
			t.Fatalf("add a subscriber after the copy: %v", err)
		}
		var maxID int64
		if err := src.QueryRow(`SELECT max(id) FROM subscribers`).Scan(&maxID); err != nil {
			t.Fatal(err)
		}
		if s.ID != maxID+1 {
			t.Errorf("new subscriber has id %d, want %d", s.ID, maxID+1)
		}
		store := feeds.NewStore(dst)
		if _, err := store.Save(ctx, feeds.Item{Board: "press", ID: 99999, Title: "after", URL: "https://www.msit.go.kr/x", Published: time.Now()}, "l"); err != nil {
			t.Fatalf("save a post after the copy: %v", err)
		}
		run, err := store.StartRun(ctx, "notice")
		if err != nil {
			t.Fatalf("start a crawl run after the copy: %v", err)
		}
		if run != 2 {
			t.Errorf("new crawl run has id %d, want 2", run)
		}

		if e == db.Postgres {
			// And back: PostgreSQL into a new SQLite file.
			back := dbtest.Open(t, db.SQLite)
			mustExec(t, back, `CREATE TABLE extra (id INTEGER PRIMARY KEY, flag INTEGER, data BLOB, note TEXT, ratio REAL)`)
			if _, err := Copy(ctx, dst, back, nil); err != nil {
				t.Fatalf("copy back to SQLite: %v", err)
			}
			if a, b := hashes(t, back), hashes(t, dst); a != b {
				t.Errorf("SQLite copy of the PostgreSQL store\n%swant\n%s", a, b)
			}
		}
	})
}

// TestRefuse: a target with rows, a target at another migration version,
// and a copy that fails half-way all leave the target as it was.
func TestRefuse(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, e db.Engine) {
		src := dbtest.Open(t, db.SQLite)
		seed(t, src, 5, 5)

		t.Run("not empty", func(t *testing.T) {
			dsn := dbtest.DSN(t, e)
			dst, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := db.SetSettingIfAbsent(ctx, dst, "x", "kept"); err != nil {
				t.Fatal(err)
			}
			before := hashes(t, dst)
			if err := CheckTarget(ctx, dsn); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "settings") {
				t.Errorf("CheckTarget: %v, want ErrNotEmpty naming settings", err)
			}
			_, err = Copy(ctx, src, dst, nil)
			if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "table settings has rows") {
				t.Errorf("Copy: %v, want ErrNotEmpty naming settings", err)
			}
			if after := hashes(t, dst); after != before {
				t.Errorf("refused target changed:\n%s\nwas\n%s", after, before)
			}
		})

		t.Run("empty passes CheckTarget", func(t *testing.T) {
			if err := CheckTarget(ctx, dbtest.DSN(t, e)); err != nil {
				t.Errorf("CheckTarget of a new store: %v", err)
			}
		})

		t.Run("other version", func(t *testing.T) {
			other := dbtest.Open(t, db.SQLite)
			mustExec(t, other, `INSERT INTO schema_migrations (name, applied) VALUES ('9999_future.sql', 'now')`)
			dst := dbtest.Open(t, e)
			_, err := Copy(ctx, other, dst, nil)
			if err == nil || !strings.Contains(err.Error(), "9999_future.sql") {
				t.Errorf("Copy across versions: %v, want an error naming 9999_future.sql", err)
			}
		})

		t.Run("failure half-way writes nothing", func(t *testing.T) {
			// zz_extra is copied after the tables with no foreign keys
			// (subscribers, settings among them), and its one row breaks
			// a CHECK only the target has.
			s := dbtest.Open(t, db.SQLite)
			seed(t, s, 5, 5)
			mustExec(t, s, `CREATE TABLE zz_extra (id INTEGER PRIMARY KEY, v TEXT)`)
			mustExec(t, s, `INSERT INTO zz_extra VALUES (1, 'ok'), (2, 'bad')`)
			dsn := dbtest.DSN(t, e)
			dst, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			mustExec(t, dst, `CREATE TABLE zz_extra (id BIGINT PRIMARY KEY, v TEXT CHECK (v <> 'bad'))`)
			if _, err := Copy(ctx, s, dst, nil); err == nil || !strings.Contains(err.Error(), "zz_extra") {
				t.Fatalf("Copy: %v, want an error naming zz_extra", err)
			}
			if err := CheckTarget(ctx, dsn); err != nil {
				t.Errorf("target after a failed copy: %v, want no rows", err)
			}
		})
	})
}

func TestCheckTargetNames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ dsn, want string }{
		{"/no/such/dir/x.db", "directory /no/such/dir does not exist"},
		{t.TempDir(), "is a directory"},
		{"mysql://u@h/db", "not a postgres:// URL nor a file path"},
		{"postgres://u@/db?host=/no/such/socket/dir&connect_timeout=2", "cannot connect"},
	} {
		err := CheckTarget(ctx, tc.dsn)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckTarget(%q) = %v, want %q", tc.dsn, err, tc.want)
		}
	}
}

func TestOrder(t *testing.T) {
	ts := []table{
		{name: "deliveries", refs: []string{"digests", "subscribers"}},
		{name: "digests"},
		{name: "attachments", refs: []string{"items"}},
		{name: "items", refs: []string{"boards", "items"}},
		{name: "subscribers"},
		{name: "boards"},
	}
	got, err := order(ts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range got {
		names = append(names, x.name)
	}
	if want := "boards digests subscribers deliveries items attachments"; strings.Join(names, " ") != want {
		t.Errorf("order = %s, want %s", strings.Join(names, " "), want)
	}
	if _, err := order([]table{{name: "a", refs: []string{"b"}}, {name: "b", refs: []string{"a"}}}); err == nil {
		t.Error("a cycle was ordered")
	}
}

func mustExec(t *testing.T, d *sql.DB, q string) {
	t.Helper()
	if _, err := d.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
