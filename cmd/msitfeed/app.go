package main

import (
	"context"
	"database/sql"
	"flag"
	"io"
	"log/slog"

	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// loadConfig loads the configuration; a bad file or value is a UsageError.
func (m *Main) loadConfig(path string) (config.Config, error) {
	c, err := config.Load(path, m.Environ)
	if err != nil {
		return c, &UsageError{Msg: err.Error()}
	}
	return c, nil
}

// openDB opens the configured database and applies migrations.
func (m *Main) openDB(ctx context.Context, c config.Config) (*sql.DB, error) {
	return db.Open(ctx, c.Database)
}

// newFlagSet returns a FlagSet that reports errors as UsageErrors instead of
// exiting, and prints usage to stderr.
func (m *Main) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args, turning flag errors into UsageErrors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// logger returns the structured logger writing to stderr.
func (m *Main) logger() *slog.Logger {
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return m.log
}
