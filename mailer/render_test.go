package mailer_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

func init() {
	// Another test file of this binary may already define -update.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updateDigestGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestDigestGolden renders a fixed digest (fixed secret, UID and clock) and
// compares it with testdata/digest.golden.txt and .html; run with -update
// after a deliberate template change and read the diff.
func TestDigestGolden(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.cfg.Secret = "golden-secret"
	id := e.addSubscriber("reader@example.org", "Reader", "press,photo", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	if _, err := e.db.Exec(`UPDATE subscribers SET uid = 'golden-uid' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, feeds.KST) }
	e.addItem("press", "Korea and the EU sign a digital partnership", day(9), e.now.Add(-3*time.Hour),
		feeds.Attachment{Name: "press-release.hwp", URL: "https://www.msit.go.kr/files/1.hwp"},
		feeds.Attachment{Name: "press-release.pdf", URL: "https://www.msit.go.kr/files/1.pdf"})
	e.addItem("press", "Quantum strategy <draft> & \"plan\"", day(8), e.now.Add(-2*time.Hour))
	e.addItem("photo", "Minister visits Daedeok Innopolis", day(7), e.now.Add(-2*time.Hour))
	e.addItem("notice", "Not on the reader's boards", day(9), e.now.Add(-2*time.Hour))

	pv, err := e.mailer().Preview(context.Background(), "reader@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ file, got string }{
		{"digest.golden.txt", "Subject: " + pv.Subject + "\n\n" + pv.Text},
		{"digest.golden.html", pv.HTML},
	} {
		path := filepath.Join("testdata", g.file)
		if updateDigestGolden() {
			if err := os.WriteFile(path, []byte(g.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./mailer -run TestDigestGolden -update)", err)
		}
		if string(want) != g.got {
			t.Errorf("%s differs from the rendering; got:\n%s", path, g.got)
		}
	}
}

func TestSendDigest_KeepsItsClaimsWhileItRuns(t *testing.T) {
	dbtest.Each(t, sendDigestKeepsItsClaimsWhileItRuns)
}

func sendDigestKeepsItsClaimsWhileItRuns(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{Delay: 5 * time.Millisecond})
	e.cfg.SMTP.Concurrency = 1
	emails := e.seedDigest(80)
	m := e.mailer()
	m.LockTTL, m.LockRefresh = 150*time.Millisecond, 30*time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := m.SendDigest(context.Background()); done <- err }()
	// 60 messages at 5 ms take at least 300 ms: twice a claim's lifetime.
	// The first sender claimed all 80 in one batch; a second one started
	// now finds every claim kept, sends nothing and waits for the first.
	waitFor(t, e.smtp.WaitFor(60))
	m2 := e.mailer()
	m2.LockTTL, m2.LockRefresh = 150*time.Millisecond, 30*time.Millisecond
	res2, err := m2.SendDigest(context.Background())
	if err != nil {
		t.Fatalf("second sender: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res2.Sent() != 0 {
		t.Errorf("the second sender sent %d messages of claims kept alive by the first", res2.Sent())
	}
	exactlyOnce(t, e.smtp, emails)
}

func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
}
