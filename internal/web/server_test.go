package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
)

func TestIndex(t *testing.T) {
	e := newEnv(t, nil)
	code, hdr, body := e.get("/")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, b := range feeds.DefaultBoards() {
		for _, ext := range []string{"rss", "atom", "json"} {
			if !strings.Contains(body, `<a href="/feeds/`+b.Slug+`.`+ext+`">`) {
				t.Errorf("no %s link for %s", ext, b.Slug)
			}
		}
		if !strings.Contains(body, `<input type="checkbox" name="board" value="`+b.Slug+`" checked>`) {
			t.Errorf("no checked box for %s", b.Slug)
		}
	}
	for _, want := range []string{`<a href="/feeds/all.rss">`, "MSIT announces 6G strategy", "Quantum computing roadmap &amp; budget",
		`<form method="post" action="/subscribe#subscribe">`, `type="email"`, `name="name"`} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %s", want)
		}
	}
	if !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") || hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers missing: %v", hdr)
	}
	if strings.Contains(body, "<script") {
		t.Error("the index has a script")
	}
}

// TestAutodiscovery checks that every page, whatever it says, names every
// feed in every format for feed readers and browsers to discover.
func TestAutodiscovery(t *testing.T) {
	e := newEnv(t, nil)
	s := e.addSub("reader@example.org", mailer.StatusPending)
	pages := map[string]func() string{
		"index": func() string { _, _, b := e.get("/"); return b },
		"subscribe answer": func() string {
			return e.subscribe("new@example.org")
		},
		"subscribe form with an error": func() string {
			_, _, b := e.post("/subscribe", map[string][]string{"token": {e.formToken()}, "email": {"x"}, "board": {"press"}})
			return b
		},
		"confirm":      func() string { _, _, b := e.get("/confirm/" + e.sign(mailer.PurposeConfirm, s.UID)); return b },
		"preferences":  func() string { _, _, b := e.get("/preferences/" + e.sign(mailer.PurposePreferences, s.UID)); return b },
		"unsubscribe":  func() string { _, _, b := e.get("/unsubscribe/" + e.sign(mailer.PurposeUnsubscribe, s.UID)); return b },
		"invalid link": func() string { _, _, b := e.get("/confirm/nonsense"); return b },
		"form refused": func() string {
			_, _, b := e.do(e.formRequest("/subscribe", nil, "cross-site"))
			return b
		},
	}
	for name, get := range pages {
		t.Run("the "+name+" page has every feed", func(t *testing.T) {
			body := get()
			for _, slug := range append([]string{feeds.AllSlug}, feeds.BoardSlugs()...) {
				for _, f := range []struct{ typ, ext string }{{"application/rss+xml", "rss"}, {"application/atom+xml", "atom"}, {"application/feed+json", "json"}} {
					want := `<link rel="alternate" type="` + f.typ + `"`
					href := `href="` + e.base + `/feeds/` + slug + `.` + f.ext + `"`
					if !strings.Contains(body, want) || !strings.Contains(body, href) {
						t.Errorf("no autodiscovery link %s %s", f.typ, href)
					}
				}
			}
			if n := strings.Count(body, `<link rel="alternate"`); n != 18 {
				t.Errorf("%d autodiscovery links, want 18", n)
			}
		})
	}
}

// The XSL stylesheet is gone: browsers are removing XSLT, and a browser tab
// gets a feed's page (TestFeedPage). Feeds name no stylesheet, and its old
// address is an unknown feed.
func TestNoFeedStylesheet(t *testing.T) {
	e := newEnv(t, nil)
	for _, r := range []*http.Request{httptest.NewRequest(http.MethodGet, e.base+"/feeds/feed.xsl", nil), e.tab("/feeds/feed.xsl")} {
		if code, _, body := e.do(r); code != http.StatusNotFound || !strings.Contains(body, "no such feed") {
			t.Errorf("/feeds/feed.xsl: %d %q, want 404", code, body)
		}
	}
	for _, f := range []string{"/feeds/press.rss", "/feeds/all.atom", "/feeds/press.json"} {
		code, hdr, body := e.get(f)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/") {
			t.Errorf("%s: %d %s", f, code, hdr.Get("Content-Type"))
		}
		if strings.Contains(body, "xml-stylesheet") || strings.Contains(body, "xsl") {
			t.Errorf("%s names a stylesheet:\n%.300s", f, body)
		}
	}
}

func TestHealthzAndStyle(t *testing.T) {
	e := newEnv(t, nil)
	if code, _, body := e.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	code, hdr, body := e.get("/static/style.css")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") || !strings.Contains(body, "@media") {
		t.Errorf("style: %d %s", code, hdr.Get("Content-Type"))
	}
}

func TestWithoutSubscriptions(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.Mailer, s.Subscribers = nil, nil })
	_, _, body := e.get("/")
	if strings.Contains(body, `name="token"`) {
		t.Error("the form is shown without a mailer")
	}
	for _, p := range []string{"/confirm/x", "/preferences/x", "/unsubscribe/x"} {
		if code, _, _ := e.get(p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(RateLimit{Every: time.Minute, Burst: 2, MaxKeys: 3})
	l.now = func() time.Time { return now }

	t.Run("a key gets its burst, then one per interval", func(t *testing.T) {
		got := []bool{l.allow("a"), l.allow("a"), l.allow("a")}
		if !got[0] || !got[1] || got[2] {
			t.Errorf("burst: %v, want true true false", got)
		}
		now = now.Add(time.Minute)
		if !l.allow("a") || l.allow("a") {
			t.Error("after a minute: want one more, then none")
		}
	})
	t.Run("the map never holds more than MaxKeys, least recently seen out first", func(t *testing.T) {
		for _, k := range []string{"b", "c", "a", "d", "e", "f"} {
			l.allow(k)
			if n := l.len(); n > 3 {
				t.Fatalf("%d keys after %s, want at most 3", n, k)
			}
		}
		if _, ok := l.keys["a"]; ok {
			t.Error("a is still remembered after three newer keys")
		}
	})
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name, header, remote, value, want string
	}{
		{"an IPv4 connection is keyed by its address", "", "192.0.2.1:4000", "", "192.0.2.1"},
		{"an IPv6 connection is keyed by its /64", "", "[2001:db8:a:b:c:d:e:f]:4000", "", "2001:db8:a:b::/64"},
		{"an IPv4-mapped IPv6 address is IPv4", "", "[::ffff:192.0.2.9]:4000", "", "192.0.2.9"},
		{"a proxy header is used when configured", "X-Real-IP", "10.0.0.1:1", "203.0.113.5", "203.0.113.5"},
		{"X-Forwarded-For counts its rightmost entry", "X-Forwarded-For", "10.0.0.1:1", "6.6.6.6, 203.0.113.5", "203.0.113.5"},
		{"a proxy header that does not parse falls back to the connection", "X-Real-IP", "10.0.0.1:1", "unknown", "10.0.0.1"},
		{"a header is ignored unless configured", "", "192.0.2.1:4000", "203.0.113.5", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{ClientIPHeader: tt.header}
			r := httptest.NewRequest(http.MethodPost, "/subscribe", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Real-IP", tt.value)
			r.Header.Set("X-Forwarded-For", tt.value)
			if got := s.clientKey(r); got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogsHoldNoTokens(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, nil)
	e.srv.Logger = newTestLogger(&logs)
	s := e.addSub("reader@example.org", mailer.StatusActive)
	tok := e.sign(mailer.PurposeUnsubscribe, s.UID)
	e.post("/unsubscribe/"+tok, map[string][]string{"List-Unsubscribe": {"One-Click"}})
	e.get("/unsubscribe/" + tok)
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), "reader@example.org") {
		t.Errorf("logs hold a token or an address:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "/unsubscribe/…") {
		t.Errorf("no request logged:\n%s", logs.String())
	}
}

// Without an access log, feed URLs skip the mux; with it, everything goes
// through the mux. Either way each request reaches the handler the mux
// would pick, and a panic is a logged 500, not a dropped connection.
func TestRoutingAndPanics(t *testing.T) {
	for _, accessLog := range []bool{false, true} {
		var logs bytes.Buffer
		var fed []string
		e := newEnv(t, func(s *Server) {
			s.AccessLog = accessLog
			// Info and above, as serve logs by default: request lines only
			// with the access log on, and the mux skipped for feeds with it off.
			s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			feedsHandler := s.Feeds
			s.Feeds = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fed = append(fed, r.Method+" "+r.URL.Path)
				if strings.HasPrefix(r.URL.Path, "/feeds/panic") {
					panic("boom")
				}
				feedsHandler.ServeHTTP(w, r)
			})
		})
		tests := []struct {
			method, path string
			wantStatus   int
			wantFed      bool
		}{
			{"GET", "/feeds/press.rss", 200, true},
			{"HEAD", "/feeds/all.json", 200, true},
			{"GET", "/feeds/nope.atom", 404, true},
			{"GET", "/feeds/panic.rss", 500, true},
			{"GET", "/feeds/feed.xsl", 404, true}, // not a feed URL: through the mux to the feed handler's 404
			{"POST", "/feeds/press.rss", 405, false},
			{"GET", "/feeds/../healthz", 200, false}, // the mux cleans it to /healthz
			{"GET", "/feeds//press.rss", 200, true},  // redirected to the clean path first
			{"GET", "/healthz", 200, false},
		}
		for _, tc := range tests {
			fed = nil
			req, err := http.NewRequest(tc.method, e.base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("access log %v: %s %s: %v", accessLog, tc.method, tc.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || (len(fed) > 0) != tc.wantFed {
				t.Errorf("access log %v: %s %s: status %d, feed handler saw %v; want %d, %v",
					accessLog, tc.method, tc.path, resp.StatusCode, fed, tc.wantStatus, tc.wantFed)
			}
		}
		if !strings.Contains(logs.String(), "panic serving request") {
			t.Errorf("access log %v: the panic was not logged:\n%s", accessLog, logs.String())
		}
		if got := strings.Contains(logs.String(), "msg=request"); got != accessLog {
			t.Errorf("access log %v: request lines logged: %v", accessLog, got)
		}
	}
}

// The OPML list names every feed of one format, each of which a feed
// reader (gofeed) can read, with the board's page on the site beside it.
func TestOPML(t *testing.T) {
	e := newEnv(t, nil)
	for _, format := range []string{"", "rss", "atom", "json"} {
		path := OPMLPath
		if format != "" {
			path += "?format=" + format
		}
		resp, err := http.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/x-opml; charset=utf-8" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var doc struct {
			Version string `xml:"version,attr"`
			Title   string `xml:"head>title"`
			Outline []struct {
				Type    string `xml:"type,attr"`
				Text    string `xml:"text,attr"`
				XMLURL  string `xml:"xmlUrl,attr"`
				HTMLURL string `xml:"htmlUrl,attr"`
			} `xml:"body>outline"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc.Version != "2.0" || doc.Title == "" || len(doc.Outline) != len(feeds.BoardSlugs())+1 {
			t.Fatalf("%s: version %q title %q, %d outlines", path, doc.Version, doc.Title, len(doc.Outline))
		}
		want := format
		if want == "" {
			want = "rss"
		}
		for _, o := range doc.Outline {
			if o.Type != "rss" || o.Text == "" || !strings.HasSuffix(o.XMLURL, "."+want) || !strings.HasPrefix(o.HTMLURL, "https://www.msit.go.kr/eng/") {
				t.Errorf("%s: outline %+v", path, o)
				continue
			}
			f, err := gofeed.NewParser().ParseURL(o.XMLURL)
			if err != nil || f.Title != o.Text {
				t.Errorf("%s: %s: %v (title %q, outline %q)", path, o.XMLURL, err, f.Title, o.Text)
			}
		}
	}
	if resp, err := http.Get(e.base + OPMLPath + "?format=xml"); err != nil || resp.StatusCode != 400 {
		t.Errorf("format=xml: %v %v", resp.StatusCode, err)
	}
	if _, _, page := e.get("/"); !strings.Contains(page, `<link rel="outline" type="text/x-opml"`) || !strings.Contains(page, `href="/feeds.opml"`) {
		t.Errorf("the index page neither links nor announces the OPML list")
	}
}
