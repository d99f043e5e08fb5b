package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// runErr runs one msitfeed command and returns its error, stdout and stderr.
func (p *pipeline) runErr(args ...string) (error, string, string) {
	var out, errb bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errb, p.env)
	err := m.Run(context.Background(), args)
	return err, out.String(), errb.String()
}

// faultyBoard wraps the site so that list pages of board mId answer with
// fault while on is set.
func faultyBoard(mid string, on *atomic.Bool, fault func(w http.ResponseWriter)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if on.Load() && strings.HasSuffix(r.URL.Path, "/list.do") && r.URL.Query().Get("mId") == mid {
				fault(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestCrawlFaultsLoseNothing(t *testing.T) {
	cases := []struct {
		name      string
		fault     func(w http.ResponseWriter)
		wantError string
	}{
		{"server errors", func(w http.ResponseWriter) { http.Error(w, "down", http.StatusServiceUnavailable) }, "503"},
		{"rate limited", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, "429"},
		{"a redesigned page with no rows", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<html><body><div id="wrap"><h2>Press Releases</h2><div class="new_board_grid">` +
				strings.Repeat(`<div class="card"><p>Something changed here</p></div>`, 10) + `</div></div></body></html>`))
		}, "press"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var on atomic.Bool
			posts := msittest.SamplePosts()
			p := newPipelineWith(t, posts, faultyBoard("4", &on, tc.fault))
			p.run("crawl")
			base := p.serve()
			before := get(t, base+"/feeds/press.atom")
			beforeAll := p.run("boards")

			on.Store(true)
			p.site.AddPost(msittest.Post{Board: "notice", ID: 4000, Title: "A new notice", Date: "2024-11-30", Department: "X", BodyHTML: "<p>x</p>"})
			p.site.AddPost(msittest.Post{Board: "press", ID: 1400, Title: "A press release nobody can see yet", Date: "2024-11-30", Department: "X", BodyHTML: "<p>x</p>"})
			err, out, _ := p.runErr("crawl")
			if err == nil {
				t.Fatalf("crawl with a failing board succeeded:\n%s", out)
			}
			if code := ExitCode(err, &bytes.Buffer{}); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(err.Error(), "press") || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("error %q does not name the board and cause (%s)", err, tc.wantError)
			}
			// Other boards went on: the new notice is stored.
			if !strings.Contains(string(get(t, base+"/feeds/notice.atom")), "A new notice") {
				t.Error("the notice board did not go on while press failed")
			}
			// The failing board's feed is exactly as it was.
			if after := get(t, base+"/feeds/press.atom"); !bytes.Equal(before, after) {
				t.Error("press feed changed after a failed crawl")
			}
			boards := p.run("boards")
			var pressLine string
			for _, l := range strings.Split(boards, "\n") {
				if strings.HasPrefix(l, "press") {
					pressLine = l
				}
			}
			if !strings.Contains(pressLine, "error:") || !strings.Contains(pressLine, " 25 ") {
				t.Errorf("boards does not show the failure with the 25 posts kept:\n%s\nbefore:\n%s", boards, beforeAll)
			}
		})
	}
}

func TestBadConfigurationAndDatabase(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("not a database"), 0o600)
	cases := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantMsg  string
	}{
		{"unknown command", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"no command", nil, nil, 2, "no command"},
		{"unknown board", []string{"crawl", "--board", "sports"}, nil, 2, "unknown board"},
		{"negative pages", []string{"crawl", "--pages", "-1"}, nil, 2, "--pages"},
		{"bad rate", []string{"boards"}, []string{"MSITFEED_SOURCE_RATE=0"}, 2, "source.rate"},
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.toml"), "boards"}, nil, 2, "nope.toml"},
		{"database is not a database", []string{"boards"}, []string{"MSITFEED_DATABASE=" + junk}, 1, junk},
		{"export without dir", []string{"feeds", "export"}, nil, 2, "--dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"MSITFEED_DATABASE=" + filepath.Join(t.TempDir(), "x.db")}, tc.env...)
			var out, errb bytes.Buffer
			err := NewMain(strings.NewReader(""), &out, &errb, env).Run(context.Background(), tc.args)
			var msg bytes.Buffer
			code := ExitCode(err, &msg)
			if code != tc.wantCode {
				t.Fatalf("exit %d (%v), want %d", code, err, tc.wantCode)
			}
			line := msg.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, tc.wantMsg) {
				t.Fatalf("message %q: want one line naming %q", line, tc.wantMsg)
			}
		})
	}
	if b, _ := os.ReadFile(junk); string(b) != "not a database" {
		t.Fatal("a failed open changed the file")
	}
}

func TestExportWritesEveryFeed(t *testing.T) {
	p := newPipeline(t, msittest.SamplePosts())
	p.run("crawl")
	dir := filepath.Join(t.TempDir(), "public")
	p.run("feeds", "export", "--dir", dir)
	for _, b := range append(feeds.BoardSlugs(), feeds.AllSlug) {
		for _, f := range []string{"rss", "atom", "json"} {
			body, err := os.ReadFile(filepath.Join(dir, b+"."+f))
			if err != nil || len(body) < 500 {
				t.Fatalf("%s.%s: %v (%d bytes)", b, f, err, len(body))
			}
		}
	}
	err, _, _ := p.runErr("feeds", "export", "--dir", dir+"/../../etc")
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatal("export into a path with .. was accepted")
	}
}
