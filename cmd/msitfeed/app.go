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

// open loads the configuration and opens its database (applying
// migrations); the caller closes the database.
func (m *Main) open(ctx context.Context, configPath string) (config.Config, *sql.DB, error) {
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return cfg, nil, err
	}
	d, err := db.Open(ctx, cfg.Database)
	return cfg, d, err
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
