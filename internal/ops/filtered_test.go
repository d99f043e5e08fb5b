package ops

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
)

func TestMetrics_FilteredFeeds(t *testing.T) {
	m := NewMetrics()
	st := feeds.FilteredStats{Entries: 7, Bytes: 12345, Builds: 40, Evicted: 33}
	m.WatchFilteredFeeds(func() feeds.FilteredStats { return st })
	scrape := func() string {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(w.Body)
		return string(b)
	}
	out := scrape()
	for _, want := range []string{
		"msitfeed_feed_filtered_cached 7\n",
		"msitfeed_feed_filtered_cached_bytes 12345\n",
		"msitfeed_feed_filtered_builds_total 40\n",
		"msitfeed_feed_filtered_evictions_total 33\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	st.Entries = 8
	if out := scrape(); !strings.Contains(out, "msitfeed_feed_filtered_cached 8\n") {
		t.Error("the gauge is not read at each scrape")
	}
}
