// Command baseline is the bare net/http handler bench/run measures
// msitfeed's feed endpoint against: it serves one feed's bytes from memory
// at every path, with the same validators and the same pre-compressed gzip
// bytes, and nothing else (no routing, middleware, cache lookups or logs).
//
//	baseline -listen 127.0.0.1:8081 -body press.rss -gzip press.rss.gz \
//	    -etag '"abc"' -gzip-etag '"abc-gz"' -content-type 'application/rss+xml; charset=utf-8'
//
// By default its http.Server sets only a read-header and an idle timeout;
// with -msitfeed-timeouts it is the http.Server msitfeed serve runs
// (web.NewHTTPServer: read-header, read, write and idle timeouts and the
// header size limit), so a comparison with it measures the handler chain
// and not the per-request deadlines net/http arms for those timeouts.
package main

import (
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/internal/web"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	bodyFile := flag.String("body", "", "file holding the feed's bytes")
	gzipFile := flag.String("gzip", "", "file holding the same feed gzipped (optional)")
	etag := flag.String("etag", `"bench"`, "ETag of the body")
	gzipETag := flag.String("gzip-etag", `"bench-gz"`, "ETag of the gzipped body")
	contentType := flag.String("content-type", "application/rss+xml; charset=utf-8", "Content-Type")
	lastModified := flag.String("last-modified", time.Now().UTC().Format(http.TimeFormat), "Last-Modified")
	msitfeedTimeouts := flag.Bool("msitfeed-timeouts", false, "serve with msitfeed's http.Server settings (web.NewHTTPServer)")
	flag.Parse()

	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	var gz []byte
	if *gzipFile != "" {
		if gz, err = os.ReadFile(*gzipFile); err != nil {
			log.Fatalf("baseline: %v", err)
		}
	}

	handler := func(w http.ResponseWriter, r *http.Request) {
		b, tag := body, *etag
		useGzip := gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
		if useGzip {
			b, tag = gz, *gzipETag
		}
		h := w.Header()
		h.Set("Etag", tag)
		h.Set("Last-Modified", *lastModified)
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Vary", "Accept-Encoding")
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", *contentType)
		h.Set("Content-Length", strconv.Itoa(len(b)))
		if useGzip {
			h.Set("Content-Encoding", "gzip")
		}
		w.Write(b)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           http.HandlerFunc(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	if *msitfeedTimeouts {
		srv = web.NewHTTPServer(*listen, http.HandlerFunc(handler), slog.New(slog.DiscardHandler))
	}
	log.Fatal(srv.ListenAndServe())
}
