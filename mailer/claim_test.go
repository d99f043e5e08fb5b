package mailer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	dbpkg "github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// seedClaimDigest stores a digest with n pending deliveries, to new
// subscribers 1..n, and returns its id.
func seedClaimDigest(t *testing.T, d *sql.DB, n int) int64 {
	t.Helper()
	return seedClaimDigestFrom(t, d, 1, n)
}

// seedClaimDigestFrom stores a digest with n pending deliveries, to new
// subscribers first..first+n-1, and returns its id.
func seedClaimDigestFrom(t *testing.T, d *sql.DB, first, n int) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := d.QueryRowContext(ctx, `INSERT INTO digests (period_start, period_end, items, created) VALUES ('', '', '[]', '') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		email := fmt.Sprintf("r%d@example.org", i)
		if _, err := d.ExecContext(ctx, `INSERT INTO subscribers (id, uid, email, email_key, status, origin, created) VALUES ($1, $2, $3, $4, 'active', 'cli', '')`,
			i, fmt.Sprintf("uid%d", i), email, email); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO deliveries (digest_id, subscriber_id, message_id, status) VALUES ($1, $2, $3, 'pending')`,
			id, i, fmt.Sprintf("<%d.%d@example.org>", id, i)); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func newTestClaimer(d *sql.DB, digestID int64, owner string, batch int) *claimer {
	return &claimer{db: d, eng: dbpkg.EngineOf(d), digestID: digestID, owner: owner, ttl: time.Minute, poll: 10 * time.Millisecond, batch: batch}
}

func TestClaims_NoDeliveryClaimedTwice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, engine dbpkg.Engine) {
		d := dbtest.Open(t, engine)
		const n, senders = 300, 4
		digestID := seedClaimDigest(t, d, n)
		ctx := context.Background()
		got := make([]map[int64]bool, senders)
		errs := make(chan error, senders)
		var wg sync.WaitGroup
		for i := range senders {
			got[i] = map[int64]bool{}
			c := newTestClaimer(d, digestID, fmt.Sprintf("host%d:1:x", i), 7)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ps, err := c.next(ctx)
					if err != nil || len(ps) == 0 {
						errs <- err
						return
					}
					var outs []outcome
					for _, p := range ps {
						got[i][p.SubscriberID] = true
						outs = append(outs, outcome{DigestID: digestID, SubscriberID: p.SubscriberID, Status: deliverySent, Attempted: true, At: time.Now()})
					}
					if err := ledgerRecord(ctx, d, outs); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		seen := map[int64]int{}
		for i, g := range got {
			if len(g) == 0 {
				t.Logf("sender %d claimed nothing", i)
			}
			for id := range g {
				seen[id]++
			}
		}
		for id := int64(1); id <= n; id++ {
			if seen[id] != 1 {
				t.Errorf("delivery to subscriber %d claimed %d times", id, seen[id])
			}
		}
	})
}

func TestClaims_ExpiredTakenOverLiveKept(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, engine dbpkg.Engine) {
		d := dbtest.Open(t, engine)
		digestID := seedClaimDigest(t, d, 6)
		ctx := context.Background()
		now := dbpkg.EngineOf(d).ClockMillis()
		// Subscribers 1-2: a claim by another host that expired a second
		// ago on the database's clock; 3-4: one that lasts another minute;
		// 5-6: one by a process of this host that is gone.
		exec1 := func(q string, args ...any) {
			t.Helper()
			if _, err := d.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		exec1(`UPDATE deliveries SET claimed_by = 'far:1:a/1', claim_expires = ` + now + ` - 1000 WHERE subscriber_id IN (1, 2)`)
		exec1(`UPDATE deliveries SET claimed_by = 'far:2:b/1', claim_expires = ` + now + ` + 60000 WHERE subscriber_id IN (3, 4)`)
		host, _ := os.Hostname()
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		exec1(`UPDATE deliveries SET claimed_by = $1, claim_expires = `+now+` + 60000 WHERE subscriber_id IN (5, 6)`,
			fmt.Sprintf("%s:%d:c/1", host, dead.Process.Pid))

		// Where the gone process's claims are all that is left, they are
		// taken at once, without waiting.
		alone := seedClaimDigestFrom(t, d, 7, 2)
		exec1(`UPDATE deliveries SET claimed_by = $1, claim_expires = `+now+` + 60000 WHERE digest_id = $2`,
			fmt.Sprintf("%s:%d:c/1", host, dead.Process.Pid), alone)
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		ps, err := newTestClaimer(d, alone, "me:1:w", 100).next(actx)
		acancel()
		if err != nil || len(ps) != 2 {
			t.Errorf("claims of a gone process, alone: got %d, %v; want both at once", len(ps), err)
		}

		c := newTestClaimer(d, digestID, "me:1:z", 100)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var claimed []int64
		for {
			ps, err := c.next(cctx)
			if err != nil {
				break // waiting on the live claim until the deadline
			}
			for _, p := range ps {
				claimed = append(claimed, p.SubscriberID)
			}
		}
		want := []int64{1, 2, 5, 6}
		if fmt.Sprint(claimed) != fmt.Sprint(want) {
			t.Errorf("claimed %v, want %v (the expired claim and the dead process's, not the live one)", claimed, want)
		}
		var holder string
		d.QueryRowContext(ctx, `SELECT claimed_by FROM deliveries WHERE subscriber_id = 3`).Scan(&holder)
		if holder != "far:2:b/1" {
			t.Errorf("the live claim is now held by %q", holder)
		}
		busy, _, err := c.othersBusy(ctx)
		if err != nil || !busy {
			t.Errorf("othersBusy = %v, %v with a live claim of another host", busy, err)
		}
		// Once it expires, it is taken over.
		exec1(`UPDATE deliveries SET claim_expires = ` + now + ` - 1 WHERE subscriber_id IN (3, 4)`)
		ps, err = c.next(ctx)
		if err != nil || len(ps) != 2 || ps[0].SubscriberID != 3 {
			t.Errorf("after expiry: %v, %v; want subscribers 3 and 4", ps, err)
		}
		// Given back at the end, the rest is anyone's at once.
		if err := c.release(ctx); err != nil {
			t.Fatal(err)
		}
		other := newTestClaimer(d, digestID, "other:1:y", 100)
		if ps, err := other.next(ctx); err != nil || len(ps) != 6 {
			t.Errorf("after release another claimed %d, %v; want all 6", len(ps), err)
		}
	})
}
