package scheduler

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// openDB returns the database setting of a new, empty database of engine.
func openDB(t *testing.T, e db.Engine) (dsn string) {
	t.Helper()
	return dbtest.DSN(t, e)
}

func mustOpen(t *testing.T, path string) *Scheduler {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return New(d, nil)
}

func TestScheduleFollowsKST(t *testing.T) {
	sched, err := ParseSpec("0 9 * * MON")
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 2026-11-29 23:30 UTC is Monday 08:30 in Seoul.
	from := time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC).In(feeds.KST)
	next := sched.Next(from)
	want := time.Date(2026, 11, 30, 9, 0, 0, 0, feeds.KST)
	if !next.Equal(want) {
		t.Fatalf("next Monday 09:00 KST after %v = %v, want %v (00:00 UTC)", from, next, want)
	}
	if got := next.UTC().Hour(); got != 0 {
		t.Fatalf("09:00 KST is %02d:00 UTC, want 00:00", got)
	}
}

func TestOverlappingRunIsSkipped(t *testing.T) {
	dbtest.Each(t, overlappingRunIsSkipped)
}

func overlappingRunIsSkipped(t *testing.T, e db.Engine) {
	s := mustOpen(t, openDB(t, e))
	release := make(chan struct{})
	started := make(chan struct{})
	var runs atomic.Int32
	if err := s.Add(Job{Name: "crawl", Spec: "*/30 * * * *", Run: func(ctx context.Context) error {
		runs.Add(1)
		close(started)
		<-release
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() {
		ran, _ := s.RunNow("crawl")
		done <- ran
	}()
	<-started
	ran, err := s.RunNow("crawl")
	if err != nil || ran {
		t.Fatalf("second run while the first runs: ran=%v err=%v, want skipped", ran, err)
	}
	close(release)
	if !<-done {
		t.Fatal("first run did not run")
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("job ran %d times, want 1", n)
	}
}

func TestPanicIsRecordedNotFatal(t *testing.T) {
	dbtest.Each(t, panicIsRecordedNotFatal)
}

func panicIsRecordedNotFatal(t *testing.T, e db.Engine) {
	path := openDB(t, e)
	s := mustOpen(t, path)
	s.Add(Job{Name: "digest", Spec: "0 9 * * MON", Run: func(ctx context.Context) error { panic("boom") }})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	if ran, _ := s.RunNow("digest"); !ran {
		t.Fatal("did not run")
	}
	states, err := States(context.Background(), s.db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].LastError != "panic: boom" {
		t.Fatalf("states = %+v, want last error panic: boom", states)
	}
}

func TestCatchUpRunsMissedDigestOnce(t *testing.T) {
	dbtest.Each(t, catchUpRunsMissedDigestOnce)
}

func catchUpRunsMissedDigestOnce(t *testing.T, e db.Engine) {
	// Last digest went out Monday 2026-11-02 09:00 KST; the daemon was down
	// for three Mondays and starts on Wednesday 2026-11-25.
	last := time.Date(2026, 11, 2, 9, 0, 0, 0, feeds.KST)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, feeds.KST)
	cases := []struct {
		name      string
		lastStart time.Time
		never     bool
		wantRuns  int32
	}{
		{"three missed Mondays give one run", last, false, 1},
		{"a digest sent this week gives none", time.Date(2026, 11, 23, 9, 0, 0, 0, feeds.KST), false, 0},
		{"never sent and not asked to run", time.Time{}, false, 0},
		{"never run and asked to run", time.Time{}, true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, openDB(t, e))
			s.Now = func() time.Time { return now }
			var runs atomic.Int32
			s.Add(Job{Name: "digest", Spec: "0 9 * * MON", RunIfNever: tc.never, Run: func(ctx context.Context) error {
				runs.Add(1)
				return nil
			}})
			if !tc.lastStart.IsZero() {
				if _, err := s.db.Exec(`INSERT INTO jobs (name, spec, last_start) VALUES ('digest', '0 9 * * MON', $1)`, tc.lastStart.Format(stateLayout)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := runs.Load(); got != tc.wantRuns {
				t.Fatalf("runs = %d, want %d", got, tc.wantRuns)
			}
		})
	}
}

func TestSecondSchedulerOnSameDatabaseIsRefused(t *testing.T) {
	dbtest.Each(t, secondSchedulerOnSameDatabaseIsRefused)
}

func secondSchedulerOnSameDatabaseIsRefused(t *testing.T, e db.Engine) {
	path := openDB(t, e)
	a, b := mustOpen(t, path), mustOpen(t, path)
	for _, s := range []*Scheduler{a, b} {
		s.Add(Job{Name: "crawl", Spec: "*/30 * * * *", Run: func(ctx context.Context) error { return nil }})
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := b.Start(context.Background())
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start = %v, want ErrAlreadyRunning", err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("Start after the first stopped = %v", err)
	}
	b.Stop(context.Background())
}

func TestStopWaitsForRunningJob(t *testing.T) {
	dbtest.Each(t, stopWaitsForRunningJob)
}

func stopWaitsForRunningJob(t *testing.T, e db.Engine) {
	s := mustOpen(t, openDB(t, e))
	started := make(chan struct{})
	var sawCancel atomic.Bool
	s.Add(Job{Name: "crawl", Spec: "*/30 * * * *", RunIfNever: true, Run: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		sawCancel.Store(true)
		return ctx.Err()
	}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !sawCancel.Load() {
		t.Fatal("Stop returned before the running job saw its context cancelled")
	}
}
