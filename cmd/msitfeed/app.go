package main

import (
	"context"
	"database/sql"
	"flag"
	"io"
	"log/slog"
	"sync"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// loadConfig loads the configuration; a bad file or value, boards
// included, is a UsageError.
func (m *Main) loadConfig(path string) (config.Config, error) {
	c, err := config.Load(path, m.Environ)
	if err != nil {
		return c, &UsageError{Msg: err.Error()}
	}
	if _, err := boardRegistry(c); err != nil {
		return c, err
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
	d, err := db.OpenPool(ctx, cfg.Database, dbPool(cfg))
	return cfg, d, err
}

// dbPool is the connection pool cfg asks for.
func dbPool(cfg config.Config) db.Pool {
	return db.Pool{
		MaxConns:        cfg.DatabaseMaxConns,
		MaxIdleConns:    cfg.DatabaseMaxIdleConns,
		ConnMaxLifetime: cfg.DatabaseConnMaxLifetime,
		ConnectTimeout:  cfg.DatabaseConnectTimeout,
	}
}

// boardRegistry returns the boards of cfg: the five built in, then every
// [boards.<slug>] that adds a board of the site by its list_url. Every
// command builds it from the configuration and hands it to the store, the
// subscribers, the mailer and the pages; a board it refuses is a
// UsageError.
func boardRegistry(cfg config.Config) (*feeds.Registry, error) {
	var configured []feeds.Board
	for slug, b := range cfg.Boards {
		if config.IsBuiltinBoard(slug) {
			continue
		}
		a, err := config.ParseListURL(b.ListURL, cfg.Source.URL)
		if err != nil {
			return nil, usagef("config boards.%s.list_url: %v", slug, err)
		}
		if b.BBSSeqNo != "" {
			a.BBSSeqNo = b.BBSSeqNo
		}
		configured = append(configured, feeds.Board{Slug: slug, Name: b.Name, MID: a.MID, MPID: a.MPID,
			BBSSeqNo: a.BBSSeqNo, Gallery: b.Gallery, Lang: b.Lang, SCode: a.SCode, Dir: a.Dir, Configured: true})
	}
	reg, err := feeds.NewRegistry(configured...)
	if err != nil {
		return nil, usagef("config boards: %v", err)
	}
	return reg, nil
}

// newStore returns the item store over d reading the boards of cfg.
func newStore(cfg config.Config, d *sql.DB) (*feeds.Store, error) {
	reg, err := boardRegistry(cfg)
	if err != nil {
		return nil, err
	}
	store := feeds.NewStore(d)
	store.Registry = reg
	return store, nil
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
		m.log = slog.New(slog.NewTextHandler(m.logWriter(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return m.log
}

// logWriter returns Stderr for the logs: the logger and the access log
// write through it, one whole line or batch of lines at a time.
func (m *Main) logWriter() io.Writer {
	if m.logOut == nil {
		m.logOut = &lockedWriter{w: m.Stderr}
	}
	return m.logOut
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
