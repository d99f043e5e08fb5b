// Package templates holds msitfeed's embedded files: the mail templates
// under mail/ (and, as they land, the web pages and the feed stylesheet).
// It contains no code beyond the embed; the packages that render decide how
// the files are parsed.
package templates

import "embed"

// FS holds the embedded template files, addressed by their path below this
// directory, e.g. "mail/digest.html".
//
//go:embed mail
var FS embed.FS
