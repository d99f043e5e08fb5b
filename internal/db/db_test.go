package db_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestMigrationsMatchAcrossEngines(t *testing.T) {
	lite, err := db.MigrationNames(db.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := db.MigrationNames(db.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || !reflect.DeepEqual(lite, pg) {
		t.Fatalf("migrations differ between engines (each needs a twin of the same name):\nsqlite   %v\npostgres %v", lite, pg)
	}
}

func TestEngineForDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want db.Engine
	}{
		{"msitfeed.db", db.SQLite},
		{"/var/lib/msitfeed/msitfeed.db", db.SQLite},
		{"postgres://msitfeed@db.example/msitfeed", db.Postgres},
		{"postgresql://msitfeed:pw@db.example:5432/msitfeed?sslmode=require", db.Postgres},
	} {
		if got := db.EngineForDSN(tc.dsn); got != tc.want {
			t.Errorf("EngineForDSN(%q) = %s, want %s", tc.dsn, got, tc.want)
		}
	}
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e)
			want, _ := db.MigrationNames(e)
			for i := 0; i < 2; i++ {
				d, err := db.Open(ctx, dsn)
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				if got := db.EngineOf(d); got != e {
					t.Fatalf("EngineOf = %s, want %s", got, e)
				}
				var n int
				if err := d.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != len(want) {
					t.Fatalf("open %d: %d migrations recorded, want %d", i, n, len(want))
				}
				if e == db.SQLite {
					var mode string
					d.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
					var fk int
					d.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
					if mode != "wal" || fk != 1 {
						t.Fatalf("journal_mode %s foreign_keys %d, want wal and 1", mode, fk)
					}
				}
				d.Close()
			}
		})
	}
}

// Processes starting together on one empty database must not apply a
// migration twice.
func TestConcurrentOpens(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			dsn := dbtest.DSN(t, e)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := db.Open(context.Background(), dsn)
					if err == nil {
						d.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("open %d: %v", i, err)
				}
			}
		})
	}
}

func TestOpenRefusesWhatIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	content := []byte("this is not an SQLite file, and it must stay exactly as it is\n")
	os.WriteFile(junk, content, 0o600)
	if _, err := db.Open(context.Background(), junk); err == nil {
		t.Fatal("opened a file that is not a database")
	}
	got, _ := os.ReadFile(junk)
	if string(got) != string(content) {
		t.Fatal("a failed open changed the file")
	}
	if _, err := db.Open(context.Background(), filepath.Join(dir, "missing", "dir", "x.db")); err == nil {
		t.Fatal("opened a database in a directory that does not exist")
	}
}

func TestOpenPostgresErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Nothing listens in an empty directory.
	dsn := "postgres://msitfeed:hunter2@/msitfeed?host=" + t.TempDir() + "&connect_timeout=2"
	_, err := db.Open(ctx, dsn)
	if err == nil {
		t.Fatal("opened a server that does not exist")
	}
	if msg := err.Error(); !contains(msg, "open database postgres://msitfeed:xxxxx@") || contains(msg, "hunter2") {
		t.Fatalf("error %q: want the URL named without its password", msg)
	}
}

func contains(s, sub string) bool {
	return len(sub) <= len(s) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestLocks(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *sql.DB) {
		ctx := context.Background()
		if err := db.Acquire(ctx, d, "digest", "a", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := db.Acquire(ctx, d, "digest", "a", time.Minute); err != nil {
			t.Fatalf("the holder acquiring again: %v", err)
		}
		if err := db.Acquire(ctx, d, "digest", "b", time.Minute); !errors.Is(err, db.ErrLocked) {
			t.Fatalf("second owner: %v, want ErrLocked", err)
		}
		if err := db.Refresh(ctx, d, "digest", "b", time.Minute); !errors.Is(err, db.ErrLocked) {
			t.Fatalf("refresh by non-owner: %v, want ErrLocked", err)
		}
		if err := db.Refresh(ctx, d, "digest", "a", time.Minute); err != nil {
			t.Fatalf("refresh by owner: %v", err)
		}
		if err := db.Release(ctx, d, "digest", "a"); err != nil {
			t.Fatal(err)
		}
		if err := db.Acquire(ctx, d, "digest", "b", -time.Second); err != nil {
			t.Fatalf("after release: %v", err)
		}
		// b's lock has already expired: a dead holder does not block forever.
		if err := db.Acquire(ctx, d, "digest", "a", time.Minute); err != nil {
			t.Fatalf("taking over an expired lock: %v", err)
		}
	})
}

// Processes racing for an expired lock: exactly one gets it.
func TestAcquireRace(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e)
			first, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			if err := db.Acquire(ctx, first, "scheduler", "dead", -time.Second); err != nil {
				t.Fatal(err)
			}
			const n = 8
			dbs := make([]*sql.DB, n)
			for i := range dbs {
				if dbs[i], err = db.Open(ctx, dsn); err != nil {
					t.Fatal(err)
				}
				defer dbs[i].Close()
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = db.Acquire(ctx, dbs[i], "scheduler", string(rune('a'+i)), time.Minute)
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, db.ErrLocked):
					t.Errorf("process %d: %v", i, err)
				}
			}
			if won != 1 {
				t.Fatalf("%d processes got the lock, want 1", won)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *sql.DB) {
		ctx := context.Background()
		if v, err := db.Setting(ctx, d, "secret"); err != nil || v != "" {
			t.Fatalf("unset: %q, %v", v, err)
		}
		if v, err := db.SetSettingIfAbsent(ctx, d, "secret", "one"); err != nil || v != "one" {
			t.Fatalf("first: %q, %v", v, err)
		}
		if v, err := db.SetSettingIfAbsent(ctx, d, "secret", "two"); err != nil || v != "one" {
			t.Fatalf("second: %q, %v, want the first value kept", v, err)
		}
	})
}

// The change token moves when another connection commits, and only then.
func TestChangeToken(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e)
			reader, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			writer, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer writer.Close()
			conn, err := reader.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			token := func() string {
				t.Helper()
				tok, err := e.ChangeToken(ctx, conn)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			before := token()
			if again := token(); again != before {
				t.Fatalf("token moved from %q to %q with no commit", before, again)
			}
			if _, err := writer.Exec(`INSERT INTO settings (key, value) VALUES ('k', 'v')`); err != nil {
				t.Fatal(err)
			}
			if after := token(); after == before {
				t.Fatalf("token %q did not move after another connection committed", after)
			}
		})
	}
}

// LockTx makes a second writer wait for the first one's commit.
func TestLockTx(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e)
			one, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer one.Close()
			two, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer two.Close()
			tx1, err := one.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback()
			if err := e.LockTx(ctx, tx1, "items"); err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() {
				tx2, err := two.BeginTx(ctx, nil)
				if err == nil {
					err = e.LockTx(ctx, tx2, "items")
					tx2.Rollback()
				}
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("second writer went ahead while the first held the lock (%v)", err)
			case <-time.After(300 * time.Millisecond):
			}
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("second writer still waiting after the first committed")
			}
		})
	}
}

// A batch written with ValuesRows inside a transaction begun with
// BeginWrite on a connection of its own is stored whole.
func TestValuesRowsAndBeginWrite(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *sql.DB) {
		ctx := context.Background()
		e := db.EngineOf(d)
		conn, err := d.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, e.BeginWrite()); err != nil {
			t.Fatal(err)
		}
		q := `INSERT INTO locks (name, owner, acquired, expires) VALUES ` + e.ValuesRows(3, 3, ", 'never'")
		args := []any{"a", "o1", "t1", "b", "o2", "t2", "c", "o3", "t3"}
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		rows, err := d.Query(`SELECT name, owner, acquired, expires FROM locks ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var n, o, a, x string
			rows.Scan(&n, &o, &a, &x)
			got = append(got, n+o+a+x)
		}
		if want := []string{"ao1t1never", "bo2t2never", "co3t3never"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
	})
}
