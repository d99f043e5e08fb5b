// Package scheduler runs msitfeed's periodic jobs (crawl, digest) on cron
// specs in Asia/Seoul. A job never overlaps itself, a panic is logged
// rather than fatal, and a slot missed while no scheduler ran is run once
// later. Several processes may run a Scheduler on one database: the one
// holding the "scheduler" lease runs the jobs, the others wait as standbys
// and take the lease over when it expires (its holder died or lost the
// database). Each run is claimed by moving its job's last slot forward in
// the same transaction that checks the lease, so no slot runs twice. Each
// job's last run is kept in the database so `msitfeed status` can show it
// from another process.
package scheduler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Job is a named task run on a cron spec.
type Job struct {
	Name string
	Spec string // five-field cron spec, or a descriptor such as @hourly or @every 10m
	Run  func(ctx context.Context) error
	// Jitter delays each scheduled run by a random duration below it, so
	// many instances do not hit the site at the same second.
	Jitter time.Duration
	// RunIfNever runs the job at start when it has never run.
	RunIfNever bool
}

// LeaseName is the database lock (internal/db) whose holder runs the jobs.
const LeaseName = "scheduler"

// LeaseTTL is how long the scheduler lease outlives its holder's last
// refresh, unless the Scheduler sets another. The holder refreshes it, and
// standbys try to take it, every third of it: a standby takes over at most
// LeaseTTL*4/3 after the holder died.
const LeaseTTL = 15 * time.Second

// Parser parses the cron specs msitfeed accepts: five fields or a descriptor.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec parses a cron spec in the form the configuration takes.
func ParseSpec(spec string) (cron.Schedule, error) {
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %w", spec, err)
	}
	return s, nil
}

// Scheduler runs jobs. Build it with New, Add jobs, then Start and Stop.
type Scheduler struct {
	db     *sql.DB
	engine db.Engine
	logger *slog.Logger
	// Instance names this process in the lease and in the jobs it runs,
	// for `msitfeed status`; New sets host:pid.
	Instance string
	// LeaseTTL is how long the lease outlives a holder that stopped
	// refreshing it; New sets the package's LeaseTTL.
	LeaseTTL time.Duration
	// Now is the clock of the slots; tests set it. The lease's expiry
	// follows the database's clock (db.Engine.LockTimes).
	Now func() time.Time
	// OnRun, if set, is called after every run (for metrics).
	OnRun func(name string, d time.Duration, err error)

	jobs   []*job
	owner  string // of the lease: Instance and a random suffix
	holder atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type job struct {
	Job
	schedule cron.Schedule
	running  sync.Mutex
}

// New returns a Scheduler recording its jobs in d.
func New(d *sql.DB, logger *slog.Logger) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &Scheduler{
		db:       d,
		engine:   db.EngineOf(d),
		logger:   logger,
		Instance: fmt.Sprintf("%s:%d", host, os.Getpid()),
		LeaseTTL: LeaseTTL,
		Now:      time.Now,
	}
}

// Add registers a job; its spec is checked here.
func (s *Scheduler) Add(j Job) error {
	sched, err := ParseSpec(j.Spec)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", j.Name, err)
	}
	s.jobs = append(s.jobs, &job{Job: j, schedule: sched})
	return nil
}

// Start records the jobs' specs, tries once to take the lease (running at
// once any slot missed while no scheduler ran), and starts the loops that
// keep or wait for the lease and run each job's slots. Another process
// holding the lease is not an error: this one waits as a standby.
func (s *Scheduler) Start(ctx context.Context) error {
	for _, j := range s.jobs {
		if err := s.recordSpec(ctx, j); err != nil {
			return err
		}
	}
	s.owner = fmt.Sprintf("%s:%x", s.Instance, rand.Uint32())
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.holdLease(ctx); err != nil {
		s.cancel()
		return err
	}
	if !s.holder.Load() {
		s.logger.Info("scheduler standing by: another instance holds the lease", "lease_ttl", s.LeaseTTL)
	}
	s.wg.Add(1 + len(s.jobs))
	go s.keepLease()
	for _, j := range s.jobs {
		go s.loop(j)
	}
	return nil
}

// Holder reports whether this scheduler held the lease at its last check.
func (s *Scheduler) Holder() bool { return s.holder.Load() }

// holdLease refreshes the lease if this scheduler holds it, else tries to
// take it; while it holds it, it runs any slot the loops missed (they fire
// only on the holder, and a claim fails while the database is away).
func (s *Scheduler) holdLease(ctx context.Context) error {
	if s.holder.Load() {
		err := db.Refresh(ctx, s.db, LeaseName, s.owner, s.LeaseTTL)
		if err != nil && !errors.Is(err, db.ErrLocked) {
			return err
		}
		if err != nil {
			s.holder.Store(false)
			s.logger.Warn("scheduler lease lost to another instance; standing by")
		}
	}
	if !s.holder.Load() {
		err := db.Acquire(ctx, s.db, LeaseName, s.owner, s.LeaseTTL)
		if errors.Is(err, db.ErrLocked) {
			return nil
		}
		if err != nil {
			return err
		}
		s.holder.Store(true)
		s.logger.Info("scheduler lease taken: this instance runs the jobs", "instance", s.Instance, "lease_ttl", s.LeaseTTL)
	}
	for _, j := range s.jobs {
		slot, due, err := s.missedSlot(ctx, j)
		if err != nil {
			return err
		}
		if due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.runSlot(j, slot, true)
			}()
		}
	}
	return nil
}

// keepLease refreshes or tries to take the lease every third of its TTL.
func (s *Scheduler) keepLease() {
	defer s.wg.Done()
	t := time.NewTicker(s.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.holdLease(s.ctx); err != nil && s.ctx.Err() == nil {
				s.logger.Error("scheduler lease", "err", err)
			}
		}
	}
}

// nextSlot returns the first slot of sched after t. An @every schedule's
// slots are multiples of its interval since the zero time, so that every
// instance names the same slots.
func nextSlot(sched cron.Schedule, t time.Time) time.Time {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return t.Truncate(every.Delay).Add(every.Delay)
	}
	return sched.Next(t.In(feeds.KST))
}

// missedSlot returns the latest slot of j that is past and was not run, if
// any: the first slot after j's last is past by more than j's jitter and a
// lease check (by then the loop should have claimed it). However many
// slots were missed, the job runs once, for the latest.
func (s *Scheduler) missedSlot(ctx context.Context, j *job) (time.Time, bool, error) {
	st, err := s.state(ctx, j.Name)
	if err != nil {
		return time.Time{}, false, err
	}
	now := s.Now()
	last := st.LastSlot
	if last.IsZero() {
		last = st.LastStart
	}
	if last.IsZero() {
		return now.Truncate(time.Second), j.RunIfNever, nil
	}
	slot := nextSlot(j.schedule, last)
	if slot.After(now.Add(-j.Jitter - s.LeaseTTL/3)) {
		return time.Time{}, false, nil
	}
	for range 100000 {
		n := nextSlot(j.schedule, slot)
		if n.After(now) {
			break
		}
		slot = n
	}
	return slot, true, nil
}

// loop waits for each slot of j and, on the lease holder, runs it.
func (s *Scheduler) loop(j *job) {
	defer s.wg.Done()
	var last time.Time
	for {
		now := s.Now()
		slot := nextSlot(j.schedule, maxTime(now, last))
		t := time.NewTimer(slot.Sub(now))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		last = slot
		if !s.holder.Load() {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if j.Jitter > 0 {
				select {
				case <-time.After(rand.N(j.Jitter)):
				case <-s.ctx.Done():
					return
				}
			}
			s.runSlot(j, slot, false)
		}()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Stop stops scheduling new runs, cancels the context of running jobs so
// they reach a safe point, waits for them (at most until ctx is done), and
// releases the lease so that a standby takes over at once.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop scheduler: jobs still running: %w", ctx.Err())
	}
	s.holder.Store(false)
	return db.Release(context.WithoutCancel(ctx), s.db, LeaseName, s.owner)
}

// RunNow runs the named job at once, outside its slots and whether or not
// this process holds the lease, unless it is already running here; it
// reports whether it ran.
func (s *Scheduler) RunNow(name string) (bool, error) {
	for _, j := range s.jobs {
		if j.Name == name {
			return s.runSlot(j, time.Time{}, false), nil
		}
	}
	return false, fmt.Errorf("no job %q", name)
}

// runSlot runs j for slot (zero: RunNow) unless it is already running
// here, or the slot cannot be claimed: this process no longer holds the
// lease, or another already ran the slot. A panic is recovered and
// recorded as the run's error. A catch-up finding the job running says
// nothing. It reports whether j ran.
func (s *Scheduler) runSlot(j *job, slot time.Time, catchUp bool) bool {
	if !j.running.TryLock() {
		if !catchUp {
			s.logger.Warn("job still running, skipped", "job", j.Name)
			s.recordSkip(j)
		}
		return false
	}
	defer j.running.Unlock()
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	start := s.Now()
	if slot.IsZero() {
		s.recordStart(j, start)
	} else {
		claimed, err := s.claim(ctx, j, slot, start)
		if err != nil {
			s.logger.Error("claim job slot", "job", j.Name, "slot", slot, "err", err)
			return false
		}
		if !claimed {
			s.logger.Info("job slot not claimed: run by another instance, or the lease was lost", "job", j.Name, "slot", slot)
			return false
		}
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
				s.logger.Error("job panicked", "job", j.Name, "panic", p)
			}
		}()
		err = j.Run(ctx)
	}()
	d := s.Now().Sub(start)
	label := "now" // RunNow
	if !slot.IsZero() {
		label = formatSlot(slot)
	}
	if err != nil {
		s.logger.Error("job failed", "job", j.Name, "slot", label, "duration", d, "err", err)
	} else {
		s.logger.Info("job done", "job", j.Name, "slot", label, "duration", d)
	}
	s.recordEnd(j, err)
	if s.OnRun != nil {
		s.OnRun(j.Name, d, err)
	}
	return true
}
