// The workers that send a digest: one per connection, each waiting for
// the ledger to record an answer before it sends again, and the recorder
// that commits their outcomes together.

package mailer

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// recorder writes outcomes to the ledger for all workers, committing every
// outcome that arrived while the previous commit ran in one transaction.
// A worker waits for its outcome to be committed before it sends again, so
// a crash loses at most the answer to the message each worker has in flight.
type recorder struct {
	w  *ledgerWriter
	in chan recordReq
}

// recordReq is one outcome to commit and where to say it is durable.
type recordReq struct {
	o    outcome
	done chan error
}

// run commits until in is closed. It uses its own context: an answer the
// server gave must be recorded even while the run is being cancelled.
func (r *recorder) run() {
	ctx := context.Background()
	for req := range r.in {
		batch := []recordReq{req}
	drain:
		for len(batch) < 256 {
			select {
			case more, ok := <-r.in:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		outs := make([]outcome, len(batch))
		for i, b := range batch {
			outs[i] = b.o
		}
		err := r.w.record(ctx, outs)
		for _, b := range batch {
			b.done <- err
		}
	}
}

// record commits o and returns when it is durable.
func (r *recorder) record(o outcome) error {
	done := make(chan error, 1)
	r.in <- recordReq{o: o, done: done}
	return <-done
}

// runStats counts what one delivery run did.
type runStats struct {
	mu      sync.Mutex
	sent    int
	failed  int
	lastErr error // the latest error that left a delivery pending or stopped the run
	fatal   error
	observe func(outcome string)
}

// add counts the outcome of one attempt: messages sent or failed for
// good, the error that left a delivery pending, and one that stops the run.
func (s *runStats) add(sent, failed int, pendingErr, fatal error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent += sent
	s.failed += failed
	if s.observe != nil {
		for range sent {
			s.observe("sent")
		}
		for range failed {
			s.observe("failed")
		}
		if pendingErr != nil && fatal == nil {
			s.observe("retried")
		}
	}
	if pendingErr != nil {
		s.lastErr = pendingErr
	}
	if fatal != nil && s.fatal == nil {
		s.fatal = fatal
	}
}

// backoff is the wait before retry n (1, 2, …): Backoff doubled each time,
// at most ten minutes.
func (m *Mailer) backoff(n int) time.Duration {
	d := m.Backoff
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// deliver sends the jobs of digest d that source gives, a batch at a time,
// with cfg.SMTP.Concurrency workers, each with its own reused connection,
// at most cfg.SMTP.Rate messages a second.
func (m *Mailer) deliver(ctx context.Context, digestID int64, source func(context.Context) ([]*job, error)) *runStats {
	stats := &runStats{observe: m.OnDelivery}
	first, err := source(ctx)
	if err != nil || len(first) == 0 {
		stats.fatal = err
		return stats
	}
	workers := max(1, min(m.cfg.SMTP.Concurrency, len(first)))
	rest := func(ctx context.Context) ([]*job, error) {
		if first != nil {
			jobs := first
			first = nil
			return jobs, nil
		}
		return source(ctx)
	}
	// The next batch is read while each worker still has a few to send,
	// so at most two batches are held at once.
	q := newJobQueue(rest, 2*workers, pendingBatch, time.Now) // backoff runs on real time, whatever m.Now says
	defer func() { m.peakJobs.Store(int64(q.peak)) }()
	w, err := newLedgerWriter(ctx, m.db)
	if err != nil {
		stats.fatal = err
		return stats
	}
	defer w.close()
	rec := &recorder{w: w, in: make(chan recordReq)}
	recDone := make(chan struct{})
	go func() { rec.run(); close(recDone) }()
	var lim *rate.Limiter
	if m.cfg.SMTP.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(m.cfg.SMTP.Rate), 1)
	}
	tpls := &templateCache{m: m, byEdition: map[*edition]*msgTemplate{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.worker(ctx, digestID, q, rec, lim, stats, tpls)
		}()
	}
	wg.Wait()
	close(rec.in)
	<-recDone
	if q.err != nil && stats.fatal == nil {
		stats.fatal = q.err
	}
	return stats
}

// worker sends jobs over one session until the queue ends. Temporary
// failures are retried after a backoff up to cfg.SMTP.Retries times in this
// run and then left pending; a connection that cannot be made makes the
// worker back off, and after cfg.SMTP.Retries failures in a row give up.
func (m *Mailer) worker(ctx context.Context, digestID int64, q *jobQueue, rec *recorder, lim *rate.Limiter, stats *runStats, tpls *templateCache) {
	var buf bytes.Buffer // each message is built here, and sent before the next
	sess := m.tr.open()
	defer sess.close()
	retries := m.cfg.SMTP.Retries
	connFails := 0
	for {
		j, ok := q.next(ctx)
		if !ok {
			return
		}
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				q.done()
				return
			}
		}
		o := outcome{DigestID: digestID, SubscriberID: j.p.SubscriberID, Status: deliveryPending, HadBounces: j.p.Bounces > 0}
		buildErr, err := sendMsg(ctx, sess, func(eightBit bool) (*wireMsg, error) { return m.digestMsg(j, eightBit, tpls, &buf) })
		if buildErr != nil {
			o.Status, o.Error, o.At = deliveryFailed, buildErr.Error(), m.Now()
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 1, nil, nil)
			q.done()
			continue
		}
		o.At = m.Now()
		if err == nil {
			o.Status, o.Attempted = deliverySent, true
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			connFails = 0
			stats.add(1, 0, nil, nil)
			q.done()
			continue
		}
		if ctx.Err() != nil {
			// Stopped mid-send: what the server did is unknown, so the
			// delivery stays pending and is resent with its Message-ID.
			q.done()
			return
		}
		var de *deliveryError
		if !errors.As(err, &de) {
			de = &deliveryError{Temporary: true, Err: err}
		}
		o.Error = de.Error()
		switch {
		case de.Fatal:
			o.Attempted = true
			rerr := rec.record(o)
			stats.add(0, 0, de, errors.Join(de, rerr))
			q.abort()
			return
		case de.Conn:
			connFails++
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 0, de, nil)
			j.at = time.Now()
			q.retry(j)
			if connFails > retries {
				m.Log.Warn("digest send: giving up on the connection", "digest", digestID, "error", de, "tries", connFails)
				return
			}
			if !sleepCtx(ctx, m.backoff(connFails)) {
				return
			}
		case de.Temporary:
			o.Attempted = true
			j.tries++
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 0, de, nil)
			if j.tries > retries {
				q.done() // stays pending for the next run
				continue
			}
			j.at = time.Now().Add(m.backoff(j.tries))
			q.retry(j)
		default:
			o.Status, o.Attempted, o.Bounce = deliveryFailed, true, de.Bounce
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 1, nil, nil)
			q.done()
		}
	}
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
