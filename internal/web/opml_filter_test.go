package web

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
)

// The filter and limit given to /feeds.opml are carried onto every feed it
// lists, and each of those feeds is the filtered one, naming itself by the
// same URL.
func TestOPML_CarriesTheFilterOntoEveryFeed(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.base + OPMLPath + "?format=atom&filter=6g|quantum&filter_case_sensitive=false&limit=5&utm_source=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var doc struct {
		Outline []struct {
			XMLURL string `xml:"xmlUrl,attr"`
		} `xml:"body>outline"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Outline) != len(feeds.BoardSlugs())+1 {
		t.Fatalf("%d outlines", len(doc.Outline))
	}
	const query = ".atom?limit=5&filter=6g%7Cquantum&filter_case_sensitive=false"
	for _, o := range doc.Outline {
		if !strings.HasPrefix(o.XMLURL, e.base+"/feeds/") || !strings.HasSuffix(o.XMLURL, query) {
			t.Errorf("outline %s, want %s/feeds/{board}%s", o.XMLURL, e.base, query)
			continue
		}
		f, err := gofeed.NewParser().ParseURL(o.XMLURL)
		if err != nil {
			t.Fatalf("%s: %v", o.XMLURL, err)
		}
		want := 0
		switch {
		case strings.Contains(o.XMLURL, "/press."), strings.Contains(o.XMLURL, "/all."):
			want = 2 // the 6G strategy and the quantum roadmap
		}
		if len(f.Items) != want || f.FeedLink != o.XMLURL {
			t.Errorf("%s: %d items, self %s; want %d and the outline's URL", o.XMLURL, len(f.Items), f.FeedLink, want)
		}
	}
}

func TestOPML_RefusesBadFilters(t *testing.T) {
	e := newEnv(t, nil)
	for query, want := range map[string]string{
		"filter=(6G":                            `bad filter "(6G": missing closing )`,
		"filter_time=week":                      `bad filter_time "week"`,
		"limit=0&filter=6G":                     `bad limit "0"`,
		"filterout=" + strings.Repeat("x", 600): "longer than the 512 allowed",
	} {
		resp, err := http.Get(e.base + OPMLPath + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), want) || strings.Count(strings.TrimSpace(string(body)), "\n") > 0 {
			t.Errorf("%s: %d %q, want 400 with %q on one line", query, resp.StatusCode, body, want)
		}
	}
}

// A browser tab opening a filtered feed gets its page: the filter said in
// words, the filtered URL to copy, the other formats with the same filter
// and only the posts it keeps.
func TestFeedPage_OfAFilteredFeed(t *testing.T) {
	e := newEnv(t, nil)
	code, _, page := e.do(e.tab("/feeds/press.rss?filter=Quantum|6G&filterout=budget&filter_case_sensitive=false"))
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	const q = "filter=Quantum%7C6G&amp;filterout=budget&amp;filter_case_sensitive=false"
	for _, want := range []string{
		`Filtered: only the posts kept by <code>filter=Quantum|6G</code>, <code>filterout=budget</code>, <code>filter_case_sensitive=false</code>.`,
		`<a href="` + e.base + `/feeds/press.rss">The whole feed</a>`,
		`value="` + e.base + `/feeds/press.rss?` + q + `"`,
		`href="` + e.base + `/feeds/press.atom?` + q + `">Atom</a>`,
		`MSIT announces 6G strategy</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page has no %s", want)
		}
	}
	if strings.Contains(page, "Quantum computing roadmap") {
		t.Error("the page lists a post filterout drops")
	}
	if _, _, plain := e.do(e.tab("/feeds/press.rss")); strings.Contains(plain, "feed-filter") {
		t.Error("the page of the whole feed says it is filtered")
	}
}
