package msit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Helpers over golang.org/x/net/html trees shared by the parsers.

// parseHTML parses a page, first replacing bytes that are not UTF-8 (the
// site's encoding) with U+FFFD so that no invalid text reaches an Item.
func parseHTML(page []byte) (*html.Node, error) {
	if !utf8.Valid(page) {
		page = bytes.ToValidUTF8(page, []byte("\uFFFD"))
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		// The parser refuses only extreme nesting; such a page is no page
		// of the site.
		return nil, fmt.Errorf("%w: %w", ErrUnparseable, err)
	}
	return doc, nil
}

// ErrUnparseable reports a page the HTML parser refuses (for instance one
// nested more than 512 elements deep).
var ErrUnparseable = errors.New("page cannot be parsed as HTML")

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return true
		}
	}
	return false
}

// hasClass reports whether n's class attribute holds any of names.
func hasClass(n *html.Node, names ...string) bool {
	if n.Type != html.ElementNode {
		return false
	}
	for _, c := range strings.Fields(attr(n, "class")) {
		for _, name := range names {
			if strings.EqualFold(c, name) {
				return true
			}
		}
	}
	return false
}

// classContains reports whether some class of n contains any of parts.
func classContains(n *html.Node, parts ...string) bool {
	if n.Type != html.ElementNode {
		return false
	}
	for _, c := range strings.Fields(strings.ToLower(attr(n, "class"))) {
		for _, p := range parts {
			if strings.Contains(c, p) {
				return true
			}
		}
	}
	return false
}

func isElem(n *html.Node, a atom.Atom) bool {
	return n != nil && n.Type == html.ElementNode && n.DataAtom == a
}

// walk calls fn for n and its descendants in document order; fn returns
// false to skip a node's children.
func walk(n *html.Node, fn func(*html.Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

// find returns the first node under (and including) n that matches.
func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(n, func(x *html.Node) bool {
		if found != nil {
			return false
		}
		if match(x) {
			found = x
			return false
		}
		return true
	})
	return found
}

// findAll returns every node under (and including) n that matches, not
// descending into matches.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	walk(n, func(x *html.Node) bool {
		if match(x) {
			out = append(out, x)
			return false
		}
		return true
	})
	return out
}

// closest returns the nearest ancestor of n (n excluded) that matches.
func closest(n *html.Node, match func(*html.Node) bool) *html.Node {
	for p := n.Parent; p != nil; p = p.Parent {
		if match(p) {
			return p
		}
	}
	return nil
}

func elem(a atom.Atom) func(*html.Node) bool {
	return func(n *html.Node) bool { return isElem(n, a) }
}

func withClass(names ...string) func(*html.Node) bool {
	return func(n *html.Node) bool { return hasClass(n, names...) }
}

// blockElems are elements whose boundaries separate words in text.
var blockElems = map[atom.Atom]bool{
	atom.Br: true, atom.P: true, atom.Div: true, atom.Li: true, atom.Tr: true,
	atom.Td: true, atom.Th: true, atom.H1: true, atom.H2: true, atom.H3: true,
	atom.H4: true, atom.H5: true, atom.H6: true, atom.Dt: true, atom.Dd: true,
	atom.Table: true, atom.Ul: true, atom.Ol: true, atom.Blockquote: true,
}

// nodeText returns the visible text of n with whitespace collapsed, leaving
// out scripts and styles.
func nodeText(n *html.Node) string {
	return strings.Join(textBlocks(n), " ")
}

// textBlocks returns the visible text of n as its non-empty blocks
// (paragraphs, headings, list items, cells) in order, each with its white
// space collapsed, leaving out scripts and styles.
func textBlocks(n *html.Node) []string {
	var blocks []string
	var b strings.Builder
	flush := func() {
		if t := collapseSpace(b.String()); t != "" {
			blocks = append(blocks, t)
		}
		b.Reset()
	}
	var rec func(*html.Node)
	rec = func(x *html.Node) {
		switch x.Type {
		case html.TextNode:
			b.WriteString(x.Data)
			return
		case html.ElementNode:
			switch x.DataAtom {
			case atom.Script, atom.Style, atom.Noscript, atom.Template:
				return
			}
		}
		block := x.Type == html.ElementNode && blockElems[x.DataAtom]
		if block {
			flush()
		}
		for c := x.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
		if block {
			flush()
		}
	}
	rec(n)
	flush()
	return blocks
}

// htmlText returns the visible text of an HTML fragment, as a browser would
// show it after element.innerHTML = s: tags stripped, entities decoded,
// whitespace collapsed.
func htmlText(s string) string {
	if !strings.ContainsAny(s, "<&") {
		return collapseSpace(s)
	}
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return collapseSpace(html.UnescapeString(s))
	}
	for _, n := range nodes {
		ctx.AppendChild(n)
	}
	return nodeText(ctx)
}

// collapseSpace trims s and folds each run of white space (including
// non-breaking spaces) into one space.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u00a0' || r == '\u200b' || r == '\ufeff' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
