package feeds

import "github.com/microcosm-cc/bluemonday"

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
