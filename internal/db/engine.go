package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// Engine names the database engine under a store. The store code is the
// same on both; where the SQL cannot be the same, the difference is a
// method of Engine (this file), or in Open, Checkpoint and the two
// directories of migrations (db.go).
type Engine string

// The engines msitfeed runs on.
const (
	// SQLite is one file on one machine (modernc.org/sqlite), the default.
	SQLite Engine = "sqlite"
	// Postgres is a PostgreSQL server (github.com/jackc/pgx/v5), for
	// several instances sharing one store.
	Postgres Engine = "postgres"
)

// EngineForDSN returns the engine the database setting selects: a
// postgres:// or postgresql:// URL is PostgreSQL, anything else is the path
// of an SQLite file.
func EngineForDSN(dsn string) Engine {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return Postgres
	}
	return SQLite
}

// EngineOf returns the engine of a database opened by Open.
func EngineOf(d *sql.DB) Engine {
	if _, ok := d.Driver().(*stdlib.Driver); ok {
		return Postgres
	}
	return SQLite
}

// LockTx makes the transaction tx the only writer of what key names until
// it ends, so that work which reads and then writes (the next storage
// sequence number of a post) is done in commit order. SQLite needs nothing:
// Open begins every transaction IMMEDIATE, which already holds the one
// write lock of the file. PostgreSQL takes a transaction-level advisory
// lock, released by the commit or rollback.
func (e Engine) LockTx(ctx context.Context, tx *sql.Tx, key string) error {
	if e != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(key)); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// lockKey maps a lock's name to the 64-bit key of a PostgreSQL advisory
// lock; names are few and fixed, so a collision only serialises more.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("msitfeed:" + name))
	return int64(h.Sum64())
}

// ChangeToken returns a value that differs from the one read before
// whenever any transaction has committed since, read on conn. On SQLite it
// is PRAGMA data_version, which moves when another connection commits (so
// conn must be one connection kept for the purpose). On PostgreSQL it is
// the current snapshot (xmin:xmax:in-progress ids): two equal snapshots see
// the same committed transactions, so an equal token means nothing was
// committed; commits in other databases of the cluster move it too, which
// costs only a needless re-read.
func (e Engine) ChangeToken(ctx context.Context, conn *sql.Conn) (string, error) {
	var q string
	switch e {
	case Postgres:
		q = `SELECT pg_current_snapshot()::text`
	default:
		q = `PRAGMA data_version`
	}
	var tok string
	if err := conn.QueryRowContext(ctx, q).Scan(&tok); err != nil {
		return "", fmt.Errorf("read change token: %w", err)
	}
	return tok, nil
}

// CheckWritable reports whether d would take a write now, without changing
// anything: on SQLite by taking the file's write lock (BEGIN IMMEDIATE)
// and giving it back; on PostgreSQL by asking whether the server is a
// read-only standby or the session read-only.
func (e Engine) CheckWritable(ctx context.Context, d *sql.DB) error {
	conn, err := d.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if e == Postgres {
		var readOnly string
		if err := conn.QueryRowContext(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN 'on' ELSE current_setting('transaction_read_only') END`).Scan(&readOnly); err != nil {
			return err
		}
		if readOnly == "on" {
			return errors.New("the PostgreSQL server takes no writes (a standby, or read-only)")
		}
		return nil
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	return err
}

// ValuesRows returns rows groups of cols placeholders for a multi-row
// INSERT, each group followed by tail (say ", 'pending'") inside its
// parentheses. SQLite gets "?": modernc.org/sqlite finds a numbered
// parameter by name, in a time that grows with their number, which makes
// binding the thousands of a batch cost more than the insert. PostgreSQL
// needs them numbered, $1 on.
func (e Engine) ValuesRows(rows, cols int, tail string) string {
	var b strings.Builder
	n := 0
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			if e == Postgres {
				b.WriteString("$" + strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteString(tail)
		b.WriteByte(')')
	}
	return b.String()
}

// BeginWrite is the statement that begins a transaction that will write,
// for code that runs its transactions on a connection of its own: SQLite
// takes the file's write lock at once (IMMEDIATE, as Open's pool does), so
// that the transaction never fails later for want of it; PostgreSQL locks
// rows as it writes them.
func (e Engine) BeginWrite() string {
	if e == Postgres {
		return "BEGIN"
	}
	return "BEGIN IMMEDIATE"
}

// GrowCache enlarges conn's page cache to kib KiB for a long batch of
// writes and returns the statement that puts it back ("" when nothing was
// changed). Only SQLite has a cache per connection to size; PostgreSQL sizes
// its cache for the server, so it changes nothing there. A failure leaves
// the cache as it was: the batch is only slower.
func (e Engine) GrowCache(ctx context.Context, conn *sql.Conn, kib int) string {
	if e != SQLite {
		return ""
	}
	var cache int64
	if err := conn.QueryRowContext(ctx, `PRAGMA main.cache_size`).Scan(&cache); err != nil {
		return ""
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA main.cache_size = -%d`, kib)); err != nil {
		return ""
	}
	return fmt.Sprintf(`PRAGMA main.cache_size = %d`, cache)
}

// ResetIdentity moves the sequence behind each identity (or serial)
// column of table past the largest value stored in it, inside tx. Rows
// inserted with explicit ids (a copy from another store keeps its ids) do
// not advance a PostgreSQL sequence, and the next row the database
// numbered would collide with them. SQLite numbers an INTEGER PRIMARY KEY
// from the largest stored one already: nothing to do there.
func (e Engine) ResetIdentity(ctx context.Context, tx *sql.Tx, table string) error {
	if e != Postgres {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT a.attname, pg_get_serial_sequence(quote_ident($1), a.attname)
		FROM pg_attribute a
		WHERE a.attrelid = quote_ident($1)::regclass AND a.attnum > 0 AND NOT a.attisdropped
			AND pg_get_serial_sequence(quote_ident($1), a.attname) IS NOT NULL`, table)
	if err != nil {
		return fmt.Errorf("find the sequences of %s: %w", table, err)
	}
	type seq struct{ column, name string }
	var seqs []seq
	for rows.Next() {
		var s seq
		if err := rows.Scan(&s.column, &s.name); err != nil {
			rows.Close()
			return fmt.Errorf("find the sequences of %s: %w", table, err)
		}
		seqs = append(seqs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find the sequences of %s: %w", table, err)
	}
	for _, s := range seqs {
		// is_called false: the next value handed out is max + 1 itself.
		q := `SELECT setval($1, coalesce((SELECT max(` + quoteIdent(s.column) + `) FROM ` + quoteIdent(table) + `), 0) + 1, false)`
		if _, err := tx.ExecContext(ctx, q, s.name); err != nil {
			return fmt.Errorf("reset sequence %s of %s.%s: %w", s.name, table, s.column, err)
		}
	}
	return nil
}

// quoteIdent quotes an SQL identifier the same way for both engines.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// ClockMillis is an SQL expression for the database's clock in
// milliseconds since 1970, for deadlines that several machines compare:
// judged by one clock, a skewed instance cannot expire another's claim
// early.
func (e Engine) ClockMillis() string {
	if e == Postgres {
		return `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)`
	}
	return `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`
}

// SkipLocked ends a SELECT that picks rows to claim. On PostgreSQL it locks
// the rows it returns and passes over rows another transaction holds, so
// two claimants running at once take different rows and neither waits.
// SQLite needs nothing: its one writer runs a claim statement whole before
// the next begins.
func (e Engine) SkipLocked() string {
	if e == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// LockTimes returns the present and the present plus ttl as the lock table
// writes them (lockTimeLayout, UTC), from the clock that decides when a
// lock expires. SQLite is one file on one machine: its processes share the
// machine's clock, read here. On PostgreSQL several machines share the
// store and their clocks may disagree, so the server's now() decides (the
// start of q's transaction, if q is one).
func (e Engine) LockTimes(ctx context.Context, q Queryer, ttl time.Duration) (now, expires string, err error) {
	if e != Postgres {
		t := time.Now().UTC()
		return t.Format(lockTimeLayout), t.Add(ttl).Format(lockTimeLayout), nil
	}
	// to_char has microseconds at most; the zeros keep lockTimeLayout's width.
	const layout = `'YYYY-MM-DD"T"HH24:MI:SS.US"000Z"'`
	err = q.QueryRowContext(ctx, `SELECT to_char(now() AT TIME ZONE 'UTC', `+layout+`),
		to_char((now() + make_interval(secs => $1)) AT TIME ZONE 'UTC', `+layout+`)`, ttl.Seconds()).Scan(&now, &expires)
	if err != nil {
		return "", "", fmt.Errorf("read the server's clock: %w", err)
	}
	return now, expires, nil
}

// Remote reports whether each statement is a round trip to a server
// (PostgreSQL), so that code writing many rows does better to send them in
// one statement. On SQLite a statement is a call within the process, and a
// prepared statement run once per row costs less than one long statement.
func (e Engine) Remote() bool { return e == Postgres }
