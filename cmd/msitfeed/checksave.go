package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// pageSaver writes every page check fetches into a directory, in fetch
// order: the body as NNN-<kind>-<slug>.html (or .txt) and beside it
// NNN-<kind>-<slug>.json saying where and when it came from, so a page seen
// in the field becomes a test fixture by copying one file. A nil
// *pageSaver saves nothing.
type pageSaver struct {
	dir string
	now func() time.Time

	mu      sync.Mutex
	n       int
	board   string // slug of the board being checked; "site" for shared pages
	saveErr error
}

// savedPage is the sidecar of one saved page.
type savedPage struct {
	URL     string      `json:"url"`
	Status  int         `json:"status"`
	Header  http.Header `json:"header"`
	Fetched time.Time   `json:"fetched"`
	Kind    string      `json:"kind"`  // robots, home, list, post or page
	Board   string      `json:"board"` // the board being checked, or "site"
	Body    string      `json:"body"`  // the body's file name, beside this one
	Bytes   int         `json:"bytes"`
}

// newPageSaver makes dir if it is missing and makes sure files can be
// written in it.
func newPageSaver(dir string) (*pageSaver, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".msitfeed-check-*")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return nil, err
	}
	return &pageSaver{dir: dir, now: time.Now, board: "site"}, nil
}

// forBoard names the board whose pages come next.
func (s *pageSaver) forBoard(slug string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.board = slug
}

// count returns how many pages were saved.
func (s *pageSaver) count() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// err returns the first failure to write a page.
func (s *pageSaver) err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveErr
}

// save is the client's OnResponse hook.
func (s *pageSaver) save(rawURL string, status int, header http.Header, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind, ext := pageKind(rawURL, header)
	board := s.board
	if kind == "robots" || kind == "home" {
		board = "site"
	}
	s.n++
	stem := fmt.Sprintf("%03d-%s-%s", s.n, kind, board)
	meta := savedPage{URL: rawURL, Status: status, Header: header, Fetched: s.now().UTC(), Kind: kind, Board: board,
		Body: stem + ext, Bytes: len(body)}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // URLs keep their & as they are
	enc.SetIndent("", "  ")
	err := enc.Encode(meta)
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, stem+ext), body, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, stem+".json"), js.Bytes(), 0o644)
	}
	if err != nil && s.saveErr == nil {
		s.saveErr = err
	}
}

// pageKind names a page of the site by its path, with the extension its
// body is saved under.
func pageKind(rawURL string, header http.Header) (kind, ext string) {
	ext = ".html"
	if mt, _, err := mime.ParseMediaType(header.Get("Content-Type")); err == nil && mt == "text/plain" {
		ext = ".txt"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "page", ext
	}
	p := u.Path
	if i := strings.IndexByte(p, ';'); i >= 0 {
		p = p[:i]
	}
	switch {
	case p == "/robots.txt":
		return "robots", ".txt"
	case strings.HasSuffix(p, "/index.do") || p == "/" || p == "/eng/":
		return "home", ext
	case strings.HasSuffix(p, "/list.do"):
		return "list", ext
	case strings.HasSuffix(p, "/view.do"):
		return "post", ext
	}
	return "page", ext
}
