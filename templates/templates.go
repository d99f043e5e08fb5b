package templates

import "embed"

// FS holds the embedded mail templates, addressed by their path below this
// directory, e.g. "mail/digest.html".
//
//go:embed mail
var FS embed.FS
