package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// seedDigest adds n active subscribers (all boards) and two posts.
func (e *digestEnv) seedDigest(n int) []string {
	e.t.Helper()
	var emails []string
	for i := range n {
		email := fmt.Sprintf("reader%04d@example.org", i)
		e.addSubscriber(email, "", "", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
		emails = append(emails, email)
	}
	e.addItem("press", "Press post", e.now, e.now.Add(-time.Hour))
	e.addItem("notice", "Notice post", e.now, e.now.Add(-time.Hour))
	return emails
}

// exactlyOnce fails unless every address got exactly one message.
func exactlyOnce(t *testing.T, srv *smtptest.Server, emails []string) {
	t.Helper()
	got := srv.ByRecipient()
	for _, email := range emails {
		if got[email] != 1 {
			t.Errorf("%s got %d messages, want 1", email, got[email])
		}
	}
	if len(got) != len(emails) {
		t.Errorf("server saw %d recipients, want %d", len(got), len(emails))
	}
}

func TestSendDigest_Faults(t *testing.T) {
	dbtest.Each(t, sendDigestFaults)
}

func sendDigestFaults(t *testing.T, engine db.Engine) {
	tests := []struct {
		name   string
		faults smtptest.Faults
	}{
		{"451 to a third of the recipients, twice each", smtptest.Faults{TempFailShare: 0.33, TempFailTimes: 2}},
		{"connection dropped during every 7th DATA", smtptest.Faults{DropDataEvery: 7}},
		{"server down for the first connections", smtptest.Faults{DownConns: 6}},
		{"all of it at once, with slow answers", smtptest.Faults{TempFailShare: 0.2, DropDataEvery: 11, DownConns: 3, Delay: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDigestEnvOn(t, engine, tt.faults)
			emails := e.seedDigest(60)
			m := e.mailer()
			res, err := e.send(m)
			if err != nil {
				t.Fatalf("SendDigest: %v", err)
			}
			exactlyOnce(t, e.smtp, emails)
			if res.Sent() != len(emails) {
				t.Errorf("result says %d sent, want %d", res.Sent(), len(emails))
			}
			if n := e.scalar(`SELECT count(*) FROM deliveries WHERE status = 'sent' AND sent <> ''`); n != len(emails) {
				t.Errorf("ledger has %d sent deliveries, want %d", n, len(emails))
			}
			if e.scalar(`SELECT count(*) FROM digests WHERE finished <> ''`) != 1 {
				t.Errorf("digest not marked finished")
			}
			if tt.faults.TempFailShare > 0 || tt.faults.DropDataEvery > 0 {
				if n := e.scalar(`SELECT count(*) FROM deliveries WHERE attempts > 1 AND last_error = ''`); n == 0 {
					t.Errorf("ledger shows no retried delivery")
				}
			}
		})
	}
}

func TestSendDigest_DownLongerThanRetriesResumesNextRun(t *testing.T) {
	dbtest.Each(t, sendDigestDownLongerThanRetriesResumesNextRun)
}

func sendDigestDownLongerThanRetriesResumesNextRun(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{DownConns: 1 << 30})
	e.cfg.SMTP.Retries = 2
	emails := e.seedDigest(25)
	m := e.mailer()
	_, err := e.send(m)
	var pe *mailer.PendingError
	if !errors.As(err, &pe) || pe.Pending != len(emails) {
		t.Fatalf("SendDigest with the server down = %v, want %d deliveries left pending", err, len(emails))
	}
	if !strings.Contains(err.Error(), "smtp 127.0.0.1:") || !strings.Contains(err.Error(), "25 deliveries left pending, run digest send again") {
		t.Errorf("error does not say what failed and what to do: %v", err)
	}
	if e.smtp.Count() != 0 {
		t.Fatalf("server down but %d messages arrived", e.smtp.Count())
	}
	if n := e.scalar(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND last_error <> ''`); n == 0 {
		t.Errorf("ledger does not record why deliveries are pending")
	}

	// The server comes back: the next run resumes the same digest, and
	// makes no second one.
	e.smtp.SetFaults(smtptest.Faults{})
	e.now = e.now.Add(time.Hour)
	res, err := e.send(m)
	if err != nil {
		t.Fatalf("second SendDigest: %v", err)
	}
	if len(res.Digests) != 1 || res.Digests[0].Created || res.Digests[0].ID != 1 {
		t.Errorf("second send = %+v, want digest 1 resumed and none created", res)
	}
	exactlyOnce(t, e.smtp, emails)
	if e.scalar(`SELECT count(*) FROM digests`) != 1 || e.scalar(`SELECT count(*) FROM digests WHERE finished <> ''`) != 1 {
		t.Errorf("want exactly one digest, finished")
	}
}

func TestSendDigest_PermanentFailuresBounce(t *testing.T) {
	dbtest.Each(t, sendDigestPermanentFailuresBounce)
}

func sendDigestPermanentFailuresBounce(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{Reject: func(rcpt string) bool { return rcpt == "nobody@example.org" }})
	joined := e.now.Add(-30 * 24 * time.Hour)
	bad := e.addSubscriber("nobody@example.org", "", "", mailer.StatusActive, joined)
	good := e.addSubscriber("fine@example.org", "", "", mailer.StatusActive, joined)
	e.db.Exec(`UPDATE subscribers SET bounces = 2 WHERE id = $1`, good) // two bounces earlier
	m := e.mailer()

	for round := 1; round <= 4; round++ {
		e.addItem("press", fmt.Sprintf("Post %d", round), e.now, e.now.Add(-time.Hour))
		res, err := e.send(m)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var status string
		var bounces int
		e.db.QueryRow(`SELECT status, bounces FROM subscribers WHERE id = $1`, bad).Scan(&status, &bounces)
		switch {
		case round <= 3:
			var dstatus, lastErr string
			var attempts int
			e.db.QueryRow(`SELECT status, attempts, last_error FROM deliveries WHERE digest_id = $1 AND subscriber_id = $2`,
				res.Digests[0].ID, bad).Scan(&dstatus, &attempts, &lastErr)
			if dstatus != "failed" || attempts != 1 || !strings.Contains(lastErr, "550") {
				t.Errorf("round %d: delivery %s after %d attempts (%q), want failed after 1 with the 550", round, dstatus, attempts, lastErr)
			}
			want := "active"
			if round == 3 {
				want = "bounced"
			}
			if status != want || bounces != round {
				t.Errorf("round %d: subscriber %s with %d bounces, want %s with %d", round, status, bounces, want, round)
			}
		default:
			if n := e.scalar(`SELECT count(*) FROM deliveries WHERE digest_id = $1 AND subscriber_id = $2`, res.Digests[0].ID, bad); n != 0 {
				t.Errorf("a bounced subscriber is still in new digests")
			}
		}
		e.now = e.now.Add(24 * time.Hour)
	}
	if n := e.scalar(`SELECT bounces FROM subscribers WHERE id = $1`, good); n != 0 {
		t.Errorf("a success left bounces at %d, want 0", n)
	}
	if got := e.smtp.ByRecipient()["fine@example.org"]; got != 4 {
		t.Errorf("fine@example.org got %d digests, want 4", got)
	}
}

func TestSendDigest_SkipsWhoLeftBeforeTheirTurn(t *testing.T) {
	dbtest.Each(t, sendDigestSkipsWhoLeftBeforeTheirTurn)
}

func sendDigestSkipsWhoLeftBeforeTheirTurn(t *testing.T, engine db.Engine) {
	// The server is down at first, so the digest is created and everything
	// stays pending; meanwhile one subscriber unsubscribes and one bounces.
	e := newDigestEnvOn(t, engine, smtptest.Faults{DownConns: 1 << 30})
	e.cfg.SMTP.Retries = 0
	emails := e.seedDigest(5)
	m := e.mailer()
	if _, err := e.send(m); err == nil {
		t.Fatal("want pending deliveries while the server is down")
	}
	e.db.Exec(`UPDATE subscribers SET status = 'unsubscribed' WHERE email = $1`, emails[1])
	e.db.Exec(`UPDATE subscribers SET status = 'bounced' WHERE email = $1`, emails[2])
	e.smtp.SetFaults(smtptest.Faults{})
	res, err := e.send(m)
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, e.smtp, []string{emails[0], emails[3], emails[4]})
	var lastErr string
	e.db.QueryRow(`SELECT d.last_error FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = $1 AND d.status = 'failed'`, emails[1]).Scan(&lastErr)
	if lastErr != "unsubscribed" {
		t.Errorf("delivery to the unsubscribed: last_error %q, want unsubscribed", lastErr)
	}
	if res.Digests[0].Failed != 2 || res.Digests[0].Sent != 3 {
		t.Errorf("result %+v, want 3 sent and 2 failed", res.Digests[0])
	}
}

func TestSendDigest_SecondSenderIsRefused(t *testing.T) {
	dbtest.Each(t, sendDigestSecondSenderIsRefused)
}

func sendDigestSecondSenderIsRefused(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	e.seedDigest(3)
	m := e.mailer()
	m.CreateWait = 200 * time.Millisecond // the lock below is held for a minute
	ctx := context.Background()
	// Another host is making a digest for longer than this sender waits.
	if err := db.Acquire(ctx, e.db, mailer.LockName, "other-host:1234:abcd", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := e.send(m)
	if !errors.Is(err, mailer.ErrSendRunning) || !strings.Contains(err.Error(), "nothing sent") {
		t.Fatalf("SendDigest while another holds the lock = %v, want ErrSendRunning", err)
	}
	if e.smtp.Count() != 0 || e.scalar(`SELECT count(*) FROM digests`) != 0 {
		t.Fatalf("refused sender sent or created something")
	}
	// A holder that died is replaced once its lock expires.
	e.db.Exec(`UPDATE locks SET expires = $1 WHERE name = $2`, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano), mailer.LockName)
	if _, err := e.send(m); err != nil {
		t.Fatalf("SendDigest after the lock expired: %v", err)
	}
	if e.smtp.Count() != 3 || e.scalar(`SELECT count(*) FROM locks`) != 0 {
		t.Errorf("after expiry: %d messages, lock rows %d", e.smtp.Count(), e.scalar(`SELECT count(*) FROM locks`))
	}
}

func TestSendDigest_RateAndConcurrency(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.cfg.SMTP.Concurrency = 3
	e.cfg.SMTP.Rate = 200
	emails := e.seedDigest(40)
	m := e.mailer()
	start := time.Now()
	e.mustSend(m)
	exactlyOnce(t, e.smtp, emails)
	// 40 messages at 200/s with a burst of 1 take at least 39/200 s.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("40 messages at 200/s took %v", d)
	}
	if acc, _ := e.smtp.Connections(); acc > 3 {
		t.Errorf("%d connections for 3 workers: connections are not reused", acc)
	}
}

func TestSendDigest_FileTransport(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.cfg.SMTP.Transport = "file"
	e.cfg.SMTP.Dir = t.TempDir()
	emails := e.seedDigest(3)
	m := e.mailer()
	e.mustSend(m)
	if e.smtp.Count() != 0 {
		t.Fatal("file transport used SMTP")
	}
	files, _ := filepathGlob(e.cfg.SMTP.Dir, "*.eml")
	if len(files) != len(emails) {
		t.Fatalf("%d .eml files, want %d", len(files), len(emails))
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "digest-1-") {
			t.Errorf("file %s not named after its Message-ID", f)
		}
	}
}

func TestSendConfirmation(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	m := e.mailer()
	sub := mailer.Subscriber{ID: 1, UID: mailer.NewUID(), Email: "new@example.org", Name: "New\r\nBcc: x@example.net"}
	if err := m.SendConfirmation(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "new@example.org" {
		t.Fatalf("got %d messages", len(msgs))
	}
	pm := parseMail(t, msgs[0].Data)
	if pm.Header.Get("Bcc") != "" {
		t.Errorf("name injected a header")
	}
	body := pm.Parts[0].Body
	i := strings.Index(body, "https://msitfeed.example/confirm/")
	if i < 0 {
		t.Fatalf("no confirm link in\n%s", body)
	}
	token := strings.Fields(body[i+len("https://msitfeed.example/confirm/"):])[0]
	if uid, err := m.Tokens().Verify(mailer.PurposeConfirm, token); err != nil || uid != sub.UID {
		t.Errorf("confirm token names %q (%v)", uid, err)
	}
	if _, err := m.Tokens().Verify(mailer.PurposeUnsubscribe, token); err == nil {
		t.Errorf("a confirm token works as an unsubscribe token")
	}

	e.cfg.Mail.From = ""
	if err := e.mailer().SendConfirmation(context.Background(), sub); !errors.Is(err, mailer.ErrNoFrom) {
		t.Errorf("without mail.from: %v, want ErrNoFrom", err)
	}
}

func TestNew_BrokenTemplateIsAStartupError(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	dir := t.TempDir()
	writeFile(t, dir, "digest.html", "<p>{{.Nope}</p>")
	e.cfg.Mail.Templates = dir
	if _, err := mailer.New(context.Background(), e.cfg, e.db); err == nil || !strings.Contains(err.Error(), "digest.html") {
		t.Fatalf("New with a broken template = %v, want an error naming it", err)
	}
	writeFile(t, dir, "digest.html", "<p>{{.NoSuchField}}</p>")
	if _, err := mailer.New(context.Background(), e.cfg, e.db); err == nil {
		t.Fatalf("New with a template using a missing field succeeded")
	}
	// A valid override replaces just that file.
	writeFile(t, dir, "digest.subject.txt", "Custom: {{.Count}}")
	writeFile(t, dir, "digest.html", "<p>{{.Count}} posts for {{.Recipient.Email}}</p>")
	m, err := mailer.New(context.Background(), e.cfg, e.db)
	if err != nil {
		t.Fatal(err)
	}
	e.seedDigest(1)
	m.Now = func() time.Time { return e.now }
	pv, err := m.Preview(context.Background(), "reader0000@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Subject != "Custom: 2" || pv.HTML != "<p>2 posts for reader0000@example.org</p>" || !strings.Contains(pv.Text, "Press post") {
		t.Errorf("override: subject %q html %q", pv.Subject, pv.HTML)
	}
}

func TestSanitizeSubject(t *testing.T) {
	long := strings.Repeat("가나다 ", 100)
	tests := []struct {
		name, in, want string
	}{
		{"plain text is kept", "MSIT digest: 3 new posts", "MSIT digest: 3 new posts"},
		{"line breaks become spaces", "a\r\nBcc: x@example.org\nb", "a Bcc: x@example.org b"},
		{"NUL and control characters go", "a\x00b\x07c\x1bd\u0085e", "a b c d e"},
		{"tabs and runs of spaces collapse", "  a\t\t b   c  ", "a b c"},
		{"line and paragraph separators go", "a\u2028b\u2029c", "a b c"},
		{"invalid UTF-8 goes", "a\xffb", "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mailer.SanitizeSubject(tt.in); got != tt.want {
				t.Errorf("SanitizeSubject(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("a long subject is cut on a rune boundary with an ellipsis", func(t *testing.T) {
		got := mailer.SanitizeSubject(long)
		if r := []rune(got); len(r) > 120 || r[len(r)-1] != '…' || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
			t.Errorf("SanitizeSubject(long) = %q (%d runes)", got, len(r))
		}
	})
	_ = feeds.KST
}

// filepathGlob returns the base names in dir matching pattern.
func filepathGlob(dir, pattern string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	for i, p := range paths {
		paths[i] = filepath.Base(p)
	}
	return paths, err
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The TLS modes and authentication against a server that requires them:
// a digest goes out encrypted and authenticated, or not at all — never in
// plain text, never to a server whose certificate is not trusted — and a
// refusal leaves every delivery pending, with one line saying what to fix.
func TestSendDigest_TLSAndAuth(t *testing.T) {
	serverTLS, caPEM, err := smtptest.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"msitfeed": "s3cret"}
	tests := []struct {
		name      string
		setup     smtptest.Setup
		mode      string // smtp.tls
		ca        string
		password  string
		wantErr   string // "" means all sent
		wantUser  string
		wantOnTLS bool
	}{
		{"STARTTLS and AUTH", smtptest.Setup{TLS: serverTLS, Users: users}, "starttls", caFile, "s3cret", "", "msitfeed", true},
		{"implicit TLS and AUTH", smtptest.Setup{TLS: serverTLS, ImplicitTLS: true, Users: users}, "tls", caFile, "s3cret", "", "msitfeed", true},
		{"STARTTLS without AUTH", smtptest.Setup{TLS: serverTLS}, "starttls", caFile, "", "", "", true},
		{"wrong password", smtptest.Setup{TLS: serverTLS, Users: users}, "starttls", caFile, "guess", "refused smtp.username and smtp.password", "", true},
		{"certificate not trusted", smtptest.Setup{TLS: serverTLS, Users: users}, "starttls", "", "s3cret", "smtp.ca_file", "", true},
		{"server offers no STARTTLS", smtptest.Setup{Users: users}, "starttls", caFile, "s3cret", "no STARTTLS", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDigestEnvWith(t, tt.setup, smtptest.Faults{})
			e.cfg.SMTP.Host = "localhost" // the name on the certificate
			e.cfg.SMTP.TLS = tt.mode
			e.cfg.SMTP.CAFile = tt.ca
			if tt.password != "" {
				e.cfg.SMTP.Username, e.cfg.SMTP.Password = "msitfeed", tt.password
			}
			e.cfg.SMTP.Retries = 1
			joined := e.now.Add(-30 * 24 * time.Hour)
			for i := range 3 {
				e.addSubscriber(fmt.Sprintf("reader%d@example.org", i), "", "", mailer.StatusActive, joined)
			}
			e.addItem("press", "A press release", e.now.Add(-24*time.Hour), e.now.Add(-time.Hour))
			res, err := e.send(e.mailer())
			if tt.wantErr == "" {
				if err != nil || len(res.Digests) != 1 || res.Digests[0].Sent != 3 {
					t.Fatalf("send: %v, %+v; want 3 sent", err, res)
				}
				for _, msg := range e.smtp.Messages() {
					if msg.TLS != tt.wantOnTLS || msg.AuthUser != tt.wantUser {
						t.Errorf("message to %v: over TLS %v, authenticated as %q; want %v, %q", msg.To, msg.TLS, msg.AuthUser, tt.wantOnTLS, tt.wantUser)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("send: error %v; want one line naming %q", err, tt.wantErr)
			}
			if n := e.smtp.Count(); n != 0 {
				t.Fatalf("the server accepted %d messages", n)
			}
			if n := e.scalar(`SELECT count(*) FROM deliveries WHERE status = 'pending'`); n != 3 {
				t.Errorf("%d deliveries pending, want all 3 left for the next run", n)
			}
			if n := e.scalar(`SELECT count(*) FROM subscribers WHERE status <> 'active'`); n != 0 {
				t.Errorf("%d subscribers no longer active after a refusal that was not theirs", n)
			}
		})
	}
}

func TestNew_BadCAFileIsAStartupError(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	for _, tc := range []struct{ content, want string }{
		{"", "no such file"},
		{"not a certificate", "no PEM certificate"},
	} {
		path := filepath.Join(t.TempDir(), "ca.pem")
		if tc.content != "" {
			os.WriteFile(path, []byte(tc.content), 0o600)
		}
		e.cfg.SMTP.CAFile = path
		_, err := mailer.New(context.Background(), e.cfg, e.db)
		if err == nil || !strings.Contains(err.Error(), "smtp.ca_file") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ca_file %q: error %v; want one naming smtp.ca_file and %q", tc.content, err, tc.want)
		}
	}
}

// TestSendDigest_ReadsPendingInBatches sends a digest read from the ledger
// seven deliveries at a time, with temporary failures and dropped
// connections, and a resumed one after a stop: everyone gets one message,
// and the send never holds more than two batches' worth of deliveries.
func TestSendDigest_ReadsPendingInBatches(t *testing.T) {
	defer mailer.SetPendingBatchForTest(7)()
	e := newDigestEnv(t, smtptest.Faults{TempFailShare: 0.2, TempFailTimes: 1, DropDataEvery: 9})
	emails := e.seedDigest(80)
	// Subscribers who left after the digest was made are skipped batch by
	// batch too.
	m := e.mailer()
	res, err := e.send(m)
	if err != nil {
		t.Fatalf("SendDigest: %v", err)
	}
	exactlyOnce(t, e.smtp, emails)
	if res.Sent() != len(emails) {
		t.Errorf("result says %d sent, want %d", res.Sent(), len(emails))
	}
	if n := e.scalar(`SELECT count(*) FROM deliveries WHERE status = 'sent'`); n != len(emails) {
		t.Errorf("ledger has %d sent deliveries, want %d", n, len(emails))
	}
	if peak := m.PeakJobsForTest(); peak == 0 || peak > 2*7 {
		t.Errorf("the send held up to %d deliveries at once, want at most %d (two batches)", peak, 2*7)
	}
}

// TestSendDigest_BatchesSkipTheGone: deliveries to subscribers who left
// after the digest was made fail batch by batch, and a batch with nobody
// left to send to does not end the send.
func TestSendDigest_BatchesSkipTheGone(t *testing.T) {
	defer mailer.SetPendingBatchForTest(5)()
	e := newDigestEnv(t, smtptest.Faults{})
	emails := e.seedDigest(30)
	m := e.mailer()
	// Make the digest without sending it: a dry run would not write it,
	// so create it through a send to a server that is down.
	e.smtp.Close()
	if _, err := e.send(m); err == nil {
		t.Fatal("send to a closed server succeeded")
	}
	// The first twelve (more than two batches) unsubscribe.
	if _, err := e.db.Exec(`UPDATE subscribers SET status = 'unsubscribed' WHERE email < ?`, emails[12]); err != nil {
		t.Fatal(err)
	}
	e.smtp = smtptest.Start(t, smtptest.Faults{})
	e.cfg.SMTP.Port = e.smtp.Port()
	m = e.mailer()
	res, err := e.send(m)
	if err != nil {
		t.Fatalf("SendDigest: %v", err)
	}
	exactlyOnce(t, e.smtp, emails[12:])
	if res.Sent() != len(emails)-12 {
		t.Errorf("result says %d sent, want %d", res.Sent(), len(emails)-12)
	}
	if n := e.scalar(`SELECT count(*) FROM deliveries WHERE status = 'failed' AND last_error = 'unsubscribed'`); n != 12 {
		t.Errorf("ledger has %d deliveries failed as unsubscribed, want 12", n)
	}
}
