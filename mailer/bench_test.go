package mailer_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// BenchmarkDigestSend sends one digest per iteration to 1,000 subscribers
// (MSITFEED_BENCH_SUBSCRIBERS to change) through the in-process SMTP server,
// or through the server at MSITFEED_BENCH_SMTP (host:port, e.g. Postfix's
// smtp-sink; see bench/digest.sh). It reports messages per second and the
// average message size. Subscribers follow one of three board sets, so
// each digest has three editions. MSITFEED_BENCH_DKIM=rsa or ed25519 signs
// every message (DKIM) with a key of that kind made for the run. It also
// reports the CPU time of the whole process (sender, ledger and, unless
// MSITFEED_BENCH_SMTP is set, the in-process server) per message, which a
// busy machine disturbs less than it does the rate.
func BenchmarkDigestSend(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("MSITFEED_BENCH_SUBSCRIBERS")); err == nil && v > 0 {
		n = v
	}
	e := newDigestEnv(b, smtptest.Faults{DiscardData: true})
	if addr := os.Getenv("MSITFEED_BENCH_SMTP"); addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			b.Fatalf("MSITFEED_BENCH_SMTP: %v", err)
		}
		e.cfg.SMTP.Host = host
		e.cfg.SMTP.Port, _ = strconv.Atoi(port)
	}
	if v, err := strconv.Atoi(os.Getenv("MSITFEED_BENCH_CONCURRENCY")); err == nil && v > 0 {
		e.cfg.SMTP.Concurrency = v
	} else {
		e.cfg.SMTP.Concurrency = 8
	}
	if kind := os.Getenv("MSITFEED_BENCH_DKIM"); kind != "" {
		e.withDKIM(newDKIMKey(b, kind))
	}
	boardSets := []string{"", "press,notice", "press"}
	tx, err := e.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	joined := e.now.Add(-30 * 24 * time.Hour).Format(time.RFC3339Nano)
	for i := range n {
		email := fmt.Sprintf("reader%06d@example.org", i)
		if _, err := tx.Exec(`INSERT INTO subscribers (uid, email, email_key, name, status, boards, origin, created, confirmed)
			VALUES ($1, $2, $3, $4, 'active', $5, 'cli', $6, $7)`, mailer.NewUID(), email, email, fmt.Sprintf("Reader %d", i),
			boardSets[i%len(boardSets)], joined, joined); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	m := e.mailer()
	var msgs int
	var elapsed, cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// A typical week: a dozen posts over the boards.
		for j := range 12 {
			board := feeds.BoardSlugs()[j%5]
			e.addItem(board, fmt.Sprintf("Week %d post %d: Ministry announces a programme for science and ICT", i, j),
				e.now, e.now.Add(-time.Hour),
				feeds.Attachment{Name: "announcement.pdf", URL: "https://www.msit.go.kr/files/announcement.pdf", Type: "application/pdf"})
		}
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		res, err := m.SendDigest(b.Context())
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		msgs += res.Sent()
		b.StopTimer()
		e.now = e.now.Add(7 * 24 * time.Hour)
		b.StartTimer()
	}
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	if cpu > 0 && msgs > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(msgs), "cpu-us/msg")
	}
	if os.Getenv("MSITFEED_BENCH_SMTP") == "" {
		size := 0
		for _, msg := range e.smtp.Messages() {
			size += msg.Size
		}
		if c := e.smtp.Count(); c > 0 {
			b.ReportMetric(float64(size)/float64(c), "bytes/msg")
		}
	}
}
