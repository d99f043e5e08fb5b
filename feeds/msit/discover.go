package msit

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ErrBoardNotFound reports a board the home page menu does not link to.
var ErrBoardNotFound = errors.New("board not found in the home page menu")

// BoardNotFoundError names a board Discover could not resolve and what it
// looked for.
type BoardNotFoundError struct {
	Board string // board slug
	Text  string // the menu text looked for
}

// Error names the board and the menu link looked for.
func (e *BoardNotFoundError) Error() string {
	return fmt.Sprintf("discover board %s: no menu link with text %q to %s on the home page", e.Board, e.Text, ListPath)
}

// Unwrap makes errors.Is(err, ErrBoardNotFound) true.
func (e *BoardNotFoundError) Unwrap() error { return ErrBoardNotFound }

// menuLink is one link of the home page to a board's list.
type menuLink struct {
	text                string // normalised anchor text
	mid, mpid, bbsSeqNo string
}

// Discover fills MID and MPID (and BBSSeqNo when the link carries it) of the
// boards that are not yet Resolved, from the links of the home page whose
// text is the board's menu name ("Notice", "Press Releases", "Photo News",
// "Science & ICT Trends", "Newsletter"; matched whole, without regard to
// case, spacing or how the ampersand is written) and whose target is
// list.do with mId and mPid, in an href or an onclick. Boards already
// resolved are returned unchanged. It returns every board, resolved or not,
// and an error joining a *BoardNotFoundError for each board it could not
// resolve.
func Discover(home []byte, boards []feeds.Board) ([]feeds.Board, error) {
	out := make([]feeds.Board, len(boards))
	copy(out, boards)
	doc, err := parseHTML(home)
	if err != nil {
		return out, fmt.Errorf("discover boards: %w", err)
	}
	links := menuLinks(doc)
	var errs []error
	for i, b := range out {
		if b.Resolved() {
			continue
		}
		name := b.Name
		if name == "" {
			name = b.Slug
		}
		want := normalizeMenuText(name)
		found := false
		for _, l := range links {
			if l.text != want {
				continue
			}
			out[i].MID, out[i].MPID = l.mid, l.mpid
			if out[i].BBSSeqNo == "" {
				out[i].BBSSeqNo = l.bbsSeqNo
			}
			found = true
			break
		}
		if !found {
			errs = append(errs, &BoardNotFoundError{Board: b.Slug, Text: name})
		}
	}
	return out, errors.Join(errs...)
}

// menuLinks returns the page's links to list.do that carry mId and mPid, in
// document order.
func menuLinks(doc *html.Node) []menuLink {
	var links []menuLink
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		if n.DataAtom == atom.Script || n.DataAtom == atom.Head {
			return false
		}
		if n.DataAtom != atom.A && !hasAttr(n, "onclick") {
			return true
		}
		target := listTarget(attr(n, "href"), true)
		if target == nil {
			target = listTarget(attr(n, "onclick"), false)
		}
		if target == nil {
			return true
		}
		text := normalizeMenuText(nodeText(n))
		if text == "" {
			text = normalizeMenuText(attr(n, "title"))
		}
		q := target.Query()
		l := menuLink{text: text, mid: queryValue(q, "mId"), mpid: queryValue(q, "mPid"), bbsSeqNo: queryValue(q, "bbsSeqNo")}
		if l.mid != "" && l.mpid != "" {
			links = append(links, l)
		}
		return true
	})
	return links
}

// listTarget finds a list.do URL in an href (a plain URL or a javascript:
// one) or in the string literals of a handler such as
// onclick="location.href='/eng/bbs/list.do?...'".
func listTarget(v string, isHref bool) *url.URL {
	if !strings.Contains(v, "list.do") {
		return nil
	}
	var candidates []string
	if isHref && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "javascript:") {
		candidates = append(candidates, v)
	}
	for _, t := range tokenizeJS(strings.TrimPrefix(strings.TrimSpace(v), "javascript:")) {
		if t.kind == tokString && strings.Contains(t.text, "list.do") {
			candidates = append(candidates, t.text)
		}
	}
	for _, c := range candidates {
		u, err := url.Parse(strings.TrimSpace(c))
		if err == nil && strings.HasSuffix(stripPathParams(u.Path), "list.do") {
			return u
		}
	}
	return nil
}

// normalizeMenuText lower-cases s, writes every ampersand (and "&amp;" left
// undecoded) as " & ", and collapses spaces, so "Science&amp;ICT  Trends"
// and "science & ict trends" compare equal.
func normalizeMenuText(s string) string {
	s = strings.ToLower(html.UnescapeString(s))
	s = strings.ReplaceAll(s, "&", " & ")
	return collapseSpace(s)
}
