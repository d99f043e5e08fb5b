// Package web is msitfeed's HTTP server: routing, middleware (logging,
// recovery, timeouts) and the public pages. Feed rendering and its cache
// belong to feeds; this package mounts its handler.
package web

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/templates"
)

// Server holds the dependencies of the HTTP handlers.
type Server struct {
	Store   *feeds.Store
	Feeds   http.Handler // serves GET /feeds/{board}.{ext}
	BaseURL string       // public URL, no trailing slash
	SiteURL string       // the MSIT site root
	Logger  *slog.Logger

	pages map[string]*template.Template // page file name → layout + page
	mux   *http.ServeMux
}

// New parses the page templates and builds the routes. A template error is
// returned here, at start, never at a first request.
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", srv.handleIndex)
	mux.HandleFunc("GET /healthz", srv.handleHealthz)
	mux.HandleFunc("GET /static/style.css", srv.handleStyle)
	if srv.Feeds != nil {
		mux.Handle("GET /feeds/", srv.Feeds)
	}
	srv.mux = mux
	return srv, nil
}

// ServeHTTP serves the routes with logging and panic recovery.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.Logger.Error("panic serving request", "path", r.URL.Path, "panic", p)
			http.Error(rw, "internal error", http.StatusInternalServerError)
		}
		s.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"bytes", rw.bytes, "duration", time.Since(start), "remote", r.RemoteAddr)
	}()
	s.mux.ServeHTTP(rw, r)
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
	w.Write(b)
}

// feedLink is one autodiscovery link.
type feedLink struct{ Type, Title, URL string }

type boardRow struct {
	Name, Newest    string
	Items           int
	RSS, Atom, JSON string
}

type latestRow struct{ Title, URL, Board, Date string }

type indexPage struct {
	Feeds   []feedLink
	Boards  []boardRow
	Latest  []latestRow
	SiteURL string
}

// feedLinks returns the autodiscovery links for every feed, every format.
func (s *Server) feedLinks() []feedLink {
	var out []feedLink
	names := map[string]string{feeds.AllSlug: "All boards"}
	slugs := append([]string{feeds.AllSlug}, feeds.BoardSlugs()...)
	for _, b := range feeds.DefaultBoards() {
		names[b.Slug] = b.Name
	}
	for _, slug := range slugs {
		out = append(out,
			feedLink{"application/rss+xml", "MSIT " + names[slug] + " (RSS)", s.BaseURL + "/feeds/" + slug + ".rss"},
			feedLink{"application/atom+xml", "MSIT " + names[slug] + " (Atom)", s.BaseURL + "/feeds/" + slug + ".atom"},
			feedLink{"application/feed+json", "MSIT " + names[slug] + " (JSON Feed)", s.BaseURL + "/feeds/" + slug + ".json"})
	}
	return out
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	page := indexPage{Feeds: s.feedLinks(), SiteURL: s.SiteURL}
	stats, err := s.Store.Stats(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	total := 0
	for _, b := range append([]feeds.Board{{Slug: feeds.AllSlug, Name: "All boards"}}, feeds.DefaultBoards()...) {
		row := boardRow{Name: b.Name, RSS: "/feeds/" + b.Slug + ".rss", Atom: "/feeds/" + b.Slug + ".atom", JSON: "/feeds/" + b.Slug + ".json"}
		if st, ok := stats[b.Slug]; ok {
			row.Items = st.Items
			total += st.Items
			if !st.Newest.IsZero() {
				row.Newest = st.Newest.Format("2006-01-02")
			}
		}
		page.Boards = append(page.Boards, row)
	}
	page.Boards[0].Items = total
	latest, err := s.Store.Items(ctx, feeds.AllSlug, 10)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, it := range latest {
		page.Latest = append(page.Latest, latestRow{Title: it.Title, URL: it.URL, Board: boardName(it.Board), Date: it.Published.Format("2006-01-02")})
	}
	s.render(w, r, "index.html", page)
}

func boardName(slug string) string {
	for _, b := range feeds.DefaultBoards() {
		if b.Slug == slug {
			return b.Name
		}
	}
	return slug
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

// render executes a page into a buffer first so an error never sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
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
	w.Write(buf.Bytes())
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.Logger.Error("serve page", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// Shutdown is a convenience for stopping an http.Server with a deadline.
func Shutdown(srv *http.Server, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return srv.Shutdown(ctx)
}
