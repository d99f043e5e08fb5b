// Claims: how several senders (instances of msitfeed, or several
// `msitfeed digest send`) share one digest. Each claims pending deliveries
// a batch at a time, sends them, and extends its claims while it works; a
// claim whose sender died expires on the database's clock and is taken
// over.

package mailer

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	dbpkg "github.com/msitfeed/msitfeed/internal/db" // "db" names the *sql.DB here
)

// claimedBatch is one batch this sender claimed: the rows of the digest
// between subscriber ids lo and hi that carry token.
type claimedBatch struct {
	token  string
	lo, hi int64
}

// claimer claims the pending deliveries of one digest for one sender. Its
// next is called by one worker at a time (the job queue's source); keep
// and release may run beside it.
type claimer struct {
	db       *sql.DB
	eng      dbpkg.Engine
	digestID int64
	owner    string        // this sender: host:pid:random, as lock owners
	ttl      time.Duration // a claim lasts this long without being kept
	poll     time.Duration // how often to look again while others hold claims
	batch    int

	after int64 // the next claim starts after this subscriber id
	n     int   // batches claimed so far

	mu      sync.Mutex
	batches []claimedBatch // claimed and maybe not yet done
}

// token names batch n of this sender in claimed_by.
func (c *claimer) token(n int) string { return c.owner + "/" + strconv.Itoa(n) }

// mine reports whether a claimed_by value is one of this sender's.
func (c *claimer) mine(claimedBy string) bool { return strings.HasPrefix(claimedBy, c.owner+"/") }

// next claims the next batch and returns its deliveries, in subscriber
// order. Claims are taken going up from the last batch; when none is left
// above it, once more from the start, for claims that were given back or
// have expired since. When nothing is claimable but other senders still
// hold claims, it waits for them (taking over at once those of a process on
// this host that is gone, and the others when they expire), so that a
// send ends only when nothing of the digest is pending outside its own
// claims. nil means that.
func (c *claimer) next(ctx context.Context) ([]pendingDelivery, error) {
	for {
		tok := c.token(c.n + 1)
		lo, hi, err := ledgerClaim(ctx, c.db, c.eng, c.digestID, c.after, c.batch, tok, c.ttl)
		if err != nil {
			return nil, err
		}
		if hi > 0 {
			c.n++
			c.after = hi
			c.mu.Lock()
			c.batches = append(c.batches, claimedBatch{token: tok, lo: lo, hi: hi})
			c.mu.Unlock()
			ps, err := ledgerClaimed(ctx, c.db, c.digestID, lo, hi, tok, c.batch)
			if err != nil || len(ps) > 0 {
				return ps, err
			}
			continue
		}
		if c.after > 0 {
			c.after = 0
			continue
		}
		busy, freed, err := c.othersBusy(ctx)
		if err != nil || !busy && !freed {
			return nil, err
		}
		if !freed && !sleepCtx(ctx, c.poll) {
			return nil, ctx.Err()
		}
	}
}

// othersBusy reports whether other senders hold live claims on pending
// deliveries of the digest. The claims of a sender that ran on this host
// and is gone are given up on the spot (freed says some were), and do not
// count.
func (c *claimer) othersBusy(ctx context.Context) (busy, freed bool, err error) {
	holders, err := ledgerClaimants(ctx, c.db, c.eng, c.digestID)
	if err != nil {
		return false, false, err
	}
	for _, h := range holders {
		if c.mine(h) {
			continue
		}
		owner, _, _ := strings.Cut(h, "/")
		if holderGone(owner) {
			if err := ledgerFreeClaims(ctx, c.db, c.digestID, h); err != nil {
				return false, false, err
			}
			freed = true
			continue
		}
		busy = true
	}
	return busy, freed, nil
}

// keep extends this sender's claims to ttl from now, dropping batches with
// nothing pending left.
func (c *claimer) keep(ctx context.Context) error {
	c.mu.Lock()
	bs := append([]claimedBatch(nil), c.batches...)
	c.mu.Unlock()
	var done []string
	for _, b := range bs {
		n, err := ledgerKeepClaim(ctx, c.db, c.eng, c.digestID, b, c.ttl)
		if err != nil {
			return err
		}
		if n == 0 {
			done = append(done, b.token)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.batches[:0]
	for _, b := range c.batches {
		if !containsString(done, b.token) {
			kept = append(kept, b)
		}
	}
	c.batches = kept
	return nil
}

// release gives back what this sender claimed and left pending, for any
// sender to take at once.
func (c *claimer) release(ctx context.Context) error {
	c.mu.Lock()
	bs := c.batches
	c.batches = nil
	c.mu.Unlock()
	for _, b := range bs {
		if err := ledgerReleaseClaim(ctx, c.db, c.digestID, b); err != nil {
			return err
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ledgerClaim claims for token, until ttl from now on the database's
// clock, up to limit pending deliveries of a digest after subscriber id
// after whose claim is free or has expired, taking the lowest ids first.
// It returns the range of subscriber ids claimed; hi is 0 if none was.
// The statement is the claim: on SQLite it runs whole before any other
// write, and on PostgreSQL its rows are locked as they are picked and rows
// another claimant is taking are skipped, so no delivery is claimed twice.
func ledgerClaim(ctx context.Context, db *sql.DB, eng dbpkg.Engine, digestID, after int64, limit int, token string, ttl time.Duration) (lo, hi int64, err error) {
	now := eng.ClockMillis()
	rows, err := db.QueryContext(ctx, `UPDATE deliveries SET claimed_by = $1, claim_expires = `+now+` + $2
		WHERE digest_id = $3 AND subscriber_id IN (
			SELECT subscriber_id FROM deliveries
			WHERE digest_id = $3 AND status = 'pending' AND subscriber_id > $4 AND claim_expires < `+now+`
			ORDER BY subscriber_id LIMIT $5`+eng.SkipLocked()+`)
		RETURNING subscriber_id`, token, ttl.Milliseconds(), digestID, after, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("claim deliveries of digest %d: %w", digestID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, 0, fmt.Errorf("claim deliveries of digest %d: %w", digestID, err)
		}
		if lo == 0 || id < lo {
			lo = id
		}
		hi = max(hi, id)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("claim deliveries of digest %d: %w", digestID, err)
	}
	return lo, hi, nil
}

// ledgerClaimants returns the distinct claimants holding live claims on
// pending deliveries of a digest.
func ledgerClaimants(ctx context.Context, db *sql.DB, eng dbpkg.Engine, digestID int64) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT claimed_by FROM deliveries
		WHERE digest_id = $1 AND status = 'pending' AND claimed_by <> '' AND claim_expires >= `+eng.ClockMillis(), digestID)
	if err != nil {
		return nil, fmt.Errorf("read claimants of digest %d: %w", digestID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("read claimants of digest %d: %w", digestID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read claimants of digest %d: %w", digestID, err)
	}
	return out, nil
}

// ledgerFreeClaims ends at once the claims of claimedBy on pending
// deliveries of a digest (its sender is known to be gone).
func ledgerFreeClaims(ctx context.Context, db *sql.DB, digestID int64, claimedBy string) error {
	if _, err := db.ExecContext(ctx, `UPDATE deliveries SET claim_expires = 0
		WHERE digest_id = $1 AND status = 'pending' AND claimed_by = $2`, digestID, claimedBy); err != nil {
		return fmt.Errorf("free claims of %s on digest %d: %w", claimedBy, digestID, err)
	}
	return nil
}

// ledgerKeepClaim extends the claim of batch b to ttl from now and returns
// how many of its deliveries are still pending.
func ledgerKeepClaim(ctx context.Context, db *sql.DB, eng dbpkg.Engine, digestID int64, b claimedBatch, ttl time.Duration) (int64, error) {
	res, err := db.ExecContext(ctx, `UPDATE deliveries SET claim_expires = `+eng.ClockMillis()+` + $1
		WHERE digest_id = $2 AND subscriber_id BETWEEN $3 AND $4 AND claimed_by = $5 AND status = 'pending'`,
		ttl.Milliseconds(), digestID, b.lo, b.hi, b.token)
	if err != nil {
		return 0, fmt.Errorf("keep claim %s on digest %d: %w", b.token, digestID, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ledgerReleaseClaim gives back the pending deliveries of batch b.
func ledgerReleaseClaim(ctx context.Context, db *sql.DB, digestID int64, b claimedBatch) error {
	if _, err := db.ExecContext(ctx, `UPDATE deliveries SET claimed_by = '', claim_expires = 0
		WHERE digest_id = $1 AND subscriber_id BETWEEN $2 AND $3 AND claimed_by = $4 AND status = 'pending'`, digestID, b.lo, b.hi, b.token); err != nil {
		return fmt.Errorf("release claim %s on digest %d: %w", b.token, digestID, err)
	}
	return nil
}
