package scheduler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// JobState is what the database knows of a job.
type JobState struct {
	Name      string
	Spec      string
	LastStart time.Time
	LastEnd   time.Time
	LastError string
	Runs      int
	Skipped   int
	LastSlot  time.Time // the slot of the last scheduled run
	LastOwner string    // the instance that ran it
	Next      time.Time // next scheduled run, from the spec and now
}

const stateLayout = time.RFC3339Nano

// slotLayout is fixed-width UTC so that slots compare as text in SQL.
const slotLayout = "2006-01-02T15:04:05Z"

func formatSlot(t time.Time) string { return t.UTC().Format(slotLayout) }

func parseState(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(stateLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t.In(feeds.KST)
}

func (s *Scheduler) state(ctx context.Context, name string) (JobState, error) {
	st := JobState{Name: name}
	var start, end, slot string
	err := s.db.QueryRowContext(ctx, `SELECT spec, last_start, last_end, last_error, runs, skipped, last_slot, last_owner FROM jobs WHERE name = $1`, name).
		Scan(&st.Spec, &start, &end, &st.LastError, &st.Runs, &st.Skipped, &slot, &st.LastOwner)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read job %s: %w", name, err)
	}
	st.LastStart, st.LastEnd, st.LastSlot = parseState(start), parseState(end), parseState(slot)
	return st, nil
}

// States returns every job recorded in d with its next run computed from
// its spec at now, for `msitfeed status`.
func States(ctx context.Context, d *sql.DB, now time.Time) ([]JobState, error) {
	rows, err := d.QueryContext(ctx, `SELECT name, spec, last_start, last_end, last_error, runs, skipped, last_slot, last_owner FROM jobs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	defer rows.Close()
	var out []JobState
	for rows.Next() {
		var st JobState
		var start, end, slot string
		if err := rows.Scan(&st.Name, &st.Spec, &start, &end, &st.LastError, &st.Runs, &st.Skipped, &slot, &st.LastOwner); err != nil {
			return nil, fmt.Errorf("read jobs: %w", err)
		}
		st.LastStart, st.LastEnd, st.LastSlot = parseState(start), parseState(end), parseState(slot)
		if sched, err := ParseSpec(st.Spec); err == nil {
			st.Next = sched.Next(now.In(feeds.KST))
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *Scheduler) recordSpec(ctx context.Context, j *job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (name, spec) VALUES ($1, $2) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec`, j.Name, j.Spec)
	if err != nil {
		return fmt.Errorf("record job %s: %w", j.Name, err)
	}
	return nil
}

// The record* writes use a context that outlives shutdown so the end of an
// interrupted run is still written.
func (s *Scheduler) exec(j *job, q string, args ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		s.logger.Error("record job", "job", j.Name, "err", err)
	}
}

func (s *Scheduler) recordStart(j *job, t time.Time) {
	s.exec(j, `UPDATE jobs SET last_start = $1, runs = runs + 1, last_owner = $2 WHERE name = $3`,
		t.In(feeds.KST).Format(stateLayout), s.Instance, j.Name)
}

// claim records the start of j's run for slot if this process holds the
// lease and the slot is later than the job's last one, in one
// transaction: of two instances that both believe they hold the lease (one
// lost it while away from the database), one claims the slot.
func (s *Scheduler) claim(ctx context.Context, j *job, slot, start time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", j.Name, err)
	}
	defer tx.Rollback()
	held, err := db.Holds(ctx, tx, s.engine, LeaseName, s.owner)
	if err != nil || !held {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET last_slot = $1, last_start = $2, last_owner = $3, runs = runs + 1
		WHERE name = $4 AND last_slot < $1`,
		formatSlot(slot), start.In(feeds.KST).Format(stateLayout), s.Instance, j.Name)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", j.Name, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("claim %s: %w", j.Name, err)
	}
	return true, nil
}

func (s *Scheduler) recordEnd(j *job, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.exec(j, `UPDATE jobs SET last_end = $1, last_error = $2 WHERE name = $3`, s.Now().In(feeds.KST).Format(stateLayout), msg, j.Name)
}

func (s *Scheduler) recordSkip(j *job) {
	s.exec(j, `UPDATE jobs SET skipped = skipped + 1 WHERE name = $1`, j.Name)
}
