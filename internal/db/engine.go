package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

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
