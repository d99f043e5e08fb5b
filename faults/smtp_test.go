package faults

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// The SMTP faults run `msitfeed digest send` (the binary) against the
// in-process SMTP server of mailer/smtptest, with subscribers imported by
// `msitfeed subscribers import`, and count what the server accepted per
// recipient.

// mailEnv is a database with active subscribers and new posts, an SMTP
// server, and the settings pointing msitfeed at them.
type mailEnv struct {
	t      *testing.T
	c      *cli
	path   string
	db     *sql.DB
	smtp   *smtptest.Server
	emails []string
	nextID int64
}

func newMailEnv(t *testing.T, subscribers int, f smtptest.Faults, env ...string) *mailEnv {
	t.Helper()
	path := t.TempDir() + "/msitfeed.db"
	e := &mailEnv{t: t, path: path, db: openDB(t, path), smtp: smtptest.Start(t, f), nextID: 100}
	e.c = newCLI(t, append([]string{
		"MSITFEED_DATABASE=" + path,
		"MSITFEED_SMTP_HOST=127.0.0.1",
		"MSITFEED_SMTP_PORT=" + strconv.Itoa(e.smtp.Port()),
		"MSITFEED_SMTP_TLS=none",
		"MSITFEED_SMTP_BACKOFF=10ms",
		"MSITFEED_MAIL_FROM=MSIT digest <digest@msitfeed.example>",
		"MSITFEED_BASE_URL=https://msitfeed.example",
	}, env...)...)
	joined := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var csv strings.Builder
	csv.WriteString("email,status,created,confirmed\n")
	for i := range subscribers {
		email := fmt.Sprintf("reader%04d@example.org", i)
		fmt.Fprintf(&csv, "%s,active,%s,%s\n", email, joined, joined)
		e.emails = append(e.emails, email)
	}
	if out, errs, code := e.c.run(csv.String(), "subscribers", "import", "-"); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	e.addPosts(2, time.Now().Add(-2*time.Hour))
	return e
}

// addPosts stores n posts first seen at seen.
func (e *mailEnv) addPosts(n int, seen time.Time) {
	e.t.Helper()
	store := feeds.NewStore(e.db)
	store.Now = func() time.Time { return seen }
	for range n {
		e.nextID++
		board := feeds.BoardSlugs()[e.nextID%5]
		it := feeds.Item{Board: board, ID: e.nextID, Title: fmt.Sprintf("Post %d on %s", e.nextID, board),
			URL: fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", e.nextID), Published: time.Now()}
		if _, err := store.Save(context.Background(), it, ""); err != nil {
			e.t.Fatal(err)
		}
	}
}

// addPostsForNextDigest stores a post first seen just after the last
// digest's period, so the next send has something new without waiting.
func (e *mailEnv) addPostsForNextDigest() {
	e.t.Helper()
	var end string
	if err := e.db.QueryRow(`SELECT period_end FROM digests ORDER BY id DESC LIMIT 1`).Scan(&end); err != nil {
		e.t.Fatal(err)
	}
	t, err := time.Parse("2006-01-02T15:04:05.000000Z", end)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addPosts(1, t.Add(time.Millisecond))
}

// send runs `digest send`.
func (e *mailEnv) send(env ...string) (string, string, int) {
	return e.c.with(env...).run("", "digest", "send")
}

// received counts, per recipient and digest, the messages the server
// accepted, and the distinct Message-IDs among them.
func (e *mailEnv) received() (count map[string]int, ids map[string]map[string]bool) {
	count, ids = map[string]int{}, map[string]map[string]bool{}
	for _, m := range e.smtp.Messages() {
		digest, _, _ := strings.Cut(strings.TrimPrefix(strings.Trim(m.MessageID, "<>"), "digest-"), "-")
		for _, to := range m.To {
			k := strings.ToLower(to) + " #" + digest
			count[k]++
			if ids[k] == nil {
				ids[k] = map[string]bool{}
			}
			ids[k][m.MessageID] = true
		}
	}
	return count, ids
}

// ledger counts deliveries by status, and those that took more than one
// attempt.
func (e *mailEnv) ledger() (sent, failed, pending, retried int) {
	e.t.Helper()
	err := e.db.QueryRow(`SELECT COALESCE(SUM(status = 'sent'), 0), COALESCE(SUM(status = 'failed'), 0),
		COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(attempts > 1), 0) FROM deliveries`).Scan(&sent, &failed, &pending, &retried)
	if err != nil {
		e.t.Fatal(err)
	}
	return
}

// checkOnce checks every address of want got exactly one message of
// digest, and returns how many got it twice with the same Message-ID.
func (e *mailEnv) checkOnce(digest int, want []string) (twice int) {
	e.t.Helper()
	count, ids := e.received()
	for _, email := range want {
		k := fmt.Sprintf("%s #%d", email, digest)
		switch {
		case count[k] == 1:
		case count[k] == 2 && len(ids[k]) == 1:
			twice++
		default:
			e.t.Errorf("%s got digest %d %d times (%d Message-IDs)", email, digest, count[k], len(ids[k]))
		}
	}
	return twice
}

// hashShare picks the same addresses smtptest's TempFailShare would: a
// repeatable share of them, by hash.
func hashShare(addr string, share float64) bool {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(addr)))
	return float64(h.Sum32()%10000) < share*10000
}

const mailSubscribers = 40

func TestSMTPFaults(t *testing.T) {
	binary(t)
	cases := []struct {
		name, injected string
		faults         smtptest.Faults
		env            []string
	}{
		{"none (control)", "nothing", smtptest.Faults{}, nil},
		{"451 on a share of RCPTs", "451 to the first RCPT of 30% of addresses", smtptest.Faults{TempFailShare: 0.3}, nil},
		{"451 twice", "451 to the first two RCPTs of 50% of addresses; smtp.retries 5", smtptest.Faults{TempFailShare: 0.5, TempFailTimes: 2}, nil},
		{"connection dropped during DATA", "every 5th message: connection closed mid-DATA, not accepted", smtptest.Faults{DropDataEvery: 5}, nil},
		{"server refuses connections", "first 6 connections closed before the greeting", smtptest.Faults{DownConns: 6}, nil},
		{"slow server", "300 ms before each 250; smtp.timeout 5s", smtptest.Faults{Delay: 300 * time.Millisecond}, []string{"MSITFEED_SMTP_TIMEOUT=5s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newMailEnv(t, mailSubscribers, tc.faults, tc.env...)
			start := time.Now()
			out, errs, code := e.send()
			took := time.Since(start)
			if code != 0 {
				t.Fatalf("digest send: exit %d\n%s%s", code, out, errs)
			}
			twice := e.checkOnce(1, e.emails)
			sent, failed, pending, retried := e.ledger()
			if sent != len(e.emails) || failed != 0 || pending != 0 || twice != 0 {
				t.Errorf("ledger %d sent, %d failed, %d pending; %d got it twice", sent, failed, pending, twice)
			}
			acc, refused := e.smtp.Connections()
			t.Logf("FIGURES smtp | %s | %s | %d/%d once, %d twice | ledger: %d sent, %d failed, %d pending, %d retried | %d connections (%d refused) | %v |",
				tc.name, tc.injected, len(e.emails)-twice, len(e.emails), twice, sent, failed, pending, retried, acc, refused, took.Round(10*time.Millisecond))
		})
	}
}

// TestSMTPDownThenUp: a send while nothing listens leaves every delivery
// pending and says so; the next send, once the server is back on the same
// port, delivers each exactly once.
func TestSMTPDownThenUp(t *testing.T) {
	e := newMailEnv(t, mailSubscribers, smtptest.Faults{})
	addr := e.smtp.Addr
	e.smtp.Close()
	out, errs, code := e.send("MSITFEED_SMTP_RETRIES=1")
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("%d deliveries left pending", len(e.emails))) || strings.Count(errs, "\n") != 1 {
		t.Errorf("send to a down server: exit %d, stderr %q, stdout %q", code, errs, out)
	}
	_, _, pendingDown, _ := e.ledger()
	if pendingDown != len(e.emails) {
		t.Errorf("%d pending while down, want %d", pendingDown, len(e.emails))
	}
	up, err := smtptest.Listen(addr, smtptest.Faults{})
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	defer up.Close()
	e.smtp = up
	out, errs, code = e.send()
	if code != 0 || !strings.Contains(out, "digest 1 resumed") {
		t.Fatalf("send after the server is back: exit %d\n%s%s", code, out, errs)
	}
	twice := e.checkOnce(1, e.emails)
	sent, failed, pending, _ := e.ledger()
	if sent != len(e.emails) || twice != 0 || failed+pending != 0 {
		t.Errorf("ledger %d sent %d failed %d pending; %d twice", sent, failed, pending, twice)
	}
	t.Logf("FIGURES smtp | server down, then up | nothing listening for one send, then a server on the same port | %d/%d once, %d twice | down: exit %d, %d pending; up: %d sent |",
		len(e.emails)-twice, len(e.emails), twice, 1, pendingDown, sent)
}

// TestSMTPRejectedRecipientsAreSuppressed: 550 for some addresses is
// recorded as a failure; after three digests refused in a row those
// subscribers are bounced and the fourth digest is not sent to them.
func TestSMTPRejectedRecipientsAreSuppressed(t *testing.T) {
	reject := func(rcpt string) bool { return hashShare(rcpt, 0.1) }
	e := newMailEnv(t, mailSubscribers, smtptest.Faults{Reject: reject})
	var good, bad []string
	for _, a := range e.emails {
		if reject(a) {
			bad = append(bad, a)
		} else {
			good = append(good, a)
		}
	}
	if len(bad) == 0 {
		t.Fatal("no address is rejected: the test proves nothing")
	}
	for digest := 1; digest <= 4; digest++ {
		if digest > 1 {
			e.addPostsForNextDigest()
		}
		out, errs, code := e.send()
		if code != 0 || !strings.Contains(out, fmt.Sprintf("digest %d created", digest)) {
			t.Fatalf("digest %d: exit %d\n%s%s", digest, code, out, errs)
		}
		e.checkOnce(digest, good)
		count, _ := e.received()
		for _, a := range bad {
			if n := count[fmt.Sprintf("%s #%d", a, digest)]; n != 0 {
				t.Errorf("rejected %s accepted %d times", a, n)
			}
		}
		var deliveries, failed int
		e.db.QueryRow(`SELECT count(*), COALESCE(SUM(status = 'failed' AND last_error LIKE '%550%'), 0) FROM deliveries WHERE digest_id = ?`, digest).Scan(&deliveries, &failed)
		var bounced int
		e.db.QueryRow(`SELECT count(*) FROM subscribers WHERE status = 'bounced'`).Scan(&bounced)
		want := len(e.emails)
		if digest == 4 {
			want = len(good)
		}
		if deliveries != want {
			t.Errorf("digest %d has %d deliveries, want %d", digest, deliveries, want)
		}
		if digest < 4 && failed != len(bad) {
			t.Errorf("digest %d: %d deliveries failed with 550, want %d", digest, failed, len(bad))
		}
		wantBounced := 0
		if digest >= 3 {
			wantBounced = len(bad)
		}
		if bounced != wantBounced {
			t.Errorf("after digest %d: %d bounced, want %d", digest, bounced, wantBounced)
		}
		t.Logf("FIGURES smtp 550 | digest %d | %d deliveries, %d failed with 550 | %d bounced after it |", digest, deliveries, failed, bounced)
	}
	t.Logf("FIGURES smtp | 550 for some recipients | 550 to %d of %d addresses, 4 digests | %d/%d good addresses once per digest | refused recorded failed (550) 3×, then bounced; digest 4 has %d recipients |",
		len(bad), len(e.emails), len(good), len(good), len(good))
}

// TestSMTPSlowerThanTimeout: a server that answers DATA only after
// smtp.timeout. The client gives up while the server still accepts the
// message; what happens is measured, not assumed.
func TestSMTPSlowerThanTimeout(t *testing.T) {
	e := newMailEnv(t, 8, smtptest.Faults{Delay: 1500 * time.Millisecond}, "MSITFEED_SMTP_TIMEOUT=1s", "MSITFEED_SMTP_RETRIES=1")
	out, errs, code := e.send()
	sent, failed, pending, _ := e.ledger()
	count, ids := e.received()
	twice, sameID := 0, 0
	for _, a := range e.emails {
		k := a + " #1"
		if count[k] > 1 {
			twice++
			if len(ids[k]) == 1 {
				sameID++
			}
		}
	}
	if twice != sameID {
		t.Errorf("%d addresses got the digest twice with different Message-IDs", twice-sameID)
	}
	t.Logf("FIGURES smtp | slower than smtp.timeout | 1.5 s before each 250; smtp.timeout 1s | exit %d; ledger %d sent, %d failed, %d pending; %d addresses got it more than once (all with one Message-ID: %v) |\n%s%s",
		code, sent, failed, pending, twice, twice == sameID, out, errs)
}
