package feeds_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
)

// testPages renders a page that lists what it was given, and counts its
// renderings.
type testPages struct{ renders atomic.Int64 }

func (p *testPages) RenderFeedPage(fp feeds.FeedPage) ([]byte, error) {
	p.renders.Add(1)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>%s</title><p>format %s, url %s</p>\n", fp.Meta.Title, fp.Format, fp.Meta.SelfURL)
	for _, l := range fp.Links {
		fmt.Fprintf(&b, "<a href=%q>%s</a>\n", l.URL, l.Format)
	}
	for _, it := range fp.Items {
		fmt.Fprintf(&b, "<li>%s</li>\n", it.Title)
	}
	return []byte(b.String()), nil
}

func (p *testPages) FeedPageHeader() http.Header {
	return http.Header{"X-Frame-Options": {"DENY"}}
}

// newPageServer is newFeedServer with pages for browser tabs; plain is the
// same store's feed handler without them, as it was before pages existed.
func newPageServer(t testing.TB) (h, plain http.Handler, cache *feeds.Cache, pages *testPages) {
	t.Helper()
	store := newFeedStore(t, renderFixture())
	pages = &testPages{}
	opts := handlerTestOptions
	opts.Page = pages
	cache, err := feeds.NewCache(context.Background(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	plainCache, err := feeds.NewCache(context.Background(), store, handlerTestOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plainCache.Close() })
	return feeds.NewHandler(cache), feeds.NewHandler(plainCache), cache, pages
}

const (
	navChromium  = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	navFirefox   = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	readerAccept = "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"
	pageVary     = "Accept, Accept-Encoding, Sec-Fetch-Dest"
)

func TestHandler_PageOrFeed(t *testing.T) {
	h, plain, _, _ := newPageServer(t)
	tests := []struct {
		name   string
		header []string
		page   bool
	}{
		{"a browser tab (Sec-Fetch-Dest: document) gets the page", []string{"Sec-Fetch-Dest", "document", "Accept", navChromium}, true},
		{"a tab whose browser sends no Fetch Metadata gets the page by its Accept", []string{"Accept", navFirefox}, true},
		{"Sec-Fetch-Dest: document wins over an Accept for feeds", []string{"Sec-Fetch-Dest", "document", "Accept", "application/rss+xml"}, true},
		{"a client asking for text/html only gets the page", []string{"Accept", "text/html"}, true},
		{"a feed reader without Accept gets the feed", nil, false},
		{"curl (Accept: */*) gets the feed", []string{"Accept", "*/*", "User-Agent", "curl/8.5.0"}, false},
		{"a reader naming feed types gets the feed", []string{"Accept", readerAccept}, false},
		{"a reader asking for RSS gets the feed", []string{"Accept", "application/rss+xml"}, false},
		{"a reader preferring Atom to anything gets the feed", []string{"Accept", "application/atom+xml,application/xml;q=0.9,*/*;q=0.8"}, false},
		{"a page script's fetch gets the feed", []string{"Sec-Fetch-Dest", "empty", "Accept", "*/*"}, false},
		{"text/html ranked below XML gets the feed", []string{"Accept", "application/xml, text/html;q=0.9"}, false},
	}
	for _, format := range feeds.Formats() {
		for _, board := range []string{"press", feeds.AllSlug} {
			target := "/feeds/" + board + "." + string(format)
			want := serve(plain, "GET", target)
			for _, tt := range tests {
				t.Run(target+": "+tt.name, func(t *testing.T) {
					w := serve(h, "GET", target, tt.header...)
					hdr := w.Result().Header
					if w.Code != http.StatusOK {
						t.Fatalf("status %d", w.Code)
					}
					if got := hdr.Get("Vary"); got != pageVary {
						t.Errorf("Vary %q, want %q", got, pageVary)
					}
					if got := hdr.Get("Cache-Control"); got != "public, max-age=300" {
						t.Errorf("Cache-Control %q", got)
					}
					if !tt.page {
						// Byte for byte what the handler without pages serves,
						// with the same validators.
						for _, name := range []string{"Content-Type", "Etag", "Last-Modified", "Content-Length"} {
							if hdr.Get(name) != want.Header().Get(name) {
								t.Errorf("%s %q, want %q", name, hdr.Get(name), want.Header().Get(name))
							}
						}
						if !bytes.Equal(w.Body.Bytes(), want.Body.Bytes()) {
							t.Error("the feed differs from the one served without pages")
						}
						if hdr.Get("X-Frame-Options") != "" {
							t.Error("the feed carries the page's header fields")
						}
						if _, err := gofeed.NewParser().Parse(bytes.NewReader(w.Body.Bytes())); err != nil {
							t.Errorf("gofeed: %v", err)
						}
						return
					}
					if got := hdr.Get("Content-Type"); got != "text/html; charset=utf-8" {
						t.Errorf("Content-Type %q", got)
					}
					if hdr.Get("Etag") == "" || hdr.Get("Etag") == want.Header().Get("Etag") {
						t.Errorf("ETag %q: want one of its own (feed's %q)", hdr.Get("Etag"), want.Header().Get("Etag"))
					}
					if hdr.Get("Last-Modified") != "" {
						t.Errorf("Last-Modified %q: the page changes with the templates too", hdr.Get("Last-Modified"))
					}
					if hdr.Get("X-Frame-Options") != "DENY" {
						t.Errorf("the page lacks its renderer's header fields: %v", hdr)
					}
					body := w.Body.String()
					if !strings.Contains(body, "format "+string(format)+", url https://feeds.example.org"+target) {
						t.Errorf("the page was not rendered for %s:\n%s", target, body)
					}
				})
			}
		}
	}
}

func TestHandler_PageValidatorsAndCaching(t *testing.T) {
	h, _, cache, pages := newPageServer(t)
	tab := []string{"Sec-Fetch-Dest", "document"}
	first := serve(h, "GET", "/feeds/press.rss", tab...)
	etag := first.Header().Get("Etag")
	feed := serve(h, "GET", "/feeds/press.rss")
	feedETag, feedLastModified := feed.Header().Get("Etag"), feed.Header().Get("Last-Modified")

	tests := []struct {
		name   string
		header []string
		code   int
		page   bool
	}{
		{"the tab revalidating with the page's ETag gets 304", append([]string{"If-None-Match", etag}, tab...), 304, true},
		{"a weak form of the page's ETag matches", append([]string{"If-None-Match", "W/" + etag}, tab...), 304, true},
		{"the tab sending the feed's ETag gets the page", append([]string{"If-None-Match", feedETag}, tab...), 200, true},
		{"the tab sending only If-Modified-Since gets the page (it has no Last-Modified)", append([]string{"If-Modified-Since", feedLastModified}, tab...), 200, true},
		{"a reader sending the page's ETag gets the feed", []string{"If-None-Match", etag}, 200, false},
		{"a reader revalidating with the feed's ETag still gets 304", []string{"If-None-Match", feedETag}, 304, false},
		{"a reader revalidating with Last-Modified still gets 304", []string{"If-Modified-Since", feedLastModified}, 304, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, "GET", "/feeds/press.rss", tt.header...)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d", w.Code, tt.code)
			}
			wantETag := feedETag
			if tt.page {
				wantETag = etag
			}
			if got := w.Header().Get("Etag"); got != wantETag {
				t.Errorf("ETag %q, want %q", got, wantETag)
			}
			if got := w.Header().Get("Vary"); got != pageVary {
				t.Errorf("Vary %q, want %q", got, pageVary)
			}
			if tt.code == 304 && w.Body.Len() != 0 {
				t.Error("304 with a body")
			}
		})
	}

	t.Run("the page is gzipped for a browser that accepts it, with its own ETag", func(t *testing.T) {
		w := serve(h, "GET", "/feeds/press.rss", append([]string{"Accept-Encoding", "gzip, deflate, br"}, tab...)...)
		if w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Etag") == etag {
			t.Fatalf("Content-Encoding %q, ETag %q", w.Header().Get("Content-Encoding"), w.Header().Get("Etag"))
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(b, first.Body.Bytes()) {
			t.Errorf("gunzipped page differs (%v)", err)
		}
		again := serve(h, "GET", "/feeds/press.rss", append([]string{"Accept-Encoding", "gzip", "If-None-Match", w.Header().Get("Etag")}, tab...)...)
		if again.Code != 304 {
			t.Errorf("revalidating the gzipped page: %d, want 304", again.Code)
		}
	})

	t.Run("HEAD of the page has its headers and no body", func(t *testing.T) {
		w := serve(h, "HEAD", "/feeds/press.rss", tab...)
		if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Etag") != etag || w.Header().Get("Content-Length") != fmt.Sprint(first.Body.Len()) {
			t.Errorf("HEAD: %d, %d bytes, %v", w.Code, w.Body.Len(), w.Header())
		}
	})

	t.Run("a page is rendered once until its board changes", func(t *testing.T) {
		before := pages.renders.Load()
		for range 3 {
			serve(h, "GET", "/feeds/press.rss", tab...)
		}
		if n := pages.renders.Load() - before; n != 0 {
			t.Errorf("%d renders for pages already cached", n)
		}
		serve(h, "GET", "/feeds/notice.rss", tab...) // cached below, kept through press's change
		cache.Invalidate("press")
		before = pages.renders.Load()
		serve(h, "GET", "/feeds/press.rss", tab...)
		serve(h, "GET", "/feeds/notice.rss", tab...)
		if n := pages.renders.Load() - before; n != 1 {
			t.Errorf("%d renders after press changed, want 1 (press only)", n)
		}
	})

	t.Run("the limit selects the items and is kept in every link", func(t *testing.T) {
		w := serve(h, "GET", "/feeds/all.atom?limit=2", tab...)
		body := w.Body.String()
		if n := strings.Count(body, "<li>"); n != 2 {
			t.Errorf("%d items, want 2", n)
		}
		for _, ext := range []string{"rss", "atom", "json"} {
			if !strings.Contains(body, `"https://feeds.example.org/feeds/all.`+ext+`?limit=2"`) {
				t.Errorf("no %s link with the limit:\n%s", ext, body)
			}
		}
	})

	t.Run("an unknown board or a bad limit is refused as for a reader", func(t *testing.T) {
		if w := serve(h, "GET", "/feeds/sports.rss", tab...); w.Code != 404 {
			t.Errorf("unknown board: %d", w.Code)
		}
		if w := serve(h, "GET", "/feeds/press.rss?limit=0", tab...); w.Code != 400 {
			t.Errorf("bad limit: %d", w.Code)
		}
	})
}

// The page costs a feed reader nothing: no allocation more than the
// handler without pages, whatever Accept the reader sends.
func TestHandler_PagesCostReadersNoAllocation(t *testing.T) {
	h, plain, _, _ := newPageServer(t)
	for _, accept := range []string{"", "*/*", readerAccept, "application/rss+xml"} {
		r := httptest.NewRequest("GET", "/feeds/all.rss", nil)
		r.Header.Set("If-None-Match", serve(plain, "GET", "/feeds/all.rss").Header().Get("Etag"))
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		allocs := func(h http.Handler) float64 {
			return testing.AllocsPerRun(200, func() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 304 {
					t.Fatalf("status %d", w.Code)
				}
			})
		}
		if with, without := allocs(h), allocs(plain); with > without {
			t.Errorf("Accept %q: %.0f allocations with pages, %.0f without", accept, with, without)
		}
	}
}

func BenchmarkHandler304WithPages(b *testing.B) {
	for _, bc := range []struct{ name, accept string }{{"no Accept", ""}, {"reader Accept", readerAccept}, {"curl", "*/*"}} {
		b.Run(bc.name, func(b *testing.B) {
			h, _, cache, _ := newPageServer(b)
			e, err := cache.Get(context.Background(), feeds.AllSlug, feeds.FormatRSS, 50)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/feeds/all.rss", nil)
			r.Header.Set("If-None-Match", e.ETag)
			if bc.accept != "" {
				r.Header.Set("Accept", bc.accept)
			}
			benchServe(b, h, r, 304)
		})
	}
}

// Metrics count a page under the format of the URL it answers.
func TestHandler_PageResponsesAreCounted(t *testing.T) {
	h, _, _, _ := newPageServer(t)
	fh := h.(*feeds.Handler)
	seen := map[string]int{}
	fh.Observe = func(f feeds.Format, code int) { seen[fmt.Sprintf("%s %d", f, code)]++ }
	tab := []string{"Sec-Fetch-Dest", "document"}
	etag := serve(fh, "GET", "/feeds/press.atom", tab...).Header().Get("Etag")
	serve(fh, "GET", "/feeds/press.atom", append([]string{"If-None-Match", etag}, tab...)...)
	serve(fh, "GET", "/feeds/press.json", tab...)
	serve(fh, "GET", "/feeds/sports.rss", tab...)
	want := map[string]int{"atom 200": 1, "atom 304": 1, "json 200": 1, " 404": 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}
