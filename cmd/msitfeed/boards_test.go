package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// withConfig writes text as the pipeline's configuration file.
func (p *pipeline) withConfig(text string) {
	p.t.Helper()
	path := filepath.Join(p.t.TempDir(), "msitfeed.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.env = append(p.env, "MSITFEED_CONFIG="+path)
}

// koreanPressConfig adds the fake site's Korean press releases board as a
// configured board, by the address a visitor's browser shows for its list.
const koreanPressConfig = `
[boards.ko-press]
name = "보도자료"
list_url = "/bbs/list.do;jsessionid=ABC?sCode=user&mPid=208&mId=307&bbsSeqNo=94&pageIndex=1"
lang = "ko"
`

func TestBoards_ConfigurationErrorsExitTwo(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"a list_url on another host", "[boards.x]\nname = \"x\"\nlist_url = \"https://example.org/bbs/list.do?mPid=1&mId=2\"\n", "boards.x.list_url"},
		{"a board without a name", "[boards.x]\nlist_url = \"/bbs/list.do?mPid=1&mId=2\"\n", "boards.x.name"},
		{"a built-in slug with a list_url", "[boards.notice]\nlist_url = \"/eng/bbs/list.do?mPid=2&mId=3\"\n", "boards.notice.list_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, nil)
			p.withConfig(tt.file)
			err, _, _ := p.runErr("boards")
			var stderr bytes.Buffer
			if code := ExitCode(err, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2: %v", code, err)
			}
			line := stderr.String()
			if !strings.Contains(line, tt.want) || strings.Count(line, "\n") != 1 {
				t.Errorf("stderr %q: want one line naming %s", line, tt.want)
			}
			if _, err := os.Stat(p.dbPath); err == nil {
				t.Error("the database was created for a configuration error")
			}
		})
	}
}

func TestBoards_ConfiguredBoardInEveryCommand(t *testing.T) {
	p := newPipeline(t, nil)
	p.withConfig(koreanPressConfig)

	t.Run("crawl --board refuses an unknown board naming the configured one", func(t *testing.T) {
		err, _, _ := p.runErr("crawl", "--board", "ko-notice")
		var ue *UsageError
		if err == nil || !strings.Contains(err.Error(), "ko-press") || !errors.As(err, &ue) {
			t.Errorf("err = %v, want a usage error listing ko-press", err)
		}
	})
	t.Run("subscribers add and list take the configured board", func(t *testing.T) {
		p.run("subscribers", "add", "ko@example.org", "--boards", "ko-press,press", "--confirmed")
		out := p.run("subscribers", "list", "--board", "ko-press", "--format", "csv")
		if !strings.Contains(out, "ko@example.org") || !strings.Contains(out, "press,ko-press") {
			t.Errorf("list:\n%s", out)
		}
		out = p.run("subscribers", "set", "ko@example.org", "--boards", "ko-press")
		if !strings.Contains(out, "ko-press") {
			t.Errorf("set: %s", out)
		}
		if err, _, _ := p.runErr("subscribers", "set", "ko@example.org", "--boards", "sports"); err == nil || !strings.Contains(err.Error(), "ko-press") {
			t.Errorf("set sports: %v, want an error listing ko-press", err)
		}
	})
	t.Run("boards and status list it after the five", func(t *testing.T) {
		out := p.run("boards")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 7 || !strings.HasPrefix(lines[6], "ko-press") || !strings.Contains(lines[6], "307") || !strings.Contains(lines[6], "208") {
			t.Errorf("boards:\n%s", out)
		}
		if out := p.run("status"); !strings.Contains(out, "  ko-press ") {
			t.Errorf("status lacks ko-press:\n%s", out)
		}
	})
	t.Run("feeds export writes its feeds", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "feeds")
		out := p.run("feeds", "export", "--dir", dir)
		if !strings.Contains(out, "wrote 21 feeds") {
			t.Errorf("export: %s", out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "ko-press.atom"))
		if err != nil || !bytes.Contains(b, []byte(`xml:lang="ko"`)) {
			t.Errorf("ko-press.atom: %v\n%.300s", err, b)
		}
	})
}

// TestConfiguredKoreanBoardEndToEnd configures a board of the Korean site,
// crawls the fake site (English boards and the Korean one), serves, and
// reads the Korean board's feeds back as a reader would: once with the
// bbsSeqNo in list_url, once learnt from the list page.
func TestConfiguredKoreanBoardEndToEnd(t *testing.T) {
	tests := []struct{ name, config string }{
		{"list_url with bbsSeqNo", koreanPressConfig},
		{"list_url without bbsSeqNo", strings.Replace(koreanPressConfig, "&bbsSeqNo=94", "", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { koreanEndToEnd(t, tt.config) })
	}
}

func koreanEndToEnd(t *testing.T, config string) {
	korean := msittest.KoreanSamplePosts()
	p := newPipeline(t, append(msittest.SamplePosts(), korean...))
	p.withConfig(config)
	out := p.run("crawl")
	if !strings.Contains(out, "ko-press") {
		t.Fatalf("crawl did not crawl ko-press:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ko-press") && !strings.HasSuffix(strings.TrimSpace(line), "ok") {
			t.Errorf("ko-press crawl: %s", line)
		}
	}

	var ko msittest.Post
	want := map[string]msittest.Post{}
	for _, post := range korean {
		if post.Board == "ko-press" {
			want[feeds.ItemID("ko-press", post.ID)] = post
			if post.ID > ko.ID {
				ko = post // the newest, on the index's latest posts
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the fake site has no ko-press posts")
	}
	base := p.serve()
	parser := gofeed.NewParser()
	for _, format := range feeds.Formats() {
		t.Run("ko-press."+string(format), func(t *testing.T) {
			f, err := parser.Parse(bytes.NewReader(get(t, base+"/feeds/ko-press."+string(format)+"?limit=500")))
			if err != nil {
				t.Fatal(err)
			}
			if f.Language != "ko" {
				t.Errorf("language %q, want ko", f.Language)
			}
			if len(f.Items) != len(want) {
				t.Errorf("%d items, want %d", len(f.Items), len(want))
			}
			for _, it := range f.Items {
				post, ok := want[it.GUID]
				if !ok {
					t.Errorf("item %q is not a ko-press post of the site", it.GUID)
					continue
				}
				if it.Title != post.Title {
					t.Errorf("%s: title %q, want %q", it.GUID, it.Title, post.Title)
				}
				day, _ := time.ParseInLocation("2006-01-02", post.Date, feeds.KST)
				if it.PublishedParsed == nil || !it.PublishedParsed.Equal(day) {
					t.Errorf("%s: published %q, want %s", it.GUID, it.Published, day)
				}
				link := fmt.Sprintf("%s/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=%d", p.siteURL, post.ID)
				if it.Link != link {
					t.Errorf("%s: link %q, want %q", it.GUID, it.Link, link)
				}
			}
		})
	}
	t.Run("a browser tab opening ko-press gets its page, in Korean", func(t *testing.T) { koreanPage(t, base, want) })
	t.Run("all has the Korean posts beside the English ones, and stays en", func(t *testing.T) {
		f, err := parser.Parse(bytes.NewReader(get(t, base+"/feeds/all.json?limit=500")))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, it := range f.Items {
			if _, ok := want[it.GUID]; ok {
				n++
			}
		}
		if n != len(want) || len(f.Items) != len(want)+len(msittest.SamplePosts()) || f.Language != "en" {
			t.Errorf("all: %d Korean of %d items, language %q", n, len(f.Items), f.Language)
		}
	})
	t.Run("the index and OPML list it", func(t *testing.T) {
		page := string(get(t, base+"/"))
		if !strings.Contains(page, `<td lang="ko">보도자료</td>`) || !strings.Contains(page, ko.Title) {
			t.Errorf("index lacks the ko-press row or its latest post")
		}
		var doc struct {
			Outline []struct {
				XMLURL string `xml:"xmlUrl,attr"`
			} `xml:"body>outline"`
		}
		if err := xml.Unmarshal(get(t, base+"/feeds.opml"), &doc); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, o := range doc.Outline {
			found = found || strings.HasSuffix(o.XMLURL, "/feeds/ko-press.rss")
		}
		if !found {
			t.Error("OPML lacks ko-press")
		}
	})
}
