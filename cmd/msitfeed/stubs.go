package main

import (
	"context"
	"database/sql"

	"github.com/msitfeed/msitfeed/internal/config"
)

// Placeholders replaced by each command's own file as it lands.

func (m *Main) runStatus(ctx context.Context, configPath string, args []string) error {
	return usagef("status: not built yet")
}

// digestJob returns the scheduled digest run, or nil while mail is not set up.
func (m *Main) digestJob(cfg config.Config, d *sql.DB) (func(context.Context) error, error) {
	return nil, nil
}
