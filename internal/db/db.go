// Package db opens msitfeed's database — an SQLite file, or a PostgreSQL
// server for several instances sharing one store — applies the embedded
// migrations of its engine, and provides named locks held in a table so
// that two processes on one database can agree on who does what. It knows
// nothing of the tables other packages own. Every query of the store code
// is written once, with $N placeholders, for both engines; what differs is
// in engine.go.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver (pure Go, no cgo)
)

// migrations holds one directory per engine, with the same file names: a
// migration is written for both engines and versioned together.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Open opens the database dsn names and applies every migration not yet
// applied, with the default Pool. A postgres:// (or postgresql://) URL
// opens PostgreSQL; anything else is the path of an SQLite file, created
// if needed. A database that cannot be opened or migrated is closed again
// and an error names it (without its password).
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	return OpenPool(ctx, dsn, Pool{})
}

// Pool sets the connection pool of a database OpenPool opens. Zero fields
// keep the defaults.
type Pool struct {
	// MaxConns caps the open connections: default 20 on PostgreSQL (whose
	// server allows 100 in all by default), no limit on SQLite (a
	// connection is a file handle).
	MaxConns int
	// MaxIdleConns is how many connections stay open when idle (default 2).
	MaxIdleConns int
	// ConnMaxLifetime replaces a connection after that long (default never).
	ConnMaxLifetime time.Duration
	// ConnectTimeout bounds connecting to PostgreSQL (default 5s), so
	// that a server that is down makes requests fail rather than hang; an
	// explicit connect_timeout in the URL wins.
	ConnectTimeout time.Duration
}

// DefaultPostgresMaxConns is Pool.MaxConns's default on PostgreSQL.
const DefaultPostgresMaxConns = 20

// OpenPool is Open with the connection pool set by p.
func OpenPool(ctx context.Context, dsn string, p Pool) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("open database: no database set (set database in the config to a file path or a postgres:// URL)")
	}
	var d *sql.DB
	var err error
	if EngineForDSN(dsn) == Postgres {
		if p.MaxConns == 0 {
			p.MaxConns = DefaultPostgresMaxConns
		}
		d, err = openPostgres(ctx, withConnectTimeout(dsn, p.ConnectTimeout))
	} else {
		d, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	d.SetMaxOpenConns(p.MaxConns)
	if p.MaxIdleConns > 0 {
		d.SetMaxIdleConns(p.MaxIdleConns)
	}
	d.SetConnMaxLifetime(p.ConnMaxLifetime)
	return d, nil
}

// withConnectTimeout returns dsn with pgx's connect_timeout (whole seconds)
// set to t, or 5s if t is 0, unless the URL sets one.
func withConnectTimeout(dsn string, t time.Duration) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // openPostgres reports it
	}
	q := u.Query()
	if q.Get("connect_timeout") != "" {
		return dsn
	}
	if t <= 0 {
		t = 5 * time.Second
	}
	q.Set("connect_timeout", strconv.Itoa(int(max(1, t.Round(time.Second)/time.Second))))
	u.RawQuery = q.Encode()
	return u.String()
}

// openSQLite opens the SQLite file at path with WAL, a busy timeout,
// foreign keys and secure_delete on every pooled connection (a deleted or
// overwritten subscriber address is zeroed in the file, not left in free
// space: BenchmarkSecureDelete measures the cost).
func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
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

// openPostgres connects to the PostgreSQL server of the URL dsn through
// pgx's database/sql driver.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	name := redact(dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", name, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", name, err)
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", name, err)
	}
	return db, nil
}

// redact returns the URL dsn with its password replaced, for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a postgres:// URL that does not parse)"
	}
	return u.Redacted()
}

// ErrNotErasable is returned by Checkpoint on an engine that cannot promise
// that deleted rows are gone from its files.
var ErrNotErasable = errors.New("PostgreSQL keeps deleted rows in its table files until VACUUM reuses the space, and in its write-ahead log and backups")

// Checkpoint copies SQLite's write-ahead log into the database file and
// truncates the log to zero bytes, so that what was erased is in neither
// file. Readers in other processes can keep old log frames alive: it tries
// a few times, then reports that the log still holds frames. On PostgreSQL
// it returns ErrNotErasable: nothing msitfeed can run there zeroes a
// deleted row.
func Checkpoint(ctx context.Context, db *sql.DB) error {
	if EngineOf(db) == Postgres {
		return fmt.Errorf("checkpoint: %w", ErrNotErasable)
	}
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

// MigrationNames returns the names of engine's migrations, in the order
// they are applied.
func MigrationNames(engine Engine) ([]string, error) {
	paths, err := fs.Glob(migrations, "migrations/"+string(engine)+"/*.sql")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = path.Base(p)
	}
	sort.Strings(names)
	return names, nil
}

// Migrate applies, in name order and each in its own transaction, every
// embedded migration of db's engine not yet recorded in schema_migrations.
// Processes starting together on one PostgreSQL take turns (LockTx).
func Migrate(ctx context.Context, db *sql.DB) error {
	engine := EngineOf(db)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	defer tx.Rollback()
	if err := engine.LockTx(ctx, tx, "migrate"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := MigrationNames(engine)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := applyMigration(ctx, db, engine, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, engine Engine, name string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := engine.LockTx(ctx, tx, "migrate"); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = $1`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile("migrations/" + string(engine) + "/" + name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied) VALUES ($1, $2)`,
		name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

// ErrLocked is returned by Acquire when another live holder has the lock.
var ErrLocked = errors.New("lock held by another process")

// lockTimeLayout has a fixed width so that lock times compare as text in
// SQL. Rows written before it (RFC 3339 with a trimmed fraction) compare as
// later than the same instant written with it, so an old lock is never
// taken over early.
const lockTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Queryer is what LockTimes reads the clock on: a pool (*sql.DB), a
// connection or a transaction.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Acquire takes the named lock for owner until now+ttl. It fails with an
// error wrapping ErrLocked if another owner holds an unexpired lock. A lock
// whose holder died without releasing it expires and is taken over; holders
// that run long call Refresh before it expires. The check and the write are
// one statement, atomic on both engines: two processes racing for an
// expired lock cannot both get it. The owner taking its own lock again
// keeps the time it first acquired it. Times come from the database's
// clock (Engine.LockTimes), so on PostgreSQL instances whose clocks
// disagree still agree on when a lock expires.
func Acquire(ctx context.Context, db *sql.DB, name, owner string, ttl time.Duration) error {
	now, expires, err := EngineOf(db).LockTimes(ctx, db, ttl)
	if err != nil {
		return fmt.Errorf("acquire lock %s: %w", name, err)
	}
	var got string
	err = db.QueryRowContext(ctx, `INSERT INTO locks (name, owner, acquired, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires,
			acquired = CASE WHEN locks.owner = excluded.owner THEN locks.acquired ELSE excluded.acquired END
		WHERE locks.owner = excluded.owner OR locks.expires < excluded.acquired
		RETURNING owner`,
		name, owner, now, expires).Scan(&got)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("acquire lock %s: %w", name, err)
	}
	var cur, exp string
	if err := db.QueryRowContext(ctx, `SELECT owner, expires FROM locks WHERE name = $1`, name).Scan(&cur, &exp); err != nil {
		return fmt.Errorf("%w: %s is held by another process", ErrLocked, name)
	}
	return fmt.Errorf("%w: %s is held by %s until %s", ErrLocked, name, cur, exp)
}

// Refresh extends a lock owner holds to now+ttl. It fails with ErrLocked if
// the lock is no longer owner's. (One that expired but was not taken over
// is still owner's: nobody else held it in between.)
func Refresh(ctx context.Context, db *sql.DB, name, owner string, ttl time.Duration) error {
	_, expires, err := EngineOf(db).LockTimes(ctx, db, ttl)
	if err != nil {
		return fmt.Errorf("refresh lock %s: %w", name, err)
	}
	res, err := db.ExecContext(ctx, `UPDATE locks SET expires = $1 WHERE name = $2 AND owner = $3`,
		expires, name, owner)
	if err != nil {
		return fmt.Errorf("refresh lock %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("refresh lock %s: %w", name, ErrLocked)
	}
	return nil
}

// Holds reports whether owner holds the named lock unexpired, read in tx
// of a database of engine e: work claimed in the same transaction is
// claimed only by the holder.
func Holds(ctx context.Context, tx *sql.Tx, e Engine, name, owner string) (bool, error) {
	now, _, err := e.LockTimes(ctx, tx, 0)
	if err != nil {
		return false, fmt.Errorf("check lock %s: %w", name, err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM locks WHERE name = $1 AND owner = $2 AND expires >= $3`,
		name, owner, now).Scan(&n); err != nil {
		return false, fmt.Errorf("check lock %s: %w", name, err)
	}
	return n > 0, nil
}

// Release drops the named lock if owner holds it.
func Release(ctx context.Context, db *sql.DB, name, owner string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("release lock %s: %w", name, err)
	}
	return nil
}

// Lock is a row of the lock table, for `msitfeed status`.
type Lock struct {
	Name     string
	Owner    string
	Acquired time.Time
	Expires  time.Time
	Expired  bool // by the database's clock
}

// Locks returns every lock row, expired or not, by name.
func Locks(ctx context.Context, db *sql.DB) ([]Lock, error) {
	now, _, err := EngineOf(db).LockTimes(ctx, db, 0)
	if err != nil {
		return nil, fmt.Errorf("read locks: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name, owner, acquired, expires, expires < $1 FROM locks ORDER BY name`, now)
	if err != nil {
		return nil, fmt.Errorf("read locks: %w", err)
	}
	defer rows.Close()
	var out []Lock
	for rows.Next() {
		var l Lock
		var acq, exp string
		if err := rows.Scan(&l.Name, &l.Owner, &acq, &exp, &l.Expired); err != nil {
			return nil, fmt.Errorf("read locks: %w", err)
		}
		l.Acquired, _ = time.Parse(time.RFC3339Nano, acq)
		l.Expires, _ = time.Parse(time.RFC3339Nano, exp)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Setting returns the value stored under key, or "" if none.
func Setting(ctx context.Context, db *sql.DB, key string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
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
	if _, err := db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING`, key, value); err != nil {
		return "", fmt.Errorf("store setting %s: %w", key, err)
	}
	return Setting(ctx, db, key)
}
