package storecopy

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/msitfeed/msitfeed/internal/db"
)

// migrationsTable is the migrations' own bookkeeping: each store writes it
// by migrating itself, so it is compared, never copied.
const migrationsTable = "schema_migrations"

// column is one column of a table as the database declares it.
type column struct {
	name string
	typ  string // the declared type, lower case: "integer", "text", "bigint", "bytea"
}

// table is what a copy needs to know of one table.
type table struct {
	name string
	cols []column // in the order the table declares them
	pk   []string // primary key columns in key order; empty if none
	refs []string // tables its foreign keys refer to
}

// col returns the column named name, and whether there is one.
func (t table) col(name string) (column, bool) {
	for _, c := range t.cols {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tables reads the tables of the database behind q (the engine's catalogue:
// this is the one place that must ask each engine differently), without
// the migrations table, ordered so that every table comes after the tables
// its foreign keys refer to.
func tables(ctx context.Context, q querier, e db.Engine) ([]table, error) {
	var names []string
	var err error
	if e == db.Postgres {
		names, err = strings1(ctx, q, `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	} else {
		names, err = strings1(ctx, q, `SELECT name FROM sqlite_master
			WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	}
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var ts []table
	for _, name := range names {
		if name == migrationsTable {
			continue
		}
		t := table{name: name}
		if e == db.Postgres {
			err = postgresTable(ctx, q, &t)
		} else {
			err = sqliteTable(ctx, q, &t)
		}
		if err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", name, err)
		}
		ts = append(ts, t)
	}
	return order(ts)
}

func sqliteTable(ctx context.Context, q querier, t *table) error {
	rows, err := q.QueryContext(ctx, `SELECT name, lower(type), pk FROM pragma_table_info(?) ORDER BY cid`, t.name)
	if err != nil {
		return err
	}
	defer rows.Close()
	pk := map[int]string{}
	for rows.Next() {
		var c column
		var pos int
		if err := rows.Scan(&c.name, &c.typ, &pos); err != nil {
			return err
		}
		t.cols = append(t.cols, c)
		if pos > 0 {
			pk[pos] = c.name
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := 1; i <= len(pk); i++ {
		t.pk = append(t.pk, pk[i])
	}
	t.refs, err = strings1(ctx, q, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, t.name)
	return err
}

func postgresTable(ctx context.Context, q querier, t *table) error {
	rows, err := q.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t.name)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			return err
		}
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	t.pk, err = strings1(ctx, q, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = quote_ident($1)::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, t.name)
	if err != nil {
		return err
	}
	t.refs, err = strings1(ctx, q, `SELECT DISTINCT r.relname FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
		WHERE c.conrelid = quote_ident($1)::regclass AND c.contype = 'f'`, t.name)
	return err
}

// strings1 returns the one text column of query's rows.
func strings1(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// order sorts ts so that each table follows the tables it refers to (a
// table's reference to itself aside), by name among tables free to go.
func order(ts []table) ([]table, error) {
	byName := map[string]table{}
	for _, t := range ts {
		byName[t.name] = t
	}
	done := map[string]bool{}
	var out []table
	for len(out) < len(ts) {
		var ready []string
		for _, t := range ts {
			if done[t.name] {
				continue
			}
			ok := true
			for _, r := range t.refs {
				if _, known := byName[r]; known && r != t.name && !done[r] {
					ok = false
				}
			}
			if ok {
				ready = append(ready, t.name)
			}
		}
		if len(ready) == 0 {
			var left []string
			for _, t := range ts {
				if !done[t.name] {
					left = append(left, t.name)
				}
			}
			return nil, fmt.Errorf("the foreign keys of tables %s refer to each other in a cycle", strings.Join(left, ", "))
		}
		sort.Strings(ready)
		for _, name := range ready {
			done[name] = true
			out = append(out, byName[name])
		}
	}
	return out, nil
}

// sameSchema reports how the target's tables differ from the source's, nil
// if they have the same tables with the same column names.
func sameSchema(src, dst []table) error {
	dstByName := map[string]table{}
	for _, t := range dst {
		dstByName[t.name] = t
	}
	for _, s := range src {
		d, ok := dstByName[s.name]
		if !ok {
			return fmt.Errorf("the target has no table %s", s.name)
		}
		delete(dstByName, s.name)
		for _, c := range s.cols {
			if _, ok := d.col(c.name); !ok {
				return fmt.Errorf("the target's table %s has no column %s", s.name, c.name)
			}
		}
		for _, c := range d.cols {
			if _, ok := s.col(c.name); !ok {
				return fmt.Errorf("the source's table %s has no column %s", s.name, c.name)
			}
		}
	}
	for name := range dstByName {
		return fmt.Errorf("the source has no table %s", name)
	}
	return nil
}

// migrationNames returns the migrations recorded as applied in q's store.
func migrationNames(ctx context.Context, q querier) ([]string, error) {
	names, err := strings1(ctx, q, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read the applied migrations: %w", err)
	}
	return names, nil
}

// sameVersion reports how two stores' applied migrations differ.
func sameVersion(src, dst []string) error {
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, s := range src {
		if !in(dst, s) {
			return fmt.Errorf("the source has migration %s and the target not (made by a newer msitfeed? run the copy with that version)", s)
		}
	}
	for _, d := range dst {
		if !in(src, d) {
			return fmt.Errorf("the target has migration %s and the source not (made by a newer msitfeed? run the copy with that version)", d)
		}
	}
	return nil
}
