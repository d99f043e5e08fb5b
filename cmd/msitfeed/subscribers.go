package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer"
)

const subscribersUsage = `usage: msitfeed subscribers <command> [arguments]

commands:
  add EMAIL [--name N] [--boards B,...] [--match RE] [--confirmed] [--force]
                 add a subscriber; without --confirmed a confirmation mail is
                 sent and the subscriber stays pending until confirmed
  remove EMAIL [--purge]
                 unsubscribe (the address is kept so it is not mailed again);
                 --purge erases it and its delivery records
  show EMAIL     everything stored about a subscriber
  set EMAIL [--boards B,...|all] [--match RE]
                 change the boards a subscriber receives, or their keyword
                 filter (--match '' clears it)
  list [--status S] [--board B] [--format table|csv|json]
  import FILE|- [--skip-invalid]
                 CSV with a header: email, and optionally name, boards, status
                 (default active); export's columns and its JSON are accepted
                 too. Nothing is imported if a row is invalid, unless
                 --skip-invalid; known addresses are skipped, never changed
  export [--format csv|json]

boards: notice, press, photo, trends, newsletter, or all (the default)
match: a regular expression (Go RE2, at most 512 bytes) a post's title or
  summary must match to be in the subscriber's digest, as the feeds'
  ?filter=; case-sensitive unless it starts with (?i): --match '(?i)ai|6g'
statuses: pending, active, unsubscribed, bounced
`

// subcommandUsage is the one-line synopsis of each subscribers command,
// added to usage errors so the fix is on the same line.
var subcommandUsage = map[string]string{
	"add":    "subscribers add EMAIL [--name N] [--boards B,...] [--match RE] [--confirmed] [--force]",
	"remove": "subscribers remove EMAIL [--purge]",
	"show":   "subscribers show EMAIL",
	"set":    "subscribers set EMAIL [--boards B,...|all] [--match RE]",
	"list":   "subscribers list [--status S] [--board B] [--format table|csv|json]",
	"import": "subscribers import FILE|- [--skip-invalid]",
	"export": "subscribers export [--format csv|json]",
}

func (m *Main) runSubscribers(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, subscribersUsage)
		return usagef("subscribers: no command given (add, remove, show, set, list, import or export)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(m.Stdout, subscribersUsage)
		return errHelp
	case "add":
		return m.subscribersAdd(ctx, configPath, rest)
	case "remove":
		return m.subscribersRemove(ctx, configPath, rest)
	case "show":
		return m.subscribersShow(ctx, configPath, rest)
	case "set":
		return m.subscribersSet(ctx, configPath, rest)
	case "list":
		return m.subscribersList(ctx, configPath, rest)
	case "import":
		return m.subscribersImport(ctx, configPath, rest)
	case "export":
		return m.subscribersExport(ctx, configPath, rest)
	}
	return usagef("subscribers: unknown command %q (use add, remove, show, set, list, import or export)", cmd)
}

// parseSubcommand parses args for a subscribers command, allowing flags
// after the positional arguments ("add x@example.org --boards press"), and
// checks that there is one positional argument per name in named (which
// says what each is, for the error message).
func (m *Main) parseSubcommand(fs *flag.FlagSet, args []string, named ...string) ([]string, error) {
	cmd := fs.Name()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(m.Stdout, "usage: msitfeed %s\n", subcommandUsage[cmd])
				return nil, errHelp
			}
			return nil, usagef("subscribers %s: %v (usage: msitfeed %s)", cmd, err, subcommandUsage[cmd])
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(pos) < len(named):
		return nil, usagef("subscribers %s: missing %s (usage: msitfeed %s)", cmd, named[len(pos)], subcommandUsage[cmd])
	case len(pos) > len(named):
		return nil, usagef("subscribers %s: unexpected argument %q (usage: msitfeed %s)", cmd, pos[len(named)], subcommandUsage[cmd])
	}
	return pos, nil
}

// parseEmailArg checks an EMAIL argument before anything is opened.
func parseEmailArg(cmd, arg string) (mailer.Address, error) {
	a, err := mailer.ParseAddress(arg)
	if err != nil {
		return a, usagef("subscribers %s: %v", cmd, err)
	}
	return a, nil
}

// parseBoardsArg checks a --boards value against the boards of reg.
func parseBoardsArg(reg *feeds.Registry, cmd, arg string) ([]string, error) {
	bs, err := mailer.ParseBoardsFor(reg, arg)
	if err != nil {
		return nil, usagef("subscribers %s: --boards: %v", cmd, err)
	}
	return bs, nil
}

// parseMatchArg checks a --match value: a pattern the feeds' matcher takes.
func parseMatchArg(cmd, arg string) (string, error) {
	m, err := mailer.CheckMatch(arg)
	if err != nil {
		return "", usagef("subscribers %s: --match: %v", cmd, err)
	}
	return m, nil
}

// matchNote is what the commands add to a line about sub: its keyword
// filter, if it has one.
func matchNote(sub mailer.Subscriber) string {
	if sub.Match == "" {
		return ""
	}
	return "; only posts matching " + sub.Match
}

// openSubscribers loads the configuration and opens the store; close the
// returned database when done.
func (m *Main) openSubscribers(ctx context.Context, configPath string) (config.Config, *sql.DB, *mailer.Subscribers, error) {
	cfg, reg, err := m.loadBoards(configPath)
	if err != nil {
		return cfg, nil, nil, err
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return cfg, nil, nil, err
	}
	return cfg, d, newSubscribers(d, reg), nil
}

// loadBoards loads the configuration and the registry of its boards, so a
// --boards value can be checked before the database is opened.
func (m *Main) loadBoards(configPath string) (config.Config, *feeds.Registry, error) {
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return cfg, nil, err
	}
	reg, err := boardRegistry(cfg)
	return cfg, reg, err
}

// newSubscribers returns the subscriber store over d choosing among reg.
func newSubscribers(d *sql.DB, reg *feeds.Registry) *mailer.Subscribers {
	subs := mailer.NewSubscribers(d)
	subs.Boards = reg
	return subs
}

func (m *Main) subscribersAdd(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("add")
	name := fs.String("name", "", "display name (default: the one in EMAIL, if any)")
	boardsArg := fs.String("boards", "", "boards, comma-separated (default all)")
	matchArg := fs.String("match", "", "keyword filter: a regular expression a post's title or summary must match (default none)")
	confirmed := fs.Bool("confirmed", false, "add as active without a confirmation mail")
	force := fs.Bool("force", false, "re-add an address that unsubscribed or bounced")
	pos, err := m.parseSubcommand(fs, args, "EMAIL")
	if err != nil {
		return err
	}
	addr, err := parseEmailArg("add", pos[0])
	if err != nil {
		return err
	}
	match, err := parseMatchArg("add", *matchArg)
	if err != nil {
		return err
	}
	cfg, reg, err := m.loadBoards(configPath)
	if err != nil {
		return err
	}
	boards, err := parseBoardsArg(reg, "add", *boardsArg)
	if err != nil {
		return err
	}
	if !*confirmed && cfg.Mail.From == "" {
		return usagef("subscribers add: sending the confirmation mail needs mail.from (set it in the config or MSITFEED_MAIL_FROM), or add with --confirmed")
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer d.Close()
	// The mailer is built before the subscriber is stored, so that a broken
	// template or base_url stops the command without leaving a pending row.
	var ml *mailer.Mailer
	if !*confirmed {
		if ml, err = mailer.New(ctx, cfg, d); err != nil {
			return fmt.Errorf("subscribers add: %w", err)
		}
	}
	subs := newSubscribers(d, reg)
	status := mailer.StatusPending
	if *confirmed {
		status = mailer.StatusActive
	}
	sub, err := subs.Add(ctx, mailer.NewSubscriber{
		Address: pos[0], Name: *name, Boards: boards, Match: match, Status: status, Origin: mailer.OriginCLI, Force: *force,
	})
	switch {
	case errors.Is(err, mailer.ErrExists) && sub.Status == mailer.StatusPending:
		// Adding a pending address again is how a lost or failed
		// confirmation mail is resent, or confirmed by hand.
		if *confirmed {
			if sub, err = subs.Confirm(ctx, sub.UID); err != nil {
				return fmt.Errorf("subscribers add: %w", err)
			}
			fmt.Fprintf(m.Stdout, "confirmed %s (was pending); boards: %s\n", sub.Email, boardList(sub.Boards))
			return nil
		}
		return m.sendConfirmation(ctx, ml, sub, "was already pending; ")
	case errors.Is(err, mailer.ErrExists):
		return fmt.Errorf("subscribers add: %s is already subscribed (%s); change boards or match with msitfeed subscribers set %s --boards ... --match ...", sub.Email, sub.Status, sub.Email)
	case errors.Is(err, mailer.ErrSuppressed):
		return fmt.Errorf("subscribers add: %s %s; add it again only if they asked to, with --force", sub.Email, suppressionText(sub))
	case err != nil:
		return fmt.Errorf("subscribers add %s: %w", addr.Email, err)
	}
	if *confirmed {
		fmt.Fprintf(m.Stdout, "added %s (active); boards: %s%s\n", sub.Email, boardList(sub.Boards), matchNote(sub))
		return nil
	}
	return m.sendConfirmation(ctx, ml, sub, "added as pending; ")
}

// sendConfirmation mails sub its confirmation link. On failure the
// subscriber stays pending and the error says how to resend.
func (m *Main) sendConfirmation(ctx context.Context, ml *mailer.Mailer, sub mailer.Subscriber, state string) error {
	if err := ml.SendConfirmation(ctx, sub); err != nil {
		return fmt.Errorf("subscribers add: %s %s, but the confirmation mail was not sent: %v; fix the mail settings and run the same add again to resend it", sub.Email, strings.TrimSuffix(state, "; "), err)
	}
	fmt.Fprintf(m.Stdout, "%s %sconfirmation mail sent; boards: %s%s\n", sub.Email, state, boardList(sub.Boards), matchNote(sub))
	return nil
}

func (m *Main) subscribersRemove(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("remove")
	purge := fs.Bool("purge", false, "erase the address and its delivery records")
	pos, err := m.parseSubcommand(fs, args, "EMAIL")
	if err != nil {
		return err
	}
	addr, err := parseEmailArg("remove", pos[0])
	if err != nil {
		return err
	}
	_, d, subs, err := m.openSubscribers(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	before, err := subs.Get(ctx, addr.Email)
	if err != nil {
		return notFound("remove", addr, err)
	}
	if *purge {
		if err := subs.Purge(ctx, before.Email); err != nil {
			return notFound("remove", addr, err)
		}
		fmt.Fprintf(m.Stdout, "purged %s: the address and its delivery records are erased (it is no longer suppressed)\n", before.Email)
		return nil
	}
	sub, err := subs.Remove(ctx, addr.Email)
	if err != nil {
		return fmt.Errorf("subscribers remove: %w", err)
	}
	if before.Status == sub.Status {
		fmt.Fprintf(m.Stdout, "%s was already %s; nothing changed (--purge erases it)\n", sub.Email, suppressionText(sub))
		return nil
	}
	fmt.Fprintf(m.Stdout, "unsubscribed %s; the address is kept so it is not mailed again (--purge erases it)\n", sub.Email)
	return nil
}

// notFound turns ErrNoSubscriber into a one-line runtime error.
func notFound(cmd string, addr mailer.Address, err error) error {
	if errors.Is(err, mailer.ErrNoSubscriber) {
		return fmt.Errorf("subscribers %s: %s is not a subscriber (see msitfeed subscribers list)", cmd, addr.Email)
	}
	return fmt.Errorf("subscribers %s: %w", cmd, err)
}

func (m *Main) subscribersShow(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("show")
	pos, err := m.parseSubcommand(fs, args, "EMAIL")
	if err != nil {
		return err
	}
	addr, err := parseEmailArg("show", pos[0])
	if err != nil {
		return err
	}
	_, d, subs, err := m.openSubscribers(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	sub, err := subs.Get(ctx, addr.Email)
	if err != nil {
		return notFound("show", addr, err)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"email", sub.Email},
		{"name", dash(sub.Name)},
		{"status", string(sub.Status)},
		{"boards", boardList(sub.Boards)},
		{"match", dash(sub.Match)},
		{"origin", string(sub.Origin)},
		{"created", subscriberTime(sub.Created)},
		{"confirmed", subscriberTime(sub.Confirmed)},
		{"unsubscribed", subscriberTime(sub.Unsubscribed)},
		{"bounces", fmt.Sprint(sub.Bounces)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

func (m *Main) subscribersSet(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("set")
	boardsArg := fs.String("boards", "", "boards, comma-separated, or all")
	matchArg := fs.String("match", "", "keyword filter: a regular expression a post's title or summary must match; '' clears it")
	pos, err := m.parseSubcommand(fs, args, "EMAIL")
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["boards"] && !given["match"] {
		return usagef("subscribers set: nothing to change; give --boards B,... (or all), --match RE (or '' to clear) or both (usage: msitfeed %s)", subcommandUsage["set"])
	}
	addr, err := parseEmailArg("set", pos[0])
	if err != nil {
		return err
	}
	match, err := parseMatchArg("set", *matchArg)
	if err != nil {
		return err
	}
	cfg, reg, err := m.loadBoards(configPath)
	if err != nil {
		return err
	}
	boards, err := parseBoardsArg(reg, "set", *boardsArg)
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	subs := newSubscribers(d, reg)
	defer d.Close()
	sub, err := subs.Get(ctx, addr.Email)
	if err != nil {
		return notFound("set", addr, err)
	}
	switch {
	case given["boards"] && given["match"]:
		sub, err = subs.SetPreferences(ctx, sub.UID, boards, match)
	case given["boards"]:
		sub, err = subs.SetBoards(ctx, sub.UID, boards)
	default:
		sub, err = subs.SetMatch(ctx, sub.UID, match)
	}
	if err != nil {
		return fmt.Errorf("subscribers set: %w", err)
	}
	fmt.Fprintf(m.Stdout, "%s (%s) now receives: %s%s\n", sub.Email, sub.Status, boardList(sub.Boards), matchNote(sub))
	return nil
}

func (m *Main) subscribersList(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("list")
	status := fs.String("status", "", "only this status: pending, active, unsubscribed or bounced")
	board := fs.String("board", "", "only subscribers who receive this board")
	format := fs.String("format", "table", "table, csv or json")
	if _, err := m.parseSubcommand(fs, args); err != nil {
		return err
	}
	f := mailer.ListFilter{Status: mailer.Status(strings.ToLower(*status)), Board: strings.ToLower(*board)}
	switch f.Status {
	case "", mailer.StatusPending, mailer.StatusActive, mailer.StatusUnsubscribed, mailer.StatusBounced:
	default:
		return usagef("subscribers list: --status %q is not a status (use pending, active, unsubscribed or bounced)", *status)
	}
	switch *format {
	case "table", "csv", "json":
	default:
		return usagef("subscribers list: --format %q is not a format (use table, csv or json)", *format)
	}
	cfg, reg, err := m.loadBoards(configPath)
	if err != nil {
		return err
	}
	if f.Board != "" && !reg.Has(f.Board) {
		return usagef("subscribers list: --board %q is not a board (use %s)", *board, strings.Join(reg.Slugs(), ", "))
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	subs := newSubscribers(d, reg)
	defer d.Close()
	list, err := subs.List(ctx, f)
	if err != nil {
		return fmt.Errorf("subscribers list: %w", err)
	}
	if *format != "table" {
		return mailer.WriteSubscribers(m.Stdout, *format, list)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tSTATUS\tBOARDS\tORIGIN\tCREATED\tMATCH")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Email, dash(s.Name), s.Status, boardList(s.Boards), s.Origin, subscriberTime(s.Created), dash(s.Match))
	}
	return tw.Flush()
}

func (m *Main) subscribersImport(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("import")
	skip := fs.Bool("skip-invalid", false, "import the valid rows even if some are invalid")
	pos, err := m.parseSubcommand(fs, args, "FILE (or - for standard input)")
	if err != nil {
		return err
	}
	name := pos[0]
	_, d, subs, err := m.openSubscribers(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	var in io.Reader = m.Stdin
	if name == "-" {
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("subscribers import: %w", err)
		}
		defer f.Close()
		in = f
	}
	// Import reports are the one place where several lines go to stderr:
	// every row needs its own line to be found and fixed. They are written
	// as the import finds them, in line order, so that a large file's
	// report is not held in memory.
	stderr := bufio.NewWriter(m.Stderr)
	rep, err := subs.Import(ctx, in, mailer.ImportOptions{SkipInvalid: *skip, Report: func(e mailer.LineError) {
		fmt.Fprintln(stderr, e)
	}})
	stderr.Flush()
	switch {
	case errors.Is(err, mailer.ErrInvalidRows):
		return fmt.Errorf("subscribers import %s: %d invalid %s (listed above), nothing imported; fix them, or use --skip-invalid to import the rest",
			name, rep.Invalid, countNoun(rep.Invalid, "row", "rows"))
	case err != nil:
		return fmt.Errorf("subscribers import %s: %w", name, err)
	}
	fmt.Fprintf(m.Stdout, "imported %d %s from %s; skipped %d already known; %d invalid\n",
		rep.Added, countNoun(rep.Added, "subscriber", "subscribers"), name, rep.Skipped, rep.Invalid)
	return nil
}

func (m *Main) subscribersExport(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("export")
	format := fs.String("format", "csv", "csv or json")
	if _, err := m.parseSubcommand(fs, args); err != nil {
		return err
	}
	if *format != "csv" && *format != "json" {
		return usagef("subscribers export: --format %q is not a format (use csv or json)", *format)
	}
	_, d, subs, err := m.openSubscribers(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := subs.Export(ctx, m.Stdout, *format); err != nil {
		return fmt.Errorf("subscribers export: %w", err)
	}
	return nil
}

func boardList(boards []string) string {
	if len(boards) == 0 {
		return "all"
	}
	return strings.Join(boards, ",")
}

func suppressionText(sub mailer.Subscriber) string {
	if sub.Unsubscribed.IsZero() {
		return string(sub.Status)
	}
	return string(sub.Status) + " since " + sub.Unsubscribed.Format(time.DateOnly)
}

func subscriberTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(feeds.KST).Format("2006-01-02 15:04 MST")
}

func countNoun(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
