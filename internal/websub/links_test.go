package websub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/websub"
)

// idleHub is a hub that is never started: enough for FeedLinks.
func idleHub(tb testing.TB) *websub.Hub {
	d, err := db.Open(context.Background(), filepath.Join(tb.TempDir(), "links.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	hub, err := websub.New(feeds.NewStore(d), websub.Options{Feeds: feeds.Options{BaseURL: baseURL}, Local: true})
	if err != nil {
		tb.Fatal(err)
	}
	return hub
}

// nopWriter is a ResponseWriter that allocates nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// The Link header costs a feed request no allocation: its value is built
// once per feed.
func TestFeedLinksAllocateNothing(t *testing.T) {
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	h := idleHub(t).FeedLinks(feed)
	r := httptest.NewRequest(http.MethodGet, "/feeds/press.rss", nil)
	w := &nopWriter{h: http.Header{}}
	if allocs := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); allocs != 0 {
		t.Errorf("a feed request through FeedLinks allocates %v times, want 0", allocs)
	}
	if got := w.h.Get("Link"); got != `<https://feeds.test/websub>; rel="hub", <https://feeds.test/feeds/press.rss>; rel="self"` {
		t.Errorf("Link = %q", got)
	}
}

// BenchmarkFeedLinks is what the Link header adds to a feed request.
func BenchmarkFeedLinks(b *testing.B) {
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	for _, mode := range []string{"without", "with"} {
		b.Run(mode, func(b *testing.B) {
			var h http.Handler = feed
			if mode == "with" {
				h = idleHub(b).FeedLinks(feed)
			}
			r := httptest.NewRequest(http.MethodGet, "/feeds/press.rss", nil)
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
