package mailer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// TestSendDigest_TakesOverClaimsOfAnotherHostWhenTheyExpire leaves a
// digest pending, lets a sender on another host hold every delivery with a
// claim that runs out 1.5 s later on the database's clock, and sends: the
// send waits for the claim to expire, then sends each message once.
func TestSendDigest_TakesOverClaimsOfAnotherHostWhenTheyExpire(t *testing.T) {
	dbtest.Each(t, sendDigestTakesOverClaimsOfAnotherHostWhenTheyExpire)
}

func sendDigestTakesOverClaimsOfAnotherHostWhenTheyExpire(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{DownConns: 1 << 30})
	e.cfg.SMTP.Retries = 2
	emails := e.seedDigest(20)
	m := e.mailer()
	var pe *mailer.PendingError
	if _, err := e.send(m); !errors.As(err, &pe) {
		t.Fatalf("SendDigest with the server down = %v, want deliveries left pending", err)
	}
	if _, err := e.db.Exec(`UPDATE deliveries SET claimed_by = 'elsewhere:1:x/1', claim_expires = ` + engine.ClockMillis() + ` + 1500
		WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	e.smtp.SetFaults(smtptest.Faults{})
	e.now = e.now.Add(time.Hour)
	m = e.mailer()
	m.LockRefresh = 50 * time.Millisecond
	start := time.Now()
	res, err := e.send(m)
	if err != nil {
		t.Fatalf("SendDigest after the other host went silent: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("sent after %v: a live claim was taken over", waited)
	}
	if res.Sent() != len(emails) {
		t.Errorf("sent %d, want %d", res.Sent(), len(emails))
	}
	exactlyOnce(t, e.smtp, emails)
}
