package feeds_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// newFeedStore opens a migrated SQLite store in a temp directory holding items.
func newFeedStore(t testing.TB, items []feeds.Item) *feeds.Store {
	t.Helper()
	sqldb, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "msitfeed.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqldb.Close() })
	store := feeds.NewStore(sqldb)
	for _, it := range items {
		if _, err := store.Save(context.Background(), it, ""); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

var handlerTestOptions = feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: "https://www.msit.go.kr"}

// newFeedServer returns a mux serving the feed handler the way cmd/msitfeed
// mounts it, over a store holding items.
func newFeedServer(t testing.TB, items []feeds.Item) (*http.ServeMux, *feeds.Cache) {
	t.Helper()
	cache, err := feeds.NewCache(context.Background(), newFeedStore(t, items), handlerTestOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	mux := http.NewServeMux()
	mux.Handle(feeds.HandlerPattern, feeds.NewHandler(cache))
	return mux, cache
}

func serve(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler_ServesEveryBoardAndFormat(t *testing.T) {
	mux, _ := newFeedServer(t, renderFixture())
	types := map[string]string{
		"rss":  "application/rss+xml; charset=utf-8",
		"atom": "application/atom+xml; charset=utf-8",
		"json": "application/feed+json; charset=utf-8",
	}
	for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for ext, ctype := range types {
			target := "/feeds/" + board + "." + ext
			t.Run(target, func(t *testing.T) {
				w := serve(mux, "GET", target)
				if w.Code != http.StatusOK {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				h := w.Result().Header
				vary := "Accept-Encoding" // without pages (TestHandler_PageOrFeed) only gzip is negotiated
				for name, want := range map[string]string{
					"Content-Type":   ctype,
					"Cache-Control":  "public, max-age=300",
					"Vary":           vary,
					"Content-Length": strconv.Itoa(w.Body.Len()),
				} {
					if got := h.Get(name); got != want {
						t.Errorf("%s: %q, want %q", name, got, want)
					}
				}
				if h.Get("ETag") == "" || h.Get("Content-Encoding") != "" {
					t.Errorf("ETag %q, Content-Encoding %q", h.Get("ETag"), h.Get("Content-Encoding"))
				}
				if _, err := http.ParseTime(h.Get("Last-Modified")); err != nil {
					t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
				}
				f, err := gofeed.NewParser().Parse(w.Body)
				if err != nil {
					t.Fatalf("gofeed: %v", err)
				}
				want := 0
				for _, it := range renderFixture() {
					if board == feeds.AllSlug || it.Board == board {
						want++
					}
				}
				if len(f.Items) != want {
					t.Errorf("%d items, want %d", len(f.Items), want)
				}
			})
		}
	}
}

func TestHandler_RejectsUnknownFeedsAndBadLimits(t *testing.T) {
	mux, _ := newFeedServer(t, renderFixture())
	for _, tc := range []struct {
		target   string
		code     int
		contains string
	}{
		{"/feeds/nope.rss", 404, "no such feed"},
		{"/feeds/press.xml", 404, "no such feed"},
		{"/feeds/press", 404, "no such feed"},
		{"/feeds/.rss", 404, "no such feed"},
		{"/feeds/press.rss?limit=abc", 400, "limit"},
		{"/feeds/press.rss?limit=0", 400, "limit"},
		{"/feeds/press.rss?limit=501", 400, "limit"},
		{"/feeds/press.rss?limit=-3", 400, "limit"},
		{"/feeds/press.rss?limit=", 400, "limit"},
		{"/feeds/press.rss?limit=500", 200, "<rss"},
		{"/feeds/press.rss?limit=1", 200, "<rss"},
		{"/feeds/press.rss?other=1", 200, "<rss"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			w := serve(mux, "GET", tc.target)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("status %d body %q, want %d containing %q", w.Code, w.Body, tc.code, tc.contains)
			}
			if tc.code != 200 && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
				t.Errorf("error Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestHandler_LimitSelectsTheNewestItems(t *testing.T) {
	mux, _ := newFeedServer(t, renderFixture())
	w := serve(mux, "GET", "/feeds/all.json?limit=2")
	f, err := gofeed.NewParser().Parse(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Items) != 2 || f.Items[0].GUID != wantIDs[0] || f.Items[1].GUID != wantIDs[1] {
		t.Errorf("limit=2 gave %d items", len(f.Items))
	}
	if f.FeedLink != "https://feeds.example.org/feeds/all.json?limit=2" {
		t.Errorf("self link %q", f.FeedLink)
	}
}

func TestHandler_ConditionalRequests(t *testing.T) {
	mux, _ := newFeedServer(t, renderFixture())
	first := serve(mux, "GET", "/feeds/press.atom")
	etag, lastMod := first.Header().Get("ETag"), first.Header().Get("Last-Modified")
	modified, _ := http.ParseTime(lastMod)
	earlier := modified.Add(-time.Hour).Format(http.TimeFormat)
	later := modified.Add(time.Hour).Format(http.TimeFormat)
	for _, tc := range []struct {
		name   string
		header []string
		code   int
	}{
		{"If-None-Match with the ETag is 304", []string{"If-None-Match", etag}, 304},
		{"a weak form of the ETag matches (weak comparison)", []string{"If-None-Match", "W/" + etag}, 304},
		{"the ETag in a list matches", []string{"If-None-Match", `"nope", ` + etag}, 304},
		{"the ETag in a second field line matches", []string{"If-None-Match", `"nope"`, "If-None-Match", etag}, 304},
		{"star matches", []string{"If-None-Match", "*"}, 304},
		{"another ETag is 200", []string{"If-None-Match", `"nope"`}, 200},
		{"If-Modified-Since equal to Last-Modified is 304", []string{"If-Modified-Since", lastMod}, 304},
		{"If-Modified-Since after Last-Modified is 304", []string{"If-Modified-Since", later}, 304},
		{"If-Modified-Since before Last-Modified is 200", []string{"If-Modified-Since", earlier}, 200},
		{"an unparseable If-Modified-Since is ignored", []string{"If-Modified-Since", "yesterday"}, 200},
		{"If-None-Match takes precedence over If-Modified-Since", []string{"If-None-Match", `"nope"`, "If-Modified-Since", later}, 200},
		{"the gzip ETag does not validate the identity body", []string{"If-None-Match", strings.TrimSuffix(etag, `"`) + `-gzip"`}, 200},
		{"the ETag after tabs and bare commas matches", []string{"If-None-Match", "\"a\",\t,,\"b\"," + etag}, 304},
		{"the weak ETag last in a list matches", []string{"If-None-Match", `"a", W/"b", W/` + etag}, 304},
		{"several ETags, none ours, is 200", []string{"If-None-Match", `"a", W/"b", "c"`}, 200},
		{"a malformed element ends its field value", []string{"If-None-Match", "nope, " + etag}, 200},
		{"an empty If-None-Match matches nothing", []string{"If-None-Match", "", "If-Modified-Since", later}, 200},
		{"a prefix of the ETag does not match", []string{"If-None-Match", etag[:len(etag)-2] + `"`}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(mux, "GET", "/feeds/press.atom", tc.header...)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d", w.Code, tc.code)
			}
			if tc.code == 304 {
				if w.Body.Len() != 0 {
					t.Errorf("304 with a body")
				}
				if w.Header().Get("ETag") != etag || w.Header().Get("Cache-Control") == "" {
					t.Errorf("304 headers %v", w.Header())
				}
			}
		})
	}
}

func TestHandler_Gzip(t *testing.T) {
	mux, _ := newFeedServer(t, renderFixture())
	plain := serve(mux, "GET", "/feeds/all.rss")
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.5", true},
		{"x-gzip", true},
		{"*", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"*;q=0", false},
		{"*, gzip;q=0", false},
		{"identity", false},
		{"br", false},
		{"deflate;q=0.5, gzip;q=0.001", true},
		{" x-gzip ; q=0.5", true},
		{"gzip;q=1.0;foo=bar", true},
		{"br, *;q=0.1", true},
		{"gzip ; q=0", false},
		{"gzip;level=9;q=0", false},
		{"gzip;q=bogus", false},
		{"gzipped", false},
	} {
		t.Run("Accept-Encoding: "+tc.accept, func(t *testing.T) {
			w := serve(mux, "GET", "/feeds/all.rss", "Accept-Encoding", tc.accept)
			if got := w.Header().Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Fatalf("gzip %v, want %v", got, tc.gzip)
			}
			body := w.Body.Bytes()
			if tc.gzip {
				if w.Header().Get("ETag") == plain.Header().Get("ETag") {
					t.Errorf("gzip and identity share an ETag")
				}
				zr, err := gzip.NewReader(w.Body)
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, plain.Body.Bytes()) {
				t.Errorf("decoded body differs from the identity body")
			}
		})
	}
	t.Run("a gzip response validates with its own ETag", func(t *testing.T) {
		first := serve(mux, "GET", "/feeds/all.rss", "Accept-Encoding", "gzip")
		w := serve(mux, "GET", "/feeds/all.rss", "Accept-Encoding", "gzip", "If-None-Match", first.Header().Get("ETag"))
		if w.Code != 304 {
			t.Errorf("status %d, want 304", w.Code)
		}
	})
}

func TestHandler_HeadAndMethods(t *testing.T) {
	mux, cache := newFeedServer(t, renderFixture())
	get := serve(mux, "GET", "/feeds/photo.json")
	head := serve(mux, "HEAD", "/feeds/photo.json")
	if head.Code != 200 || head.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, %d body bytes", head.Code, head.Body.Len())
	}
	if head.Header().Get("Content-Length") != strconv.Itoa(get.Body.Len()) || head.Header().Get("ETag") != get.Header().Get("ETag") {
		t.Errorf("HEAD headers %v differ from GET's %v", head.Header(), get.Header())
	}
	// The handler on its own (as mounted under "GET /feeds/") refuses writes.
	if w := serve(feeds.NewHandler(cache), "POST", "/feeds/photo.json"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", w.Code)
	}
}

func TestHandler_MountedUnderAPrefixPattern(t *testing.T) {
	_, cache := newFeedServer(t, renderFixture())
	mux := http.NewServeMux()
	mux.Handle("GET /feeds/", feeds.NewHandler(cache))
	if w := serve(mux, "GET", "/feeds/press.rss"); w.Code != 200 {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
	if w := serve(mux, "GET", "/feeds/sub/press.rss"); w.Code != 404 {
		t.Errorf("nested path: status %d", w.Code)
	}
}

func TestExportAll(t *testing.T) {
	store := newFeedStore(t, renderFixture())
	dir := filepath.Join(t.TempDir(), "public", "feeds")

	t.Run("writes every board in every format", func(t *testing.T) {
		for range 2 { // the second run replaces the files of the first
			if err := feeds.ExportAll(context.Background(), store, handlerTestOptions, dir); err != nil {
				t.Fatal(err)
			}
		}
		names, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 18 {
			t.Errorf("%d files, want 18 (6 feeds x 3 formats, no temp files left)", len(names))
		}
		for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
			for _, format := range feeds.Formats() {
				name := filepath.Join(dir, board+"."+string(format))
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := gofeed.NewParser().Parse(f); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				f.Close()
			}
		}
		got, _ := os.ReadFile(filepath.Join(dir, "all.atom"))
		if !bytes.Contains(got, []byte(`href="https://feeds.example.org/feeds/all.atom" rel="self"`)) {
			t.Errorf("exported Atom lacks its self link")
		}
	})

	t.Run("refuses path tricks", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "../out", dir + "/../x", "a/../../b", file, "with\x00nul"} {
			if err := feeds.ExportAll(context.Background(), store, handlerTestOptions, bad); err == nil {
				t.Errorf("ExportAll(%q) succeeded", bad)
			}
		}
	})
}

// headerWriter is a ResponseWriter that allocates nothing and keeps the
// status, so allocations counted around a handler are the handler's.
type headerWriter struct {
	h    http.Header
	code int
}

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(code int)        { w.code = code }

// A cached feed is served without allocating: 200, gzip and the 304s of
// If-None-Match and If-Modified-Since, with or without an Accept field.
func TestHandler_CachedFeedAllocatesNothing(t *testing.T) {
	_, cache := newFeedServer(t, renderFixture())
	h := feeds.NewHandler(cache)
	first := serve(h, "GET", "/feeds/press.rss")
	gz := serve(h, "GET", "/feeds/press.rss", "Accept-Encoding", "gzip")
	etag, lastMod := first.Header().Get("Etag"), first.Header().Get("Last-Modified")
	for _, tc := range []struct {
		name   string
		header []string
		code   int
	}{
		{"200", nil, 200},
		{"gzip", []string{"Accept-Encoding", "gzip, deflate, br"}, 200},
		{"If-None-Match", []string{"If-None-Match", etag}, 304},
		{"If-None-Match, gzip", []string{"If-None-Match", gz.Header().Get("Etag"), "Accept-Encoding", "gzip"}, 304},
		{"If-None-Match in a list", []string{"If-None-Match", `"old", ` + etag}, 304},
		{"If-Modified-Since", []string{"If-Modified-Since", lastMod}, 304},
		{"a reader's Accept", []string{"If-None-Match", etag, "Accept", "application/rss+xml, application/atom+xml;q=0.9, */*;q=0.1"}, 304},
	} {
		r := httptest.NewRequest("GET", "/feeds/press.rss", nil)
		for i := 0; i+1 < len(tc.header); i += 2 {
			r.Header.Add(tc.header[i], tc.header[i+1])
		}
		w := &headerWriter{h: http.Header{}}
		allocs := testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, r)
		})
		if w.code != tc.code {
			t.Errorf("%s: status %d, want %d", tc.name, w.code, tc.code)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.name, allocs)
		}
	}
}

// Benchmarks: the feed handler against a bare handler that writes the same
// bytes from memory. Both write into an httptest.ResponseRecorder whose body
// buffer is reused, so the comparison is not drowned in allocating and
// collecting a fresh 400 KB buffer per request.

func benchFeed(b *testing.B) (http.Handler, *http.Request, *feeds.Entry) {
	_, cache := newFeedServer(b, benchItems())
	e, err := cache.Get(context.Background(), feeds.AllSlug, feeds.FormatRSS, 50)
	if err != nil {
		b.Fatal(err)
	}
	return feeds.NewHandler(cache), httptest.NewRequest("GET", "/feeds/all.rss", nil), e
}

// benchServe runs h b.N times and checks the status of the last response.
func benchServe(b *testing.B, h http.Handler, r *http.Request, code int) {
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	var w *httptest.ResponseRecorder
	for b.Loop() {
		w = httptest.NewRecorder()
		w.Body = bytes.NewBuffer(buf[:0])
		h.ServeHTTP(w, r)
	}
	if w.Code != code {
		b.Fatalf("status %d, want %d", w.Code, code)
	}
}

func BenchmarkBareHandler(b *testing.B) {
	_, r, e := benchFeed(b)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Write(e.Body)
	})
	benchServe(b, bare, r, 200)
}

func BenchmarkHandler200(b *testing.B) {
	h, r, _ := benchFeed(b)
	benchServe(b, h, r, 200)
}

func BenchmarkHandler304(b *testing.B) {
	h, r, e := benchFeed(b)
	r.Header.Set("If-None-Match", e.ETag)
	benchServe(b, h, r, 304)
}

func BenchmarkHandler200Gzip(b *testing.B) {
	h, r, _ := benchFeed(b)
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	benchServe(b, h, r, 200)
}

// Without a page renderer a browser tab gets the feed as it is, and every
// response is counted by format.
func TestHandler_WithoutPagesATabGetsTheFeedAndResponsesAreCounted(t *testing.T) {
	_, cache := newFeedServer(t, []feeds.Item{{Board: "press", ID: 1, Title: "press one", URL: "https://www.msit.go.kr/x", Published: time.Now()}})
	h := feeds.NewHandler(cache)
	seen := map[string]int{}
	h.Observe = func(f feeds.Format, code int) { seen[fmt.Sprintf("%s %d", f, code)]++ }
	cases := []struct {
		path, dest, wantType string
	}{
		{"/feeds/press.rss", "document", "application/rss+xml; charset=utf-8"},
		{"/feeds/press.atom", "document", "application/atom+xml; charset=utf-8"},
		{"/feeds/press.json", "document", "application/feed+json; charset=utf-8"},
		{"/feeds/press.rss", "", "application/rss+xml; charset=utf-8"},
		{"/feeds/press.atom", "empty", "application/atom+xml; charset=utf-8"},
	}
	for _, tc := range cases {
		var hdr []string
		if tc.dest != "" {
			hdr = []string{"Sec-Fetch-Dest", tc.dest}
		}
		w := serve(h, "GET", tc.path, hdr...)
		if got := w.Header().Get("Content-Type"); got != tc.wantType {
			t.Errorf("%s with Sec-Fetch-Dest %q: Content-Type %q, want %q", tc.path, tc.dest, got, tc.wantType)
		}
	}
	serve(h, "GET", "/feeds/sports.rss")
	want := map[string]int{"rss 200": 2, "atom 200": 2, "json 200": 1, " 404": 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}
