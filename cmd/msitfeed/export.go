package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
)

// runFeeds runs `msitfeed feeds export --dir D`.
func (m *Main) runFeeds(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		return usagef("feeds: use msitfeed feeds export --dir D")
	}
	fs := m.newFlagSet("feeds export")
	dir := fs.String("dir", "", "directory to write the feed files into")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("feeds export: --dir is required (the directory to write feeds into)")
	}
	if fs.NArg() > 0 {
		return usagef("feeds export: unexpected argument %q", fs.Arg(0))
	}
	for _, el := range strings.FieldsFunc(*dir, func(r rune) bool { return r == '/' || r == filepath.Separator }) {
		if el == ".." {
			return usagef("feeds export: --dir %q must not contain \"..\"; give the path without it", *dir)
		}
	}
	cfg, d, err := m.open(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	opts := feeds.Options{BaseURL: cfg.BaseURL, SourceURL: cfg.Source.URL, Limit: cfg.Feeds.Limit}
	store, err := newStore(cfg, d)
	if err != nil {
		return err
	}
	if err := feeds.ExportAll(ctx, store, opts, *dir); err != nil {
		return err
	}
	n := (len(store.Registry.Slugs()) + 1) * len(feeds.Formats())
	fmt.Fprintf(m.Stdout, "wrote %d feeds to %s\n", n, *dir)
	return nil
}
