package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// testSecret keys the tokens of every test server, so a test can sign
// tokens of its own (expired ones, say) with mailer.NewTokens.
const testSecret = "web-test-secret"

// env is the real wiring of the web server for a test: SQLite in a temp
// directory with a few posts, the feed cache and handler, the mailer
// sending to an in-process SMTP server, all behind a real HTTP listener.
type env struct {
	t      *testing.T
	db     *sql.DB
	subs   *mailer.Subscribers
	mailer *mailer.Mailer
	srv    *Server
	http   *httptest.Server
	smtp   *smtptest.Server
	base   string // the server's URL, also its base_url
}

// testPosts are the posts every test server starts with.
var testPosts = []feeds.Item{
	{Board: "press", ID: 1001, Title: "MSIT announces 6G strategy", Summary: "The Ministry announced its 6G strategy.",
		Department: "Radio Policy Division", Published: time.Date(2024, 5, 2, 0, 0, 0, 0, feeds.KST),
		Attachments: []feeds.Attachment{{Name: "6G strategy.pdf", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=1&fileOrdr=2", Type: "application/pdf"}}},
	{Board: "press", ID: 1002, Title: "Quantum computing roadmap & budget", Summary: "A roadmap to 2035.",
		Published: time.Date(2024, 5, 3, 0, 0, 0, 0, feeds.KST)},
	{Board: "notice", ID: 2002, Title: "Call for R&D proposals", Summary: "Proposals are invited.",
		Published: time.Date(2024, 5, 1, 0, 0, 0, 0, feeds.KST)},
}

// newEnv starts a test server; change adjusts the web.Server before New.
func newEnv(t *testing.T, change func(*Server)) *env {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "msitfeed.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	store := feeds.NewStore(d)
	for _, it := range testPosts {
		it.URL = fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=%d", it.ID)
		if _, err := store.Save(ctx, it, "list-hash"); err != nil {
			t.Fatal(err)
		}
	}

	e := &env{t: t, db: d, smtp: smtptest.Start(t, smtptest.Faults{})}
	e.http = httptest.NewUnstartedServer(nil)
	e.base = "http://" + e.http.Listener.Addr().String()

	cfg := config.Default()
	cfg.BaseURL = e.base
	cfg.Secret = testSecret
	cfg.Mail.From = "MSIT digest <digest@example.org>"
	cfg.SMTP.Host = "127.0.0.1"
	cfg.SMTP.Port = e.smtp.Port()
	cfg.SMTP.TLS = "none"
	cfg.SMTP.Timeout = 10 * time.Second
	e.mailer, err = mailer.New(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	e.subs = mailer.NewSubscribers(d)

	pages, err := NewFeedPages(nil, e.base, "https://www.msit.go.kr")
	if err != nil {
		t.Fatal(err)
	}
	opts := feeds.Options{BaseURL: e.base, SourceURL: "https://www.msit.go.kr", Page: pages}
	cache, err := feeds.NewCache(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })

	s := Server{
		Store:       store,
		Feeds:       feeds.NewHandler(cache),
		BaseURL:     e.base,
		SiteURL:     "https://www.msit.go.kr",
		Subscribers: e.subs,
		Mailer:      e.mailer,
	}
	if change != nil {
		change(&s)
	}
	e.srv, err = New(s)
	if err != nil {
		t.Fatal(err)
	}
	e.http.Config.Handler = e.srv
	e.http.Start()
	t.Cleanup(func() {
		e.http.Close()
		if err := e.srv.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

// do sends r through the server's handler directly, so a test can set the
// client address; it returns the status and body.
func (e *env) do(r *http.Request) (int, http.Header, string) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w.Code, w.Header(), w.Body.String()
}

// get requests path with GET.
func (e *env) get(path string) (int, http.Header, string) {
	e.t.Helper()
	return e.do(httptest.NewRequest(http.MethodGet, e.base+path, nil))
}

// post sends form to path as a browser on this site would: same-origin.
func (e *env) post(path string, form url.Values) (int, http.Header, string) {
	e.t.Helper()
	return e.do(e.formRequest(path, form, "same-origin"))
}

// formRequest builds a form POST; fetchSite, if set, becomes
// Sec-Fetch-Site (and Origin is set to match a browser's).
func (e *env) formRequest(path string, form url.Values, fetchSite string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch fetchSite {
	case "":
	case "same-origin":
		r.Header.Set("Sec-Fetch-Site", fetchSite)
		r.Header.Set("Origin", e.base)
	default:
		r.Header.Set("Sec-Fetch-Site", fetchSite)
		r.Header.Set("Origin", "https://attacker.example")
	}
	return r
}

var tokenField = regexp.MustCompile(`name="token" value="([^"]+)"`)

// formToken reads the token of a freshly served subscribe form.
func (e *env) formToken() string {
	e.t.Helper()
	_, _, body := e.get("/")
	m := tokenField.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatal("index page has no form token")
	}
	return m[1]
}

// subscribeForm is the form a visitor sends for email with boards.
func (e *env) subscribeForm(email string, boards ...string) url.Values {
	if len(boards) == 0 {
		boards = feeds.BoardSlugs()
	}
	return url.Values{"token": {e.formToken()}, "email": {email}, "board": boards}
}

// subscribe posts the subscribe form and fails the test on any answer but 200.
func (e *env) subscribe(email string, boards ...string) string {
	e.t.Helper()
	code, _, body := e.post("/subscribe", e.subscribeForm(email, boards...))
	if code != http.StatusOK {
		e.t.Fatalf("subscribe %s: status %d\n%s", email, code, body)
	}
	return body
}

// settle waits until every confirmation mail started has been handed to
// the SMTP server (or failed).
func (e *env) settle() { e.srv.outbox.wait() }

// mails returns the messages the SMTP server accepted, after settle.
func (e *env) mails() []smtptest.Message {
	e.settle()
	return e.smtp.Messages()
}

// sub returns the subscriber with email.
func (e *env) sub(email string) mailer.Subscriber {
	e.t.Helper()
	s, err := e.subs.Get(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// snapshot is every subscriber row as text, to show that a request
// changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT id, uid, email, name, status, boards, origin, created, confirmed, unsubscribed, bounces FROM subscribers ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, bounces int64
		var uid, email, name, status, boards, origin, created, confirmed, unsubscribed string
		if err := rows.Scan(&id, &uid, &email, &name, &status, &boards, &origin, &created, &confirmed, &unsubscribed, &bounces); err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintln(&b, id, uid, email, name, status, boards, origin, created, confirmed, unsubscribed, bounces)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

// sign returns a token for purpose and uid with the server's secret.
func (e *env) sign(p mailer.Purpose, uid string) string {
	return e.mailer.Tokens().Sign(p, uid, 0)
}

var confirmLink = regexp.MustCompile(`https?://[^\s"<>]+/confirm/[A-Za-z0-9_.-]+`)

// confirmURL returns the confirmation link of the n-th mail (from 1),
// waiting for it to arrive.
func (e *env) confirmURL(n int) string {
	e.t.Helper()
	select {
	case <-e.smtp.WaitFor(n):
	case <-time.After(15 * time.Second):
		e.t.Fatalf("mail %d never arrived (%d did)", n, e.smtp.Count())
	}
	msg := e.smtp.Messages()[n-1]
	text := mailText(e.t, msg.Data)
	u := confirmLink.FindString(text)
	if u == "" {
		e.t.Fatalf("no confirmation link in mail %d:\n%s", n, text)
	}
	return u
}

// mailText returns the decoded text/plain part of a raw message.
func mailText(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := textPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	if text == "" {
		t.Fatalf("no text/plain part in:\n%s", raw)
	}
	return text
}

// textPart finds the first text/plain part below a part with contentType.
func textPart(contentType, encoding string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			text, err := textPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			if err != nil || text != "" {
				return text, err
			}
		}
	}
	if mt != "text/plain" {
		return "", nil
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	return string(b), err
}

// tokenOf returns the last path segment of a link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path[strings.LastIndexByte(u.Path, '/')+1:]
}

// newTestLogger logs everything, debug included, to w.
func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
