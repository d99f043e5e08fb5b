package mailer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// newTestMailer returns a Mailer over a fresh database, signing with a key
// of kind ("" for none, "rsa", "ed25519").
func newTestMailer(t *testing.T, kind string) *Mailer {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	cfg := config.Default()
	cfg.BaseURL = "https://msitfeed.example"
	cfg.Mail.From = "MSIT digest <digest@msitfeed.example>"
	cfg.Mail.ReplyTo = "help@msitfeed.example"
	if kind != "" {
		var priv crypto.Signer
		switch kind {
		case "rsa":
			if priv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				t.Fatal(err)
			}
		case "ed25519":
			if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
				t.Fatal(err)
			}
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Mail.DKIMDomain, cfg.Mail.DKIMSelector, cfg.Mail.DKIMKey = "msitfeed.example", "mf2026", path
	}
	m, err := New(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testEdition renders an edition of two posts, one with a summary of
// spaces, tabs and a line of over 800 octets, so the bodies exercise relaxed
// canonicalization.
func testEdition(t *testing.T, m *Mailer) *edition {
	t.Helper()
	day := time.Date(2025, 3, 9, 0, 0, 0, 0, feeds.KST)
	items := []feeds.Item{
		{Board: "press", ID: 1, Title: "Korea and the EU sign a digital partnership · 한국", URL: "https://www.msit.go.kr/eng/1",
			Published: day, FirstSeen: day, Department: "International  Cooperation\tDivision",
			Summary:     "A summary with  two spaces, a\ttab and trailing space ",
			Attachments: []feeds.Attachment{{Name: "a.pdf", URL: "https://www.msit.go.kr/a.pdf", Type: "application/pdf"}}},
		{Board: "notice", ID: 2, Title: ".A title that starts with a dot", URL: "https://www.msit.go.kr/eng/2?" + strings.Repeat("x", 800),
			Published: day, FirstSeen: day},
	}
	ed, err := m.newEditions(DigestPeriod{Start: day.Add(-7 * 24 * time.Hour), End: day}).get(items)
	if err != nil {
		t.Fatal(err)
	}
	return ed
}

// fieldLines returns a rendered header's fields, sorted: go-mail writes
// the fields it keeps in a map in random order.
func fieldLines(header []byte) []string {
	var out []string
	for _, f := range headerFields(header) {
		out = append(out, f.name+":"+f.value)
	}
	slices.Sort(out)
	return out
}

// TestMsgTemplate_SameAsGoMail fills an edition's template for recipients
// of every kind and compares each message with the one go-mail builds the
// slow way for the same recipient, boundary and date: the same header
// fields, the same body byte for byte, and with DKIM the same signature
// (Ed25519 and RSA PKCS #1 v1.5 signatures are deterministic). Values the
// template cannot carry unchanged must be refused.
func TestMsgTemplate_SameAsGoMail(t *testing.T) {
	recipients := []struct {
		email, name string
		fast        bool
	}{
		{"reader@example.org", "Reader 1", true},
		{"reader@example.org", "", true},
		{"first.last+digest@Mail.Example.ORG", "Lee, Kim (MSIT) o'Neil", true},
		{"a_b-c=d@sub-domain.example.org", "  spaced \t out  ", true},
		{"kim@example.org", "김철수", false},
		{"kim@example.org", `Kim "K" Lee`, false},
		{"kim@example.org", `back\slash`, false},
		{"kim@example.org", strings.Repeat("Long Name ", 6), false},
		{strings.Repeat("long", 15) + "@example.org", "", false},
		{"first..last@example.org", "", false},
		{"\"quoted local\"@example.org", "", false},
		{"user@[127.0.0.1]", "", false},
		{"kim@例え.jp", "", false},
	}
	for _, kind := range []string{"", "ed25519", "rsa"} {
		m := newTestMailer(t, kind)
		ed := testEdition(t, m)
		tpl, err := m.newMsgTemplate(ed)
		if err != nil || tpl == nil {
			t.Fatalf("%s: no template: %v", kind, err)
		}
		date := time.Date(2025, 3, 10, 9, 0, 0, 0, feeds.KST)
		for _, r := range recipients {
			p := m.personalFor("uid-"+r.email, r.email, r.name)
			o := outgoing{To: r.email, Name: r.name, MessageID: m.digestMessageID(7, "uid-"+r.email), Date: date,
				UnsubscribeURL: p.UnsubscribeURL, UnsubscribeMailto: m.mailto, ListID: m.listID}
			var fastBuf, slowBuf bytes.Buffer
			fast, ok, err := tpl.fill(m, o, p, &fastBuf)
			if err != nil {
				t.Fatalf("%s %q: fill: %v", kind, r.email, err)
			}
			if ok != r.fast {
				t.Errorf("%s %q %q: template taken = %v, want %v", kind, r.email, r.name, ok, r.fast)
			}
			if !ok {
				continue
			}
			o.Subject, o.Text, o.HTML = m.personalise(ed, p)
			o.Boundary = tpl.boundary
			slow, err := m.render(o, true, &slowBuf)
			if err != nil {
				t.Fatalf("%s %q: render: %v", kind, r.email, err)
			}
			fh, fb := splitMessage(fast.data)
			sh, sb := splitMessage(slow.data)
			if got, want := fieldLines(fh), fieldLines(sh); !slices.Equal(got, want) {
				t.Errorf("%s %q: header fields differ:\ntemplate: %q\ngo-mail:  %q", kind, r.email, got, want)
			}
			if !bytes.Equal(fb, sb) {
				t.Errorf("%s %q: bodies differ", kind, r.email)
			}
			if !bytes.Equal(fast.prefix, slow.prefix) {
				t.Errorf("%s %q: DKIM fields differ:\ntemplate: %s\ngo-mail:  %s", kind, r.email, fast.prefix, slow.prefix)
			}
			if fast.from != slow.from || !slices.Equal(fast.to, slow.to) || fast.messageID != slow.messageID || !slow.eightBit || !fast.eightBit {
				t.Errorf("%s %q: envelope differs: template %q %q %q, go-mail %q %q %q", kind, r.email,
					fast.from, fast.to, fast.messageID, slow.from, slow.to, slow.messageID)
			}
		}
	}
}

// TestMsgTemplate_NotFor8bitLess: an edition whose bodies cannot go 8bit
// has no template, so its messages take go-mail's quoted-printable path.
func TestMsgTemplate_NotFor8bitLess(t *testing.T) {
	m := newTestMailer(t, "")
	ed := testEdition(t, m)
	long := *ed
	long.html = cutPersonal(strings.Repeat("y", maxLine+1)+"\r\n", [slotCount]string{"a", "b", "c", "d"})
	if tpl, err := m.newMsgTemplate(&long); err != nil || tpl != nil {
		t.Errorf("a line of %d octets: template %v, %v; want none", maxLine+1, tpl, err)
	}
	personalSubject := *ed
	personalSubject.subject = cutPersonal("Digest for "+m.markers().Name, [slotCount]string{m.markers().Email, m.markers().Name, "x1", "x2"})
	if tpl, err := m.newMsgTemplate(&personalSubject); err != nil || tpl != nil {
		t.Errorf("a subject with the name: template %v, %v; want none", tpl, err)
	}
}

// relaxedReference is RFC 6376 3.4.4 written plainly: split into lines,
// collapse whitespace runs, strip it at line ends, drop empty lines at the
// end, end in CRLF.
func relaxedReference(body string) []byte {
	if body == "" {
		return nil
	}
	body = strings.TrimSuffix(body, "\r\n")
	lines := strings.Split(body, "\r\n")
	ws := regexp.MustCompile(`[ \t]+`)
	for i, l := range lines {
		lines[i] = strings.TrimRight(ws.ReplaceAllString(l, " "), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func TestBodyHash_Relaxed(t *testing.T) {
	for _, body := range []string{
		"",
		"\r\n",
		"\r\n\r\n\r\n",
		"one line",
		"one line\r\n",
		"  leading and trailing  \r\n",
		"tabs\there\t\t and  there\t\r\n",
		"a\r\n\r\n\r\nb\r\n\r\n \r\n\t\r\n",
		"no final line end\r\nlast \t",
		"only whitespace lines\r\n \r\n\t \r\n",
		strings.Repeat("x ", 600) + "\r\n" + strings.Repeat("  y", 400),
	} {
		want := sha256.Sum256(relaxedReference(body))
		if got := bodyHash([]byte(body)); !bytes.Equal(got, want[:]) {
			t.Errorf("bodyHash(%q) differs from the reference canonicalization", body)
		}
	}
}
