package web

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
)

// newKoreanEnv is newEnv with a board of the Korean site added by
// configuration, given to the store, the subscribers and the pages alike as
// serve does, and one post of it stored.
func newKoreanEnv(t *testing.T) *env {
	t.Helper()
	reg, err := feeds.NewRegistry(feeds.Board{Slug: "bodo", Name: "보도자료", MID: "307", MPID: "208", BBSSeqNo: "94",
		SCode: "user", Dir: "/bbs", Lang: "ko"})
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, func(s *Server) {
		s.Boards = reg
		s.Store.Registry = reg
		s.Subscribers.Boards = reg
		it := feeds.Item{Board: "bodo", ID: 3186887, Title: "2026년도 업무계획 발표",
			URL:       "https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887",
			Published: time.Date(2026, 10, 1, 0, 0, 0, 0, feeds.KST)}
		if _, err := s.Store.Save(context.Background(), it, "list-hash"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfiguredBoard_Pages(t *testing.T) {
	e := newKoreanEnv(t)

	t.Run("the index has a row, feed links and a checkbox for it", func(t *testing.T) {
		code, _, body := e.get("/")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for _, want := range []string{
			`<td lang="ko">보도자료</td><td class="num">1</td>`,
			`href="/feeds/bodo.atom"`,
			`<link rel="alternate" type="application/atom+xml" title="MSIT 보도자료 (Atom)" href="` + e.base + `/feeds/bodo.atom">`,
			`<label class="check" lang="ko"><input type="checkbox" name="board" value="bodo" checked> 보도자료</label>`,
			`2026년도 업무계획 발표</a> <span class="meta">보도자료 · 2026-10-01`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("index lacks %s", want)
			}
		}
		if strings.Index(body, `value="newsletter"`) > strings.Index(body, `value="bodo"`) {
			t.Error("the configured board comes before the built-in ones")
		}
	})

	t.Run("its feed is served in Korean", func(t *testing.T) {
		code, _, body := e.get("/feeds/bodo.atom")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		f, err := gofeed.NewParser().Parse(strings.NewReader(body))
		if err != nil || f.Language != "ko" || len(f.Items) != 1 {
			t.Fatalf("feed: %v %+v", err, f)
		}
	})

	t.Run("the OPML list has it", func(t *testing.T) {
		code, _, body := e.get(OPMLPath + "?format=json")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		var doc struct {
			Outline []struct {
				Text    string `xml:"text,attr"`
				XMLURL  string `xml:"xmlUrl,attr"`
				HTMLURL string `xml:"htmlUrl,attr"`
			} `xml:"body>outline"`
		}
		if err := xml.NewDecoder(bytes.NewReader([]byte(body))).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Outline) != len(feeds.BoardSlugs())+2 {
			t.Fatalf("%d outlines, want the five, bodo and all", len(doc.Outline))
		}
		o := doc.Outline[len(feeds.BoardSlugs())]
		if o.Text != "MSIT — 보도자료" || o.XMLURL != e.base+"/feeds/bodo.json" || o.HTMLURL != "https://www.msit.go.kr/bbs/list.do?sCode=user&mPid=208&mId=307" {
			t.Errorf("outline %+v", o)
		}
	})

	t.Run("a visitor can subscribe to it alone", func(t *testing.T) {
		e.subscribe("ko@example.org", "bodo")
		if got := e.sub("ko@example.org").Boards; len(got) != 1 || got[0] != "bodo" {
			t.Errorf("boards %v, want [bodo]", got)
		}
	})

	t.Run("every board checked, the configured one included, means all", func(t *testing.T) {
		e.subscribe("all@example.org", append(feeds.BoardSlugs(), "bodo")...)
		if got := e.sub("all@example.org").Boards; got != nil {
			t.Errorf("boards %v, want nil (all)", got)
		}
	})

	t.Run("the preferences page offers it and saves it", func(t *testing.T) {
		s := e.addSub("reader@example.org", mailer.StatusActive, "press")
		path := "/preferences/" + e.sign(mailer.PurposePreferences, s.UID)
		_, _, body := e.get(path)
		if !strings.Contains(body, `<label class="check" lang="ko"><input type="checkbox" name="board" value="bodo"> 보도자료</label>`) {
			t.Errorf("preferences page lacks an unchecked bodo:\n%s", body)
		}
		code, _, body := e.post(path, url.Values{"action": {"save"}, "board": {"bodo", "press"}})
		if code != http.StatusOK {
			t.Fatalf("status %d\n%s", code, body)
		}
		if got := strings.Join(e.sub("reader@example.org").Boards, ","); got != "press,bodo" {
			t.Errorf("boards %q, want press,bodo", got)
		}
	})
}

func TestConfiguredBoard_UnknownWithoutTheRegistry(t *testing.T) {
	e := newEnv(t, nil)
	code, _, _ := e.post("/subscribe", e.subscribeForm("x@example.org", "bodo"))
	if code != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422", code)
	}
	if code, _, _ := e.get("/feeds/bodo.rss"); code != http.StatusNotFound {
		t.Errorf("feed status %d, want 404", code)
	}
}
