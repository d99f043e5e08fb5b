// Package db opens msitfeed's SQLite database with the pragmas every
// connection needs, applies the embedded migrations, and provides named locks
// held in a table so that two processes on one database can agree on who
// does what. It knows nothing of the tables other packages own.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the SQLite database at path, with WAL,
// a busy timeout, foreign keys and secure_delete on every pooled connection
// (a deleted or overwritten subscriber address is zeroed in the file, not
// left in free space: BenchmarkSecureDelete measures the cost), and applies
// every migration not yet applied. A database that cannot be opened or
// migrated is closed again and an error names the file.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("open database: no path set (set database in the config)")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "secure_delete(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	return db, nil
}

// Checkpoint copies the write-ahead log into the database file and
// truncates the log to zero bytes, so that what was erased is in neither
// file. Readers in other processes can keep old log frames alive: it tries
// a few times, then reports that the log still holds frames.
func Checkpoint(ctx context.Context, db *sql.DB) error {
	var busy, logFrames, done int
	for try := 0; try < 20; try++ {
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("checkpoint: another process is reading the database; the write-ahead log (%d frames) is truncated at its next checkpoint", logFrames)
}

// Migrate applies, in name order and each in its own transaction, every
// embedded migration not yet recorded in schema_migrations.
func Migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		if err := applyMigration(ctx, db, name, base); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, path, name string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied) VALUES (?, ?)`,
		name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

// ErrLocked is returned by Acquire when another live holder has the lock.
var ErrLocked = errors.New("lock held by another process")

// LockHolder describes who holds a named lock.
type LockHolder struct {
	Owner    string
	Acquired time.Time
	Expires  time.Time
}

// Acquire takes the named lock for owner until now+ttl. It fails with an
// error wrapping ErrLocked if another owner holds an unexpired lock. A lock
// whose holder died without releasing it expires and is taken over; holders
// that run long call Refresh before it expires.
func Acquire(ctx context.Context, db *sql.DB, name, owner string, ttl time.Duration) error {
	now := time.Now().UTC()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acquire lock %s: %w", name, err)
	}
	defer tx.Rollback()
	var cur LockHolder
	var acq, exp string
	err = tx.QueryRowContext(ctx, `SELECT owner, acquired, expires FROM locks WHERE name = ?`, name).Scan(&cur.Owner, &acq, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("acquire lock %s: %w", name, err)
	default:
		cur.Expires, _ = time.Parse(time.RFC3339Nano, exp)
		if cur.Owner != owner && now.Before(cur.Expires) {
			return fmt.Errorf("%w: %s is held by %s since %s", ErrLocked, name, cur.Owner, acq)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO locks (name, owner, acquired, expires) VALUES (?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, acquired = excluded.acquired, expires = excluded.expires`,
		name, owner, now.Format(time.RFC3339Nano), now.Add(ttl).Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("acquire lock %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acquire lock %s: %w", name, err)
	}
	return nil
}

// Refresh extends a lock owner holds to now+ttl. It fails with ErrLocked if
// the lock is no longer owner's.
func Refresh(ctx context.Context, db *sql.DB, name, owner string, ttl time.Duration) error {
	res, err := db.ExecContext(ctx, `UPDATE locks SET expires = ? WHERE name = ? AND owner = ?`,
		time.Now().UTC().Add(ttl).Format(time.RFC3339Nano), name, owner)
	if err != nil {
		return fmt.Errorf("refresh lock %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("refresh lock %s: %w", name, ErrLocked)
	}
	return nil
}

// Release drops the named lock if owner holds it.
func Release(ctx context.Context, db *sql.DB, name, owner string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM locks WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("release lock %s: %w", name, err)
	}
	return nil
}

// Setting returns the value stored under key, or "" if none.
func Setting(ctx context.Context, db *sql.DB, key string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

// SetSettingIfAbsent stores value under key unless a value is already there,
// and returns the value that is stored afterwards (so two processes racing to
// create a secret agree on one).
func SetSettingIfAbsent(ctx context.Context, db *sql.DB, key, value string) (string, error) {
	if _, err := db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING`, key, value); err != nil {
		return "", fmt.Errorf("store setting %s: %w", key, err)
	}
	return Setting(ctx, db, key)
}
