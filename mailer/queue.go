// The delivery queue: the jobs of a send, read from the ledger a batch at a
// time, handed to the workers, and retries waiting out their backoff.

package mailer

import (
	"context"
	"sync"
	"time"
)

// job is one pending delivery on its way through the workers.
type job struct {
	p     pendingDelivery
	ed    *edition
	tries int // attempts in this run
	at    time.Time
}

// jobQueue hands jobs to workers: ready ones first, retries once their
// backoff has passed. It takes jobs from its source a batch at a time, when
// few are left ready, so a large digest is never held whole. It ends when
// the source is exhausted and every job is sent, failed or left pending,
// or when a fatal error aborts the run.
type jobQueue struct {
	mu          sync.Mutex
	ready       []*job
	delayed     []*job
	outstanding int // jobs taken from the source and not yet done
	peak        int // the most outstanding at once
	aborted     bool
	err         error // the source's error, which aborted the run
	source      func(context.Context) ([]*job, error)
	fetching    bool          // a worker is reading the next batch
	exhausted   bool          // the source has nothing more
	lowWater    int           // read the next batch when no more than this is ready
	limit       int           // and no more than this is outstanding
	changed     chan struct{} // closed and replaced on every change
	now         func() time.Time
}

// newJobQueue returns a queue over source, which is read when no more than
// lowWater jobs are ready and no more than limit are outstanding.
func newJobQueue(source func(context.Context) ([]*job, error), lowWater, limit int, now func() time.Time) *jobQueue {
	return &jobQueue{source: source, lowWater: lowWater, limit: limit, changed: make(chan struct{}), now: now}
}

// signal wakes the workers waiting for a change; q.mu is held.
func (q *jobQueue) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// fill reads the next batch from the source, with q.mu held on entry and
// on return (it is let go during the read). One worker reads at a time;
// the others go on with what is ready.
func (q *jobQueue) fill(ctx context.Context) {
	q.fetching = true
	q.mu.Unlock()
	jobs, err := q.source(ctx)
	q.mu.Lock()
	q.fetching = false
	switch {
	case err != nil:
		if ctx.Err() == nil {
			q.err, q.aborted = err, true
		}
		q.exhausted = true
	case len(jobs) == 0:
		q.exhausted = true
	}
	q.ready = append(q.ready, jobs...)
	q.outstanding += len(jobs)
	q.peak = max(q.peak, q.outstanding)
	q.signal()
}

// next returns the next job, waiting for a retry's time if need be; false
// when nothing is left or ctx ends.
func (q *jobQueue) next(ctx context.Context) (*job, bool) {
	for {
		if ctx.Err() != nil {
			// Stopping: what is not yet sent stays pending for the next run.
			return nil, false
		}
		q.mu.Lock()
		// Retries waiting out their backoff count towards the limit, so
		// a server refusing many for a while holds up new batches rather
		// than letting them pile up.
		if !q.aborted && !q.exhausted && !q.fetching && len(q.ready) <= q.lowWater && q.outstanding <= q.limit {
			q.fill(ctx)
		}
		if q.aborted || q.exhausted && !q.fetching && q.outstanding == 0 {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.ready) > 0 {
			j := q.ready[0]
			q.ready[0] = nil
			q.ready = q.ready[1:]
			q.mu.Unlock()
			return j, true
		}
		wait := time.Duration(-1)
		if len(q.delayed) > 0 {
			now := q.now()
			first := 0
			for i, j := range q.delayed {
				if j.at.Before(q.delayed[first].at) {
					first = i
				}
			}
			j := q.delayed[first]
			if !j.at.After(now) {
				q.delayed = append(q.delayed[:first], q.delayed[first+1:]...)
				q.mu.Unlock()
				return j, true
			}
			wait = j.at.Sub(now)
		}
		changed := q.changed
		q.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, false
		}
	}
}

// done ends a job (sent, failed, or left pending for the next run).
func (q *jobQueue) done() {
	q.mu.Lock()
	q.outstanding--
	q.signal()
	q.mu.Unlock()
}

// retry puts j back to be tried again at j.at.
func (q *jobQueue) retry(j *job) {
	q.mu.Lock()
	q.delayed = append(q.delayed, j)
	q.signal()
	q.mu.Unlock()
}

// abort stops the run; what is left stays pending.
func (q *jobQueue) abort() {
	q.mu.Lock()
	q.aborted = true
	q.signal()
	q.mu.Unlock()
}
