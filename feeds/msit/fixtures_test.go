package msit

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// fixtureWant is a page's truth as written beside it in NAME.want.json:
// what a browser shows of it.
type fixtureWant struct {
	Base string `json:"base"`
	// List pages.
	Rows []struct {
		ID         int64  `json:"id"`
		Title      string `json:"title"`
		Date       string `json:"date"`
		Department string `json:"department"`
		Thumbnail  string `json:"thumbnail"`
	} `json:"rows"`
	LastPage int    `json:"last_page"`
	BBSSeqNo string `json:"bbs_seq_no"`
	// Post pages.
	Title       string `json:"title"`
	Date        string `json:"date"`
	Department  string `json:"department"`
	Attachments []struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"attachments"`
	BodyContains  []string `json:"body_contains"`
	SummaryStarts string   `json:"summary_starts"`
}

// fixtureBoard is the board a fixture's address belongs to.
func fixtureBoard(t *testing.T, base *url.URL) feeds.Board {
	t.Helper()
	q := base.Query()
	b := feeds.Board{Slug: "fixture", MID: q.Get("mId"), MPID: q.Get("mPid"), BBSSeqNo: q.Get("bbsSeqNo"), SCode: q.Get("sCode")}
	if strings.HasPrefix(base.Path, "/bbs/") {
		b.Dir, b.Lang = "/bbs", "ko"
	}
	b.Gallery = b.MID == "5" // Photo News
	return b
}

func day(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	d, err := time.ParseInLocation(time.DateOnly, s, feeds.KST)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFixtures reads every page of testdata that has a NAME.want.json
// beside it (pages in the shapes seen on the live site, written from
// msit-site.md) and checks the parser gets exactly that truth.
func TestFixtures(t *testing.T) {
	wants, err := filepath.Glob(filepath.Join("testdata", "*.want.json"))
	if err != nil || len(wants) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, wf := range wants {
		name := strings.TrimSuffix(filepath.Base(wf), ".want.json")
		t.Run(name, func(t *testing.T) {
			var want fixtureWant
			if err := json.Unmarshal(readTestdata(t, name+".want.json"), &want); err != nil {
				t.Fatal(err)
			}
			base := mustURL(t, want.Base)
			board := fixtureBoard(t, base)
			page := readTestdata(t, name+".html")
			if strings.HasPrefix(name, "list_") {
				checkListFixture(t, base, board, page, want)
			} else {
				checkDetailFixture(t, base, board, page, want)
			}
		})
	}
}

func checkListFixture(t *testing.T, base *url.URL, board feeds.Board, page []byte, want fixtureWant) {
	lp, err := ParseList(base, board, page)
	if err != nil {
		t.Fatalf("ParseList: %v", err)
	}
	if len(lp.Rows) != len(want.Rows) {
		t.Errorf("%d rows, want %d: %+v", len(lp.Rows), len(want.Rows), lp.Rows)
	}
	for i := range min(len(lp.Rows), len(want.Rows)) {
		got, w := lp.Rows[i], want.Rows[i]
		if got.ID != w.ID || got.Title != w.Title || !got.Published.Equal(day(t, w.Date)) || got.Department != w.Department || got.Thumbnail != w.Thumbnail {
			t.Errorf("row %d:\n got %d %q %v %q %q\nwant %d %q %s %q %q", i, got.ID, got.Title, got.Published, got.Department, got.Thumbnail,
				w.ID, w.Title, w.Date, w.Department, w.Thumbnail)
		}
	}
	if lp.LastPage != want.LastPage || lp.BBSSeqNo != want.BBSSeqNo {
		t.Errorf("last page %d bbsSeqNo %q, want %d %q", lp.LastPage, lp.BBSSeqNo, want.LastPage, want.BBSSeqNo)
	}
}

func checkDetailFixture(t *testing.T, base *url.URL, board feeds.Board, page []byte, want fixtureWant) {
	it, err := ParseDetail(base, board, 1, page)
	if err != nil {
		t.Fatalf("ParseDetail: %v", err)
	}
	if it.Title != want.Title || !it.Published.Equal(day(t, want.Date)) || it.Department != want.Department {
		t.Errorf("got %q %v %q, want %q %s %q", it.Title, it.Published, it.Department, want.Title, want.Date, want.Department)
	}
	if len(it.Attachments) != len(want.Attachments) {
		t.Errorf("attachments %+v, want %+v", it.Attachments, want.Attachments)
	} else {
		for i, a := range want.Attachments {
			if it.Attachments[i].Name != a.Name || it.Attachments[i].URL != a.URL {
				t.Errorf("attachment %d: %q %s, want %q %s", i, it.Attachments[i].Name, it.Attachments[i].URL, a.Name, a.URL)
			}
		}
	}
	for _, s := range want.BodyContains {
		if !strings.Contains(it.Body, s) {
			t.Errorf("body lacks %q:\n%s", s, it.Body)
		}
	}
	if !strings.HasPrefix(it.Summary, want.SummaryStarts) {
		t.Errorf("summary %q, want it to start %q", it.Summary, want.SummaryStarts)
	}
}
