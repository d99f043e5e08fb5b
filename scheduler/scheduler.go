// Package scheduler runs msitfeed's periodic jobs (crawl, digest) on cron
// specs in Asia/Seoul with robfig/cron/v3. A job never overlaps itself, a
// panic is logged rather than fatal, a slot missed while the daemon was down
// is run once at start, and only one process per database runs the
// scheduler. Each job's last run is kept in the database so `msitfeed
// status` can show it from another process.
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
	"time"

	"github.com/robfig/cron/v3"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Job is a named task run on a cron spec.
type Job struct {
	Name string
	Spec string // five-field cron spec, or a descriptor such as @hourly
	Run  func(ctx context.Context) error
	// Jitter delays each scheduled run by a random duration below it, so
	// many instances do not hit the site at the same second.
	Jitter time.Duration
	// RunIfNever runs the job at start when it has never run.
	RunIfNever bool
}

// lockName is the database lock that makes one process the scheduler.
const lockName = "scheduler"

// LockTTL is how long the scheduler lock outlives a holder that died.
const LockTTL = 2 * time.Minute

// ErrAlreadyRunning is returned by Start when another process holds the
// scheduler lock on the same database.
var ErrAlreadyRunning = errors.New("another msitfeed process runs the scheduler on this database")

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
	logger *slog.Logger
	owner  string
	// Now is the clock; tests set it.
	Now func() time.Time
	// OnRun, if set, is called after every run (for metrics).
	OnRun func(name string, d time.Duration, err error)

	jobs []*job
	cron *cron.Cron

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
		db:     d,
		logger: logger,
		owner:  fmt.Sprintf("%s:%d:%x", host, os.Getpid(), rand.Uint32()),
		Now:    time.Now,
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

// Start takes the scheduler lock, runs once any job whose slot was missed
// (or that never ran, if it asks to), and starts the cron loop. It returns
// ErrAlreadyRunning if another process holds the lock.
func (s *Scheduler) Start(ctx context.Context) error {
	if err := db.Acquire(ctx, s.db, lockName, s.owner, LockTTL); err != nil {
		if errors.Is(err, db.ErrLocked) {
			return fmt.Errorf("%w (%v)", ErrAlreadyRunning, err)
		}
		return err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.cron = cron.New(cron.WithLocation(feeds.KST), cron.WithParser(parser))
	for _, j := range s.jobs {
		j := j
		if _, err := s.cron.AddFunc(j.Spec, func() { s.runScheduled(j) }); err != nil {
			return fmt.Errorf("schedule %s: %w", j.Name, err)
		}
		if err := s.recordSpec(ctx, j); err != nil {
			return err
		}
	}
	for _, j := range s.jobs {
		due, err := s.catchUpDue(ctx, j)
		if err != nil {
			return err
		}
		if due {
			s.logger.Info("running missed job", "job", j.Name)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.run(j)
			}()
		}
	}
	s.cron.Start()
	s.wg.Add(1)
	go s.keepLock()
	return nil
}

// catchUpDue reports whether j missed a slot while no scheduler ran: the
// first slot after its last start is already past. However many slots were
// missed, the job runs once.
func (s *Scheduler) catchUpDue(ctx context.Context, j *job) (bool, error) {
	st, err := s.state(ctx, j.Name)
	if err != nil {
		return false, err
	}
	if st.LastStart.IsZero() {
		return j.RunIfNever, nil
	}
	return !j.schedule.Next(st.LastStart.In(feeds.KST)).After(s.Now()), nil
}

func (s *Scheduler) keepLock() {
	defer s.wg.Done()
	t := time.NewTicker(LockTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := db.Refresh(s.ctx, s.db, lockName, s.owner, LockTTL); err != nil && s.ctx.Err() == nil {
				s.logger.Error("refresh scheduler lock", "err", err)
			}
		}
	}
}

// Stop stops scheduling new runs, cancels the context of running jobs so
// they reach a safe point, waits for them (at most until ctx is done), and
// releases the lock.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.cron == nil {
		return nil
	}
	s.cron.Stop()
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
	return db.Release(context.WithoutCancel(ctx), s.db, lockName, s.owner)
}

// RunNow runs the named job at once unless it is already running, and
// reports whether it ran.
func (s *Scheduler) RunNow(name string) (bool, error) {
	for _, j := range s.jobs {
		if j.Name == name {
			return s.run(j), nil
		}
	}
	return false, fmt.Errorf("no job %q", name)
}

func (s *Scheduler) runScheduled(j *job) {
	s.wg.Add(1)
	defer s.wg.Done()
	if j.Jitter > 0 {
		d := rand.N(j.Jitter)
		select {
		case <-time.After(d):
		case <-s.ctx.Done():
			return
		}
	}
	s.run(j)
}

// run runs j unless it is already running; a panic is recovered and
// recorded as the run's error. It reports whether j ran.
func (s *Scheduler) run(j *job) bool {
	if !j.running.TryLock() {
		s.logger.Warn("job still running, skipped", "job", j.Name)
		s.recordSkip(j)
		return false
	}
	defer j.running.Unlock()
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	start := s.Now()
	s.recordStart(j, start)
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
	if err != nil {
		s.logger.Error("job failed", "job", j.Name, "duration", d, "err", err)
	} else {
		s.logger.Info("job done", "job", j.Name, "duration", d)
	}
	s.recordEnd(j, err)
	if s.OnRun != nil {
		s.OnRun(j.Name, d, err)
	}
	return true
}
