package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// Through serve, after a crawl of the sample site: a filtered feed holds
// only the posts whose title or summary match, names itself with its query,
// and /metrics counts the filtered documents the cache holds.
func TestPipeline_FilteredFeedsThroughServe(t *testing.T) {
	posts := msittest.SamplePosts()
	p := newPipeline(t, posts)
	p.run("crawl")
	base := p.serve()

	all, err := gofeed.NewParser().Parse(bytes.NewReader(get(t, base+"/feeds/all.atom?limit=500")))
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, it := range all.Items {
		if strings.Contains(strings.ToLower(it.Title), "budget") {
			want++
		}
	}
	if want == 0 {
		t.Fatal("no sample post has budget in its title; pick another word")
	}
	const query = "filter=BUDGET&filter_case_sensitive=false&limit=500"
	for range 2 { // the second is served from the cache
		f, err := gofeed.NewParser().Parse(bytes.NewReader(get(t, base+"/feeds/all.atom?"+query)))
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Items) != want || !strings.HasSuffix(f.FeedLink, "/feeds/all.atom?limit=500&filter=BUDGET&filter_case_sensitive=false") {
			t.Fatalf("%d items (want %d), self %s", len(f.Items), want, f.FeedLink)
		}
		for _, it := range f.Items {
			if !strings.Contains(strings.ToLower(it.Title+" "+it.Description), "budget") {
				t.Errorf("%q does not match", it.Title)
			}
		}
	}
	metrics := string(get(t, base+"/metrics"))
	for _, line := range []string{"msitfeed_feed_filtered_cached 1\n", "msitfeed_feed_filtered_builds_total 1\n", "msitfeed_feed_filtered_evictions_total 0\n"} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
