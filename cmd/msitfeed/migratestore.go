package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/storecopy"
)

// runMigrateStore copies every row of the store --from names into the
// empty store --to names (storecopy.Copy): each is an SQLite file path or
// a postgres:// URL. The target is migrated first, to the version of this
// msitfeed, and must hold no rows; the copy is one transaction on it, so a
// failure leaves it without rows. It prints each table's row count and
// hash, equal on both stores, and logs each table as it is copied. It
// reads no config: both stores are named on the command line.
func (m *Main) runMigrateStore(ctx context.Context, args []string) error {
	fs := m.newFlagSet("migrate-store")
	from := fs.String("from", "", "the store to copy: an SQLite file or a postgres:// URL")
	to := fs.String("to", "", "the empty store to copy into: a postgres:// URL or an SQLite file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("migrate-store takes no arguments, got %q (use --from and --to)", fs.Arg(0))
	case *from == "":
		return usagef("migrate-store: --from is required: the store to copy (an SQLite file or a postgres:// URL)")
	case *to == "":
		return usagef("migrate-store: --to is required: the empty store to copy into (a postgres:// URL or an SQLite file)")
	case sameStore(*from, *to):
		return usagef("migrate-store: --from and --to name the same store %s", redactDSN(*from))
	}
	if db.EngineForDSN(*from) == db.SQLite {
		if _, err := os.Stat(*from); err != nil {
			return fmt.Errorf("migrate-store: --from %s: no such database file", *from)
		}
	}
	// Look at the target before anything migrates it: a store that is not
	// empty is refused unchanged.
	if err := storecopy.CheckTarget(ctx, *to); err != nil {
		return fmt.Errorf("migrate-store: --to %s: %w", redactDSN(*to), err)
	}
	src, err := db.Open(ctx, *from)
	if err != nil {
		return fmt.Errorf("migrate-store: --from: %w", err)
	}
	defer src.Close()
	dst, err := db.Open(ctx, *to)
	if err != nil {
		return fmt.Errorf("migrate-store: --to: %w", err)
	}
	defer dst.Close()

	start := time.Now()
	log := m.logger()
	copied, err := storecopy.Copy(ctx, src, dst, func(t storecopy.Table) {
		log.Info("copied", "table", t.Name, "rows", t.Rows, "elapsed", time.Since(start).Round(time.Millisecond))
	})
	if errors.Is(err, storecopy.ErrNotEmpty) {
		return fmt.Errorf("migrate-store: --to %s: %w", redactDSN(*to), err)
	}
	if err != nil {
		return fmt.Errorf("migrate-store: %w (the target has no rows written)", err)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tROWS\tSHA-256 (SOURCE = TARGET)")
	var rows int64
	for _, t := range copied {
		fmt.Fprintf(w, "%s\t%d\t%s\n", t.Name, t.Rows, t.Hash)
		rows += t.Rows
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "copied %d rows of %d tables from %s to %s in %s; counts and hashes equal\n",
		rows, len(copied), redactDSN(*from), redactDSN(*to), time.Since(start).Round(time.Millisecond))
	return nil
}

// sameStore reports whether two database settings name one store: the
// same URL, or paths to the same file.
func sameStore(a, b string) bool {
	if a == b {
		return true
	}
	if db.EngineForDSN(a) == db.Postgres || db.EngineForDSN(b) == db.Postgres {
		return false
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	ai, err1 := os.Stat(a)
	bi, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// redactDSN returns a database setting fit for a message: a URL without
// its password, a path as it is.
func redactDSN(dsn string) string {
	if db.EngineForDSN(dsn) != db.Postgres {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a postgres:// URL that does not parse)"
	}
	return u.Redacted()
}
