package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// PostgreSQL stopped in the middle of a digest sent by two `digest send`
// processes, and started again a few seconds later: /readyz of a serve
// instance is 503 with one line while it is down and 200 after; a sender
// that cannot record an outcome stops with an error rather than hang or
// send on unrecorded; `digest send` run again once the database is back
// finishes the digest: every subscriber has one message, except at most
// the messages in flight when the database went away, which come twice
// with the same Message-ID, and the ledger shows every delivery sent.
func TestDigestSend_PostgresRestartMidDigest(t *testing.T) {
	needPostgres(t)
	bin := buildBinary(t)
	const subscribers, concurrency, senders = 3000, 4, 2
	e := newDigestCLIEnvOn(t, db.Postgres, subscribers, smtptest.Faults{Delay: time.Millisecond, DiscardData: true})
	extra := []string{"MSITFEED_SMTP_CONCURRENCY=" + strconv.Itoa(concurrency)}
	// The test cluster runs with synchronous_commit=off and StopPostgres
	// is a crash (pg_ctl stop -m immediate), which loses commits of the
	// last few hundred milliseconds that the server had acknowledged: the
	// ledger would forget messages sent long before those in flight.
	// PostgreSQL's default is on; the processes below connect after this.
	var dbName string
	if err := e.db.QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`ALTER DATABASE ` + dbName + ` SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}

	site := httptest.NewServer(msittest.NewSite(msittest.SamplePosts()))
	defer site.Close()
	env := append(append(os.Environ(), e.environ...), "MSITFEED_SOURCE_URL="+site.URL, "MSITFEED_SOURCE_RATE=1000",
		"MSITFEED_SCHEDULE_LEASE=2s", "MSITFEED_SCHEDULE_CRAWL=@every 1h",
		// Not today: only the two senders send this digest.
		"MSITFEED_SCHEDULE_DIGEST=0 9 1 1 *")
	srv := startInstances(t, bin, env, 1)[0]
	waitFor(t, "serve to be ready", 30*time.Second, func() bool {
		code, _, _ := srv.get("/readyz")
		return code == http.StatusOK
	})

	procs := make([]*exec.Cmd, senders)
	outs := make([]*syncBuffer, senders)
	exited := make([]chan error, senders)
	for i := range procs {
		procs[i] = e.command(bin, extra, "digest", "send")
		outs[i] = &syncBuffer{}
		procs[i].Stdout, procs[i].Stderr = outs[i], outs[i]
		if err := procs[i].Start(); err != nil {
			t.Fatal(err)
		}
		exited[i] = make(chan error, 1)
		go func() { exited[i] <- procs[i].Wait() }()
	}
	waitOrFail(t, e.smtp.WaitFor(subscribers/3), "a third of the digest")
	dbtest.StopPostgres(t)
	stopped := time.Now()
	atStop := e.smtp.Count()
	if atStop >= subscribers {
		t.Fatalf("the whole digest (%d) went out before the stop: the test proves nothing", atStop)
	}

	code, body, _ := srv.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database unreachable") ||
		strings.Count(strings.TrimSpace(body), "\n") != 0 {
		t.Errorf("/readyz while PostgreSQL is down: %d %q, want 503 and one line saying the database is unreachable", code, body)
	}
	// Each sender either stops with an error or waits for the database;
	// neither sends anything it cannot record: at most one message per
	// connection after the stop.
	time.Sleep(3 * time.Second)
	whileDown := e.smtp.Count() - atStop
	if whileDown > senders*concurrency {
		t.Errorf("%d messages accepted while PostgreSQL was down; at most %d were in flight", whileDown, senders*concurrency)
	}
	dbtest.StartPostgres(t)
	down := time.Since(stopped)

	var failed []int
	for i := range procs {
		select {
		case err := <-exited[i]:
			if err != nil {
				failed = append(failed, i)
				last := lastLine(outs[i].String())
				if !strings.Contains(last, "digest 1 unfinished, run digest send again") {
					t.Errorf("sender %d stopped with %v, and its last line does not tell to run digest send again: %q", i, err, last)
				}
				t.Logf("sender %d: %v: %s", i, err, last)
			}
		case <-time.After(60 * time.Second):
			procs[i].Process.Kill()
			t.Fatalf("sender %d neither finished nor stopped a minute after PostgreSQL came back\n%s", i, outs[i])
		}
	}
	waitFor(t, "serve to be ready again", 20*time.Second, func() bool {
		code, _, _ := srv.get("/readyz")
		return code == http.StatusOK
	})

	var pending int
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&pending)
	if len(failed) > 0 || pending > 0 {
		// What the administrator does: run it again.
		again := e.command(bin, extra, "digest", "send")
		start := time.Now()
		out, err := again.CombinedOutput()
		if err != nil {
			t.Fatalf("digest send run again after the restart: %v\n%s", err, out)
		}
		t.Logf("run again (%v): %s", time.Since(start).Round(time.Millisecond), lastLine(string(out)))
	}

	doubled := e.resent(t)
	if doubled > senders*concurrency {
		t.Errorf("%d subscribers got the digest twice; at most %d messages were in flight", doubled, senders*concurrency)
	}
	var sent, finished, digests int
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&sent)
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&pending)
	e.db.QueryRow(`SELECT count(*) FROM digests`).Scan(&digests)
	e.db.QueryRow(`SELECT count(*) FROM digests WHERE finished <> ''`).Scan(&finished)
	if sent != subscribers || pending != 0 || digests != 1 || finished != 1 {
		t.Errorf("ledger: %d sent, %d pending, %d digests (%d finished); want %d sent, 1 finished digest", sent, pending, digests, finished, subscribers)
	}
	t.Logf("PostgreSQL stopped after %d of %d accepted, down %v; %d accepted while down; %d of %d senders stopped with an error; %d resent with the same Message-ID",
		atStop, subscribers, down.Round(time.Millisecond), whileDown, len(failed), senders, doubled)
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
