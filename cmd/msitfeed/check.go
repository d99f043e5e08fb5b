package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit"
	"github.com/msitfeed/msitfeed/internal/config"
)

// Where a board's ids came from, as check reports them.
const (
	fromConfig     = "configured"
	fromBuiltin    = "built-in"
	fromDiscovered = "discovered"
	fromListURL    = "list_url"
	fromListPage   = "list page"
)

// reportPage is the advice of every problem that looks like a change of the
// site's markup.
const reportPage = "the site's markup may have changed: run 'msitfeed check --save DIR' and report the page"

// boardFlag is --board, given several times or as a comma list.
type boardFlag []string

func (f *boardFlag) String() string { return strings.Join(*f, ",") }

func (f *boardFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(*f, s) {
			*f = append(*f, s)
		}
	}
	return nil
}

// boardCheck is what check learns of one board.
type boardCheck struct {
	board            feeds.Board
	idsFrom, bbsFrom string
	problems, notes  []string
}

func (c *boardCheck) problem(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

func (c *boardCheck) note(format string, a ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, a...))
}

// runCheck runs `msitfeed check [--board B] [--save DIR]`: it reads page 1
// of every board and its newest post from the live site, through the
// crawler's polite client, and says what each one let it read. It never
// opens the database, so it can run before one exists.
func (m *Main) runCheck(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("check")
	var only boardFlag
	fs.Var(&only, "board", "check only this board (repeat, or a comma list)")
	saveDir := fs.String("save", "", "write every page fetched, with a .json sidecar, into this directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("check: unexpected argument %q (use --board B or --save DIR)", fs.Arg(0))
	}
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return err
	}
	reg, err := boardRegistry(cfg)
	if err != nil {
		return err
	}
	for _, s := range only {
		if !reg.Has(s) {
			return usagef("check: unknown board %q (use one of %s)", s, strings.Join(reg.Slugs(), ", "))
		}
	}
	var saver *pageSaver
	if *saveDir != "" {
		if saver, err = newPageSaver(*saveDir); err != nil {
			return usagef("check: --save %s: %v (give a directory msitfeed can create and write)", *saveDir, err)
		}
	}
	var onResponse func(string, int, http.Header, []byte)
	if saver != nil {
		onResponse = saver.save
	}
	source, err := m.newSource(cfg, onResponse)
	if err != nil {
		return err
	}
	base, _ := url.Parse(cfg.Source.URL) // newSource has parsed it

	var chosen []feeds.Board
	for _, b := range reg.Boards() {
		if len(only) == 0 || slices.Contains(only, b.Slug) {
			chosen = append(chosen, b)
		}
	}
	checks := m.resolveForCheck(ctx, cfg, source, saver, chosen)

	var problems []string
	failed := 0
	for _, c := range checks {
		if ctx.Err() != nil {
			return fmt.Errorf("check: %w", ctx.Err())
		}
		saver.forBoard(c.board.Slug)
		m.checkBoard(ctx, source, base, c)
		if len(c.problems) > 0 {
			failed++
		}
		for _, p := range c.problems {
			problems = append(problems, fmt.Sprintf("check: %s: %s", c.board.Slug, p))
		}
	}
	if err := saver.err(); err != nil {
		problems = append(problems, fmt.Sprintf("check: --save %s: %v", *saveDir, err))
	}
	if saver != nil {
		fmt.Fprintf(m.Stdout, "saved %d pages in %s\n", saver.count(), *saveDir)
	}
	if len(problems) == 0 {
		fmt.Fprintf(m.Stdout, "%s: all %d read fully\n", plural(len(checks), "board"), len(checks))
		return nil
	}
	fmt.Fprintf(m.Stdout, "%s: %d read fully, %d with problems\n", plural(len(checks), "board"), len(checks)-failed, failed)
	for _, p := range problems {
		fmt.Fprintln(m.Stderr, p)
	}
	return fmt.Errorf("check: %s (listed above)", plural(len(problems), "problem"))
}

// resolveForCheck gives each board its ids as the crawler would, without
// the database: a board added by configuration has its list_url's; a
// built-in board has the ids set in the configuration, else the known ones,
// else those its home page menu link shows.
func (m *Main) resolveForCheck(ctx context.Context, cfg config.Config, source *msit.Source, saver *pageSaver, boards []feeds.Board) []*boardCheck {
	checks := make([]*boardCheck, len(boards))
	var unknown []feeds.Board
	for i, b := range boards {
		c := &boardCheck{board: b}
		checks[i] = c
		o := cfg.Boards[b.Slug]
		switch {
		case b.Configured:
			c.idsFrom, c.bbsFrom = fromListURL, fromListURL
			if o.BBSSeqNo != "" {
				c.bbsFrom = fromConfig
			}
		default:
			c.idsFrom, c.bbsFrom = fromBuiltin, fromBuiltin
			if o.MID != "" {
				c.board.MID, c.idsFrom = o.MID, fromConfig
			}
			if o.MPID != "" {
				c.board.MPID, c.idsFrom = o.MPID, fromConfig
			}
			if o.BBSSeqNo != "" {
				c.board.BBSSeqNo, c.bbsFrom = o.BBSSeqNo, fromConfig
			}
		}
		if c.board.BBSSeqNo == "" {
			c.bbsFrom = ""
		}
		if !c.board.Resolved() {
			unknown = append(unknown, c.board)
		}
	}
	if len(unknown) == 0 {
		return checks
	}
	saver.forBoard("site")
	found, err := source.Discover(ctx, unknown)
	var notFound []*msit.BoardNotFoundError
	for e := range joined(err) {
		var nf *msit.BoardNotFoundError
		if errors.As(e, &nf) {
			notFound = append(notFound, nf)
		}
	}
	for _, c := range checks {
		if c.board.Resolved() {
			continue
		}
		for _, f := range found {
			if f.Slug == c.board.Slug && f.Resolved() {
				c.board.MID, c.board.MPID, c.idsFrom = f.MID, f.MPID, fromDiscovered
				if c.board.BBSSeqNo == "" && f.BBSSeqNo != "" {
					c.board.BBSSeqNo, c.bbsFrom = f.BBSSeqNo, fromDiscovered
				}
			}
		}
		if c.board.Resolved() {
			continue
		}
		c.idsFrom = ""
		fix := "set " + c.idsKey()
		looked := ""
		for _, nf := range notFound {
			if nf.Board == c.board.Slug {
				looked = fmt.Sprintf("looked for %q in the home page menu", nf.Text)
			}
		}
		if looked == "" && err != nil {
			looked = "home page failed: " + err.Error()
		}
		if looked == "" {
			looked = "discovery returned no ids"
		}
		c.problem("board ids unknown (%s); %s", looked, fix)
	}
	return checks
}

// joined yields the errors err joins (errors.Join), or err itself.
func joined(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				if !yield(e) {
					return
				}
			}
			return
		}
		yield(err)
	}
}

// checkBoard reads page 1 of c's board and its newest post, and prints what
// they showed.
func (m *Main) checkBoard(ctx context.Context, source *msit.Source, base *url.URL, c *boardCheck) {
	w := m.Stdout
	b := c.board
	fmt.Fprintf(w, "%s  %s\n", b.Slug, b.Name)
	defer func() {
		for _, n := range c.notes {
			line(w, "note", "%s", n)
		}
		for _, p := range c.problems {
			line(w, "problem", "%s", p)
		}
		if len(c.problems) == 0 {
			line(w, "result", "ok")
		} else {
			line(w, "result", "%s", plural(len(c.problems), "problem"))
		}
		fmt.Fprintln(w)
	}()
	if !b.Resolved() {
		line(w, "ids", "unknown")
		return
	}
	listURL := msit.ListURL(base, b, 1)
	lp, err := source.List(ctx, b, 1)
	if err == nil && c.board.BBSSeqNo == "" && lp.BBSSeqNo != "" {
		c.board.BBSSeqNo, c.bbsFrom = lp.BBSSeqNo, fromListPage
	}
	line(w, "ids", "%s", c.ids())
	line(w, "list", "%s", listURL)
	if err != nil {
		c.listFailed(listURL, err)
		return
	}
	c.rows(w, lp)
	if len(lp.Rows) == 0 {
		c.note("no posts on page 1: the board is empty")
		return
	}
	row := newestRow(lp.Rows)
	c.post(ctx, w, source, base, row)
}

// ids says the board's ids and where they came from.
func (c *boardCheck) ids() string {
	b := c.board
	s := fmt.Sprintf("mId=%s mPid=%s (%s)", b.MID, b.MPID, c.idsFrom)
	if b.Section() != "eng" || b.Directory() != "/eng/bbs" {
		s += fmt.Sprintf(", sCode=%s under %s (%s)", b.Section(), b.Directory(), c.idsFrom)
	}
	if b.BBSSeqNo != "" {
		s += fmt.Sprintf(", bbsSeqNo=%s (%s)", b.BBSSeqNo, c.bbsFrom)
	} else {
		s += ", bbsSeqNo unknown"
	}
	return s
}

// idsKey names the configuration keys that set the board's list address,
// and then more.
func (c *boardCheck) idsKey(more ...string) string {
	keys := []string{"mid", "mpid"}
	if c.board.Configured {
		keys = []string{"list_url"}
	}
	keys = append(keys, more...)
	for i, k := range keys {
		keys[i] = "boards." + c.board.Slug + "." + k
	}
	if len(keys) == 1 {
		return keys[0]
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " and " + keys[len(keys)-1]
}

// listFailed records why page 1 of the list could not be read.
func (c *boardCheck) listFailed(listURL string, err error) {
	var se *msit.StatusError
	var nr *msit.NoRowsError
	switch {
	case errors.As(err, &se):
		c.problem("list page %d (%s); check %s", se.Status, se.URL, c.idsKey())
	case errors.As(err, &nr):
		c.problem("list page 1 (%s): %s; %s", listURL, strings.TrimPrefix(nr.Error(), "parse list "+c.board.Slug+": "), reportPage)
	case errors.Is(err, msit.ErrDisallowed):
		c.problem("list page disallowed by the site's robots.txt (%s); msitfeed does not read it: check %s", listURL, c.idsKey())
	case errors.Is(err, msit.ErrRobotsUnavailable):
		c.problem("list page not fetched: %v; check source.url and this machine's access to the site", err)
	case errors.Is(err, msit.ErrTooLarge):
		c.problem("list page too large (%v); raise source.max_bytes", err)
	default:
		c.problem("list page failed (%v); check source.url, source.timeout and this machine's access to the site", err)
	}
}

// rows prints what page 1's rows let the parser read, and records a field
// missing from most of them.
func (c *boardCheck) rows(w io.Writer, lp feeds.ListPage) {
	var title, date, dept, thumb int
	for _, r := range lp.Rows {
		if r.Title != "" {
			title++
		}
		if !r.Published.IsZero() {
			date++
		}
		if r.Department != "" {
			dept++
		}
		if r.Thumbnail != "" {
			thumb++
		}
	}
	n := len(lp.Rows)
	last := ""
	if lp.LastPage > 0 {
		last = fmt.Sprintf(" of %d", lp.LastPage)
	}
	s := fmt.Sprintf("%d on page 1%s; with a title %d, a date %d, a department %d", n, last, title, date, dept)
	if !lp.HasDepartment {
		s += " (no department column)"
	}
	if c.board.Gallery {
		s += fmt.Sprintf(", a thumbnail %d", thumb)
	}
	line(w, "rows", "%s", s)
	if n == 0 {
		return
	}
	for _, f := range []struct {
		name     string
		found    int
		expected bool
	}{{"title", title, true}, {"date", date, true}, {"department", dept, lp.HasDepartment}} {
		if missing := n - f.found; f.expected && missing*2 > n {
			c.problem("%s missing on %d of %d list rows (%s); %s", f.name, missing, n, feeds.ListFieldHint(f.name), reportPage)
		}
	}
	if c.board.Gallery && thumb < n {
		c.note("thumbnail missing on %d of %d list rows (%s)", n-thumb, n, feeds.ListFieldHint("thumbnail"))
	}
}

// newestRow is the row with the latest date, the first of those (the site
// lists newest first); the first row when none has a date.
func newestRow(rows []feeds.ListRow) feeds.ListRow {
	best := rows[0]
	for _, r := range rows[1:] {
		if r.Published.After(best.Published) {
			best = r
		}
	}
	return best
}

// post reads the newest post's page and prints what it showed.
func (c *boardCheck) post(ctx context.Context, w io.Writer, source *msit.Source, base *url.URL, row feeds.ListRow) {
	line(w, "newest", "post %d: %s", row.ID, msit.PostURL(base, c.board, row.ID))
	item, err := source.Detail(ctx, c.board, row.ID)
	if err != nil {
		var se *msit.StatusError
		switch {
		case errors.As(err, &se):
			c.problem("newest post %d: page %d (%s); check %s", row.ID, se.Status, se.URL, c.idsKey("bbsseqno"))
		case errors.Is(err, msit.ErrNoTitle), errors.Is(err, msit.ErrTruncated):
			c.problem("newest post %d: %v; %s", row.ID, err, reportPage)
		default:
			c.problem("newest post %d: page failed (%v); check source.url, source.timeout and this machine's access to the site", row.ID, err)
		}
		return
	}
	lookedTitle, lookedDate := detailHints()
	title := item.Title
	if title == "" {
		title = "-"
		c.problem("newest post %d: title missing on its page (%s); %s", row.ID, lookedTitle, reportPage)
	}
	line(w, "  title", "%s", title)
	switch {
	case !item.Published.IsZero():
		line(w, "  date", "%s (post page)", day(item.Published))
	case !row.Published.IsZero():
		line(w, "  date", "%s (list only)", day(row.Published))
		c.note("newest post %d: no date on its page (%s); the crawl uses the list's", row.ID, lookedDate)
	default:
		line(w, "  date", "-")
		c.problem("newest post %d: date missing on its page and its list row (%s; %s); %s", row.ID, lookedDate, feeds.ListFieldHint("date"), reportPage)
	}
	switch {
	case item.Department != "":
		line(w, "  department", "%s", item.Department)
	case row.Department != "":
		line(w, "  department", "%s (list only)", row.Department)
	default:
		line(w, "  department", "-")
	}
	text := msit.BodyText(item.Body)
	line(w, "  body", "%d characters", utf8.RuneCountInString(text))
	if text == "" && len(item.Attachments) == 0 {
		c.note("newest post %d: no body text and no attachments on its page", row.ID)
	}
	names := make([]string, len(item.Attachments))
	for i, a := range item.Attachments {
		names[i] = a.Name
	}
	if len(names) == 0 {
		line(w, "  attachments", "0")
	} else {
		line(w, "  attachments", "%d: %s", len(names), strings.Join(names, ", "))
	}
}

// detailHints splits what msit.ErrNoTitle says the post parser looked for
// into the title's part and the date's.
func detailHints() (title, date string) {
	_, looked, _ := strings.Cut(msit.ErrNoTitle.Error(), ": ")
	t, d, ok := strings.Cut(looked, " and for ")
	if !ok {
		return looked, looked
	}
	return t, "looked for " + d
}

// line prints one labelled line of a board's report.
func line(w io.Writer, label, format string, a ...any) {
	fmt.Fprintf(w, "  %-14s %s\n", label, fmt.Sprintf(format, a...))
}

func day(t interface{ Format(string) string }) string { return t.Format("2006-01-02") }

// plural writes n and noun, with an s when n is not 1.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
