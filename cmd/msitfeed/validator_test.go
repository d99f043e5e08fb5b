package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// feedValidatorSrc finds the W3C Feed Validation Service's code, kept in
// ../shared/tools beside the repository (never copied into it).
func feedValidatorSrc(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
	}
	src := filepath.Join(filepath.Dir(dir), "shared", "tools", "feedvalidator", "src")
	if _, err := os.Stat(filepath.Join(src, "feedvalidator")); err != nil {
		t.Fatalf("the W3C feed validator is not at %s (shared/ beside the repository): %v", src, err)
	}
	return src
}

type validatorEvent struct {
	Level   string `json:"level"`
	Type    string `json:"type"`
	Line    any    `json:"line"`
	Column  any    `json:"column"`
	Element any    `json:"element"`
	Text    string `json:"text"`
}

// TestFeeds_W3CValidator runs the W3C Feed Validation Service's own code on
// every RSS and Atom feed (JSON Feed it does not read), for posts whose text
// holds "<" and quoted tags, posts of one day, and an empty board: no error
// and no warning.
func TestFeeds_W3CValidator(t *testing.T) {
	src := feedValidatorSrc(t)
	if out, err := exec.Command("/usr/bin/python3", "-c", "import lxml, html5lib, rdflib").CombinedOutput(); err != nil {
		t.Fatalf("the validator needs python3-lxml python3-html5lib python3-rdflib (apt-get install): %s", out)
	}
	var posts []msittest.Post
	for _, p := range msittest.SamplePosts() {
		if p.Board != "newsletter" { // an empty board
			posts = append(posts, p)
		}
	}
	posts = append(posts,
		msittest.Post{Board: "press", ID: 3001, Title: "Latency fell below 10 ms (i.e. < 10 ms)", Date: "2024-11-28", Department: "Network Policy Division",
			BodyHTML: "<p>Latency fell below 10 ms (i.e. &lt; 10 ms) on the new network.</p><p>Editors may write &lt;b&gt;bold&lt;/b&gt; & more.</p>"},
		msittest.Post{Board: "press", ID: 3002, Title: "A second post of the same day", Date: "2024-11-28", Department: "Network Policy Division",
			BodyHTML: "<p>Same day, another post.</p>"},
	)
	p := newPipelineWith(t, posts, nil)
	p.run("crawl")
	base := p.serve()

	// The empty board's feed says when it was last crawled, not 1970.
	resp, err := http.Get(base + "/feeds/newsletter.atom")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil || lm.Year() < 2000 {
		t.Errorf("empty feed: Last-Modified %q", resp.Header.Get("Last-Modified"))
	}

	dir := t.TempDir()
	args := []string{filepath.Join("testdata", "feedvalidator.py"), src}
	var names []string
	for _, board := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, format := range []string{"rss", "atom"} {
			path := filepath.Join(dir, board+"."+format)
			if err := os.WriteFile(path, get(t, base+"/feeds/"+board+"."+format), 0o600); err != nil {
				t.Fatal(err)
			}
			// Validated as found at its public address (base_url), which
			// its self link names.
			args = append(args, path+"=http://feeds.test/feeds/"+board+"."+format)
			names = append(names, path)
		}
	}
	out, err := exec.Command("/usr/bin/python3", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("validator: %v\n%s", err, stderr)
	}
	var results map[string][]validatorEvent
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("validator output: %v\n%s", err, out)
	}
	if len(results) != len(names) {
		t.Fatalf("validator read %d feeds, want %d", len(results), len(names))
	}
	for _, name := range names {
		for _, e := range results[name] {
			t.Errorf("%s: %s %s (line %v, column %v, element %v): %s", filepath.Base(name), e.Level, e.Type, e.Line, e.Column, e.Element, strings.TrimSpace(e.Text))
		}
	}
}
