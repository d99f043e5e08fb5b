package feeds

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CrawlRun records one crawl of one board.
type CrawlRun struct {
	ID       int64
	Board    string
	Started  time.Time
	Finished time.Time
	Pages    int
	Requests int64
	New      int
	Updated  int
	// Revisited counts stored posts whose pages were fetched again to
	// notice edits the list did not show.
	Revisited int
	Error     string

	// What the list pages let the crawl read: rows seen, and rows whose
	// title, date or department could not be read.
	ListRows          int
	MissingTitle      int
	MissingDate       int
	MissingDepartment int
	// Degraded, when not empty, says in one line what the site stopped
	// showing (a field missing from most rows of a page, or a list that
	// shows nothing where posts were stored). A degraded run still stores
	// what it read; it is not an error.
	Degraded string
}

// Missing returns the counts of list rows lacking each field, by the field
// names metrics and logs use.
func (r CrawlRun) Missing() map[string]int {
	return map[string]int{"title": r.MissingTitle, "date": r.MissingDate, "department": r.MissingDepartment}
}

// StartRun records the start of a crawl of board and returns its id.
func (s *Store) StartRun(ctx context.Context, board string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO crawl_runs (board, started) VALUES ($1, $2) RETURNING id`,
		board, formatTime(s.Now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record crawl start of %s: %w", board, err)
	}
	return id, nil
}

// FinishRun records the end of a crawl run.
func (s *Store) FinishRun(ctx context.Context, r CrawlRun) error {
	_, err := s.db.ExecContext(ctx, `UPDATE crawl_runs SET finished = $1, pages = $2, requests = $3, new_items = $4,
		updated_items = $5, revisited = $6, error = $7, list_rows = $8, missing_title = $9, missing_date = $10,
		missing_department = $11, degraded = $12 WHERE id = $13`,
		formatTime(s.Now()), r.Pages, r.Requests, r.New, r.Updated, r.Revisited, r.Error,
		r.ListRows, r.MissingTitle, r.MissingDate, r.MissingDepartment, r.Degraded, r.ID)
	if err != nil {
		return fmt.Errorf("record crawl end of %s: %w", r.Board, err)
	}
	return nil
}

// LastCrawl returns when board's last finished crawl ended (any board's for
// AllSlug), zero if none did.
func (s *Store) LastCrawl(ctx context.Context, board string) (time.Time, error) {
	var t string
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(finished), '') FROM crawl_runs
		WHERE finished <> '' AND (board = $1 OR $1 = '`+AllSlug+`')`, board).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("read last crawl of %s: %w", board, err)
	}
	return parseTime(t), nil
}

// LastRuns returns the latest crawl run of each board.
func (s *Store) LastRuns(ctx context.Context) (map[string]CrawlRun, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+`
		FROM crawl_runs WHERE id IN (SELECT max(id) FROM crawl_runs GROUP BY board)`)
	if err != nil {
		return nil, fmt.Errorf("read crawl runs: %w", err)
	}
	defer rows.Close()
	out := map[string]CrawlRun{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("read crawl runs: %w", err)
		}
		out[r.Board] = r
	}
	return out, rows.Err()
}

// LastRun returns the latest crawl run of board, or a zero CrawlRun.
func (s *Store) LastRun(ctx context.Context, board string) (CrawlRun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+`
		FROM crawl_runs WHERE board = $1 ORDER BY id DESC LIMIT 1`, board))
	if errors.Is(err, sql.ErrNoRows) {
		return CrawlRun{}, nil
	}
	if err != nil {
		return r, fmt.Errorf("read last crawl run of %s: %w", board, err)
	}
	return r, nil
}

const runColumns = `id, board, started, finished, pages, requests, new_items, updated_items, revisited, error,
	list_rows, missing_title, missing_date, missing_department, degraded`

func scanRun(row interface{ Scan(...any) error }) (CrawlRun, error) {
	var r CrawlRun
	var started, finished string
	err := row.Scan(&r.ID, &r.Board, &started, &finished, &r.Pages, &r.Requests, &r.New, &r.Updated, &r.Revisited, &r.Error,
		&r.ListRows, &r.MissingTitle, &r.MissingDate, &r.MissingDepartment, &r.Degraded)
	r.Started, r.Finished = parseTime(started), parseTime(finished)
	return r, err
}
