package mailer

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/templates"
)

// Template file names under templates/mail (or the override directory).
const (
	tplConfirmSubject = "confirm.subject.txt"
	tplConfirmText    = "confirm.txt"
	tplConfirmHTML    = "confirm.html"
	tplDigestSubject  = "digest.subject.txt"
	tplDigestText     = "digest.txt"
	tplDigestHTML     = "digest.html"
)

// maxSubjectRunes bounds a subject so a very long title cannot make it
// unreadable; longer subjects are cut on a rune boundary and end in "…".
const maxSubjectRunes = 120

// maxSummaryRunes bounds the summary shown under each post.
const maxSummaryRunes = 300

// mailTemplates is the parsed set of mail templates. Subjects and plain
// text use text/template; HTML uses html/template so untrusted text is
// escaped by context.
type mailTemplates struct {
	confirmSubject *texttemplate.Template
	confirmText    *texttemplate.Template
	confirmHTML    *htmltemplate.Template
	digestSubject  *texttemplate.Template
	digestText     *texttemplate.Template
	digestHTML     *htmltemplate.Template
}

// confirmView is what the confirmation templates see.
type confirmView struct {
	Name       string
	Email      string
	ConfirmURL string
	BaseURL    string
}

// digestView is what the digest templates see. Everything but Recipient is
// shared by every subscriber who gets the same posts.
type digestView struct {
	Date       string // the digest's period end, YYYY-MM-DD KST
	Period     string // "2024-05-01 – 2024-05-08"
	Count      int
	FirstTitle string
	Boards     []boardView
	BaseURL    string
	Recipient  recipientView
}

// boardView is one board's section of a digest.
type boardView struct {
	Slug  string
	Name  string
	Items []itemView
}

// itemView is one post in a digest.
type itemView struct {
	Title       string
	URL         string
	Date        string // YYYY-MM-DD KST
	Department  string
	Summary     string
	Attachments []feeds.Attachment
}

// recipientView holds the personal parts of a digest.
type recipientView struct {
	Email          string
	Name           string
	UnsubscribeURL string
	PreferencesURL string
}

// loadTemplates parses the mail templates, each from dir if dir is set and
// holds the file, else from the embedded set, and executes each once with
// sample data, so a broken template is an error at start, never at the
// first send.
func loadTemplates(dir string) (*mailTemplates, error) {
	embedded, err := fs.Sub(templates.FS, "mail")
	if err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("mail template %s: %w", filepath.Join(dir, name), err)
			}
		}
		b, err := fs.ReadFile(embedded, name)
		if err != nil {
			return "", fmt.Errorf("mail template %s: %w", name, err)
		}
		return string(b), nil
	}
	text := func(name string) (*texttemplate.Template, error) {
		src, err := read(name)
		if err != nil {
			return nil, err
		}
		t, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("mail template %s: %w", name, err)
		}
		return t, nil
	}
	html := func(name string) (*htmltemplate.Template, error) {
		src, err := read(name)
		if err != nil {
			return nil, err
		}
		t, err := htmltemplate.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("mail template %s: %w", name, err)
		}
		return t, nil
	}
	var t mailTemplates
	var errs []error
	for _, p := range []struct {
		dst  **texttemplate.Template
		name string
	}{
		{&t.confirmSubject, tplConfirmSubject}, {&t.confirmText, tplConfirmText},
		{&t.digestSubject, tplDigestSubject}, {&t.digestText, tplDigestText},
	} {
		var err error
		*p.dst, err = text(p.name)
		errs = append(errs, err)
	}
	for _, p := range []struct {
		dst  **htmltemplate.Template
		name string
	}{
		{&t.confirmHTML, tplConfirmHTML}, {&t.digestHTML, tplDigestHTML},
	} {
		var err error
		*p.dst, err = html(p.name)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

// check executes every template with sample data.
func (t *mailTemplates) check() error {
	cv := confirmView{Name: "Sample", Email: "sample@example.org", ConfirmURL: "https://example.org/confirm/x", BaseURL: "https://example.org"}
	if _, _, _, err := t.renderConfirm(cv); err != nil {
		return err
	}
	dv := digestView{
		Date: "2024-05-08", Period: "2024-05-01 – 2024-05-08", Count: 1, FirstTitle: "Sample", BaseURL: "https://example.org",
		Boards: []boardView{{Slug: "press", Name: "Press Releases", Items: []itemView{{
			Title: "Sample", URL: "https://example.org/1", Date: "2024-05-08", Department: "Sample", Summary: "Sample",
			Attachments: []feeds.Attachment{{Name: "a.pdf", URL: "https://example.org/a.pdf", Type: "application/pdf"}},
		}}}},
		Recipient: recipientView{Email: "sample@example.org", UnsubscribeURL: "https://example.org/u", PreferencesURL: "https://example.org/p"},
	}
	if _, _, _, err := t.renderDigest(dv); err != nil {
		return err
	}
	return nil
}

// renderConfirm returns the subject, plain text and HTML of a confirmation.
func (t *mailTemplates) renderConfirm(v confirmView) (subject, text, html string, err error) {
	return render3(t.confirmSubject, t.confirmText, t.confirmHTML, v)
}

// renderDigest returns the subject, plain text and HTML of a digest.
func (t *mailTemplates) renderDigest(v digestView) (subject, text, html string, err error) {
	return render3(t.digestSubject, t.digestText, t.digestHTML, v)
}

func render3(subj, text *texttemplate.Template, html *htmltemplate.Template, v any) (string, string, string, error) {
	var sb, tb, hb bytes.Buffer
	if err := subj.Execute(&sb, v); err != nil {
		return "", "", "", fmt.Errorf("render mail template %s: %w", subj.Name(), err)
	}
	if err := text.Execute(&tb, v); err != nil {
		return "", "", "", fmt.Errorf("render mail template %s: %w", text.Name(), err)
	}
	if err := html.Execute(&hb, v); err != nil {
		return "", "", "", fmt.Errorf("render mail template %s: %w", html.Name(), err)
	}
	return SanitizeSubject(sb.String()), tb.String(), hb.String(), nil
}

// SanitizeSubject makes s safe and readable as a Subject header: line
// breaks, tabs and other control characters become spaces (so no text can
// start a header of its own), runs of spaces collapse, and a subject longer
// than 120 characters is cut on a rune boundary, at a word if one is near,
// and ends in "…".
func SanitizeSubject(s string) string {
	s = flattenText(s)
	if utf8.RuneCountInString(s) <= maxSubjectRunes {
		return s
	}
	return truncateText(s, maxSubjectRunes)
}

// flattenText replaces control characters (CR, LF, NUL, tabs, DEL, C1, line and
// paragraph separators), invalid UTF-8 and runs of white space with single
// spaces, and trims the ends.
func flattenText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if feeds.IsBidiControl(r) { // would show the rest of a subject reversed
			continue
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) ||
			r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// truncateText cuts s to at most n runes including a final "…",
// preferring to cut at a space within the last fifth.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	for i := len(r) - 1; i >= len(r)*4/5; i-- {
		if r[i] == ' ' {
			r = r[:i]
			break
		}
	}
	return strings.TrimRight(string(r), " ") + "…"
}

// kstDay formats t as YYYY-MM-DD in Korean time.
func kstDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(feeds.KST).Format("2006-01-02")
}

// newItemView makes the view of one post: titles and departments on one
// line, a bounded summary.
func newItemView(it feeds.Item) itemView {
	v := itemView{
		Title:      flattenText(it.Title),
		URL:        it.URL,
		Date:       kstDay(it.Published),
		Department: flattenText(it.Department),
		Summary:    truncateText(flattenText(it.Summary), maxSummaryRunes),
	}
	if v.Title == "" {
		v.Title = "(untitled)"
	}
	for _, a := range it.Attachments {
		a.Name = flattenText(a.Name)
		if a.Name == "" {
			a.Name = "attachment"
		}
		v.Attachments = append(v.Attachments, a)
	}
	return v
}
