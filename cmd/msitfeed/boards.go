package main

import (
	"context"
	"fmt"
	"text/tabwriter"
)

// runBoards runs `msitfeed boards`: ids, item count, newest post, last crawl
// and its error for every board.
func (m *Main) runBoards(ctx context.Context, configPath string, args []string) error {
	fs := m.newFlagSet("boards")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, d, err := m.open(ctx, configPath)
	if err != nil {
		return err
	}
	defer d.Close()
	store, err := newStore(cfg, d)
	if err != nil {
		return err
	}
	boards, err := store.Boards(ctx)
	if err != nil {
		return err
	}
	stats, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BOARD\tMID\tMPID\tBBSSEQNO\tITEMS\tNEWEST\tLAST CRAWL\tRESULT")
	for _, b := range boards {
		if o, ok := cfg.Boards[b.Slug]; ok && o.MID != "" {
			b.MID, b.MPID = o.MID, o.MPID
		}
		st := stats[b.Slug]
		newest, last, result := "-", "never", "-"
		if !st.Newest.IsZero() {
			newest = st.Newest.Format("2006-01-02")
		}
		if !st.LastRun.Started.IsZero() {
			last = st.LastRun.Started.Format("2006-01-02 15:04 MST")
			result = fmt.Sprintf("ok: %d new, %d updated, %d revisited, %d requests", st.LastRun.New, st.LastRun.Updated,
				st.LastRun.Revisited, st.LastRun.Requests)
			if st.LastRun.Error != "" {
				result = "error: " + st.LastRun.Error
			} else if st.LastRun.Finished.IsZero() {
				result = "running or interrupted"
			} else if st.LastRun.Degraded != "" {
				result = "degraded: " + st.LastRun.Degraded + "; " + result
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.Slug, dash(b.MID), dash(b.MPID), dash(b.BBSSeqNo), st.Items, newest, last, result)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
