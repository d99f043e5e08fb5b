package scheduler

import (
	"context"
	"sync"
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

func TestSecondSchedulerStandsByAndTakesOver(t *testing.T) {
	dbtest.Each(t, secondSchedulerStandsByAndTakesOver)
}

func secondSchedulerStandsByAndTakesOver(t *testing.T, e db.Engine) {
	path := openDB(t, e)
	a, b := mustOpen(t, path), mustOpen(t, path)
	for _, s := range []*Scheduler{a, b} {
		s.LeaseTTL = 300 * time.Millisecond
		s.Add(Job{Name: "crawl", Spec: "*/30 * * * *", Run: func(ctx context.Context) error { return nil }})
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("second Start = %v, want a standby", err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	if !a.Holder() || b.Holder() {
		t.Fatalf("holders: a %v, b %v; want a only", a.Holder(), b.Holder())
	}
	// The standby keeps standing by while the holder refreshes the lease.
	time.Sleep(3 * a.LeaseTTL)
	if !a.Holder() || b.Holder() {
		t.Fatalf("after %v: a %v, b %v; want a only", 3*a.LeaseTTL, a.Holder(), b.Holder())
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a released the lease: b takes it at its next check.
	waitHolder(t, b, a.LeaseTTL/3+time.Second)
}

// waitHolder waits until s holds the lease, failing after d.
func waitHolder(t *testing.T, s *Scheduler, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !s.Holder() {
		if time.Since(start) > d {
			t.Fatalf("no takeover within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// die stops s as a killed process would: no more refreshes, no release.
func die(s *Scheduler) {
	s.cancel()
	s.wg.Wait()
}

func TestDeadHolderIsReplacedAndNoSlotRunsTwice(t *testing.T) {
	dbtest.Each(t, deadHolderIsReplacedAndNoSlotRunsTwice)
}

func deadHolderIsReplacedAndNoSlotRunsTwice(t *testing.T, e db.Engine) {
	path := openDB(t, e)
	var mu sync.Mutex
	runs := map[string][]string{} // slot -> instances that ran it
	scheds := make([]*Scheduler, 3)
	for i := range scheds {
		s := mustOpen(t, path)
		s.Instance = string(rune('a' + i))
		s.LeaseTTL = 600 * time.Millisecond
		s.Add(Job{Name: "crawl", Spec: "@every 1s", Run: func(ctx context.Context) error {
			// The slot this run claimed: no other can be claimed while
			// it runs, as runs take far less than a slot.
			var slot string
			if err := s.db.QueryRowContext(ctx, `SELECT last_slot FROM jobs WHERE name = 'crawl'`).Scan(&slot); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			runs[slot] = append(runs[slot], s.Instance)
			return nil
		}})
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		scheds[i] = s
	}
	holder := -1
	for i, s := range scheds {
		if s.Holder() {
			holder = i
		}
	}
	if holder != 0 {
		t.Fatalf("holder is %d, want the first to start", holder)
	}
	time.Sleep(2500 * time.Millisecond)
	die(scheds[0])
	killed := time.Now()
	// The lease expires at most LeaseTTL after a's last refresh; a standby
	// checks every LeaseTTL/3.
	var next *Scheduler
	for time.Since(killed) < 5*time.Second && next == nil {
		for _, s := range scheds[1:] {
			if s.Holder() {
				next = s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if next == nil {
		t.Fatal("no standby took the lease over within 5s")
	}
	took := time.Since(killed)
	time.Sleep(2500 * time.Millisecond)
	for _, s := range scheds[1:] {
		s.Stop(context.Background())
	}
	mu.Lock()
	defer mu.Unlock()
	ranAfter := 0
	for slot, by := range runs {
		if len(by) != 1 {
			t.Errorf("slot %s ran %d times (%v)", slot, len(by), by)
		}
		if by[0] == next.Instance {
			ranAfter++
		}
	}
	if ranAfter < 2 {
		t.Errorf("the new holder %s ran %d slots after the takeover, want 2 or more (runs %v)", next.Instance, ranAfter, runs)
	}
	if took > next.LeaseTTL*4/3+200*time.Millisecond {
		t.Errorf("takeover took %v, over LeaseTTL*4/3 = %v", took, next.LeaseTTL*4/3)
	}
	t.Logf("takeover %v after the holder died (lease %v); runs by slot %v", took, next.LeaseTTL, runs)
}

// A slot is claimed once, and only by the lease holder.
func TestClaimSlot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, e db.Engine) {
		path := openDB(t, e)
		a, b := mustOpen(t, path), mustOpen(t, path)
		for _, s := range []*Scheduler{a, b} {
			s.Add(Job{Name: "digest", Spec: "0 9 * * MON", Run: func(ctx context.Context) error { return nil }})
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer a.Stop(context.Background())
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer b.Stop(context.Background())
		ctx := context.Background()
		slot := time.Date(2026, 11, 30, 9, 0, 0, 0, feeds.KST)
		for _, tc := range []struct {
			what string
			s    *Scheduler
			slot time.Time
			want bool
		}{
			{"the standby", b, slot, false},
			{"the holder", a, slot, true},
			{"the holder again", a, slot, false},
			{"an earlier slot", a, slot.Add(-7 * 24 * time.Hour), false},
			{"the next slot", a, slot.Add(7 * 24 * time.Hour), true},
		} {
			got, err := tc.s.claim(ctx, tc.s.jobs[0], tc.slot, time.Now())
			if err != nil || got != tc.want {
				t.Errorf("%s claims %v: %v, %v; want %v", tc.what, tc.slot, got, err, tc.want)
			}
		}
		st, err := a.state(ctx, "digest")
		if err != nil {
			t.Fatal(err)
		}
		if st.Runs != 2 || !st.LastSlot.Equal(slot.Add(7*24*time.Hour)) || st.LastOwner != a.Instance {
			t.Errorf("state %+v, want 2 runs, last slot %v by %s", st, slot.Add(7*24*time.Hour), a.Instance)
		}
	})
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

func TestHolderCutOffCannotClaim(t *testing.T) {
	dbtest.Each(t, holderCutOffCannotClaim)
}

// A holder cut off from the database past its lease comes back still
// believing it holds it: its next slot is not claimed, the new holder's is,
// and its next lease check makes it a standby.
func holderCutOffCannotClaim(t *testing.T, e db.Engine) {
	path := openDB(t, e)
	a, b := mustOpen(t, path), mustOpen(t, path)
	var ran [2]atomic.Int32
	for i, s := range []*Scheduler{a, b} {
		s.LeaseTTL = time.Hour // no lease check during the test
		s.Add(Job{Name: "digest", Spec: "0 9 * * MON", Run: func(ctx context.Context) error {
			ran[i].Add(1)
			return nil
		}})
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(ctx)
	// a's lease runs out while it cannot reach the database; b takes it.
	if _, err := a.db.Exec(`UPDATE locks SET expires = $1 WHERE name = $2`, "2000-01-01T00:00:00.000000000Z", LeaseName); err != nil {
		t.Fatal(err)
	}
	if err := b.holdLease(ctx); err != nil || !b.Holder() {
		t.Fatalf("b after a's lease ran out: holder %v, %v", b.Holder(), err)
	}
	if !a.Holder() {
		t.Fatal("a should still believe it holds the lease")
	}
	slot := time.Date(2026, 11, 30, 9, 0, 0, 0, feeds.KST)
	if a.runSlot(a.jobs[0], slot, false) || ran[0].Load() != 0 {
		t.Fatal("a ran a slot without the lease")
	}
	if !b.runSlot(b.jobs[0], slot, false) || ran[1].Load() != 1 {
		t.Fatal("b, the holder, did not run the slot")
	}
	if err := a.holdLease(ctx); err != nil || a.Holder() {
		t.Fatalf("a after its lease check: holder %v, %v; want a standby", a.Holder(), err)
	}
}
