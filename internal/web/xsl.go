package web

import (
	"bytes"
	"net/http"
	"time"

	"github.com/msitfeed/msitfeed/templates"
)

// FeedXSLPath is where the feed stylesheet is served; set
// feeds.Options.Stylesheet to it so RSS and Atom documents name it.
const FeedXSLPath = "/feeds/feed.xsl"

// handleFeedXSL serves the stylesheet that turns an RSS or Atom document
// opened in a browser into a readable page. It is registered as its own
// pattern, which wins over the feed handler's "GET /feeds/".
func (s *Server) handleFeedXSL(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/xsl; charset=utf-8")
	hdr.Set("Cache-Control", "public, max-age=3600")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", s.xslETag)
	http.ServeContent(w, r, "feed.xsl", time.Time{}, bytes.NewReader(templates.FeedXSL))
}
