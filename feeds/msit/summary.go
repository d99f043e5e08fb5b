package msit

import (
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Summary returns the plain-text summary of a post: its body's text, cut to
// SummaryLength runes, leaving out a first paragraph that only repeats the
// title (the site's posts open with their title; a summary that repeats it
// reads "MSIT Announces X MSIT Announces X The plan ..."). The body itself
// keeps that paragraph.
func Summary(title, body string) string {
	blocks := bodyBlocks(body)
	if len(blocks) > 1 && sameText(blocks[0], title) {
		blocks = blocks[1:]
	}
	return summarize(strings.Join(blocks, " "), SummaryLength)
}

// BodyText returns the visible text of a post's body (HTML), its blocks
// joined by single spaces: what a reader of the post sees, without markup.
func BodyText(body string) string { return strings.Join(bodyBlocks(body), " ") }

// bodyBlocks returns the visible text of an HTML fragment as its non-empty
// blocks, in order.
func bodyBlocks(fragment string) []string {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(fragment), ctx)
	if err != nil {
		return []string{htmlText(fragment)}
	}
	for _, n := range nodes {
		ctx.AppendChild(n)
	}
	return textBlocks(ctx)
}

// sameText reports whether a and b are the same words once case, white
// space, punctuation and symbols are set aside ("MSIT Announces 'X'" and
// "MSIT announces “X”." are the same).
func sameText(a, b string) bool {
	na, nb := letters(a), letters(b)
	return na != "" && na == nb
}

func letters(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
