package msit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// newFakeSource serves site on a test server and returns a fast Source for
// it.
func newFakeSource(t *testing.T, site *msittest.Site) (*msit.Source, *url.URL) {
	t.Helper()
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := msit.NewClient(msit.Options{BaseURL: srv.URL, Rate: 10000, HTTPClient: srv.Client(),
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	return msit.NewSource(c, base), base
}

func sampleDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation("2006-01-02", s, feeds.KST)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSourceReadsBackTheFakeSite checks the parsers against the fake site's
// truth, through discovery, every list page and every post.
func TestSourceReadsBackTheFakeSite(t *testing.T) {
	site := msittest.NewSite(msittest.SamplePosts())
	src, base := newFakeSource(t, site)
	ctx := context.Background()

	boards, err := src.Discover(ctx, feeds.DefaultBoards())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range msittest.Boards() {
		if boards[i].MID != want.MID || boards[i].MPID != want.MPID {
			t.Errorf("discovered %s as mId=%s mPid=%s, want %s %s", want.Slug, boards[i].MID, boards[i].MPID, want.MID, want.MPID)
		}
	}

	for i, board := range boards {
		siteBoard := msittest.Boards()[i]
		truth := site.Posts(board.Slug)
		t.Run(board.Slug, func(t *testing.T) {
			var rows []feeds.ListRow
			for page := 1; ; page++ {
				lp, err := src.List(ctx, board, page)
				if err != nil {
					t.Fatal(err)
				}
				if lp.LastPage != 3 {
					t.Errorf("page %d: LastPage = %d, want 3", page, lp.LastPage)
				}
				if lp.BBSSeqNo != siteBoard.BBSSeqNo {
					t.Errorf("page %d: BBSSeqNo = %q, want %q", page, lp.BBSSeqNo, siteBoard.BBSSeqNo)
				}
				rows = append(rows, lp.Rows...)
				if page >= lp.LastPage {
					break
				}
			}
			if len(rows) != len(truth) {
				t.Fatalf("%d rows, want %d", len(rows), len(truth))
			}
			for j, p := range truth {
				want := feeds.ListRow{ID: p.ID, Title: p.Title, Published: sampleDate(t, p.Date), Department: p.Department}
				if p.Thumbnail != "" {
					want.Thumbnail = base.String() + p.Thumbnail
				}
				if got := rows[j]; got != want {
					t.Errorf("row %d:\n got %+v\nwant %+v", j, got, want)
				}
			}

			for _, p := range truth {
				item, err := src.Detail(ctx, board, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				wantURL := msit.CanonicalURL(base, siteBoard.MID, siteBoard.MPID, siteBoard.BBSSeqNo, p.ID)
				if item.Title != p.Title || !item.Published.Equal(sampleDate(t, p.Date)) || item.Department != p.Department || item.URL != wantURL {
					t.Errorf("post %d: got %q %v %q %s\nwant %q %s %q %s", p.ID, item.Title, item.Published, item.Department, item.URL,
						p.Title, p.Date, p.Department, wantURL)
				}
				if len(item.Attachments) != len(p.Attachments) {
					t.Fatalf("post %d: %d attachments, want %d", p.ID, len(item.Attachments), len(p.Attachments))
				}
				for k, a := range p.Attachments {
					want := feeds.Attachment{
						Name: a.Name,
						URL:  msit.DownloadURL(base, itoa(a.FileNo), itoa(int64(a.Ord))),
						Type: msit.AttachmentType(a.Ext),
					}
					if item.Attachments[k] != want {
						t.Errorf("post %d attachment %d:\n got %+v\nwant %+v", p.ID, k, item.Attachments[k], want)
					}
				}
				if strings.Contains(item.Body, "<script") || item.Summary == "" {
					t.Errorf("post %d: body %q summary %q", p.ID, item.Body, item.Summary)
				}
				if board.Gallery && !strings.HasPrefix(item.Thumbnail, base.String()+"/upload/") {
					t.Errorf("post %d: detail thumbnail %q", p.ID, item.Thumbnail)
				}
			}
		})
	}
	if got, want := src.Requests(), site.Requests(); got != want {
		t.Errorf("client counted %d requests, site %d", got, want)
	}
	if n := site.RequestsOf(msittest.KindRobots); n != 1 {
		t.Errorf("robots.txt fetched %d times, want once", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSourceSeesEdits(t *testing.T) {
	site := msittest.NewSite(msittest.SamplePosts())
	src, _ := newFakeSource(t, site)
	ctx := context.Background()
	press := msittest.Boards()[1]

	const title = "Edited: “K-Science” 과학 & more 😀"
	if !site.EditPost("press", 1284, title, "<p>New body</p>") {
		t.Fatal("EditPost: post 1284 not found")
	}
	site.AddPost(msittest.Post{Board: "press", ID: 1290, Title: "Brand new post", Date: "2024-11-30", Department: "AI Policy Division", BodyHTML: "<p>x</p>"})

	lp, err := src.List(ctx, press, 1)
	if err != nil {
		t.Fatal(err)
	}
	if lp.Rows[0].ID != 1290 || lp.Rows[1].Title != title {
		t.Errorf("rows after edit: %+v %+v", lp.Rows[0], lp.Rows[1])
	}
	item, err := src.Detail(ctx, press, 1284)
	if err != nil {
		t.Fatal(err)
	}
	if item.Title != title || item.Body != "<p>New body</p>" {
		t.Errorf("detail after edit: %q %q", item.Title, item.Body)
	}
}

func TestSourceErrorsNameTheWork(t *testing.T) {
	var fail atomic.Int32
	site := msittest.NewSite(msittest.SamplePosts(), msittest.WithFault(func(r *http.Request) (int, bool) {
		if strings.HasSuffix(r.URL.Path, "list.do") && r.FormValue("pageIndex") == "2" {
			return int(fail.Load()), fail.Load() != 0
		}
		return 0, false
	}))
	src, base := newFakeSource(t, site)
	ctx := context.Background()
	press := msittest.Boards()[1]

	fail.Store(http.StatusNotFound)
	_, err := src.List(ctx, press, 2)
	want := "list press page 2: fetch " + msit.ListURL(base, press, 2) + ": status 404"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	var se *msit.StatusError
	if !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("error %v does not carry a *StatusError 404", err)
	}

	fail.Store(http.StatusServiceUnavailable)
	before := site.RequestsOf(msittest.KindList)
	_, err = src.List(ctx, press, 2)
	if !errors.As(err, &se) || se.Status != 503 {
		t.Errorf("error = %v, want status 503", err)
	}
	if n := site.RequestsOf(msittest.KindList) - before; n != 1+msit.DefaultRetries {
		t.Errorf("%d attempts, want %d", n, 1+msit.DefaultRetries)
	}

	_, err = src.List(ctx, feeds.Board{Slug: "notice", Name: "Notice"}, 1)
	if !errors.Is(err, msit.ErrUnresolved) {
		t.Errorf("unresolved board: error = %v", err)
	}
	_, err = src.Detail(ctx, press, 999999)
	if err == nil || !strings.HasPrefix(err.Error(), "detail press 999999: fetch ") || !strings.HasSuffix(err.Error(), "status 404") {
		t.Errorf("missing post: error = %v", err)
	}
}

// Source is what the crawl loop in feeds consumes.
var _ feeds.Source = (*msit.Source)(nil)

// BenchmarkSourceList measures a list page through the whole client (rate
// limiter, robots.txt, HTTP) against the fake site.
func BenchmarkSourceList(b *testing.B) {
	site := msittest.NewSite(msittest.SamplePosts())
	srv := httptest.NewServer(site)
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	c := msit.NewClient(msit.Options{BaseURL: srv.URL, Rate: 1e9, HTTPClient: srv.Client()})
	src := msit.NewSource(c, base)
	press := msittest.Boards()[1]
	ctx := context.Background()
	for b.Loop() {
		if _, err := src.List(ctx, press, 1); err != nil {
			b.Fatal(err)
		}
	}
}
