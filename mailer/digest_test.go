package mailer_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// digestEnv is a database with items and subscribers, an in-process SMTP
// server and a Mailer pointed at it, with a clock the test moves.
type digestEnv struct {
	t      testing.TB
	db     *sql.DB
	path   string // the database file
	store  *feeds.Store
	smtp   *smtptest.Server
	cfg    config.Config
	now    time.Time
	nextID int64
}

func newDigestEnv(t testing.TB, f smtptest.Faults) *digestEnv {
	t.Helper()
	return newDigestEnvWith(t, smtptest.Setup{}, f)
}

// newDigestEnvWith is newDigestEnv with a server set up with TLS or AUTH.
func newDigestEnvWith(t testing.TB, setup smtptest.Setup, f smtptest.Faults) *digestEnv {
	t.Helper()
	return newDigestEnvOnWith(t, db.SQLite, setup, f)
}

// newDigestEnvOn is newDigestEnv on a fresh database of engine.
func newDigestEnvOn(t testing.TB, engine db.Engine, f smtptest.Faults) *digestEnv {
	t.Helper()
	return newDigestEnvOnWith(t, engine, smtptest.Setup{}, f)
}

// newDigestEnvOnWith is newDigestEnvWith on a fresh database of engine;
// e.path is its database setting.
func newDigestEnvOnWith(t testing.TB, engine db.Engine, setup smtptest.Setup, f smtptest.Faults) *digestEnv {
	t.Helper()
	ctx := context.Background()
	path := dbtest.DSN(t, engine)
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	srv := smtptest.StartWith(t, setup, f)
	cfg := config.Default()
	cfg.Database = "unused"
	cfg.BaseURL = "https://msitfeed.example"
	cfg.SMTP.Host = "127.0.0.1"
	cfg.SMTP.Port = srv.Port()
	cfg.SMTP.TLS = "none"
	cfg.SMTP.Timeout = 5 * time.Second
	cfg.SMTP.Backoff = time.Millisecond
	cfg.SMTP.Retries = 5
	cfg.Mail.From = "MSIT digest <digest@msitfeed.example>"
	cfg.Mail.ReplyTo = "help@msitfeed.example"
	e := &digestEnv{t: t, db: d, path: path, store: feeds.NewStore(d), smtp: srv, cfg: cfg,
		now: time.Date(2025, 3, 10, 9, 0, 0, 0, feeds.KST), nextID: 1000}
	return e
}

// mailer returns a Mailer over the env with the env's clock.
func (e *digestEnv) mailer() *mailer.Mailer {
	e.t.Helper()
	m, err := mailer.New(context.Background(), e.cfg, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	m.Now = func() time.Time { return e.now }
	m.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return m
}

// addSubscriber inserts a subscriber row directly; boards "" is all.
func (e *digestEnv) addSubscriber(email, name, boards string, status mailer.Status, joined time.Time) int64 {
	e.t.Helper()
	var id int64
	err := e.db.QueryRow(`INSERT INTO subscribers (uid, email, email_key, name, status, boards, origin, created, confirmed)
		VALUES ($1, $2, $3, $4, $5, $6, 'cli', $7, $8) RETURNING id`, mailer.NewUID(), email, strings.ToLower(email), name, string(status), boards,
		joined.Format(time.RFC3339Nano), joined.Format(time.RFC3339Nano)).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// addItem stores a post first seen at firstSeen.
func (e *digestEnv) addItem(board, title string, published, firstSeen time.Time, atts ...feeds.Attachment) feeds.Item {
	e.t.Helper()
	e.nextID++
	it := feeds.Item{
		Board: board, ID: e.nextID, Title: title,
		URL:       fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", e.nextID),
		Published: published, Department: "Dept. of " + board, Summary: "Summary of " + title,
		Attachments: atts,
	}
	e.store.Now = func() time.Time { return firstSeen }
	if _, err := e.store.Save(context.Background(), it, ""); err != nil {
		e.t.Fatal(err)
	}
	it.FirstSeen = firstSeen
	return it
}

func (e *digestEnv) send(m *mailer.Mailer) (mailer.Result, error) {
	return m.SendDigest(context.Background())
}

func (e *digestEnv) mustSend(m *mailer.Mailer) mailer.Result {
	e.t.Helper()
	res, err := e.send(m)
	if err != nil {
		e.t.Fatalf("SendDigest: %v", err)
	}
	return res
}

func (e *digestEnv) scalar(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// parsedMail is a received digest taken apart.
type parsedMail struct {
	Header  mail.Header
	Subject string
	Parts   []mailPart
}

type mailPart struct {
	ContentType string
	Params      map[string]string
	Encoding    string // Content-Transfer-Encoding
	Body        string
}

// parseMail parses msg as the digest must be: multipart/alternative with
// decoded parts.
func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	pm := parsedMail{Header: msg.Header}
	dec := new(mime.WordDecoder)
	if pm.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("decode subject %q: %v", msg.Header.Get("Subject"), err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		ct, cparams, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		pm.Parts = append(pm.Parts, mailPart{ContentType: ct, Params: cparams,
			Encoding: p.Header.Get("Content-Transfer-Encoding"), Body: string(b)})
	}
	return pm
}

func TestSendDigest_WellFormedMailPerSubscriber(t *testing.T) {
	dbtest.Each(t, sendDigestWellFormedMailPerSubscriber)
}

func sendDigestWellFormedMailPerSubscriber(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	joined := e.now.Add(-30 * 24 * time.Hour)
	allID := e.addSubscriber("all@example.org", "Kim Min-jun", "", mailer.StatusActive, joined)
	e.addSubscriber("press@example.org", "", "press", mailer.StatusActive, joined)
	e.addSubscriber("notice@example.org", "", "notice", mailer.StatusActive, joined) // no notice posts: no mail
	e.addSubscriber("gone@example.org", "", "", mailer.StatusUnsubscribed, joined)
	e.addSubscriber("pending@example.org", "", "", mailer.StatusPending, joined)

	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, feeds.KST) }
	seen := e.now.Add(-2 * time.Hour)
	hostile := "<script>alert(1)</script>\r\nBcc: victim@example.net\r\n\r\nbody" + strings.Repeat(" long", 2000)
	e.addItem("press", "Older press release", day(7), seen)
	e.addItem("press", hostile, day(9), seen.Add(time.Minute),
		feeds.Attachment{Name: "report.pdf", URL: "https://www.msit.go.kr/files/report.pdf", Type: "application/pdf"})
	e.addItem("photo", "Minister visits a lab", day(8), seen)
	e.addItem("press", "Backfilled ancient post", day(1).AddDate(0, -2, 0), seen) // published long before: left out

	m := e.mailer()
	res := e.mustSend(m)
	if len(res.Digests) != 1 || !res.Digests[0].Created || res.Digests[0].Sent != 2 || res.Digests[0].Items != 3 {
		t.Fatalf("result = %+v, want one new digest with 3 items sent to 2", res)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 2 {
		t.Fatalf("server got %d messages, want 2", len(msgs))
	}
	byRcpt := map[string]parsedMail{}
	for _, msg := range msgs {
		if len(msg.To) != 1 {
			t.Fatalf("message has %d recipients, want 1: %v", len(msg.To), msg.To)
		}
		if msg.From != "digest@msitfeed.example" {
			t.Errorf("envelope from = %q", msg.From)
		}
		byRcpt[msg.To[0]] = parseMail(t, msg.Data)
	}

	t.Run("every header is present and right", func(t *testing.T) {
		var uid string
		if err := e.db.QueryRow(`SELECT uid FROM subscribers WHERE id = $1`, allID).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		pm := byRcpt["all@example.org"]
		h := pm.Header
		from, err := mail.ParseAddress(h.Get("From"))
		if err != nil || from.Address != "digest@msitfeed.example" || from.Name != "MSIT digest" {
			t.Errorf("From = %q", h.Get("From"))
		}
		if h.Get("Reply-To") != "<help@msitfeed.example>" && h.Get("Reply-To") != "help@msitfeed.example" {
			t.Errorf("Reply-To = %q", h.Get("Reply-To"))
		}
		to, err := h.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != "all@example.org" || to[0].Name != "Kim Min-jun" {
			t.Errorf("To = %q (%v)", h.Get("To"), err)
		}
		if !regexp.MustCompile(`^<digest-1-[0-9a-f]{16}@msitfeed\.example>$`).MatchString(h.Get("Message-Id")) {
			t.Errorf("Message-ID = %q", h.Get("Message-Id"))
		}
		var stored string
		if err := e.db.QueryRow(`SELECT message_id FROM deliveries WHERE subscriber_id = $1`, allID).Scan(&stored); err != nil || "<"+stored+">" != h.Get("Message-Id") {
			t.Errorf("ledger Message-ID = %q (%v), header %q", stored, err, h.Get("Message-Id"))
		}
		lu := regexp.MustCompile(`^<https://msitfeed\.example/unsubscribe/([A-Za-z0-9_.-]+)>, <mailto:digest@msitfeed\.example\?subject=unsubscribe>$`).FindStringSubmatch(h.Get("List-Unsubscribe"))
		if lu == nil {
			t.Fatalf("List-Unsubscribe = %q", h.Get("List-Unsubscribe"))
		}
		if got, err := m.Tokens().Verify(mailer.PurposeUnsubscribe, lu[1]); err != nil || got != uid {
			t.Errorf("unsubscribe token names %q (%v), want %q", got, err, uid)
		}
		if h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", h.Get("List-Unsubscribe-Post"))
		}
		if h.Get("List-Id") != "MSIT digest <digest.msitfeed.example>" {
			t.Errorf("List-Id = %q", h.Get("List-Id"))
		}
		if h.Get("Mime-Version") != "1.0" || h.Get("Date") == "" {
			t.Errorf("MIME-Version = %q, Date = %q", h.Get("Mime-Version"), h.Get("Date"))
		}
	})

	t.Run("text comes before html, both UTF-8", func(t *testing.T) {
		for rcpt, pm := range byRcpt {
			if len(pm.Parts) != 2 || pm.Parts[0].ContentType != "text/plain" || pm.Parts[1].ContentType != "text/html" {
				t.Fatalf("%s: parts %+v, want text/plain then text/html", rcpt, pm.Parts)
			}
			for _, p := range pm.Parts {
				if !strings.EqualFold(p.Params["charset"], "utf-8") {
					t.Errorf("%s: %s charset %q", rcpt, p.ContentType, p.Params["charset"])
				}
			}
		}
	})

	t.Run("each subscriber gets only their boards", func(t *testing.T) {
		all, press := byRcpt["all@example.org"], byRcpt["press@example.org"]
		if !strings.Contains(all.Parts[0].Body, "Minister visits a lab") || !strings.Contains(all.Parts[0].Body, "== Photo News ==") {
			t.Errorf("all-boards subscriber misses the photo post")
		}
		for _, p := range press.Parts {
			if strings.Contains(p.Body, "Minister visits a lab") || strings.Contains(p.Body, "Photo News") {
				t.Errorf("press-only subscriber got the photo board in %s", p.ContentType)
			}
			if !strings.Contains(p.Body, "Older press release") {
				t.Errorf("press-only subscriber misses a press post in %s", p.ContentType)
			}
			if strings.Contains(p.Body, "Backfilled ancient post") {
				t.Errorf("a post published two months before the period was included")
			}
		}
		// Newest first within a board: the hostile (9 March) before the older (7 March).
		txt := all.Parts[0].Body
		if i, j := strings.Index(txt, "<script>alert(1)"), strings.Index(txt, "Older press release"); i < 0 || j < 0 || i > j {
			t.Errorf("press posts not newest first in text: %d, %d", i, j)
		}
		if !strings.Contains(txt, "2025-03-09") || !strings.Contains(txt, "Dept. of press") || !strings.Contains(txt, "https://www.msit.go.kr/files/report.pdf") {
			t.Errorf("text part lacks date, department or attachment link")
		}
	})

	t.Run("hostile titles are escaped and inject no header", func(t *testing.T) {
		pm := byRcpt["press@example.org"]
		if pm.Header.Get("Bcc") != "" {
			t.Fatalf("a title injected a Bcc header: %q", pm.Header.Get("Bcc"))
		}
		if strings.ContainsAny(pm.Subject, "\r\n\x00") {
			t.Errorf("subject has a line break: %q", pm.Subject)
		}
		if n := len([]rune(pm.Subject)); n > 120 || !strings.HasSuffix(pm.Subject, "…") {
			t.Errorf("subject has %d runes, want at most 120 ending in …: %q", n, pm.Subject)
		}
		html := pm.Parts[1].Body
		if strings.Contains(html, "<script>") {
			t.Errorf("html part contains a raw <script>")
		}
		if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("html part lacks the escaped title")
		}
		if strings.Contains(html, "src=\"http") || strings.Contains(html, "<link") || strings.Contains(html, "<img") {
			t.Errorf("html part loads a remote asset")
		}
	})

	t.Run("nothing new makes no digest", func(t *testing.T) {
		e.now = e.now.Add(time.Hour)
		res := e.mustSend(m)
		if len(res.Digests) != 0 || e.smtp.Count() != 2 || e.scalar(`SELECT count(*) FROM digests`) != 1 ||
			!strings.HasPrefix(res.Nothing, "nothing new to send: no posts since the last digest at ") {
			t.Fatalf("second send without new posts: %+v, %d messages", res, e.smtp.Count())
		}
		// A post on a board nobody active follows makes no digest either.
		e.addItem("newsletter", "Newsletter nobody reads", e.now, e.now.Add(-10*time.Minute))
		e.db.Exec(`UPDATE subscribers SET boards = 'press' WHERE email = 'all@example.org'`)
		e.now = e.now.Add(time.Hour)
		if res := e.mustSend(m); len(res.Digests) != 0 || e.scalar(`SELECT count(*) FROM digests`) != 1 ||
			res.Nothing != "nothing sent: 1 new post, but no active subscriber wants those boards" {
			t.Fatalf("digest made for a board nobody follows: %+v", res)
		}
	})
}

func TestSendDigest_PeriodsAndLateJoiners(t *testing.T) {
	dbtest.Each(t, sendDigestPeriodsAndLateJoiners)
}

func sendDigestPeriodsAndLateJoiners(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	start := e.now
	old := e.addSubscriber("old@example.org", "", "", mailer.StatusActive, start.Add(-30*24*time.Hour))
	e.addItem("notice", "Before joining", start, start.Add(-3*time.Hour))
	late := e.addSubscriber("late@example.org", "", "", mailer.StatusActive, start.Add(-2*time.Hour))
	e.addItem("notice", "After joining", start, start.Add(-1*time.Hour))
	e.addItem("notice", "Too old for the first digest", start, start.Add(-8*24*time.Hour))

	m := e.mailer()
	e.mustSend(m)
	got := map[string]string{}
	for _, msg := range e.smtp.Messages() {
		got[msg.To[0]] = string(msg.Data)
	}
	if !strings.Contains(got["old@example.org"], "Before joining") || !strings.Contains(got["old@example.org"], "After joining") {
		t.Errorf("long-time subscriber misses posts")
	}
	if strings.Contains(got["late@example.org"], "Before joining") || !strings.Contains(got["late@example.org"], "After joining") {
		t.Errorf("late joiner got posts from before joining, or misses the new one")
	}
	for _, body := range got {
		if strings.Contains(body, "Too old for the first digest") {
			t.Errorf("first digest reaches back more than 7 days")
		}
	}

	// The next digest starts where the first ended: only the newer posts,
	// one of them stored the instant before the send.
	e.now = start.Add(24 * time.Hour)
	e.addItem("press", "Next day", e.now, e.now.Add(-2*time.Hour))
	e.addItem("press", "Stored just now", e.now, e.now)
	e.mustSend(m)
	if n := e.smtp.Count(); n != 4 {
		t.Fatalf("%d messages after the second digest, want 4", n)
	}
	second := e.smtp.Messages()[2:]
	for _, msg := range second {
		body := string(msg.Data)
		if strings.Contains(body, "joining") || !strings.Contains(body, "Next day") || !strings.Contains(body, "Stored just now") {
			t.Errorf("second digest to %s has the wrong posts", msg.To[0])
		}
	}
	// A send right after has nothing new, and says since when.
	res := e.mustSend(m)
	if n := e.smtp.Count(); n != 4 || len(res.Digests) != 0 || !strings.Contains(res.Nothing, "no posts since the last digest at ") {
		t.Fatalf("a send right after the second digest: %d messages, %+v", n, res)
	}
	_ = old
	_ = late
}

func TestPreview(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.addSubscriber("press@example.org", "", "press", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	e.addItem("press", "Press post", e.now, e.now.Add(-time.Hour))
	e.addItem("photo", "Photo post", e.now, e.now.Add(-time.Hour))
	m := e.mailer()
	ctx := context.Background()

	pv, err := m.Preview(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Items != 2 || !strings.Contains(pv.Text, "Photo post") || !strings.Contains(pv.HTML, "Press post") {
		t.Errorf("preview for everyone: %d items", pv.Items)
	}
	pv, err = m.Preview(ctx, "PRESS@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Items != 1 || strings.Contains(pv.Text, "Photo post") || !strings.Contains(pv.Text, "/unsubscribe/") {
		t.Errorf("preview for a press subscriber: %d items\n%s", pv.Items, pv.Text)
	}
	if e.smtp.Count() != 0 || e.scalar(`SELECT count(*) FROM digests`) != 0 {
		t.Errorf("preview sent or stored something")
	}
}

// A digest goes out as 8bit when the server announces 8BITMIME and every
// line fits, and quoted-printable otherwise; either way the reader gets
// the same text, every line of the message is within SMTP's 998 octets, and
// an old 7-bit server is never sent a byte above 127.
func TestSendDigest_TransferEncoding(t *testing.T) {
	tests := []struct {
		name     string
		faults   smtptest.Faults
		title    string
		wantCTE  string
		wantBody string // MAIL FROM BODY=
	}{
		{"8BITMIME server", smtptest.Faults{}, "Seoul–Daejeon quantum link · 과학기술 = progress", "8bit", "8BITMIME"},
		{"8BITMIME server, a line too long for 8bit", smtptest.Faults{}, "Long" + strings.Repeat(" title", 300), "quoted-printable", "8BITMIME"},
		{"server without 8BITMIME", smtptest.Faults{No8BitMIME: true}, "Seoul–Daejeon quantum link · 과학기술 = progress", "quoted-printable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDigestEnv(t, tt.faults)
			joined := e.now.Add(-30 * 24 * time.Hour)
			for i := range 3 {
				e.addSubscriber(fmt.Sprintf("reader%d@example.org", i), "Reader", "", mailer.StatusActive, joined)
			}
			e.addItem("press", tt.title, e.now.Add(-24*time.Hour), e.now.Add(-time.Hour))
			res := e.mustSend(e.mailer())
			if len(res.Digests) != 1 || res.Digests[0].Sent != 3 || res.Digests[0].Failed != 0 {
				t.Fatalf("result = %+v, want 3 sent", res)
			}
			msgs := e.smtp.Messages()
			if len(msgs) != 3 {
				t.Fatalf("server got %d messages, want 3", len(msgs))
			}
			for _, msg := range msgs {
				if msg.Body != tt.wantBody {
					t.Errorf("MAIL FROM BODY=%q, want %q", msg.Body, tt.wantBody)
				}
				for i, line := range strings.Split(string(msg.Data), "\r\n") {
					if len(line) > 998 || strings.ContainsAny(line, "\r\n\x00") {
						t.Fatalf("line %d of the message: %d octets, or a lone CR, LF or NUL", i+1, len(line))
					}
				}
				pm := parseMail(t, msg.Data)
				if len(pm.Parts) != 2 {
					t.Fatalf("%d parts, want text and html", len(pm.Parts))
				}
				for _, p := range pm.Parts {
					if p.Encoding != tt.wantCTE {
						t.Errorf("%s: Content-Transfer-Encoding %q, want %q", p.ContentType, p.Encoding, tt.wantCTE)
					}
					if !strings.Contains(p.Body, tt.title) {
						t.Errorf("%s part lacks the title %q", p.ContentType, tt.title[:20])
					}
					if !strings.Contains(p.Body, "\r\n") || strings.Contains(strings.ReplaceAll(p.Body, "\r\n", ""), "\n") {
						t.Errorf("%s part: lines do not all end in CRLF", p.ContentType)
					}
				}
			}
		})
	}
}
