package mailer_test

import (
	"context"
	"fmt"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// TestSendDigest_CreatedPageByPage makes a digest from subscribers read
// seven at a time, with subscribers who get nothing (other statuses, a
// board without posts, a filter that keeps nothing) scattered over the
// pages and at their edges: the plan counts exactly those who get a
// digest, the ledger has one delivery each, and each gets one message.
func TestSendDigest_CreatedPageByPage(t *testing.T) {
	dbtest.Each(t, sendDigestCreatedPageByPage)
}

func sendDigestCreatedPageByPage(t *testing.T, engine db.Engine) {
	defer mailer.SetRecipientPageForTest(7)()
	ctx := context.Background()
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	joined := e.now.Add(-30 * 24 * time.Hour)
	var want []string
	for i := range 60 {
		email := fmt.Sprintf("reader%02d@example.org", i)
		status, boards := mailer.StatusActive, []string{"", "press", "notice", "press,notice"}[i%4]
		switch {
		case i%9 == 6: // the last of a page, and others
			boards = "photo" // no photo posts
		case i%10 == 0:
			status = mailer.StatusPending
		case i%11 == 7:
			status = mailer.StatusUnsubscribed
		}
		id := e.addSubscriber(email, "", boards, status, joined)
		if i%13 == 12 {
			if _, err := e.db.Exec(`UPDATE subscribers SET match_pattern = 'nothing matches this' WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if status == mailer.StatusActive && boards != "photo" {
			want = append(want, email)
		}
	}
	e.addItem("press", "Press post", e.now, e.now.Add(-time.Hour))
	e.addItem("notice", "Notice post", e.now, e.now.Add(-time.Hour))

	m := e.mailer()
	plan, err := m.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Recipients != len(want) || plan.Items != 2 {
		t.Errorf("dry run: %d recipients of %d posts, want %d of 2", plan.Recipients, plan.Items, len(want))
	}
	if n := e.scalar(`SELECT count(*) FROM digests`); n != 0 {
		t.Errorf("the dry run wrote %d digests", n)
	}
	res := e.mustSend(m)
	exactlyOnce(t, e.smtp, want)
	if res.Sent() != len(want) {
		t.Errorf("result says %d sent, want %d", res.Sent(), len(want))
	}
	if n := e.scalar(`SELECT count(DISTINCT subscriber_id) FROM deliveries`); n != len(want) {
		t.Errorf("ledger has deliveries to %d subscribers, want %d", n, len(want))
	}
	if n := e.scalar(`SELECT count(DISTINCT message_id) FROM deliveries`); n != len(want) {
		t.Errorf("ledger has %d distinct Message-IDs, want %d", n, len(want))
	}
}

// TestSendDigest_NobodyOnAnyPage: when no page has a recipient, nothing
// is written and the reason is given, as before.
func TestSendDigest_NobodyOnAnyPage(t *testing.T) {
	dbtest.Each(t, sendDigestNobodyOnAnyPage)
}

func sendDigestNobodyOnAnyPage(t *testing.T, engine db.Engine) {
	defer mailer.SetRecipientPageForTest(3)()
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	for i := range 10 {
		e.addSubscriber(fmt.Sprintf("reader%02d@example.org", i), "", "photo", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	}
	e.addItem("press", "Press post", e.now, e.now.Add(-time.Hour))
	res := e.mustSend(e.mailer())
	if len(res.Digests) != 0 || res.Nothing != "nothing sent: 1 new post, but no active subscriber wants those boards" {
		t.Errorf("result %+v, want no digest and the reason", res)
	}
	if n := e.scalar(`SELECT count(*) FROM digests`) + e.scalar(`SELECT count(*) FROM deliveries`); n != 0 {
		t.Errorf("%d digest and delivery rows written, want none", n)
	}
}
