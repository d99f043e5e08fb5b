package main

import (
	"bytes"
	"html"
	"html/template"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// getAsTab fetches url as a browser tab opening it.
func getAsTab(t *testing.T, url string) (http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as a tab: %s: %s", url, resp.Status, body)
	}
	return resp.Header, string(body)
}

// Every feed URL that serve answers, opened in a browser tab, is a page of
// the posts the feed holds, with the attachments by file name; the same URL
// is still the feed for a reader.
func TestPipeline_BrowserTabsGetPages(t *testing.T) {
	posts := msittest.SamplePosts()
	p := newPipeline(t, posts)
	p.run("crawl")
	base := p.serve()
	for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, format := range feeds.Formats() {
			url := base + "/feeds/" + board + "." + string(format) + "?limit=500"
			t.Run(board+"."+string(format), func(t *testing.T) {
				hdr, page := getAsTab(t, url)
				if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Fatalf("Content-Type %q", ct)
				}
				for _, post := range posts {
					if board != feeds.AllSlug && post.Board != board {
						continue
					}
					if !strings.Contains(page, template.HTMLEscapeString(post.Title)) {
						t.Errorf("page lacks post %d %q", post.ID, post.Title)
					}
					for _, a := range post.Attachments {
						if !strings.Contains(page, ">"+template.HTMLEscapeString(a.Name)+"</a>") {
							t.Errorf("page lacks attachment %q of post %d", a.Name, post.ID)
						}
					}
				}
				// The URL under base_url, which is not the listener's.
				path := "/feeds/" + board + "." + string(format) + "?limit=500"
				if !strings.Contains(html.UnescapeString(page), path+`" readonly>`) {
					t.Errorf("page does not show its feed URL (%s) to copy", path)
				}
				f, err := gofeed.NewParser().ParseURL(url)
				if err != nil {
					t.Fatalf("the same URL for gofeed: %v", err)
				}
				if len(f.Items) == 0 && board != "newsletter" {
					t.Errorf("the feed for gofeed has no items")
				}
			})
		}
	}
}

// koreanPage checks the page a browser tab gets for a configured board.
func koreanPage(t *testing.T, base string, want map[string]msittest.Post) {
	t.Helper()
	hdr, page := getAsTab(t, base+"/feeds/ko-press.atom?limit=500")
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, s := range []string{`<h1 id="feed-title">MSIT — 보도자료</h1>`, `<ul class="items" id="items" lang="ko">`} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	for _, post := range want {
		if !strings.Contains(page, template.HTMLEscapeString(post.Title)) {
			t.Errorf("page lacks post %d %q", post.ID, post.Title)
		}
	}
	if _, err := gofeed.NewParser().Parse(bytes.NewReader(get(t, base+"/feeds/ko-press.atom"))); err != nil {
		t.Errorf("ko-press.atom for a reader: %v", err)
	}
}
