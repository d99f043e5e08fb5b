package templates

import "embed"

// Web holds the public pages' templates and stylesheet (web/*).
//
//go:embed web
var Web embed.FS
