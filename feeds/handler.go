package feeds

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HandlerPattern is the net/http.ServeMux pattern the feed handler serves.
// GET patterns also match HEAD.
const HandlerPattern = "GET /feeds/{file}"

// Handler serves GET and HEAD /feeds/{board}.{rss|atom|json}[?limit=N] from
// a Cache, with validators (ETag, Last-Modified), conditional requests and
// pre-compressed gzip. RSSHub's filter parameters (filter.go) make a
// filtered feed, a document of its own served the same way from a bounded
// part of the cache (filtered.go).
//
// When the cache's options have a Page renderer, a browser tab opening a
// feed URL (wantsPage: "Sec-Fetch-Dest: document", or an Accept field that
// prefers text/html) gets the feed's HTML page instead, cached and
// validated the same way; every other client gets the document, whatever
// the tab got, and Vary names the fields that chose.
type Handler struct {
	cache *Cache
	opts  Options

	// Observe, if set, is told the format and status code of every
	// response (for metrics); an unknown format is "".
	Observe func(format Format, code int)
}

// NewHandler returns the feed handler over cache. Mount it with
// mux.Handle(HandlerPattern, h), or under "GET /feeds/": the file name is
// taken from the {file} wildcard if there is one, else from the path.
func NewHandler(cache *Cache) *Handler {
	return &Handler{cache: cache, opts: cache.Options()}
}

// Header names in canonical form, so serving skips canonicalisation.
const (
	hdrContentType     = "Content-Type"
	hdrContentLength   = "Content-Length"
	hdrContentEncoding = "Content-Encoding"
	hdrETag            = "Etag"
	hdrLastModified    = "Last-Modified"
	hdrCacheControl    = "Cache-Control"
	hdrVary            = "Vary"
)

var (
	cacheControlValue = []string{"public, max-age=300"}
	varyValue         = []string{"Accept-Encoding"}
	pageVaryValue     = []string{"Accept, Accept-Encoding, Sec-Fetch-Dest"}
	gzipValue         = []string{"gzip"}
)

func init() {
	// The constants above must be what net/http would write.
	for _, h := range []string{hdrContentType, hdrContentLength, hdrContentEncoding, hdrETag, hdrLastModified, hdrCacheControl, hdrVary} {
		if textproto.CanonicalMIMEHeaderKey(h) != h {
			panic("feeds: header " + h + " is not canonical")
		}
	}
}

// ServeHTTP serves one feed. An unknown board or format is a 404; a limit
// that is not an integer from 1 to MaxLimit, or a filter parameter that
// cannot be used, is a 400.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: feeds are read with GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	file := r.PathValue("file")
	if file == "" {
		file = strings.TrimPrefix(r.URL.Path, "/feeds/")
	}
	page := h.opts.Page != nil && wantsPage(r.Header["Sec-Fetch-Dest"], r.Header["Accept"])
	if !page && r.URL.RawQuery == "" {
		// A feed reader's poll: the document of the default limit, found
		// by its file name if it is cached.
		if e := h.cache.ByFile(file); e != nil {
			h.serveEntry(w, r, e)
			return
		}
	}
	board, format, ok := splitFeedFile(h.cache.store.Registry, file)
	if !ok {
		h.observe("", http.StatusNotFound)
		http.Error(w, "no such feed: use /feeds/{board}.{rss|atom|json} with board one of "+
			strings.Join(h.cache.store.Registry.Slugs(), ", ")+" or all", http.StatusNotFound)
		return
	}
	limit := h.opts.Limit
	if raw := r.URL.RawQuery; raw != "" {
		if mayFilter(raw) {
			h.serveFiltered(w, r, board, format, page, raw)
			return
		}
		var ok bool
		if limit, ok = h.limit(w, format, r.URL.Query()); !ok {
			return
		}
	}
	var e *Entry
	var err error
	if page {
		e, err = h.cache.Page(r.Context(), board, format, limit)
	} else {
		e, err = h.cache.Get(r.Context(), board, format, limit)
	}
	h.answer(w, r, board, format, limit, e, err)
}

// limit returns the limit of the query q (the default when it has none),
// or answers 400 and reports false.
func (h *Handler) limit(w http.ResponseWriter, format Format, q url.Values) (int, bool) {
	if !q.Has("limit") {
		return h.opts.Limit, true
	}
	n, err := parseLimit(q.Get("limit"))
	if err != nil {
		h.observe(format, http.StatusBadRequest)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

// parseLimit reads a limit parameter: an integer from 1 to MaxLimit.
func parseLimit(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, fmt.Errorf("bad limit %q: must be an integer from 1 to %d", v, MaxLimit)
	}
	return n, nil
}

// answer serves e, or the error that came instead of it.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, board string, format Format, limit int, e *Entry, err error) {
	if err != nil {
		if errors.Is(err, ErrUnknownFeed) {
			h.observe(format, http.StatusNotFound)
			http.Error(w, "no such feed", http.StatusNotFound)
			return
		}
		if r.Context().Err() != nil {
			return // the client went away; there is no one to answer
		}
		h.opts.Logger.Error("serve feed", "board", board, "format", string(format), "limit", limit, "err", err)
		h.observe(format, http.StatusInternalServerError)
		http.Error(w, "the feed cannot be built right now; try again later", http.StatusInternalServerError)
		return
	}
	h.serveEntry(w, r, e)
}

func (h *Handler) observe(format Format, code int) {
	if h.Observe != nil {
		h.Observe(format, code)
	}
}

// splitFeedFile splits "press.rss" into a board of reg and a format.
func splitFeedFile(reg *Registry, file string) (string, Format, bool) {
	dot := strings.LastIndexByte(file, '.')
	if dot < 0 {
		return "", "", false
	}
	board := file[:dot]
	format, ok := ParseFormat(file[dot+1:])
	if !ok || (board != AllSlug && !reg.Has(board)) {
		return "", "", false
	}
	return board, format, true
}

func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, e *Entry) {
	hdr := w.Header()
	body, etag, length := e.Body, e.etag, e.length
	gz := acceptsGzip(r.Header["Accept-Encoding"])
	if gz {
		body, etag, length = e.Gzip, e.gzipETag, e.gzipLength
	}
	vary := varyValue
	if h.opts.Page != nil {
		// The page and the document share the URL: both name every field
		// wantsPage reads.
		vary = pageVaryValue
	}
	hdr[hdrETag] = etag
	if e.lastModified != nil {
		hdr[hdrLastModified] = e.lastModified
	}
	hdr[hdrCacheControl] = cacheControlValue
	hdr[hdrVary] = vary
	for k, v := range e.header {
		hdr[k] = v
	}
	if notModified(r, etag[0], e.Modified) {
		h.observe(e.Format, http.StatusNotModified)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr[hdrContentType] = e.contentType
	hdr[hdrContentLength] = length
	if gz {
		hdr[hdrContentEncoding] = gzipValue
	}
	h.observe(e.Format, http.StatusOK)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// notModified evaluates If-None-Match and, only when it is absent,
// If-Modified-Since (RFC 9110 section 13.2.2).
func notModified(r *http.Request, etag string, modified time.Time) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		return etagListMatches(inm, etag)
	}
	if ims := r.Header["If-Modified-Since"]; len(ims) > 0 && !modified.IsZero() {
		t, err := http.ParseTime(ims[0])
		return err == nil && !modified.After(t)
	}
	return false
}

// etagListMatches reports whether any entity tag in the If-None-Match field
// values matches etag by weak comparison, or the field is "*".
func etagListMatches(values []string, etag string) bool {
	if len(values) == 1 && values[0] == etag {
		return true // a reader sending back the ETag it was given
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, v := range values {
		for {
			v = trimListSeparators(v)
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			tag, rest, ok := nextETag(v)
			if !ok {
				break // malformed: ignore the rest of this field value
			}
			if strings.TrimPrefix(tag, "W/") == want {
				return true
			}
			v = rest
		}
	}
	return false
}

// trimListSeparators drops the spaces, tabs and commas before the next
// element of a list field.
func trimListSeparators(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t' || s[0] == ',') {
		s = s[1:]
	}
	return s
}

// nextETag splits the entity tag at the start of s (W/"x" or "x") from
// the rest.
func nextETag(s string) (tag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) <= start || s[start] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[start+1:], '"')
	if end < 0 {
		return "", "", false
	}
	end += start + 2
	return s[:end], s[end:], true
}

// acceptsGzip reports whether the Accept-Encoding field values accept gzip
// with a quality above zero, by name, as x-gzip, or through "*". It runs
// on every feed request, so it reads the values in place.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1, -1
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(part, ";")
			coding = trimOWS(coding)
			q := 1000
			for params != "" {
				var p string
				p, params, _ = strings.Cut(params, ";")
				if name, val, ok := strings.Cut(p, "="); ok && equalLower(trimOWS(name), "q") {
					q = parseQ(trimOWS(val))
				}
			}
			switch {
			case equalLower(coding, "gzip"), equalLower(coding, "x-gzip"):
				gzipQ = max(gzipQ, q)
			case coding == "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// ExportAll writes the feed of every board of the store's registry and of
// all, in every format,
// with opts.Limit items, into dir as {board}.{rss,atom,json}: the files
// `msitfeed feeds export --dir D` publishes for a static web server. dir is
// created if missing. Each file is written to a temporary file in dir,
// synced and renamed over the old one, so a reader sees the old feed or the
// new one, never a part. File names are fixed; dir must be a plain directory
// path (no ".." elements) that is not an existing non-directory.
func ExportAll(ctx context.Context, store *Store, opts Options, dir string) error {
	if err := checkExportDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export feeds: %w", err)
	}
	opts = opts.withDefaults()
	for _, board := range append(store.Registry.Slugs(), AllSlug) {
		for _, format := range Formats() {
			e, err := BuildEntry(ctx, store, opts, board, format, opts.Limit)
			if err != nil {
				return fmt.Errorf("export feeds: %w", err)
			}
			if err := writeFileAtomic(dir, board+"."+string(format), e.Body); err != nil {
				return fmt.Errorf("export feeds: %w", err)
			}
		}
	}
	// Make the renames durable.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("export feeds: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("export feeds: sync %s: %w", dir, err)
	}
	return nil
}

func checkExportDir(dir string) error {
	if dir == "" {
		return errors.New("export feeds: no directory given (use --dir D)")
	}
	if strings.ContainsRune(dir, 0) {
		return fmt.Errorf("export feeds: directory %q contains a NUL byte", dir)
	}
	for _, el := range strings.FieldsFunc(dir, func(r rune) bool { return r == '/' || r == filepath.Separator }) {
		if el == ".." {
			return fmt.Errorf("export feeds: directory %q must not contain \"..\"; give the path without it", dir)
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("export feeds: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("export feeds: %s exists and is not a directory", dir)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data through a synced temporary
// file in the same directory and a rename.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
