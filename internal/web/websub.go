package web

import (
	"net/http"
	"time"

	"github.com/msitfeed/msitfeed/internal/websub"
)

// routeWebSub mounts the WebSub hub. Its requests make the hub send a GET
// to a URL the client chose, so each client address (as for the subscribe
// form) has a budget of them.
func (s *Server) routeWebSub(mux *http.ServeMux) {
	s.hubbers = newLimiter(s.WebSubLimit.withDefaults(RateLimit{Every: 6 * time.Second, Burst: 30, MaxKeys: 10000}))
	mux.HandleFunc("POST "+websub.Path, s.handleWebSub)
}

func (s *Server) handleWebSub(w http.ResponseWriter, r *http.Request) {
	if !s.hubbers.allow(s.clientKey(r)) {
		hdr := w.Header()
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("websub: too many subscription requests from your address; try again in a minute\n"))
		return
	}
	s.WebSub.ServeHTTP(w, r)
}
