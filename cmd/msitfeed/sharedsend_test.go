package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// TestDigestSend_ThreeProcessesShareOneDigest starts three `digest send`
// on one PostgreSQL and SIGKILLs one of them in the middle: every
// subscriber gets the digest once, except at most the killed process's
// messages in flight, which come twice with the same Message-ID; the two
// that lived both sent some; the digest is finished.
func TestDigestSend_ThreeProcessesShareOneDigest(t *testing.T) {
	if !slices.Contains(dbtest.Engines(), db.Postgres) {
		t.Skip("no PostgreSQL on this machine")
	}
	bin := buildBinary(t)
	const subscribers, concurrency = 5000, 4
	e := newDigestCLIEnvOn(t, db.Postgres, subscribers, smtptest.Faults{Delay: time.Millisecond, DiscardData: true})
	extra := []string{"MSITFEED_SMTP_CONCURRENCY=" + strconv.Itoa(concurrency)}
	procs := make([]*exec.Cmd, 3)
	outs := make([]*bytes.Buffer, 3)
	for i := range procs {
		procs[i] = e.command(bin, extra, "digest", "send")
		outs[i] = &bytes.Buffer{}
		procs[i].Stdout, procs[i].Stderr = outs[i], outs[i]
		if err := procs[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	// Kill one that has sent something, a third of the way through.
	waitOrFail(t, e.smtp.WaitFor(subscribers/3), "a third of the digest")
	byPid := func() map[int]int {
		rows, err := e.db.Query(`SELECT claimed_by, count(*) FROM deliveries WHERE status = 'sent' GROUP BY claimed_by`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int]int{}
		for rows.Next() {
			var by string
			var n int
			if err := rows.Scan(&by, &n); err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(strings.Split(by, "/")[0], ":")
			if len(parts) == 3 {
				pid, _ := strconv.Atoi(parts[1])
				out[pid] += n
			}
		}
		return out
	}
	victim := 0
	for i, p := range procs {
		if byPid()[p.Process.Pid] > 0 {
			victim = i
			break
		}
	}
	if err := procs[victim].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	procs[victim].Wait()
	killedAt := e.smtp.Count()
	for i, p := range procs {
		if i == victim {
			continue
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("sender %d: %v\n%s", i, err, outs[i])
		}
	}

	doubled := e.resent(t)
	if doubled > concurrency {
		t.Errorf("%d subscribers got the digest twice; the killed sender had at most %d in flight", doubled, concurrency)
	}
	var sent, pending, finished, digests int
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&sent)
	e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&pending)
	e.db.QueryRow(`SELECT count(*) FROM digests`).Scan(&digests)
	e.db.QueryRow(`SELECT count(*) FROM digests WHERE finished <> ''`).Scan(&finished)
	if sent != subscribers || pending != 0 || digests != 1 || finished != 1 {
		t.Errorf("ledger: %d sent, %d pending, %d digests (%d finished); want %d sent, 1 finished digest", sent, pending, digests, finished, subscribers)
	}
	shares := byPid()
	var split []string
	for i, p := range procs {
		n := shares[p.Process.Pid]
		split = append(split, fmt.Sprintf("%d", n))
		if i != victim && n == 0 {
			t.Errorf("sender %d lived and sent nothing: the work was not shared\n%s", i, outs[i])
		}
	}
	t.Logf("killed sender %d after %d accepted; deliveries sent per sender %s; %d resent with the same Message-ID",
		victim, killedAt, strings.Join(split, "/"), doubled)
}
