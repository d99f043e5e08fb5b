package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
)

// tab returns a GET of path as a browser tab sends it.
func (e *env) tab(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, e.base+path, nil)
	r.Header.Set("Sec-Fetch-Dest", "document")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return r
}

func TestFeedPage(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		path  string
		title string
		want  []string // in the page, as html/template writes it
		not   []string
		items int
	}{
		{"/feeds/press.rss", "MSIT — Press Releases", []string{
			`<p>Posts of the Press Releases board of the Ministry of Science and ICT (MSIT), Korea, English site.`,
			`<a href="https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&amp;nttSeqNo=1001" class="item-title">MSIT announces 6G strategy</a>`,
			`<time datetime="2024-05-02">2024-05-02</time> · Radio Policy Division`, // midnight in Korea is still the 2nd
			`The Ministry announced its 6G strategy.`,
			`<a href="https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=1&amp;fileOrdr=2">6G strategy.pdf</a>`,
			`Quantum computing roadmap &amp; budget`,
			`href="` + e.base + `/feeds/press.atom">Atom</a>`,
			`href="` + e.base + `/feeds/press.json">JSON Feed</a>`,
		}, []string{"Call for R&amp;D proposals", "application/pdf", `>RSS</a>`}, 2},
		{"/feeds/all.atom", "MSIT — All boards", []string{
			`MSIT announces 6G strategy</a>`,
			`<time datetime="2024-05-01">2024-05-01</time> · Notice</span>`, // the all feed names each post's board
			`<time datetime="2024-05-02">2024-05-02</time> · Press Releases · Radio Policy Division`,
			`Call for R&amp;D proposals`,
			`href="` + e.base + `/feeds/all.rss">RSS</a>`,
		}, nil, 3},
		{"/feeds/press.json", "MSIT — Press Releases", []string{
			`6G strategy.pdf</a>`,
			`href="` + e.base + `/feeds/press.rss">RSS</a>`,
		}, nil, 2},
		{"/feeds/photo.rss?limit=5", "MSIT — Photo News", []string{
			`<p id="items">No posts yet.</p>`,
			`href="` + e.base + `/feeds/photo.atom?limit=5">Atom</a>`,
		}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.path+" opened in a tab is a page of its posts", func(t *testing.T) {
			code, hdr, body := e.do(e.tab(tt.path))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			for name, want := range map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Vary":                    "Accept, Accept-Encoding, Sec-Fetch-Dest",
				"Cache-Control":           "public, max-age=300",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Content-Security-Policy": pageCSP,
			} {
				if got := hdr.Get(name); got != want {
					t.Errorf("%s %q, want %q", name, got, want)
				}
			}
			if hdr.Get("ETag") == "" {
				t.Error("no ETag")
			}
			want := append([]string{
				`<title>` + tt.title + ` (feed) — msitfeed</title>`,
				`<h1 id="feed-title">` + tt.title + `</h1>`,
				`<link rel="stylesheet" href="/static/style.css">`,               // the layout of every page
				`<header><a href="/" class="brand">msitfeed</a>`,                 // its header
				`Posts come from <a href="https://www.msit.go.kr/eng/index.do">`, // and footer
				`copy this URL into your feed reader`,
				`<input type="text" id="feed-url" class="url" value="` + e.base + tt.path + `" readonly>`,
				`<a href="/feeds.opml">the OPML list</a>`,
			}, tt.want...)
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(body, w) {
					t.Errorf("page holds %s", w)
				}
			}
			if n := strings.Count(body, `<li class="item">`); n != tt.items {
				t.Errorf("%d items, want %d", n, tt.items)
			}
			if n := strings.Count(body, `<link rel="alternate"`); n != 18 {
				t.Errorf("%d autodiscovery links, want 18", n)
			}
			if strings.Contains(body, "<script") || strings.Contains(strings.ToLower(body), "xsl") {
				t.Error("the page has a script or names a stylesheet")
			}
		})
	}

	t.Run("a feed reader at the same URLs gets the feeds", func(t *testing.T) {
		for path, typ := range map[string]string{
			"/feeds/press.rss":  "application/rss+xml; charset=utf-8",
			"/feeds/all.atom":   "application/atom+xml; charset=utf-8",
			"/feeds/press.json": "application/feed+json; charset=utf-8",
		} {
			code, hdr, body := e.get(path)
			if code != 200 || hdr.Get("Content-Type") != typ || hdr.Get("Vary") != "Accept, Accept-Encoding, Sec-Fetch-Dest" {
				t.Errorf("%s: %d %q Vary %q", path, code, hdr.Get("Content-Type"), hdr.Get("Vary"))
			}
			if _, err := gofeed.NewParser().ParseString(body); err != nil {
				t.Errorf("%s: gofeed: %v", path, err)
			}
		}
	})

	t.Run("the tab revalidating its page gets 304", func(t *testing.T) {
		_, hdr, _ := e.do(e.tab("/feeds/press.rss"))
		r := e.tab("/feeds/press.rss")
		r.Header.Set("If-None-Match", hdr.Get("ETag"))
		if code, hdr2, body := e.do(r); code != http.StatusNotModified || body != "" || hdr2.Get("ETag") != hdr.Get("ETag") {
			t.Errorf("%d, ETag %q, %d bytes; want 304 with the ETag", code, hdr2.Get("ETag"), len(body))
		}
	})
}

// Titles, departments, summaries and attachments come from another site:
// on the page they are text, and links to scripts are neutralised.
func TestFeedPageEscapesHostilePosts(t *testing.T) {
	e := newEnv(t, nil)
	hostile := feeds.Item{
		Board: "trends", ID: 9001,
		Title:      `<script>alert("title")</script> & "more"`,
		URL:        `javascript:alert(1)`,
		Published:  time.Date(2024, 6, 1, 0, 0, 0, 0, feeds.KST),
		Department: `<img src=x onerror=alert(2)>`,
		Summary:    `</p><script>alert(3)</script><p>`,
		Attachments: []feeds.Attachment{
			{Name: `<b onmouseover=alert(4)>evil.pdf</b>`, URL: `javascript:alert(5)`},
			{Name: `report "final".hwp`, URL: `https://www.msit.go.kr/file?a=1&b="><script>alert(6)</script>`},
		},
	}
	// The trends page has not been built yet, so it reads this post.
	if _, err := e.srv.Store.Save(context.Background(), hostile, "hash"); err != nil {
		t.Fatal(err)
	}
	code, _, body := e.do(e.tab("/feeds/trends.atom"))
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, bad := range []string{"<script", "<img", "<b ", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	for _, want := range []string{
		`class="item-title">&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; &amp; &#34;more&#34;</a>`,
		`<a href="#ZgotmplZ" class="item-title">`,
		` · &lt;img src=x onerror=alert(2)&gt;</span>`,
		`&lt;/p&gt;&lt;script&gt;alert(3)&lt;/script&gt;&lt;p&gt;`,
		`<a href="#ZgotmplZ">&lt;b onmouseover=alert(4)&gt;evil.pdf&lt;/b&gt;</a>`,
		`<a href="https://www.msit.go.kr/file?a=1&amp;b=%22%3e%3cscript%3ealert%286%29%3c/script%3e">report &#34;final&#34;.hwp</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// xsltWatch collects what Chromium says about XSLT in a tab: deprecation
// issues and browser log entries (scripts are off, so nothing else logs).
type xsltWatch struct {
	mu   sync.Mutex
	seen []string
}

func watchXSLT(t *testing.T, ctx context.Context) *xsltWatch {
	t.Helper()
	w := &xsltWatch{}
	err := chromedp.Listen(ctx, func(ev any) {
		var s string
		switch ev := ev.(type) {
		case *audits.EventIssueAdded:
			if d := ev.Issue.Details; d != nil && d.DeprecationIssueDetails != nil {
				s = "deprecation issue " + d.DeprecationIssueDetails.Type
			}
		case *log.EventEntryAdded:
			s = "log: " + ev.Entry.Text
		}
		if strings.Contains(strings.ToUpper(s), "XSLT") {
			w.mu.Lock()
			w.seen = append(w.seen, s)
			w.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, audits.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable audits: %v", err)
	}
	return w
}

// take returns what was seen since the last take.
func (w *xsltWatch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen
	w.seen = nil
	return s
}

// xslControl is a feed that names an XSL stylesheet, as msitfeed's did, to
// show what Chromium says of one.
const xslControl = `<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet href="/feed.xsl" type="text/xsl"?>
<rss version="2.0"><channel><title>t</title><link>http://example.org/</link><description>d</description></channel></rss>`

const xslControlSheet = `<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:template match="/"><html><body><h1><xsl:value-of select="/rss/channel/title"/></h1></body></html></xsl:template>
</xsl:stylesheet>`

// TestBrowserFeedPage opens feed URLs in headless Chromium as a reader
// would by clicking a feed link: each is a page of posts with no XSLT and
// so no warning banner, while a feed reader at the same URL gets the feed.
func TestBrowserFeedPage(t *testing.T) {
	ctx := newBrowser(t, 30*time.Second)
	e := newEnv(t, nil)
	watch := watchXSLT(t, ctx)

	t.Run("control: the watch sees Chromium's warning on a feed styled with XSLT", func(t *testing.T) {
		xsl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/feed.xsl" {
				w.Header().Set("Content-Type", "text/xsl")
				w.Write([]byte(xslControlSheet))
				return
			}
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(xslControl))
		}))
		defer xsl.Close()
		must(t, ctx, "open the XSL feed", chromedp.Navigate(xsl.URL+"/feed.rss"), chromedp.WaitVisible(chromedp.CSS("h1")))
		seen, banner := watch.take(), strings.Contains(html(t, ctx, "html"), "xslt-warning-banner")
		// Not an error when silent: a Chromium that has dropped XSLT, or
		// its warning, only makes the checks below weaker.
		t.Logf("Chromium on a feed styled with XSLT: %q; warning banner: %v", seen, banner)
	})

	for _, f := range []struct {
		path  string
		items int
		want  []string
		not   []string
	}{
		{"/feeds/press.rss", 2, []string{"MSIT announces 6G strategy", "Quantum computing roadmap &amp; budget", "6G strategy.pdf", "Radio Policy Division", "2024-05-02"}, []string{"Call for R&amp;D proposals", "application/pdf"}},
		{"/feeds/all.atom", 3, []string{"MSIT announces 6G strategy", "Quantum computing roadmap &amp; budget", "Call for R&amp;D proposals", "6G strategy.pdf"}, nil},
		{"/feeds/notice.json", 1, []string{"Call for R&amp;D proposals"}, []string{"6G strategy.pdf"}},
	} {
		t.Run(f.path+" opens as a page of posts without XSLT", func(t *testing.T) {
			watch.take()
			resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.base+f.path))
			if err != nil {
				t.Fatalf("open %s: %v", f.path, err)
			}
			if resp.Status != 200 || resp.MimeType != "text/html" {
				t.Errorf("status %d, type %q; want 200 text/html", resp.Status, resp.MimeType)
			}
			must(t, ctx, "wait for the posts", chromedp.WaitVisible(chromedp.CSS("#feed-title")))
			dom := html(t, ctx, "html")
			items := html(t, ctx, "#items")
			for _, w := range f.want {
				if !strings.Contains(items, w) {
					t.Errorf("posts lack %q:\n%s", w, items)
				}
			}
			for _, w := range f.not {
				if strings.Contains(items, w) {
					t.Errorf("posts hold %q", w)
				}
			}
			if n := strings.Count(items, `class="item"`); n != f.items {
				t.Errorf("%d posts, want %d", n, f.items)
			}
			if note := html(t, ctx, "#subscribe-note"); !strings.Contains(note, "copy this URL into your feed reader") ||
				!strings.Contains(note, `value="`+e.base+f.path+`"`) {
				t.Errorf("subscribe note: %s", note)
			}
			if strings.Contains(dom, "xslt-warning-banner") || strings.Contains(strings.ToUpper(dom), "XSLT") {
				t.Errorf("the page shows an XSLT warning:\n%s", dom)
			}
			if seen := watch.take(); len(seen) > 0 {
				t.Errorf("Chromium said of the page: %q", seen)
			}
		})

		t.Run(f.path+" is still a feed for a feed reader", func(t *testing.T) {
			feed, err := gofeed.NewParser().ParseURL(e.base + f.path)
			if err != nil {
				t.Fatalf("gofeed: %v", err)
			}
			if len(feed.Items) != f.items {
				t.Errorf("%d items, want %d", len(feed.Items), f.items)
			}
		})
	}
}
