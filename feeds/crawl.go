package feeds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Source is what the crawl loop needs of a site: resolving board ids, a page
// of a board's list, one post's detail, and a count of requests made.
type Source interface {
	Discover(ctx context.Context, boards []Board) ([]Board, error)
	List(ctx context.Context, board Board, page int) (ListPage, error)
	Detail(ctx context.Context, board Board, id int64) (Item, error)
	Requests() int64
}

// Crawler runs crawls of a Source into a Store.
type Crawler struct {
	Store  *Store
	Source Source
	Logger *slog.Logger
	// Overrides are board ids set in the configuration; they win over
	// discovered ones.
	Overrides map[string]Board
	// BackfillPages is how many pages a board with no stored items crawls.
	BackfillPages int
	// MaxPages bounds an incremental crawl that keeps finding new posts.
	MaxPages int
	// Progress, if set, receives a line per page for long crawls.
	Progress io.Writer
	// OnRun, if set, is called with every finished run (for metrics).
	OnRun func(CrawlRun)

	// A post's body can be edited without its list row changing, and only
	// its page shows that. After its list walk, each board's crawl fetches
	// again up to RevisitMax stored posts published within RevisitWindow
	// whose pages were last fetched more than RevisitAfter ago, the longest
	// unchecked first. RevisitMax 0 turns this off.
	RevisitWindow time.Duration
	RevisitAfter  time.Duration
	RevisitMax    int
}

// CrawlOptions selects what one crawl does.
type CrawlOptions struct {
	Boards []string // slugs; empty means all
	Pages  int      // >0: backfill this many pages, not stopping at known posts
}

// ErrCrawlFailed is wrapped by Crawl's error when at least one board failed.
var ErrCrawlFailed = errors.New("crawl failed")

// Crawl crawls the chosen boards one after another and records a run for
// each. A board that fails is recorded with its error and the others go on;
// the returned error then names every failed board. Nothing stored is ever
// deleted: a failure leaves items and feeds as they were.
func (c *Crawler) Crawl(ctx context.Context, opts CrawlOptions) ([]CrawlRun, error) {
	log := c.logger()
	boards, discoverErr, err := c.resolveBoards(ctx, opts.Boards)
	if err != nil {
		return nil, err
	}
	var runs []CrawlRun
	var failed []error
	for _, b := range boards {
		if ctx.Err() != nil {
			break
		}
		var run CrawlRun
		if !b.Resolved() {
			run = c.recordUnresolved(ctx, b, discoverErr)
		} else {
			run = c.crawlBoard(ctx, b, opts.Pages)
		}
		runs = append(runs, run)
		if c.OnRun != nil {
			c.OnRun(run)
		}
		if run.Error != "" {
			log.Error("crawl failed", "board", b.Slug, "pages", run.Pages, "requests", run.Requests, "err", run.Error)
			failed = append(failed, fmt.Errorf("%s: %s", b.Slug, run.Error))
		} else if run.Degraded != "" {
			log.Warn("crawled, degraded", "board", b.Slug, "pages", run.Pages, "requests", run.Requests, "new", run.New, "updated", run.Updated,
				"revisited", run.Revisited, "rows", run.ListRows, "missing_title", run.MissingTitle, "missing_date", run.MissingDate,
				"missing_department", run.MissingDepartment, "degraded", run.Degraded)
		} else {
			log.Info("crawled", "board", b.Slug, "pages", run.Pages, "requests", run.Requests, "new", run.New, "updated", run.Updated, "revisited", run.Revisited)
		}
	}
	if err := ctx.Err(); err != nil {
		return runs, fmt.Errorf("crawl: %w", err)
	}
	if len(failed) > 0 {
		return runs, fmt.Errorf("%w: %w", ErrCrawlFailed, errors.Join(failed...))
	}
	return runs, nil
}

func (c *Crawler) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// resolveBoards returns the chosen boards of the store's registry with
// their ids: for a built-in board, stored ids, overridden by configured
// ones, and discovered from the site for any still unknown; a board added
// by configuration has the ids of its list_url and is never discovered. A
// board discovery could not resolve is returned unresolved and its crawl
// records the discovery error.
//
//nolint:staticcheck // the middle error is per-board data, not the call's failure.
func (c *Crawler) resolveBoards(ctx context.Context, slugs []string) ([]Board, error, error) {
	for _, s := range slugs {
		if !c.Store.Registry.Has(s) {
			return nil, nil, fmt.Errorf("crawl: unknown board %q (use one of %v)", s, c.Store.Registry.Slugs())
		}
	}
	all, err := c.Store.Boards(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i, b := range all {
		if o, ok := c.Overrides[b.Slug]; ok && !b.Configured {
			if o.MID != "" {
				all[i].MID = o.MID
			}
			if o.MPID != "" {
				all[i].MPID = o.MPID
			}
			if o.BBSSeqNo != "" {
				all[i].BBSSeqNo = o.BBSSeqNo
			}
		}
	}
	var chosen []Board
	for _, b := range all {
		if len(slugs) == 0 || contains(slugs, b.Slug) {
			chosen = append(chosen, b)
		}
	}
	var unknown []Board
	for _, b := range chosen {
		if !b.Resolved() && !b.Configured {
			unknown = append(unknown, b)
		}
	}
	if len(unknown) == 0 {
		return chosen, nil, nil
	}
	found, derr := c.Source.Discover(ctx, unknown)
	// Discover fills what it can even when it returns an error for the rest.
	for i, b := range chosen {
		for _, f := range found {
			if f.Slug == b.Slug && f.Resolved() && !b.Resolved() {
				chosen[i].MID, chosen[i].MPID = f.MID, f.MPID
				if chosen[i].BBSSeqNo == "" {
					chosen[i].BBSSeqNo = f.BBSSeqNo
				}
				if err := c.Store.SaveBoard(ctx, chosen[i]); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	if derr == nil {
		derr = errors.New("discovery returned no ids")
	}
	return chosen, derr, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// recordUnresolved records a failed run for a board whose ids are unknown.
func (c *Crawler) recordUnresolved(ctx context.Context, b Board, discoverErr error) CrawlRun {
	run := CrawlRun{Board: b.Slug, Started: c.Store.Now()}
	id, err := c.Store.StartRun(ctx, b.Slug)
	run.ID = id
	run.Error = fmt.Sprintf("board ids unknown (set boards.%s.mid and .mpid in the config): %v", b.Slug, discoverErr)
	if err == nil {
		if err := c.Store.FinishRun(ctx, run); err != nil {
			c.logger().Error("record crawl run", "board", b.Slug, "err", err)
		}
	}
	return run
}

// crawlBoard crawls one board and records the run. With pages > 0 it reads
// that many pages whatever it finds; otherwise it reads from page 1 and stops
// at the first page holding only known, unchanged posts (a board with no
// stored posts backfills BackfillPages pages).
func (c *Crawler) crawlBoard(ctx context.Context, b Board, pages int) CrawlRun {
	run := CrawlRun{Board: b.Slug, Started: c.Store.Now()}
	startReq := c.Source.Requests()
	prev, err := c.Store.LastRun(ctx, b.Slug)
	if err != nil {
		run.Error = err.Error()
		return run
	}
	// After a failed or interrupted run, pages past the first may hold posts
	// never fetched: walk the backfill depth again instead of stopping at
	// the first page of known posts.
	resume := prev.ID != 0 && (prev.Error != "" || prev.Finished.IsZero())
	id, err := c.Store.StartRun(ctx, b.Slug)
	if err != nil {
		run.Error = err.Error()
		return run
	}
	run.ID = id
	err = c.walk(ctx, b, pages, resume, prev, &run)
	if err == nil && ctx.Err() == nil {
		err = c.revisit(ctx, b, &run)
	}
	run.Requests = c.Source.Requests() - startReq
	if err != nil {
		run.Error = err.Error()
	}
	// Record the end even if ctx was cancelled, so the run is not left open.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := c.Store.FinishRun(fctx, run); ferr != nil {
		c.logger().Error("record crawl run", "board", b.Slug, "err", ferr)
	}
	run.Finished = c.Store.Now()
	return run
}

func (c *Crawler) walk(ctx context.Context, b Board, pages int, resume bool, prev CrawlRun, run *CrawlRun) error {
	backfill := pages > 0
	limit := pages
	stored, err := c.Store.count(ctx, b.Slug)
	if err != nil {
		return err
	}
	if !backfill {
		n := stored
		if n == 0 || resume {
			backfill, limit = true, max(c.BackfillPages, 1)
		} else {
			limit = c.MaxPages
			if limit <= 0 {
				limit = 50
			}
		}
	}
	var detailErrs []error
	for page := 1; page <= limit; page++ {
		lp, err := c.Source.List(ctx, b, page)
		if err != nil {
			return err
		}
		run.Pages++
		if b.BBSSeqNo == "" && lp.BBSSeqNo != "" {
			b.BBSSeqNo = lp.BBSSeqNo
			if err := c.Store.SaveBoard(ctx, b); err != nil {
				return err
			}
		}
		if len(lp.Rows) == 0 {
			if page == 1 && stored > 0 {
				run.Degraded = fmt.Sprintf("the site lists nothing where %d posts were before (nothing stored was changed)", stored)
			}
			break
		}
		countFields(lp, page, prev, run)
		ids := make([]int64, len(lp.Rows))
		for i, r := range lp.Rows {
			ids[i] = r.ID
		}
		known, err := c.Store.Known(ctx, b.Slug, ids)
		if err != nil {
			return err
		}
		fresh := 0
		for _, row := range lp.Rows {
			old, ok := known[row.ID]
			changed, lh := ListChanged(old, row)
			if ok && !changed {
				if lh != old {
					if err := c.Store.SetListHash(ctx, b.Slug, row.ID, lh); err != nil {
						return &storeError{err}
					}
				}
				continue
			}
			fresh++
			res, err := c.fetchAndSave(ctx, b, row, lh)
			if err != nil {
				var se *storeError
				if ctx.Err() != nil || errors.As(err, &se) {
					return err
				}
				detailErrs = append(detailErrs, err)
				continue
			}
			switch res {
			case Created:
				run.New++
			case Updated:
				run.Updated++
			}
		}
		c.progress(b, page, limit, lp.LastPage, run)
		if !backfill && fresh == 0 {
			break
		}
		if lp.LastPage > 0 && page >= lp.LastPage {
			break
		}
	}
	if len(detailErrs) > 0 {
		return fmt.Errorf("%d posts not fetched: %w", len(detailErrs), detailErrs[0])
	}
	return nil
}

// revisit fetches again the pages of b's recent posts that are due (see
// Crawler.RevisitMax) and saves them; an edit becomes an update. A post
// that cannot be fetched (removed from the site, say) is logged and marked
// checked, and does not fail the run: the list walk before it already
// showed the site answering.
func (c *Crawler) revisit(ctx context.Context, b Board, run *CrawlRun) error {
	if c.RevisitMax <= 0 {
		return nil
	}
	now := c.Store.Now()
	due, err := c.Store.DueForRevisit(ctx, b.Slug, now.Add(-c.RevisitWindow), now.Add(-c.RevisitAfter), c.RevisitMax)
	if err != nil {
		return err
	}
	for _, row := range due {
		if ctx.Err() != nil {
			return nil
		}
		// The stored post stands in for its list row; an empty list hash
		// keeps the stored one.
		res, err := c.fetchAndSave(ctx, b, row, "")
		if err != nil {
			var se *storeError
			if errors.As(err, &se) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			c.logger().Warn("revisit failed", "board", b.Slug, "post", row.ID, "err", err)
			if err := c.Store.MarkChecked(ctx, b.Slug, row.ID); err != nil {
				return &storeError{err}
			}
			continue
		}
		run.Revisited++
		if res == Updated {
			run.Updated++
		}
	}
	return nil
}

func (c *Crawler) fetchAndSave(ctx context.Context, b Board, row ListRow, listHash string) (SaveResult, error) {
	it, err := c.Source.Detail(ctx, b, row.ID)
	if err != nil {
		return Unchanged, err
	}
	it.Board, it.ID = b.Slug, row.ID
	// A revisit (no list hash) has no fresh list row: the store keeps the
	// post's date when its page shows none.
	if it.Published.IsZero() && listHash != "" {
		from := "the day first seen"
		if !row.Published.IsZero() {
			it.Published, it.DateFrom, from = row.Published, DateFromList, "the list's date"
		}
		c.logger().Warn("post page shows no date", "board", b.Slug, "post", row.ID, "using", from)
	}
	if it.Department == "" {
		it.Department = row.Department
	}
	if it.Thumbnail == "" {
		it.Thumbnail = row.Thumbnail
	}
	if it.Title == "" {
		it.Title = row.Title
	}
	it.Title = CleanTitle(it.Title)
	if it.Title == "" {
		return Unchanged, fmt.Errorf("post %d: no title on its page or in its list row", row.ID)
	}
	it.Body = Sanitize(it.Body)
	res, err := c.Store.Save(ctx, it, listHash)
	if err != nil {
		return res, &storeError{err}
	}
	return res, nil
}

// storeError marks a failure to write, as opposed to a failure to fetch:
// the board's crawl stops at once rather than fetch posts it cannot keep
// (a full disk, a read-only database).
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func (c *Crawler) progress(b Board, page, limit, last int, run *CrawlRun) {
	if c.Progress == nil {
		return
	}
	total := limit
	if last > 0 && last < total {
		total = last
	}
	fmt.Fprintf(c.Progress, "\r%-10s page %d/%d  new %d  updated %d   ", b.Slug, page, total, run.New, run.Updated)
}
