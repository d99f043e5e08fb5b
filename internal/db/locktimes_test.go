package db_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// Lock times come from the database's clock: on PostgreSQL the server's
// now(), which inside a transaction stays at its start whatever the
// client's clock says; on SQLite the machine's clock.
func TestLockTimesClock(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *sql.DB) {
		ctx := context.Background()
		e := db.EngineOf(d)
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		first, _, err := e.LockTimes(ctx, tx, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		now, expires, err := e.LockTimes(ctx, tx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(now) != len("2006-01-02T15:04:05.000000000Z") || len(expires) != len(now) {
			t.Fatalf("lock times %q, %q: not of lockTimeLayout's width", now, expires)
		}
		tn, err1 := time.Parse(time.RFC3339Nano, now)
		te, err2 := time.Parse(time.RFC3339Nano, expires)
		if err1 != nil || err2 != nil {
			t.Fatalf("lock times do not parse: %v %v", err1, err2)
		}
		if te.Sub(tn) != time.Minute {
			t.Errorf("expires - now = %v, want 1m", te.Sub(tn))
		}
		if d := time.Since(tn); d < 0 || d > 10*time.Second {
			t.Errorf("lock time %v is %v from this machine's clock", tn, d)
		}
		switch e {
		case db.Postgres:
			if now != first {
				t.Errorf("PostgreSQL: %q then %q in one transaction, want the transaction's now() both times", first, now)
			}
		default:
			if now <= first {
				t.Errorf("SQLite: %q then %q 50 ms later, want the machine's clock", first, now)
			}
		}
	})
}

// Holds sees only an owner's unexpired lock, and Locks lists the rows
// with their expiry by the database's clock.
func TestHoldsAndLocks(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *sql.DB) {
		ctx := context.Background()
		e := db.EngineOf(d)
		if err := db.Acquire(ctx, d, "scheduler", "a", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := db.Acquire(ctx, d, "old", "b", -time.Second); err != nil {
			t.Fatal(err)
		}
		holds := func(name, owner string) bool {
			t.Helper()
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			ok, err := db.Holds(ctx, tx, e, name, owner)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		for _, tc := range []struct {
			name, owner string
			want        bool
		}{
			{"scheduler", "a", true},
			{"scheduler", "b", false},
			{"old", "b", false}, // expired
			{"none", "a", false},
		} {
			if got := holds(tc.name, tc.owner); got != tc.want {
				t.Errorf("Holds(%s, %s) = %v, want %v", tc.name, tc.owner, got, tc.want)
			}
		}
		locks, err := db.Locks(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) != 2 || locks[0].Name != "old" || !locks[0].Expired || locks[1].Owner != "a" || locks[1].Expired {
			t.Fatalf("Locks = %+v, want old (expired) and scheduler held by a", locks)
		}
		if d := locks[1].Expires.Sub(locks[1].Acquired); d != time.Minute {
			t.Errorf("scheduler lock runs %v, want 1m", d)
		}
		// Taking one's own lock again keeps when it was first taken.
		time.Sleep(10 * time.Millisecond)
		if err := db.Acquire(ctx, d, "scheduler", "a", time.Hour); err != nil {
			t.Fatal(err)
		}
		again, err := db.Locks(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if !again[1].Acquired.Equal(locks[1].Acquired) || !again[1].Expires.After(locks[1].Expires) {
			t.Errorf("re-acquired: %+v, want acquired kept (%v) and expiry later", again[1], locks[1].Acquired)
		}
	})
}

func TestOpenPool(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, e db.Engine) {
		ctx := context.Background()
		dsn := dbtest.DSN(t, e)
		for _, tc := range []struct {
			pool db.Pool
			want int
		}{
			{db.Pool{MaxConns: 3}, 3},
			{db.Pool{}, map[db.Engine]int{db.Postgres: db.DefaultPostgresMaxConns, db.SQLite: 0}[e]},
		} {
			d, err := db.OpenPool(ctx, dsn, tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Stats().MaxOpenConnections; got != tc.want {
				t.Errorf("%+v: at most %d connections, want %d", tc.pool, got, tc.want)
			}
			d.Close()
		}
	})
}
