package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
)

const digestUsage = `usage: msitfeed digest <command>

commands:
  preview [--subscriber EMAIL] [--format text|html]  print the next digest (everyone's, or one subscriber's)
  send [--dry-run]                                   finish any unfinished digest, then send a new one
  status [--limit N]                                 recent digests and their deliveries
`

// runDigest runs `msitfeed digest preview|send|status`.
func (m *Main) runDigest(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, digestUsage)
		return usagef("digest: no command given (preview, send or status)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(m.Stdout, digestUsage)
		return errHelp
	case "preview":
		return m.digestPreview(ctx, configPath, rest)
	case "send":
		return m.digestSend(ctx, configPath, rest)
	case "status":
		return m.digestStatus(ctx, configPath, rest)
	}
	return usagef("digest: unknown command %q (use preview, send or status)", cmd)
}

// openMailer loads the configuration, opens the database and builds the
// mailer; the caller closes the returned function.
func (m *Main) openMailer(ctx context.Context, configPath, cmd string) (*mailer.Mailer, func(), error) {
	cfg, d, err := m.open(ctx, configPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	ml, err := mailer.New(ctx, cfg, d)
	if err != nil {
		d.Close()
		return nil, nil, &UsageError{Msg: fmt.Sprintf("%s: %v", cmd, err)}
	}
	if ml.Boards, err = boardRegistry(cfg); err != nil {
		d.Close()
		return nil, nil, err
	}
	// The command reports on stdout and fails with one line on stderr;
	// the mailer's progress logs are for the daemon.
	ml.Log = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	return ml, func() { d.Close() }, nil
}

func (m *Main) digestPreview(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("digest preview")
	email := fs.String("subscriber", "", "preview as this subscriber")
	format := fs.String("format", "text", "text or html")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("digest preview: unexpected argument %q", fs.Arg(0))
	}
	if *format != "text" && *format != "html" {
		return usagef("digest preview: --format must be text or html, got %q", *format)
	}
	ml, done, err := m.openMailer(ctx, configPath, "digest preview")
	if err != nil {
		return err
	}
	defer done()
	pv, err := ml.Preview(ctx, *email)
	switch {
	case errors.Is(err, mailer.ErrNothingNew):
		fmt.Fprintf(m.Stderr, "msitfeed: digest preview: %v\n", err)
		return nil
	case err != nil:
		return fmt.Errorf("digest preview: %w", err)
	}
	if *format == "html" {
		fmt.Fprint(m.Stdout, pv.HTML)
		return nil
	}
	fmt.Fprintf(m.Stdout, "Subject: %s\n\n%s", pv.Subject, pv.Text)
	return nil
}

func (m *Main) digestSend(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("digest send")
	dry := fs.Bool("dry-run", false, "say what would be sent, send nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("digest send: unexpected argument %q", fs.Arg(0))
	}
	ml, done, err := m.openMailer(ctx, configPath, "digest send")
	if err != nil {
		return err
	}
	defer done()
	if *dry {
		plan, err := ml.Plan(ctx)
		if err != nil {
			return fmt.Errorf("digest send: %w", err)
		}
		for _, u := range plan.Unfinished {
			fmt.Fprintf(m.Stdout, "would finish digest %d (%s): %d deliveries pending\n", u.ID, periodText(u.Start, u.End), u.Pending)
		}
		if plan.Recipients == 0 {
			fmt.Fprintf(m.Stdout, "no new digest: %d new posts, nobody to send them to\n", plan.Items)
			return nil
		}
		fmt.Fprintf(m.Stdout, "would create a digest of %d posts (%s) for %d subscribers\n",
			plan.Items, periodText(plan.Period.Start, plan.Period.End), plan.Recipients)
		return nil
	}
	res, err := ml.SendDigest(ctx)
	for _, r := range res.Digests {
		verb := "resumed"
		if r.Created {
			verb = "created"
		}
		fmt.Fprintf(m.Stdout, "digest %d %s (%s, %d posts): %d sent, %d failed, %d pending\n",
			r.ID, verb, periodText(r.Period.Start, r.Period.End), r.Items, r.Sent, r.Failed, r.Pending)
	}
	var pe *mailer.PendingError
	switch {
	case errors.Is(err, mailer.ErrNoFrom):
		return usagef("digest send: %v", err)
	case errors.As(err, &pe) && ctx.Err() != nil:
		return fmt.Errorf("digest send: interrupted; %d deliveries left pending, run digest send again", pe.Pending)
	case err != nil:
		return fmt.Errorf("digest send: %w", err)
	case len(res.Digests) == 0:
		fmt.Fprintln(m.Stdout, res.Nothing)
	}
	return nil
}

func (m *Main) digestStatus(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("digest status")
	limit := fs.Int("limit", 10, "how many recent digests")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("digest status: unexpected argument %q", fs.Arg(0))
	}
	if *limit < 1 {
		return usagef("digest status: --limit must be at least 1")
	}
	ml, done, err := m.openMailer(ctx, configPath, "digest status")
	if err != nil {
		return err
	}
	defer done()
	list, err := ml.Status(ctx, *limit)
	if err != nil {
		return fmt.Errorf("digest status: %w", err)
	}
	if len(list) == 0 {
		fmt.Fprintln(m.Stdout, "no digests yet")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPERIOD (KST)\tITEMS\tRECIPIENTS\tSENT\tFAILED\tPENDING\tFINISHED")
	for _, s := range list {
		finished := "no"
		if !s.Finished.IsZero() {
			finished = s.Finished.In(feeds.KST).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.ID, periodText(s.Start, s.End), s.Items, s.Recipients(),
			s.Sent, s.Failed, s.Pending, finished)
	}
	return tw.Flush()
}

// periodText formats a digest period to the minute in KST.
func periodText(start, end time.Time) string {
	const layout = "2006-01-02 15:04"
	return strings.Join([]string{start.In(feeds.KST).Format(layout), end.In(feeds.KST).Format(layout)}, " – ")
}
