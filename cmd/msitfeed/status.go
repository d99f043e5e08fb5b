package main

import (
	"context"
	"database/sql"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/scheduler"
)

// runStatus runs `msitfeed status`: the jobs' last and next runs, each
// board's health and the recent digests.
func (m *Main) runStatus(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("status")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, d, err := m.open(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	now := time.Now().In(feeds.KST)
	const stamp = "2006-01-02 15:04 MST"

	fmt.Fprintln(m.Stdout, "Jobs (Asia/Seoul):")
	states, err := scheduler.States(ctx, d, now)
	if err != nil {
		return err
	}
	known := map[string]scheduler.JobState{}
	for _, s := range states {
		known[s.Name] = s
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  JOB\tSPEC\tLAST RUN\tBY\tRESULT\tNEXT RUN\tRUNS\tSKIPPED")
	for _, job := range []struct{ name, spec string }{{"crawl", cfg.Schedule.Crawl}, {"digest", cfg.Schedule.Digest}} {
		st := known[job.name]
		st.Spec = job.spec // the configured spec decides the next run
		last, by, result, next := "never", "-", "-", "-"
		if st.LastOwner != "" {
			by = st.LastOwner
		}
		if !st.LastStart.IsZero() {
			last = st.LastStart.In(feeds.KST).Format(stamp)
			switch {
			case st.LastError != "":
				result = "error: " + st.LastError
			case st.LastEnd.Before(st.LastStart):
				result = "running or interrupted"
			default:
				result = "ok in " + st.LastEnd.Sub(st.LastStart).Round(time.Second).String()
			}
		}
		if sched, err := scheduler.ParseSpec(st.Spec); err == nil {
			next = sched.Next(now).Format(stamp)
		} else {
			next = "bad spec: " + err.Error()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", job.name, st.Spec, last, by, result, next, st.Runs, st.Skipped)
	}
	tw.Flush()

	fmt.Fprintln(m.Stdout, "\nLeases (the scheduler's holder runs the jobs; the others stand by):")
	if err := m.printLeases(ctx, d); err != nil {
		return err
	}

	fmt.Fprintln(m.Stdout, "\nBoards:")
	if err := m.printBoardHealth(ctx, cfg, d, now); err != nil {
		return err
	}

	fmt.Fprintln(m.Stdout, "\nDigests:")
	return m.printDigests(ctx, cfg, d)
}

// printLeases lists the lock rows: which instance holds the scheduler
// lease, the WebSub publisher and a digest send, and until when (by the
// database's clock).
func (m *Main) printLeases(ctx context.Context, d *sql.DB) error {
	locks, err := db.Locks(ctx, d)
	if err != nil {
		return err
	}
	if len(locks) == 0 {
		fmt.Fprintln(m.Stdout, "  none held: no serve runs the scheduler")
		return nil
	}
	const stamp = "2006-01-02 15:04:05 MST"
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  LEASE\tHOLDER\tSINCE\tUNTIL")
	for _, l := range locks {
		until := l.Expires.In(feeds.KST).Format(stamp)
		if l.Expired {
			until += " (expired: the holder stopped refreshing it)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.Name, l.Owner, l.Acquired.In(feeds.KST).Format(stamp), until)
	}
	return tw.Flush()
}

func (m *Main) printBoardHealth(ctx context.Context, cfg config.Config, d *sql.DB, now time.Time) error {
	store, err := newStore(cfg, d)
	if err != nil {
		return err
	}
	stats, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  BOARD\tITEMS\tNEWEST\tLAST CRAWL\tHEALTH")
	for _, slug := range store.Registry.Slugs() {
		st := stats[slug]
		newest, last, health := "-", "never", "not crawled yet"
		if !st.Newest.IsZero() {
			newest = st.Newest.Format("2006-01-02")
		}
		if r := st.LastRun; !r.Started.IsZero() {
			last = fmt.Sprintf("%s ago", now.Sub(r.Started).Round(time.Minute))
			health = "ok"
			if r.Error != "" {
				health = "failing: " + r.Error
			} else if r.Degraded != "" {
				health = "degraded: " + r.Degraded
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", slug, st.Items, newest, last, health)
	}
	return tw.Flush()
}

func (m *Main) printDigests(ctx context.Context, cfg config.Config, d *sql.DB) error {
	ml, err := mailer.New(ctx, cfg, d)
	if err != nil {
		return err
	}
	digests, err := ml.Status(ctx, 5)
	if err != nil {
		return err
	}
	subs, err := mailer.NewSubscribers(d).List(ctx, mailer.ListFilter{})
	if err != nil {
		return err
	}
	counts := map[mailer.Status]int{}
	for _, s := range subs {
		counts[s.Status]++
	}
	fmt.Fprintf(m.Stdout, "  subscribers: %d active, %d pending, %d unsubscribed, %d bounced\n",
		counts[mailer.StatusActive], counts[mailer.StatusPending], counts[mailer.StatusUnsubscribed], counts[mailer.StatusBounced])
	if len(digests) == 0 {
		fmt.Fprintln(m.Stdout, "  no digest sent yet")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tCREATED\tITEMS\tSENT\tFAILED\tPENDING\tFINISHED")
	for _, g := range digests {
		fin := "no"
		if !g.Finished.IsZero() {
			fin = g.Finished.In(feeds.KST).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%d\t%d\t%s\n", g.ID, g.Created.In(feeds.KST).Format("2006-01-02 15:04"),
			g.Items, g.Sent, g.Failed, g.Pending, fin)
	}
	return tw.Flush()
}
