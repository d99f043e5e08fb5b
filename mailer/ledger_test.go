package mailer

import (
	"context"
	"fmt"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"testing"
	"time"
)

// TestLedgerWriter_Record records a group of outcomes of every kind in one
// commit and reads each row back: successes with their own sent times, a
// success resetting the bounce counter, a bounce adding to it, and a
// delivery no longer pending left alone; recording again changes nothing.
// The outcomes go in as one group, and as groups of which one touches no
// bounce counter (on PostgreSQL, written by one statement).
func TestLedgerWriter_Record(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, engine db.Engine) {
		for _, groups := range [][][]int{{{0, 1, 2, 3, 4}}, {{0, 1, 4}, {2, 3}}, {{0}, {1}, {4}, {2}, {3}}} {
			t.Run(fmt.Sprint(groups), func(t *testing.T) { ledgerWriterRecord(t, engine, groups) })
		}
	})
}

func ledgerWriterRecord(t *testing.T, engine db.Engine, groups [][]int) {
	ctx := context.Background()
	s, d := openSubscribersOn(t, engine)
	var ids []int64
	for _, email := range []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"} {
		sub := mustAdd(t, s, NewSubscriber{Address: email})
		ids = append(ids, sub.ID)
	}
	if _, err := d.Exec(`UPDATE subscribers SET status = 'active', bounces = 1`); err != nil {
		t.Fatal(err)
	}
	var dg digestRow
	if err := d.QueryRow(`INSERT INTO digests (period_start, period_end, items, created, seq_start, seq_end)
		VALUES ('', '', '[]', '', 0, 0) RETURNING id`).Scan(&dg.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := d.Exec(`INSERT INTO deliveries (digest_id, subscriber_id, message_id, boards, since, match_pattern, status)
			VALUES ($1, $2, '', '', '', '', 'pending')`, dg.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Exec(`UPDATE deliveries SET status = 'failed' WHERE subscriber_id = $1`, ids[4]); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	w, err := newLedgerWriter(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	outs := []outcome{
		{DigestID: dg.ID, SubscriberID: ids[0], Status: deliverySent, Attempted: true, At: t0},
		{DigestID: dg.ID, SubscriberID: ids[1], Status: deliverySent, Attempted: true, At: t0.Add(time.Second)},
		{DigestID: dg.ID, SubscriberID: ids[2], Status: deliverySent, Attempted: true, HadBounces: true, At: t0.Add(2 * time.Second)},
		{DigestID: dg.ID, SubscriberID: ids[3], Status: deliveryFailed, Attempted: true, Bounce: true, Error: "550 no such user", At: t0},
		{DigestID: dg.ID, SubscriberID: ids[4], Status: deliverySent, Attempted: true, At: t0},
	}
	record := func() {
		for _, g := range groups {
			var part []outcome
			for _, i := range g {
				part = append(part, outs[i])
			}
			if err := w.record(ctx, part); err != nil {
				t.Fatal(err)
			}
		}
	}
	record()
	want := []struct {
		status, sent, lastError string
		attempts, bounces       int
	}{
		{"sent", ledgerTime(t0), "", 1, 1},
		{"sent", ledgerTime(t0.Add(time.Second)), "", 1, 1},
		{"sent", ledgerTime(t0.Add(2 * time.Second)), "", 1, 0},
		{"failed", "", "550 no such user", 1, 2},
		{"failed", "", "", 0, 1}, // not pending: unchanged
	}
	for i, wt := range want {
		var status, sent, lastError string
		var attempts, bounces int
		if err := d.QueryRow(`SELECT d.status, d.sent, d.last_error, d.attempts, s.bounces FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
			WHERE d.digest_id = $1 AND d.subscriber_id = $2`, dg.ID, ids[i]).Scan(&status, &sent, &lastError, &attempts, &bounces); err != nil {
			t.Fatal(err)
		}
		if status != wt.status || sent != wt.sent || lastError != wt.lastError || attempts != wt.attempts || bounces != wt.bounces {
			t.Errorf("delivery %d: %s sent %q error %q attempts %d bounces %d; want %+v", i, status, sent, lastError, attempts, bounces, wt)
		}
	}
	// Recording again changes nothing.
	record()
	var attempts int
	if err := d.QueryRow(`SELECT sum(attempts) FROM deliveries`).Scan(&attempts); err != nil || attempts != 4 {
		t.Errorf("after recording twice: %d attempts (%v), want 4", attempts, err)
	}
}
