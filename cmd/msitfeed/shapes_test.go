package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// postFacts is what a feed must say of one post of the site, in every shape
// the site can take.
type postFacts struct {
	title, link, date, dept, bodyText string
	attachments                       []string
}

func shapeTruth(siteURL string, posts []msittest.Post) map[string]postFacts {
	boards := map[string]feeds.Board{}
	for _, b := range msittest.Boards() {
		boards[b.Slug] = b
	}
	out := map[string]postFacts{}
	for _, p := range posts {
		b := boards[p.Board]
		f := postFacts{
			title: p.Title, date: p.Date, dept: p.Department,
			link: fmt.Sprintf("%s/eng/bbs/view.do?sCode=eng&mId=%s&mPid=%s&bbsSeqNo=%s&nttSeqNo=%d", siteURL, b.MID, b.MPID, b.BBSSeqNo, p.ID),
			// The first sentence of every sample body.
			bodyText: "announced on " + p.Date,
		}
		for _, a := range p.Attachments {
			f.attachments = append(f.attachments, fmt.Sprintf("%s/ssm/file/fileDown.do?atchFileNo=%d&fileOrd=%d&fileBtn=A", siteURL, a.FileNo, a.Ord))
		}
		out[feeds.ItemID(p.Board, p.ID)] = f
	}
	return out
}

// TestPipeline_EveryShapeOfTheSite crawls the fake site in each shape its
// English boards have been seen in, serves the feeds and reads every one
// back: each post's id, title, date, department, body and attachments equal
// the site's, and no summary repeats the title its body opens with.
func TestPipeline_EveryShapeOfTheSite(t *testing.T) {
	for _, shape := range []msittest.Shape{msittest.ShapeClassic, msittest.ShapeEnglish2026, msittest.ShapeKorean} {
		t.Run(shape.String(), func(t *testing.T) {
			posts := msittest.SamplePosts()
			p := newPipelineWith(t, posts, nil, msittest.WithShape(shape))
			out := p.run("crawl")
			if strings.Contains(out, "DEGRADED") || strings.Contains(out, "FAILED") {
				t.Fatalf("crawl of the %s shape:\n%s", shape, out)
			}
			want := shapeTruth(p.siteURL, posts)
			base := p.serve()
			parser := gofeed.NewParser()
			f, err := parser.Parse(bytes.NewReader(get(t, base+"/feeds/all.json?limit=500")))
			if err != nil {
				t.Fatalf("gofeed: %v", err)
			}
			if len(f.Items) != len(want) {
				t.Fatalf("%d items, want %d", len(f.Items), len(want))
			}
			for _, it := range f.Items {
				w, ok := want[it.GUID]
				if !ok {
					t.Fatalf("item id %q is not a post of the site", it.GUID)
				}
				var dept string
				if len(it.Authors) > 0 {
					dept = it.Authors[0].Name
				}
				var files []string
				for _, e := range it.Enclosures {
					files = append(files, e.URL)
				}
				var date string
				if it.PublishedParsed != nil {
					date = it.PublishedParsed.In(feeds.KST).Format("2006-01-02")
				}
				if it.Title != w.title || it.Link != w.link || date != w.date || dept != w.dept ||
					!strings.Contains(it.Content, w.bodyText) || !slices.Equal(files, w.attachments) {
					t.Errorf("%s:\n got title %q link %q date %s dept %q files %v body %.80q\nwant title %q link %q date %s dept %q files %v body with %q",
						it.GUID, it.Title, it.Link, date, dept, files, it.Content, w.title, w.link, w.date, w.dept, w.attachments, w.bodyText)
				}
				if it.Description != "" && strings.HasPrefix(it.Description, it.Title) {
					t.Errorf("%s: summary repeats the title: %.80q", it.GUID, it.Description)
				}
			}
		})
	}
}

// TestPipeline_RedesignIsNotAnEdit: a list page that loses the department
// column, then gets it back, makes no post look edited: the two crawls
// cost one list request per board, and the run without the column says the
// board is degraded.
func TestPipeline_RedesignIsNotAnEdit(t *testing.T) {
	posts := msittest.SamplePosts()
	p := newPipelineWith(t, posts, nil, msittest.WithShape(msittest.ShapeEnglish2026))
	p.run("crawl")
	boards := len(msittest.Boards())
	for _, step := range []struct {
		name     string
		hide     bool
		degraded bool
	}{{"department column gone", true, true}, {"department column back", false, false}} {
		p.site.SetHideDepartment(step.hide)
		p.site.ResetRequests()
		out := p.run("crawl")
		if n := p.site.RequestsOf(msittest.KindView); n != 0 {
			t.Errorf("%s: %d post pages fetched again, want 0\n%s", step.name, n, out)
		}
		if n := p.site.RequestsOf(msittest.KindList); n != int64(boards) {
			t.Errorf("%s: %d list requests, want %d (one per board)", step.name, n, boards)
		}
		if got := strings.Count(out, "DEGRADED: department missing"); step.degraded && got != boards || !step.degraded && got != 0 {
			t.Errorf("%s: %d boards degraded by the department, want %v:\n%s", step.name, got, step.degraded, out)
		}
	}
	if out := p.run("boards"); strings.Contains(out, "degraded") {
		t.Errorf("boards still says degraded after the column came back:\n%s", out)
	}
}

// TestPipeline_MissingFieldsAreLoud: a post page without a date takes the
// list's date and says so; a list that suddenly shows nothing where posts
// were is a degraded run that changes nothing stored.
func TestPipeline_MissingFieldsAreLoud(t *testing.T) {
	posts := msittest.SamplePosts()
	p := newPipelineWith(t, posts, nil, msittest.WithShape(msittest.ShapeEnglish2026))
	p.run("crawl", "--board", "press")
	before := countItems(t, p.dbPath)

	for _, q := range p.site.Posts("press") {
		p.site.RemovePost("press", q.ID)
	}
	out := p.run("crawl", "--board", "press")
	if !strings.Contains(out, fmt.Sprintf("DEGRADED: the site lists nothing where %d posts were before", before)) {
		t.Errorf("crawl of an emptied board:\n%s", out)
	}
	if after := countItems(t, p.dbPath); after != before {
		t.Errorf("%d posts stored after the empty list, want %d", after, before)
	}
	if out := p.run("status"); !strings.Contains(out, "degraded: the site lists nothing") {
		t.Errorf("status does not say the board is degraded:\n%s", out)
	}
}

// TestPipeline_DigestRightAfterACrawl: an administrator crawls and at once
// runs digest send; the posts the crawl stored are in that digest, and the
// next send says there is nothing since it.
func TestPipeline_DigestRightAfterACrawl(t *testing.T) {
	today := time.Now().In(feeds.KST).Format(time.DateOnly)
	posts := []msittest.Post{
		{Board: "press", ID: 2001, Title: "Fresh press release", Date: today, Department: "AI Policy Division", BodyHTML: "<p>New.</p>"},
		{Board: "notice", ID: 2002, Title: "Fresh notice", Date: today, Department: "General Services Division", BodyHTML: "<p>New.</p>"},
	}
	p := newPipelineWith(t, posts, nil, msittest.WithShape(msittest.ShapeEnglish2026))
	mailDir := t.TempDir()
	p.env = append(p.env, "MSITFEED_SMTP_TRANSPORT=file", "MSITFEED_SMTP_DIR="+mailDir, "MSITFEED_MAIL_FROM=digest@feeds.test")
	p.run("subscribers", "add", "reader@example.org", "--confirmed")
	p.run("crawl")
	out := p.run("digest", "send")
	if !strings.Contains(out, "digest 1 created") || !strings.Contains(out, "2 posts") || !strings.Contains(out, "1 sent") {
		t.Fatalf("digest send right after the crawl:\n%s", out)
	}
	mails, _ := filepath.Glob(filepath.Join(mailDir, "*.eml"))
	if len(mails) != 1 {
		t.Fatalf("%d mails written, want 1", len(mails))
	}
	body, err := os.ReadFile(mails[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"Fresh press release", "Fresh notice"} {
		if !strings.Contains(string(body), title) {
			t.Errorf("the digest lacks %q", title)
		}
	}
	if out := p.run("digest", "send"); !strings.Contains(out, "nothing new to send: no posts since the last digest at ") {
		t.Errorf("second send: %s", out)
	}
}

// TestPipeline_ConfiguredBoardThatAnswers404 fails that board only: the
// crawl exits 1 naming it, the other boards' posts are all stored.
func TestPipeline_ConfiguredBoardThatAnswers404(t *testing.T) {
	posts := msittest.SamplePosts()
	p := newPipelineWith(t, posts, nil, msittest.WithShape(msittest.ShapeEnglish2026))
	p.withConfig("[boards.ko-gone]\nname = \"없는 게시판\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=999\"\n")
	var out, errb bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errb, p.env)
	err := m.Run(context.Background(), []string{"crawl"})
	if err == nil || !strings.Contains(err.Error(), "ko-gone") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("crawl with a board that answers 404: %v\n%s", err, out.String())
	}
	if n := countItems(t, p.dbPath); n != len(posts) {
		t.Errorf("%d posts stored, want all %d of the other boards", n, len(posts))
	}
	if strings.Count(out.String(), "FAILED") != 1 {
		t.Errorf("want exactly one failed board:\n%s", out.String())
	}
}
