package feeds

import (
	"strings"

	"github.com/microcosm-cc/bluemonday"
)

// sanitizer is built once; bluemonday policies are safe for concurrent use.
var sanitizer = newSanitizer()

func newSanitizer() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowElements("figure", "figcaption", "caption", "colgroup", "col")
	p.AllowAttrs("colspan", "rowspan").OnElements("td", "th")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireNoFollowOnLinks(false)
	return p
}

// Sanitize returns html with everything a reader, a page or a mail must not
// run removed: scripts, styles, event handlers, forms, frames, javascript:
// and data: URLs. Items are sanitised once, when they are stored.
func Sanitize(html string) string {
	return sanitizer.Sanitize(html)
}

// CleanTitle removes from a plain-text title the explicit bidirectional
// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which
// would make readers show the rest of a line reversed, and trims it.
func CleanTitle(s string) string {
	s = strings.Map(func(r rune) rune {
		if IsBidiControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// IsBidiControl reports whether r is an explicit bidirectional embedding,
// override or isolate.
func IsBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}
