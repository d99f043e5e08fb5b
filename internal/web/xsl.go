package web

import (
	"bytes"
	"net/http"
	"strings"
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

// browserFeeds wraps the feed handler so that a feed opened in a browser
// tab is served as application/xml. Chromium shows application/rss+xml as
// plain text and downloads application/atom+xml, never applying the
// stylesheet; as application/xml both are transformed by feed.xsl. Feed
// readers, which send no "Sec-Fetch-Dest: document", get the feed's own
// media type. The body, and so its ETag, is the same either way; Vary says
// which request header chose the Content-Type, so caches keep both.
func browserFeeds(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".rss") && !strings.HasSuffix(r.URL.Path, ".atom") {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&feedTypeWriter{ResponseWriter: w, browser: r.Header.Get("Sec-Fetch-Dest") == "document"}, r)
	})
}

// feedTypeWriter rewrites the Content-Type and Vary of an RSS or Atom
// response just before its header is written.
type feedTypeWriter struct {
	http.ResponseWriter
	browser bool
	wrote   bool
}

func (w *feedTypeWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		hdr := w.Header()
		// A new slice: the feed handler may share its header values
		// between responses.
		hdr["Vary"] = append(append([]string(nil), hdr["Vary"]...), "Sec-Fetch-Dest")
		ct := hdr.Get("Content-Type")
		if w.browser && (strings.HasPrefix(ct, "application/rss+xml") || strings.HasPrefix(ct, "application/atom+xml")) {
			hdr["Content-Type"] = []string{"application/xml; charset=utf-8"}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *feedTypeWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *feedTypeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
