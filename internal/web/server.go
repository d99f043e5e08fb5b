// Package web is msitfeed's HTTP server: routing, middleware (logging,
// recovery, timeouts, security headers) and the public pages — the index,
// the subscribe form and the pages behind the links in mails (confirm,
// preferences, unsubscribe). Feed rendering and its cache belong to feeds,
// subscribers and tokens to mailer; this package mounts and calls them and
// keeps no state of its own beyond in-memory rate limits.
package web

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/accesslog"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/templates"
)

// Server holds the dependencies of the HTTP handlers. Fill the exported
// fields and pass the value to New.
type Server struct {
	Store   *feeds.Store // boards and latest posts for the index
	Feeds   http.Handler // serves GET /feeds/{board}.{ext}
	BaseURL string       // public URL, no trailing slash
	SiteURL string       // the MSIT site root
	Logger  *slog.Logger // nil discards

	// Boards is every board the pages list (index, OPML, subscribe and
	// preferences); nil means the built-in boards. Give the store and the
	// subscribers the same registry.
	Boards *feeds.Registry

	// Subscribers and Mailer enable the subscription pages: the subscribe
	// form, /confirm, /preferences and /unsubscribe. With either nil the
	// index shows no form and those routes answer 404.
	Subscribers *mailer.Subscribers
	Mailer      *mailer.Mailer
	// SignupClosed hides the subscribe form and refuses POST /subscribe
	// while the links in mails already sent keep working; serve sets it
	// when mail.from is empty, as no confirmation could be sent.
	SignupClosed bool
	// SubscribeLimit bounds POST /subscribe per client address (IPv4
	// address or IPv6 /64); zero fields take their defaults (10 at once,
	// then 1 a minute, 10000 addresses remembered). Past it: 429.
	SubscribeLimit RateLimit
	// AddressLimit bounds the confirmation mails one address receives, so
	// the form cannot be used to flood someone's inbox from many client
	// addresses; zero fields take their defaults (2 at once, then 1 an hour).
	AddressLimit RateLimit
	// ClientIPHeader names a request header that a trusted reverse proxy
	// sets to the client's address (X-Real-IP, or X-Forwarded-For whose
	// rightmost entry is used). Empty means the connection's address, which
	// is right when nothing sits in front of msitfeed.
	ClientIPHeader string
	// WebSub, if set, is the WebSub hub, served at POST /websub behind
	// WebSubLimit per client address (zero fields take their defaults: 30
	// at once, then 1 every 6 seconds, 10000 addresses remembered); past
	// it: 429.
	WebSub      http.Handler
	WebSubLimit RateLimit
	// AccessLog logs every request at Info level (else at Debug).
	AccessLog bool
	// AccessLines, if set, takes the request lines of AccessLog instead of
	// Logger: formatted without allocations and written in batches off the
	// request path. Its owner closes it after the HTTP server has stopped.
	AccessLines *accesslog.Log
	// Metrics and Ready, if set, serve GET /metrics and GET /readyz.
	Metrics http.Handler
	Ready   http.Handler

	pages   map[string]*template.Template // page file name → layout + page
	mux     *http.ServeMux
	xorigin *http.CrossOriginProtection
	clients *limiter    // POST /subscribe per client address
	inboxes *limiter    // confirmation mails per subscriber address
	outbox  *background // confirmation mails being sent
	hubbers *limiter    // POST /websub per client address
}

// New parses the page templates and builds the routes. A template error is
// returned here, at start, never at a first request. Call Close when the
// HTTP server has stopped, to let confirmation mails in flight finish.
func New(s Server) (*Server, error) {
	srv := &s
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	srv.pages = pages

	srv.xorigin = http.NewCrossOriginProtection()
	if u, err := url.Parse(srv.BaseURL); err == nil && u.Scheme != "" && u.Host != "" {
		// Behind a proxy that rewrites Host, the Origin of our own forms is
		// the public URL, not the Host the request arrives with.
		if err := srv.xorigin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web: base_url %q: %w", srv.BaseURL, err)
		}
	}
	srv.xorigin.SetDenyHandler(http.HandlerFunc(srv.handleCrossOrigin))
	srv.clients = newLimiter(srv.SubscribeLimit.withDefaults(RateLimit{Every: time.Minute, Burst: 10, MaxKeys: 10000}))
	srv.inboxes = newLimiter(srv.AddressLimit.withDefaults(RateLimit{Every: time.Hour, Burst: 2, MaxKeys: 10000}))
	srv.outbox = newBackground(4)

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", srv.page(srv.handleIndex))
	mux.HandleFunc("GET /healthz", srv.handleHealthz)
	mux.HandleFunc("GET /static/style.css", srv.handleStyle)
	mux.HandleFunc("GET "+OPMLPath, srv.handleOPML)
	if srv.Feeds != nil {
		mux.Handle("GET /feeds/", srv.Feeds)
	}
	if srv.Metrics != nil {
		mux.Handle("GET /metrics", srv.Metrics)
	}
	if srv.Ready != nil {
		mux.Handle("GET /readyz", srv.Ready)
	}
	if srv.subscriptions() {
		srv.routeSubscriptions(mux)
	}
	if srv.WebSub != nil {
		srv.routeWebSub(mux)
	}
	srv.mux = mux
	return srv, nil
}

// subscriptions reports whether the subscription pages are served.
func (s *Server) subscriptions() bool { return s.Subscribers != nil && s.Mailer != nil }

// Close waits for the confirmation mails still being sent, until ctx is
// done, then abandons them. Call it after the HTTP server has shut down;
// a subscribe request after Close sends no mail.
func (s *Server) Close(ctx context.Context) error {
	if err := s.outbox.close(ctx); err != nil {
		return fmt.Errorf("web: confirmation mails abandoned: %w", err)
	}
	return nil
}

// ServeHTTP serves the routes with logging and panic recovery.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.AccessLog && s.AccessLines != nil {
		s.serveLogged(w, r)
		return
	}
	level := slog.LevelDebug
	if s.AccessLog {
		level = slog.LevelInfo
	}
	if !s.Logger.Enabled(r.Context(), level) {
		// The feed path is hot: with no access log there is nothing to
		// measure, so no wrapper, no clock, and no route lookup for a
		// plain feed URL.
		defer s.recoverPanic(w, r)
		if s.Feeds != nil && isFeedRequest(r) {
			s.Feeds.ServeHTTP(w, r)
			return
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.panicked(rw, r, p)
		}
		s.Logger.Log(r.Context(), level, "request", "method", r.Method, "path", redactPath(r.URL.Path), "status", rw.status,
			"bytes", rw.bytes, "duration", time.Since(start), "remote", r.RemoteAddr)
	}()
	s.mux.ServeHTTP(rw, r)
}

// serveLogged serves r as ServeHTTP does and adds its line to AccessLines:
// two readings of the monotonic clock, a pooled status-recording writer,
// and for a plain feed URL no route lookup.
func (s *Server) serveLogged(w http.ResponseWriter, r *http.Request) {
	// AccessLines.Now reads one clock where time.Now reads two.
	start := s.AccessLines.Now()
	sw := statusWriters.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
	feed := s.Feeds != nil && isFeedRequest(r)
	defer func() {
		if p := recover(); p != nil {
			s.panicked(sw, r, p)
		}
		d := time.Since(start)
		path := r.URL.Path
		if !feed {
			path = redactPath(path) // a feed path holds no token
		}
		s.AccessLines.Request(start.Add(d), r.Method, path, sw.status, int64(sw.bytes), d, r.RemoteAddr)
		*sw = statusWriter{}
		statusWriters.Put(sw)
	}()
	if feed {
		s.Feeds.ServeHTTP(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// statusWriters recycles the writers of serveLogged: a handler must not
// keep its ResponseWriter after it returns.
var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// recoverPanic answers 500 for a handler that panicked. Defer it directly:
// recover works only in the deferred function itself.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	if p := recover(); p != nil {
		s.panicked(w, r, p)
	}
}

func (s *Server) panicked(w http.ResponseWriter, r *http.Request, p any) {
	s.Logger.Error("panic serving request", "path", redactPath(r.URL.Path), "panic", p)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// isFeedRequest reports whether r is a GET or HEAD of a clean
// /feeds/{board}.{rss,atom,json} path, which the mux would send to the
// feed handler unchanged; anything else (another method, "..", "//", an
// escaped path, another file under /feeds/) goes through the mux.
func isFeedRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	file, ok := strings.CutPrefix(r.URL.Path, "/feeds/")
	// One file name: no further '/', so no "//" or "/." either, and a
	// name that does not start with '.'.
	if !ok || file == "" || file[0] == '.' || strings.IndexByte(file, '/') >= 0 || r.URL.RawPath != "" {
		return false
	}
	switch path.Ext(file) {
	case ".rss", ".atom", ".json":
		return true
	}
	return false
}

// NewHTTPServer returns an http.Server for h with timeouts that hold against
// slow clients.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pageCSP allows our own stylesheet and forms and nothing else: the pages
// use no script, no frames and no third-party resources.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// page wraps an HTML page handler with the headers every page carries.
// Referrer-Policy matters most: the link pages have a token in their URL,
// and the footer links to another site.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", pageCSP)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		h(w, r)
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(templates.Web, "web/style.css")
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

// parsePages parses every page of web/ together with the layout, once.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templates.Web, "web/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).ParseFS(templates.Web, "web/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// layout is what the layout template reads on every page: the feeds for
// autodiscovery and the site's address for the footer. Every page's data
// embeds it.
type layout struct {
	Feeds   []feedLink
	SiteURL string
}

// layout returns the data the layout needs.
func (s *Server) layout() layout {
	return layout{Feeds: s.feedLinks(), SiteURL: s.SiteURL}
}

// render executes a page into a buffer first so an error never sends half
// a page, then writes it with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	t, ok := s.pages[name]
	err := fmt.Errorf("no page %s", name)
	if ok {
		err = t.ExecuteTemplate(&buf, "layout", data)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// messagePage is a page that says one thing: a result or an error.
type messagePage struct {
	layout
	Title   string
	Message string
	Home    bool // link back to the index
}

// message renders a plain page with title and text.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	s.render(w, r, status, "message.html", messagePage{layout: s.layout(), Title: title, Message: text, Home: true})
}

// serverError logs err and answers 500 with a page that shows nothing of it.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.Logger.Error("serve page", "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// redactPath drops the token from a link page's path, so logs do not hold
// working unsubscribe links.
func redactPath(p string) string {
	for _, prefix := range []string{"/confirm/", "/preferences/", "/unsubscribe/"} {
		if strings.HasPrefix(p, prefix) && len(p) > len(prefix) {
			return prefix + "…"
		}
	}
	return p
}

// Shutdown is a convenience for stopping an http.Server with a deadline.
func Shutdown(srv *http.Server, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return srv.Shutdown(ctx)
}
