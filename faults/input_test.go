package faults

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/msitfeed/msitfeed/internal/web"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// countSubscribers counts the rows of subscribers.
func countSubscribers(t *testing.T, e *mailEnv) int {
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// utf16File encodes s as UTF-16LE with a byte order mark, as Windows
// tools save "Unicode text".
func utf16File(s string) string {
	var b strings.Builder
	b.WriteString("\xff\xfe")
	for _, u := range utf16.Encode([]rune(s)) {
		b.WriteByte(byte(u))
		b.WriteByte(byte(u >> 8))
	}
	return b.String()
}

// TestImportHostileFiles imports files with invalid, decorated and
// internationalised addresses, a 1 MB line and wrong encodings through
// `msitfeed subscribers import`: each bad line gets one error naming it,
// and without --skip-invalid nothing is imported.
func TestImportHostileFiles(t *testing.T) {
	mixed := "email,name,boards\n" +
		"alice@example.org,Alice,press\n" + // 2
		"not-an-address,,\n" + // 3
		"a@b@c.org,,\n" + // 4
		"alice@,,\n" + // 5
		"@example.org,,\n" + // 6
		"dots@example..org,,\n" + // 7
		"hyphen@-bad-.org,,\n" + // 8
		"<script>@x.org,,\n" + // 9
		strings.Repeat("x", 1<<20) + "@example.org,,\n" + // 10
		"bob@example.org,,sports\n" + // 11
		"\"carol@example.org\r\nBcc: x@y.org\",,\n" + // 12
		"\"Jane Doe <jane@example.org>\",,\n" + // 13
		"john@example.org (John),,\n" + // 14
		"user@bücher.example,,\n" + // 15
		"ALICE@EXAMPLE.ORG,Again,\n" // 16: a duplicate, noted, not an error
	files := []struct {
		name, body string
		wantLines  []int // lines reported as errors
		wantAdded  int   // with --skip-invalid
		fileError  string
	}{
		{"mixed.csv", mixed, []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 4, ""},
		{"latin1.csv", "email,name\nren\xe9@example.org,Ren\xe9\nok@example.org,Ok\n", []int{2}, 1, ""},
		{"utf16.csv", utf16File("email,name\nok@example.org,Ok\n"), nil, 0, "UTF-16"},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			e := newMailEnv(t, 0, smtptest.Faults{})
			path := filepath.Join(t.TempDir(), f.name)
			os.WriteFile(path, []byte(f.body), 0o600)
			start := time.Now()
			_, errs, code := e.c.run("", "subscribers", "import", path)
			took := time.Since(start)
			if code == 0 || countSubscribers(t, e) != 0 {
				t.Fatalf("import of %s: exit %d, %d subscribers stored; want a failure and nothing stored", f.name, code, countSubscribers(t, e))
			}
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			last := lines[len(lines)-1]
			if f.fileError != "" {
				if len(lines) != 1 || !strings.Contains(last, f.fileError) {
					t.Errorf("%s: want one line naming %s, got:\n%s", f.name, f.fileError, errs)
				}
				t.Logf("FIGURES import | %s | exit %d | %q | 0 stored", f.name, code, last)
				return
			}
			var got []int
			for _, l := range lines[:len(lines)-1] {
				var n int
				if _, err := fmt.Sscanf(l, "line %d:", &n); err != nil {
					t.Errorf("stderr line %q does not name a line", l)
					continue
				}
				if len(l) > 300 {
					t.Errorf("error line of %d bytes: %.100s…", len(l), l)
				}
				if !strings.Contains(l, "duplicate") {
					got = append(got, n)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(f.wantLines) {
				t.Errorf("errors on lines %v, want %v:\n%s", got, f.wantLines, errs)
			}
			if !strings.Contains(last, "nothing imported") {
				t.Errorf("last line %q does not say nothing was imported", last)
			}
			out, errs2, code2 := e.c.run("", "subscribers", "import", "--skip-invalid", path)
			added := countSubscribers(t, e)
			if code2 != 0 || added != f.wantAdded {
				t.Errorf("--skip-invalid: exit %d, %d added, want %d\n%s%s", code2, added, f.wantAdded, out, errs2)
			}
			list := e.c.must("subscribers", "list", "--format", "csv")
			if f.name == "mixed.csv" {
				for _, want := range []string{"jane@example.org,Jane Doe", "john@example.org,John", "user@xn--bcher-kva.example"} {
					if !strings.Contains(list, want) {
						t.Errorf("list lacks %q:\n%s", want, list)
					}
				}
			}
			t.Logf("FIGURES import | %s | exit %d in %v, %d error lines (lines %v), 0 stored | --skip-invalid: exit %d, %d stored |",
				f.name, code, took.Round(time.Millisecond), len(got), got, code2, added)
		})
	}
}

// linkEnv is `msitfeed serve` with subscriptions open: a known secret, mail
// to an in-process SMTP server, one active subscriber.
type linkEnv struct {
	*mailEnv
	d      *daemon
	uid    string
	tokens *mailer.Tokens
}

const linkSecret = "faults-secret-0123456789"

func newLinkEnv(t *testing.T, env ...string) *linkEnv {
	e := &linkEnv{mailEnv: newMailEnv(t, 1, smtptest.Faults{}, append([]string{"MSITFEED_SECRET=" + linkSecret}, env...)...)}
	e.d = e.c.serve("--no-scheduler")
	if err := e.db.QueryRow(`SELECT uid FROM subscribers`).Scan(&e.uid); err != nil {
		t.Fatal(err)
	}
	e.tokens = mailer.NewTokens([]byte(linkSecret))
	return e
}

func (e *linkEnv) status() string {
	var s string
	e.db.QueryRow(`SELECT status FROM subscribers WHERE uid = ?`, e.uid).Scan(&s)
	return s
}

func (e *linkEnv) post(path string, form url.Values, header ...string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, e.d.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHostileLinks sends forged, truncated, expired, misused, oversized
// and replayed tokens to the link pages of a running `msitfeed serve`.
func TestHostileLinks(t *testing.T) {
	e := newLinkEnv(t)
	good := e.tokens.Sign(mailer.PurposeUnsubscribe, e.uid, 0)
	old := mailer.NewTokens([]byte(linkSecret))
	old.Now = func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }
	cases := []struct{ name, path string }{
		{"forged (another key)", "/unsubscribe/" + mailer.NewTokens([]byte("not-our-secret")).Sign(mailer.PurposeUnsubscribe, e.uid, 0)},
		{"truncated", "/unsubscribe/" + good[:len(good)-3]},
		{"signature cut off", "/unsubscribe/" + good[:strings.IndexByte(good, '.')]},
		{"expired", "/confirm/" + old.Sign(mailer.PurposeConfirm, e.uid, mailer.ConfirmTTL)},
		{"for another purpose", "/unsubscribe/" + e.tokens.Sign(mailer.PurposeConfirm, e.uid, 0)},
		{"a form token", "/unsubscribe/" + e.tokens.Sign("form", "subscribe", time.Hour)},
		{"another subscriber's uid, our key", "/unsubscribe/" + e.tokens.Sign(mailer.PurposeUnsubscribe, mailer.NewUID(), 0)},
		{"10 KB", "/unsubscribe/" + strings.Repeat("A", 10<<10)},
		{"path tricks", "/unsubscribe/..%2f..%2fetc%2fpasswd"},
	}
	for _, tc := range cases {
		getCode, _ := e.d.get(tc.path)
		postCode, _ := e.post(tc.path, url.Values{"List-Unsubscribe": {"One-Click"}})
		if getCode < 400 || getCode >= 500 || postCode < 400 || postCode >= 500 || e.status() != "active" {
			t.Errorf("%s: GET %d, POST %d, subscriber %s; want 4xx and nothing changed", tc.name, getCode, postCode, e.status())
		}
		t.Logf("FIGURES links | %s | GET %d, POST %d | subscriber still %s", tc.name, getCode, postCode, e.status())
	}
	// A good link works once, and again harmlessly.
	c1, _ := e.post("/unsubscribe/"+good, url.Values{"List-Unsubscribe": {"One-Click"}})
	c2, body2 := e.post("/unsubscribe/"+good, url.Values{"List-Unsubscribe": {"One-Click"}})
	if c1 != 200 || c2 != 200 || e.status() != "unsubscribed" {
		t.Errorf("unsubscribe then replay: %d, %d, status %s", c1, c2, e.status())
	}
	confirm := e.tokens.Sign(mailer.PurposeConfirm, e.uid, mailer.ConfirmTTL)
	c3, _ := e.post("/confirm/"+confirm, nil)
	if e.status() != "unsubscribed" {
		t.Errorf("a replayed confirm link (%d) brought an unsubscribed address back: %s", c3, e.status())
	}
	t.Logf("FIGURES links | replayed | unsubscribe POST %d then %d (second says it no longer changes anything: %t); old confirm link afterwards %d | subscriber %s",
		c1, c2, strings.Contains(body2, "no longer changes anything"), c3, e.status())
}

// TestHostileFeedRequests asks for unknown boards and formats, huge and
// odd limits, and paths with tricks.
func TestHostileFeedRequests(t *testing.T) {
	e := newLinkEnv(t)
	cases := map[string]int{
		"/feeds/sports.rss":                                 404,
		"/feeds/press.xml":                                  404,
		"/feeds/press":                                      404,
		"/feeds/press.rss.rss":                              404,
		"/feeds/..%2f..%2fetc%2fpasswd.rss":                 404,
		"/feeds/press.rss?limit=0":                          400,
		"/feeds/press.rss?limit=-1":                         400,
		"/feeds/press.rss?limit=501":                        400,
		"/feeds/press.rss?limit=1e3":                        400,
		"/feeds/press.rss?limit=99999999999999999999999999": 400,
		"/feeds/press.rss?limit=500":                        200,
		"/feeds/press.rss?limit=10&limit=99999":             200,
	}
	for path, want := range cases {
		code, body := e.d.get(path)
		if code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
		if len(body) > 1<<20 {
			t.Errorf("GET %s: %d bytes", path, len(body))
		}
	}
	t.Logf("FIGURES feeds | %d odd requests (unknown boards and formats, path tricks, limits 0, -1, 501, 1e3, 10^26) | all answered as expected (404/400, 200 for limit=500) |", len(cases))
}

// TestExportPathTricks gives `feeds export --dir` paths that climb out of
// where they seem to point.
func TestExportPathTricks(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "work")
	os.Mkdir(work, 0o755)
	c := newCLI(t, "MSITFEED_DATABASE="+filepath.Join(root, "x.db"))
	before := listTree(t, root)
	for _, dir := range []string{"../escape", "public/../../escape", "./..", "public/..", "a/b/../../../escape", work + "/../escape"} {
		cmd := c.command("feeds", "export", "--dir", dir)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
		if code != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("export --dir %q: exit %d, output %q; want a one-line usage refusal (exit 2)", dir, code, out)
		}
		t.Logf("FIGURES export | --dir %s | exit %d: %s", dir, code, strings.TrimSpace(string(out)))
	}
	after := listTree(t, root)
	for p := range after {
		if !before[p] && !strings.HasPrefix(p, "x.db") {
			t.Errorf("export wrote %s", p)
		}
	}
}

func listTree(t *testing.T, root string) map[string]bool {
	out := map[string]bool{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			out[rel] = true
		}
		return nil
	})
	return out
}

// slowloris opens a connection to addr and sends a request's headers one
// byte every interval; it returns how long the server kept the connection
// open and how many bytes it took.
func slowloris(t *testing.T, addr string, interval time.Duration, limit time.Duration) (time.Duration, int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn) // returns when the server closes
		close(closed)
	}()
	req := "GET /feeds/press.rss HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\nX-Padding: " + strings.Repeat("a", 1000)
	sent := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for sent < len(req) {
		select {
		case <-closed:
			return time.Since(start), sent
		case <-time.After(limit):
			t.Fatalf("the server kept a slow client for %v", limit)
		case <-tick.C:
			if _, err := conn.Write([]byte{req[sent]}); err != nil {
				<-closed
				return time.Since(start), sent
			}
			sent++
		}
	}
	t.Fatal("the whole request went through")
	return 0, 0
}

// TestSlowloris: a client that sends its headers a byte at a time is cut
// off by ReadHeaderTimeout, both in a server built with a short timeout and
// in the real `msitfeed serve` with its own.
func TestSlowloris(t *testing.T) {
	t.Run("web.NewHTTPServer with ReadHeaderTimeout 1s", func(t *testing.T) {
		t.Parallel()
		srv := web.NewHTTPServer("127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
		shipped := srv.ReadHeaderTimeout
		if shipped <= 0 || shipped > 10*time.Second {
			t.Errorf("NewHTTPServer's ReadHeaderTimeout is %v", shipped)
		}
		srv.ReadHeaderTimeout = time.Second
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		held, sent := slowloris(t, ln.Addr().String(), 200*time.Millisecond, 10*time.Second)
		// Closed long before the client would have finished (10 s); the
		// margin over the 1 s timeout absorbs a loaded CI machine.
		if held > 5*time.Second {
			t.Errorf("held %v", held)
		}
		t.Logf("FIGURES slowloris | in-process, ReadHeaderTimeout 1s (shipped: %v) | closed after %v, %d header bytes", shipped, held.Round(10*time.Millisecond), sent)
	})
	t.Run("msitfeed serve", func(t *testing.T) {
		t.Parallel()
		e := newLinkEnv(t)
		held, sent := slowloris(t, strings.TrimPrefix(e.d.base, "http://"), time.Second, 20*time.Second)
		// ReadHeaderTimeout is 5 s; the client would go on for 20 s.
		if held > 12*time.Second {
			t.Errorf("held %v", held)
		}
		// The server still serves others.
		if code, _ := e.d.get("/healthz"); code != 200 {
			t.Errorf("/healthz %d after the slow client", code)
		}
		t.Logf("FIGURES slowloris | msitfeed serve, one header byte a second | closed after %v, %d bytes sent", held.Round(10*time.Millisecond), sent)
	})
}

var formToken = regexp.MustCompile(`name="token" value="([^"]+)"`)

// TestSubscribeFlood posts the subscribe form 60 times from one client,
// then asks for one address from 20 clients: the client limit and the
// per-address limit bound the confirmation mails sent.
func TestSubscribeFlood(t *testing.T) {
	e := newLinkEnv(t, "MSITFEED_WEB_CLIENT_IP_HEADER=X-Real-IP")
	_, page := e.d.get("/")
	m := formToken.FindStringSubmatch(string(page))
	if m == nil {
		t.Fatal("no form token on the index page")
	}
	token := m[1]
	codes := map[int]int{}
	for i := range 60 {
		code, _ := e.post("/subscribe", url.Values{"token": {token}, "email": {fmt.Sprintf("flood%d@example.org", i)}, "board": {"press"}}, "X-Real-IP", "192.0.2.1")
		codes[code]++
	}
	forged, _ := e.post("/subscribe", url.Values{"token": {token + "x"}, "email": {"forged@example.org"}, "board": {"press"}}, "X-Real-IP", "192.0.2.99")
	for i := range 20 {
		e.post("/subscribe", url.Values{"token": {token}, "email": {"victim@example.org"}, "board": {"press"}}, "X-Real-IP", "198.51.100."+strconv.Itoa(i+1))
	}
	var pendingRows int
	e.db.QueryRow(`SELECT count(*) FROM subscribers WHERE status = 'pending'`).Scan(&pendingRows)
	// The mails go out in the background: stop the server to let them finish.
	e.d.stop()
	victim := e.smtp.ByRecipient()["victim@example.org"]
	mails := e.smtp.Count()
	if codes[200] > 10 || codes[429] != 60-codes[200] || victim > 2 || forged != http.StatusForbidden {
		t.Errorf("flood: answers %v, forged token %d, victim got %d mails", codes, forged, victim)
	}
	t.Logf("FIGURES flood | 60 sign-ups from one client, a forged form token, one address from 20 clients | answers %v; forged token %d | %d confirmation mails sent (%d to the one address), %d pending rows |",
		codes, forged, mails, victim, pendingRows)
}
