// Package storecopy copies one msitfeed store into another — SQLite to
// PostgreSQL when moving to several instances, or any other pair — in one
// transaction on the target, and proves the copy equal: per table, the
// same number of rows and the same hash of the rows in primary-key order.
//
// It knows no table of msitfeed by name: it reads the tables, columns,
// primary keys and foreign keys of the source from the engine's catalogue,
// so a table or column added by a later migration is copied without a
// change here. Both stores must be migrated to the same version (each by
// opening it with db.Open); the migrations table itself is compared, not
// copied. Rows are streamed in batches, so memory does not grow with the
// size of the store.
package storecopy

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
)

// ErrNotEmpty is returned when the target store already holds rows: a copy
// writes only into an empty store, so that nothing there is overwritten or
// mixed with the copied rows.
var ErrNotEmpty = errors.New("the target is not empty")

// Table is what was copied of one table: its rows and the hash of their
// values in primary-key order, the same on the source and the target.
type Table struct {
	Name string
	Rows int64
	Hash string // hex SHA-256 of the normalised rows
}

// batchRows bounds the rows of one INSERT, batchBytes the text and bytes
// held for it, so that memory stays bounded however long the rows are.
const (
	batchRows  = 500
	batchBytes = 4 << 20
	// maxParams stays under SQLite's limit of bound parameters (32766);
	// PostgreSQL's is 65535.
	maxParams = 30000
	// connectTimeout bounds CheckTarget's first connection.
	connectTimeout = 10 * time.Second
)

// Copy copies every row of every table of src into dst, which must be
// empty and migrated to the same version, in one transaction on dst: on
// any error nothing is left written. Explicit ids are kept, and the
// sequences that number new rows are moved past them. Before committing it
// reads each table back from dst and compares its row count and hash with
// those of the rows read from src; a difference is an error and nothing is
// committed. It returns the tables in the order they were copied (each
// after the tables its foreign keys refer to). progress, if not nil, is
// given each table as soon as it is copied, before the verification.
//
// The source is read in one transaction, so the copy is of one moment; on
// SQLite that transaction holds the file's write lock, so a process still
// writing to the source waits (or fails) rather than writing rows the copy
// would miss.
func Copy(ctx context.Context, src, dst *sql.DB, progress func(Table)) ([]Table, error) {
	se, de := db.EngineOf(src), db.EngineOf(dst)
	var srcOpts *sql.TxOptions
	if se == db.Postgres {
		srcOpts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	stx, err := src.BeginTx(ctx, srcOpts)
	if err != nil {
		return nil, fmt.Errorf("read the source: %w", err)
	}
	defer stx.Rollback()
	dtx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("write the target: %w", err)
	}
	defer dtx.Rollback()
	// Two copies into one PostgreSQL take turns: the second finds rows.
	if err := de.LockTx(ctx, dtx, "migrate-store"); err != nil {
		return nil, err
	}

	srcVersion, err := migrationNames(ctx, stx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dstVersion, err := migrationNames(ctx, dtx)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if err := sameVersion(srcVersion, dstVersion); err != nil {
		return nil, err
	}
	srcTables, err := tables(ctx, stx, se)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dstTables, err := tables(ctx, dtx, de)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if err := sameSchema(srcTables, dstTables); err != nil {
		return nil, err
	}
	if err := checkEmpty(ctx, dtx, dstTables); err != nil {
		return nil, err
	}
	dstByName := map[string]table{}
	for _, t := range dstTables {
		dstByName[t.name] = t
	}

	var out []Table
	for _, t := range srcTables {
		got, err := copyTable(ctx, stx, se, dtx, de, t, dstByName[t.name])
		if err != nil {
			return nil, fmt.Errorf("copy table %s: %w", t.name, err)
		}
		out = append(out, got)
		if progress != nil {
			progress(got)
		}
	}
	for _, t := range srcTables {
		if err := de.ResetIdentity(ctx, dtx, t.name); err != nil {
			return nil, err
		}
	}
	// Read back what the target now holds, through its own driver and
	// catalogue, and compare.
	for i, t := range srcTables {
		n, sum, err := hashTable(ctx, dtx, de, dstByName[t.name], t.cols)
		if err != nil {
			return nil, fmt.Errorf("verify table %s: %w", t.name, err)
		}
		if n != out[i].Rows || sum != out[i].Hash {
			return nil, fmt.Errorf("verify table %s: the target has %d rows with hash %.16s, the source %d with %.16s; nothing was committed", t.name, n, sum, out[i].Rows, out[i].Hash)
		}
	}
	if err := dtx.Commit(); err != nil {
		return nil, fmt.Errorf("commit the copy: %w", err)
	}
	return out, nil
}

// Hash returns the row count and hash of every table of d (the migrations
// table aside), computed as Copy computes them, so that a store can be
// checked against a copy's report later.
func Hash(ctx context.Context, d *sql.DB) ([]Table, error) {
	e := db.EngineOf(d)
	ts, err := tables(ctx, d, e)
	if err != nil {
		return nil, err
	}
	out := make([]Table, 0, len(ts))
	for _, t := range ts {
		n, sum, err := hashTable(ctx, d, e, t, t.cols)
		if err != nil {
			return nil, fmt.Errorf("hash table %s: %w", t.name, err)
		}
		out = append(out, Table{Name: t.name, Rows: n, Hash: sum})
	}
	return out, nil
}

// CheckTarget reports whether the store dsn names could take a copy,
// without creating, migrating or writing anything: an SQLite file that
// does not exist yet (in a directory that does) or whose tables hold no
// rows, or a reachable PostgreSQL database whose tables hold no rows.
// A store with rows gives an error wrapping ErrNotEmpty.
func CheckTarget(ctx context.Context, dsn string) error {
	var d *sql.DB
	var err error
	if db.EngineForDSN(dsn) == db.Postgres {
		d, err = sql.Open("pgx", dsn)
	} else {
		if strings.Contains(dsn, "://") {
			return fmt.Errorf("not a postgres:// URL nor a file path")
		}
		info, statErr := os.Stat(dsn)
		switch {
		case errors.Is(statErr, os.ErrNotExist):
			dir := filepath.Dir(dsn)
			if di, err := os.Stat(dir); err != nil || !di.IsDir() {
				return fmt.Errorf("directory %s does not exist", dir)
			}
			return nil
		case statErr != nil:
			return statErr
		case info.IsDir():
			return fmt.Errorf("is a directory, not a database file")
		}
		d, err = sql.Open("sqlite", "file:"+dsn+"?mode=ro")
	}
	if err != nil {
		return err
	}
	defer d.Close()
	// A server that does not answer is reported, not waited for.
	pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := d.PingContext(pingCtx); err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	ts, err := tables(ctx, d, db.EngineForDSN(dsn))
	if err != nil {
		return err
	}
	return checkEmpty(ctx, d, ts)
}

// checkEmpty returns an error wrapping ErrNotEmpty naming the first of ts
// that holds a row.
func checkEmpty(ctx context.Context, q querier, ts []table) error {
	for _, t := range ts {
		rows, err := q.QueryContext(ctx, `SELECT 1 FROM `+quote(t.name)+` LIMIT 1`)
		if err != nil {
			return fmt.Errorf("read table %s: %w", t.name, err)
		}
		has := rows.Next()
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read table %s: %w", t.name, err)
		}
		if has {
			return fmt.Errorf("%w: table %s has rows (copy only into a new, empty store)", ErrNotEmpty, t.name)
		}
	}
	return nil
}

// copyTable streams the rows of src table t into the target's table dt,
// hashing them as they pass.
func copyTable(ctx context.Context, stx *sql.Tx, se db.Engine, dtx *sql.Tx, de db.Engine, t, dt table) (Table, error) {
	rows, err := stx.QueryContext(ctx, selectSQL(se, t, t.cols))
	if err != nil {
		return Table{}, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	dstTypes := make([]string, len(t.cols))
	for i, c := range t.cols {
		dc, _ := dt.col(c.name)
		dstTypes[i] = dc.typ
	}
	ins := newInserter(dtx, de, t)
	defer ins.close()
	h := newHasher()
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Table{}, fmt.Errorf("read: %w", err)
		}
		if err := h.row(vals); err != nil {
			return Table{}, err
		}
		for i, v := range vals {
			vals[i] = convert(v, de, dstTypes[i])
		}
		if err := ins.add(ctx, vals); err != nil {
			return Table{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return Table{}, fmt.Errorf("read: %w", err)
	}
	if err := ins.flush(ctx); err != nil {
		return Table{}, err
	}
	// The rows streamed are the rows the source's snapshot counts.
	var n int64
	if err := stx.QueryRowContext(ctx, `SELECT count(*) FROM `+quote(t.name)).Scan(&n); err != nil {
		return Table{}, fmt.Errorf("count: %w", err)
	}
	if n != h.rows {
		return Table{}, fmt.Errorf("read %d rows of the %d the source counts", h.rows, n)
	}
	return Table{Name: t.name, Rows: h.rows, Hash: h.sum()}, nil
}

// hashTable reads the rows of t through q, columns cols in that order, and
// returns their number and hash.
func hashTable(ctx context.Context, q querier, e db.Engine, t table, cols []column) (int64, string, error) {
	rows, err := q.QueryContext(ctx, selectSQL(e, t, cols))
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := newHasher()
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, "", err
		}
		if err := h.row(vals); err != nil {
			return 0, "", err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	return h.rows, h.sum(), nil
}

// selectSQL reads cols of t in primary-key order (every column when t has
// no key). Text compares byte by byte on both engines (SQLite's BINARY,
// PostgreSQL's "C"), so both give the rows in the same order whatever
// collation a column was declared with.
func selectSQL(e db.Engine, t table, cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quote(c.name)
	}
	key := t.pk
	if len(key) == 0 {
		for _, c := range t.cols {
			key = append(key, c.name)
		}
	}
	by := make([]string, len(key))
	for i, k := range key {
		c, _ := t.col(k)
		by[i] = quote(k)
		switch {
		case e != db.Postgres:
			by[i] += ` COLLATE BINARY`
		case c.typ == "text" || c.typ == "character varying" || c.typ == "character":
			by[i] += ` COLLATE "C"`
		}
	}
	return `SELECT ` + strings.Join(names, ", ") + ` FROM ` + quote(t.name) + ` ORDER BY ` + strings.Join(by, ", ")
}

// convert turns a value read from one engine into what the other's column
// of type typ takes where their drivers differ: PostgreSQL's boolean and
// bytea from SQLite's integer and text, and SQLite's integer from a bool.
// An empty byte string stays empty, not NULL.
func convert(v any, e db.Engine, typ string) any {
	// An empty BLOB reads as a nil slice, which both drivers would bind
	// as NULL.
	if b, ok := v.([]byte); ok && b == nil {
		return []byte{}
	}
	if e == db.Postgres {
		switch x := v.(type) {
		case int64:
			if typ == "boolean" {
				return x != 0
			}
		case string:
			if typ == "bytea" {
				return []byte(x)
			}
		}
		return v
	}
	if b, ok := v.(bool); ok {
		if b {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// hasher hashes rows of values normalised alike on both engines: integers
// and booleans as decimal integers (SQLite stores a boolean as 0 or 1),
// text and bytes as their bytes (SQLite keeps either in a TEXT column),
// floats in their shortest form, times as RFC 3339 in UTC, NULL apart.
type hasher struct {
	h    hash.Hash
	buf  []byte
	rows int64
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

func (h *hasher) row(vals []any) error {
	b := h.buf[:0]
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 'N')
		case int64:
			b = append(b, 'I')
			b = strconv.AppendInt(b, x, 10)
		case bool:
			if x {
				b = append(b, 'I', '1')
			} else {
				b = append(b, 'I', '0')
			}
		case float64:
			b = append(b, 'F')
			b = strconv.AppendFloat(b, x, 'g', -1, 64)
		case string:
			b = append(b, 'S')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case []byte:
			b = append(b, 'S')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case time.Time:
			s := x.UTC().Format(time.RFC3339Nano)
			b = append(b, 'S')
			b = strconv.AppendInt(b, int64(len(s)), 10)
			b = append(b, ':')
			b = append(b, s...)
		default:
			return fmt.Errorf("a value of type %T, which the copy does not know how to compare", v)
		}
		b = append(b, 0x1f)
	}
	b = append(b, 0x1e)
	h.h.Write(b)
	if cap(b) <= 64<<10 {
		h.buf = b // reuse, but do not keep a huge row's buffer
	}
	h.rows++
	return nil
}

func (h *hasher) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// inserter writes rows into one table of the target in multi-row INSERTs.
type inserter struct {
	tx      *sql.Tx
	e       db.Engine
	head    string // INSERT INTO t (cols) VALUES
	ncols   int
	perStmt int
	full    *sql.Stmt // the statement of a full batch, prepared once
	args    []any
	n       int
	bytes   int
}

func newInserter(tx *sql.Tx, e db.Engine, t table) *inserter {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = quote(c.name)
	}
	per := batchRows
	if len(t.cols) > 0 && maxParams/len(t.cols) < per {
		per = maxParams / len(t.cols)
	}
	return &inserter{
		tx: tx, e: e, ncols: len(t.cols), perStmt: per,
		head: `INSERT INTO ` + quote(t.name) + ` (` + strings.Join(names, ", ") + `) VALUES `,
	}
}

func (in *inserter) add(ctx context.Context, vals []any) error {
	in.args = append(in.args, vals...)
	in.n++
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			in.bytes += len(x)
		case []byte:
			in.bytes += len(x)
		}
	}
	if in.n >= in.perStmt || in.bytes >= batchBytes {
		return in.flush(ctx)
	}
	return nil
}

func (in *inserter) flush(ctx context.Context) error {
	if in.n == 0 {
		return nil
	}
	var err error
	if in.n == in.perStmt {
		if in.full == nil {
			in.full, err = in.tx.PrepareContext(ctx, in.head+in.e.ValuesRows(in.n, in.ncols, ""))
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		_, err = in.full.ExecContext(ctx, in.args...)
	} else {
		_, err = in.tx.ExecContext(ctx, in.head+in.e.ValuesRows(in.n, in.ncols, ""), in.args...)
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	clear(in.args) // let the batch's values go
	in.args = in.args[:0]
	in.n, in.bytes = 0, 0
	return nil
}

// close lets the prepared statement go.
func (in *inserter) close() {
	if in.full != nil {
		in.full.Close()
	}
}

// quote quotes an identifier for either engine.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
