package templates

import _ "embed"

// FeedXSL is the XSL stylesheet that RSS and Atom documents name in an
// xml-stylesheet instruction, so a feed opened in a browser reads as a page.
//
//go:embed feed.xsl
var FeedXSL []byte
