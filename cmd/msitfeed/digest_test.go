package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// digestCLIEnv is a database with subscribers and posts, an in-process
// SMTP server, and the MSITFEED_* variables that point msitfeed at them.
type digestCLIEnv struct {
	dir     string
	db      *sql.DB
	smtp    *smtptest.Server
	environ []string
	emails  []string
}

func newDigestCLIEnv(t *testing.T, subscribers int, f smtptest.Faults) *digestCLIEnv {
	t.Helper()
	return newDigestCLIEnvOn(t, db.SQLite, subscribers, f)
}

// resent checks that every subscriber got the digest once, or twice with
// the same Message-ID (a message in flight when a sender stopped), and
// returns how many got it twice.
func (e *digestCLIEnv) resent(t *testing.T) int {
	t.Helper()
	ids := map[string][]string{}
	for _, m := range e.smtp.Messages() {
		ids[m.To[0]] = append(ids[m.To[0]], m.MessageID)
	}
	doubled := 0
	for _, email := range e.emails {
		switch got := ids[email]; {
		case len(got) == 1 && got[0] != "":
		case len(got) == 2 && got[0] == got[1] && got[0] != "":
			doubled++
		default:
			t.Errorf("%s got %d messages (%v)", email, len(got), got)
		}
	}
	return doubled
}

// newDigestCLIEnvOn is newDigestCLIEnv on a fresh database of engine.
func newDigestCLIEnvOn(t *testing.T, engine db.Engine, subscribers int, f smtptest.Faults) *digestCLIEnv {
	t.Helper()
	dir := t.TempDir()
	path := dbtest.DSN(t, engine)
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e := &digestCLIEnv{dir: dir, db: d, smtp: smtptest.Start(t, f)}
	joined := time.Now().Add(-30 * 24 * time.Hour).Format(time.RFC3339Nano)
	tx, err := d.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range subscribers {
		email := fmt.Sprintf("reader%04d@example.org", i)
		if _, err := tx.Exec(`INSERT INTO subscribers (uid, email, email_key, status, boards, origin, created, confirmed)
			VALUES ($1, $2, $3, 'active', '', 'cli', $4, $4)`, mailer.NewUID(), email, email, joined); err != nil {
			t.Fatal(err)
		}
		e.emails = append(e.emails, email)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	store := feeds.NewStore(d)
	store.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	for i, board := range []string{"press", "notice"} {
		it := feeds.Item{Board: board, ID: int64(100 + i), Title: "A post on " + board,
			URL: fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", 100+i), Published: time.Now()}
		if _, err := store.Save(context.Background(), it, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.environ = []string{
		"MSITFEED_DATABASE=" + path,
		"MSITFEED_SMTP_HOST=127.0.0.1",
		"MSITFEED_SMTP_PORT=" + strconv.Itoa(e.smtp.Port()),
		"MSITFEED_SMTP_TLS=none",
		"MSITFEED_SMTP_BACKOFF=10ms",
		"MSITFEED_MAIL_FROM=MSIT digest <digest@msitfeed.example>",
		"MSITFEED_BASE_URL=https://msitfeed.example",
	}
	return e
}

// run runs msitfeed in-process and returns its output and exit code.
func (e *digestCLIEnv) run(extra []string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errOut, append(append([]string{}, e.environ...), extra...))
	code = ExitCode(m.Run(context.Background(), args), &errOut)
	return out.String(), errOut.String(), code
}

// command returns msitfeed as a child process.
func (e *digestCLIEnv) command(bin string, extra []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), e.environ...), extra...)
	return cmd
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds msitfeed once per test run, for tests that need a
// real process to signal or kill.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "msitfeed-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "msitfeed")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// waitOrFail waits for ch, failing the test after a generous deadline.
func waitOrFail(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestDigestSend_KilledMidRunResendsAtMostTheMessagesInFlight(t *testing.T) {
	dbtest.Each(t, digestSendKilledMidRunResendsAtMostTheMessagesInFlight)
}

func digestSendKilledMidRunResendsAtMostTheMessagesInFlight(t *testing.T, engine db.Engine) {
	bin := buildBinary(t)
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprintf("with %d connections", concurrency), func(t *testing.T) {
			e := newDigestCLIEnvOn(t, engine, 200, smtptest.Faults{Delay: 20 * time.Millisecond})
			extra := []string{"MSITFEED_SMTP_CONCURRENCY=" + strconv.Itoa(concurrency)}
			first := e.command(bin, extra, "digest", "send")
			var firstErr bytes.Buffer
			first.Stderr = &firstErr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			waitOrFail(t, e.smtp.WaitFor(60), "60 messages before the kill")
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			first.Wait()
			killedAt := e.smtp.Count()
			var sentAtKill int
			e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&sentAtKill)
			if sentAtKill >= len(e.emails) {
				t.Fatalf("the first run finished before the kill (%d sent)", sentAtKill)
			}

			out, err := e.command(bin, extra, "digest", "send").CombinedOutput()
			if err != nil {
				t.Fatalf("second run: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "digest 1 resumed") {
				t.Errorf("second run did not resume digest 1:\n%s", out)
			}

			doubled := e.resent(t)
			if doubled > concurrency {
				t.Errorf("%d subscribers got the digest twice; at most %d messages were in flight", doubled, concurrency)
			}
			var sent, digests int
			e.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&sent)
			e.db.QueryRow(`SELECT count(*) FROM digests WHERE finished <> ''`).Scan(&digests)
			if sent != len(e.emails) || digests != 1 {
				t.Errorf("ledger: %d sent, %d finished digests; want %d and 1", sent, digests, len(e.emails))
			}
			t.Logf("killed after %d accepted (%d in the ledger); %d resent with the same Message-ID", killedAt, sentAtKill, doubled)
		})
	}
}

// TestDigestSend_SecondProcessJoins starts a second send while the first
// runs: it finds the first's digest, claims what the first has not, and
// ends when the digest is done; every subscriber gets one message.
func TestDigestSend_SecondProcessJoins(t *testing.T) {
	bin := buildBinary(t)
	e := newDigestCLIEnv(t, 100, smtptest.Faults{Delay: 20 * time.Millisecond})
	extra := []string{"MSITFEED_SMTP_CONCURRENCY=1"}
	first := e.command(bin, extra, "digest", "send")
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, e.smtp.WaitFor(1), "the first sender's first message")

	out, stderr, code := e.run(extra, "digest", "send")
	if code != 0 || !strings.Contains(out, "digest 1 resumed") {
		t.Errorf("second send: exit %d, stdout %q, stderr %q; want exit 0 resuming digest 1", code, out, stderr)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first send: %v\n%s", err, firstOut.String())
	}
	if got := e.smtp.Count(); got != len(e.emails) {
		t.Errorf("server got %d messages, want %d (one each)", got, len(e.emails))
	}
	for email, n := range e.smtp.ByRecipient() {
		if n != 1 {
			t.Errorf("%s got %d", email, n)
		}
	}
}

func TestDigestCommands(t *testing.T) { dbtest.Each(t, digestCommands) }

func digestCommands(t *testing.T, engine db.Engine) {
	e := newDigestCLIEnvOn(t, engine, 3, smtptest.Faults{})

	t.Run("send without mail.from is a usage error", func(t *testing.T) {
		_, stderr, code := e.run([]string{"MSITFEED_MAIL_FROM="}, "digest", "send")
		if code != 2 || !strings.Contains(stderr, "set mail.from in the config or MSITFEED_MAIL_FROM") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("unknown subcommands and flags are usage errors", func(t *testing.T) {
		for _, args := range [][]string{{"digest"}, {"digest", "mail"}, {"digest", "send", "--now"}, {"digest", "preview", "--format", "pdf"}} {
			if _, _, code := e.run(nil, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
	t.Run("preview prints one subscriber's digest and sends nothing", func(t *testing.T) {
		out, stderr, code := e.run(nil, "digest", "preview", "--subscriber", "reader0001@example.org")
		if code != 0 || !strings.HasPrefix(out, "Subject: MSIT digest") || !strings.Contains(out, "A post on press") {
			t.Errorf("exit %d, stderr %q, out:\n%s", code, stderr, out)
		}
		out, _, code = e.run(nil, "digest", "preview", "--format", "html")
		if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") {
			t.Errorf("html preview: exit %d\n%s", code, out)
		}
		if e.smtp.Count() != 0 {
			t.Errorf("preview sent mail")
		}
	})
	t.Run("dry run says what would be sent", func(t *testing.T) {
		out, _, code := e.run(nil, "digest", "send", "--dry-run")
		if code != 0 || !strings.Contains(out, "would create a digest of 2 posts") || !strings.Contains(out, "for 3 subscribers") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if e.smtp.Count() != 0 {
			t.Errorf("dry run sent mail")
		}
	})
	t.Run("send, then status", func(t *testing.T) {
		out, stderr, code := e.run(nil, "digest", "send")
		if code != 0 || !strings.Contains(out, "digest 1 created") || !strings.Contains(out, "3 sent, 0 failed, 0 pending") {
			t.Fatalf("exit %d, stderr %q, out:\n%s", code, stderr, out)
		}
		out, _, _ = e.run(nil, "digest", "send")
		if !strings.Contains(out, "nothing new to send") {
			t.Errorf("second send: %s", out)
		}
		out, _, code = e.run(nil, "digest", "status")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("status: exit %d\n%s", code, out)
		}
		f := strings.Fields(lines[1])
		// ID, period (2 dates, 2 times, dash), items, recipients, sent, failed, pending, finished…
		if f[0] != "1" || f[6] != "2" || f[7] != "3" || f[8] != "3" || f[9] != "0" || f[10] != "0" || f[11] == "no" {
			t.Errorf("status row %q", lines[1])
		}
	})
	t.Run("a down server leaves deliveries pending and says so in one line", func(t *testing.T) {
		e := newDigestCLIEnv(t, 3, smtptest.Faults{})
		e.smtp.Close()
		stdout, stderr, code := e.run([]string{"MSITFEED_SMTP_RETRIES=1"}, "digest", "send")
		want := "msitfeed: digest send: smtp 127.0.0.1:" + strconv.Itoa(e.smtp.Port()) + ": "
		if code != 1 || !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, "; 3 deliveries left pending, run digest send again\n") ||
			strings.Count(stderr, "\n") != 1 {
			t.Errorf("exit %d, stderr %q, stdout %q", code, stderr, stdout)
		}
		t.Logf("stderr: %s", stderr)
	})
}
