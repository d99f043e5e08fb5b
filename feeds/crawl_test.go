package feeds

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// pageSource is a Source of one resolved board whose list and post pages
// are given by the test.
type pageSource struct {
	rows  []ListRow
	posts map[int64]Item
	reqs  int64
}

func (s *pageSource) Discover(ctx context.Context, boards []Board) ([]Board, error) {
	return boards, nil
}

func (s *pageSource) List(ctx context.Context, b Board, page int) (ListPage, error) {
	s.reqs++
	if page > 1 {
		return ListPage{}, nil
	}
	return ListPage{Rows: s.rows, LastPage: 1, HasDepartment: true}, nil
}

func (s *pageSource) Detail(ctx context.Context, b Board, id int64) (Item, error) {
	s.reqs++
	it, ok := s.posts[id]
	if !ok {
		return Item{}, fmt.Errorf("post %d: status 404", id)
	}
	return it, nil
}

func (s *pageSource) Requests() int64 { return s.reqs }

// TestCrawlFillsWhatThePostPageLacks: a post is never dropped for a missing
// date or department; its date comes from the list, else from the day it
// was first seen, and the item says which.
func TestCrawlFillsWhatThePostPageLacks(t *testing.T) { dbtest.Each(t, crawlFillsWhatThePostPageLacks) }

func crawlFillsWhatThePostPageLacks(t *testing.T, e db.Engine) {
	now := time.Date(2026, 10, 2, 20, 30, 0, 0, time.UTC) // 2026-10-03 05:30 in Seoul
	listDay := time.Date(2026, 10, 1, 0, 0, 0, 0, KST)
	pageDay := time.Date(2026, 9, 30, 0, 0, 0, 0, KST)
	tests := []struct {
		name         string
		row          ListRow
		page         Item
		wantDate     time.Time
		wantDateFrom string
		wantDept     string
		wantTitle    string
	}{
		{"the page's own date", ListRow{ID: 1, Title: "T", Published: listDay, Department: "L"},
			Item{Title: "T", Published: pageDay, Department: "P"}, pageDay, "", "P", "T"},
		{"no date on the page: the list's", ListRow{ID: 2, Title: "T", Published: listDay, Department: "L"},
			Item{Title: "T"}, listDay, DateFromList, "L", "T"},
		{"no date anywhere: the day first seen, in Seoul", ListRow{ID: 3, Title: "T"},
			Item{Title: "T", Department: "P"}, time.Date(2026, 10, 3, 0, 0, 0, 0, KST), DateFromSeen, "P", "T"},
		{"no title on the page: the list's", ListRow{ID: 4, Title: "List title", Published: listDay},
			Item{Published: pageDay}, pageDay, "", "", "List title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := openTestStore(t, e)
			store.Now = func() time.Time { return now }
			src := &pageSource{rows: []ListRow{tt.row}, posts: map[int64]Item{tt.row.ID: tt.page}}
			c := &Crawler{Store: store, Source: src, BackfillPages: 1}
			board := Board{Slug: "press", MID: "4", MPID: "2"}
			run := c.crawlBoard(context.Background(), board, 0)
			if run.Error != "" || run.New != 1 {
				t.Fatalf("run: %+v", run)
			}
			it, err := store.Item(context.Background(), "press", tt.row.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !it.Published.Equal(tt.wantDate) || it.DateFrom != tt.wantDateFrom || it.Department != tt.wantDept || it.Title != tt.wantTitle {
				t.Errorf("stored date %v from %q dept %q title %q; want %v from %q dept %q title %q",
					it.Published, it.DateFrom, it.Department, it.Title, tt.wantDate, tt.wantDateFrom, tt.wantDept, tt.wantTitle)
			}
		})
	}
}

// TestCrawlRevisitKeepsADateThePageNeverShowed: fetching a post again whose
// page has no date keeps the stored date and where it came from.
func TestCrawlRevisitKeepsADateThePageNeverShowed(t *testing.T) {
	dbtest.Each(t, crawlRevisitKeepsADateThePageNeverShowed)
}

func crawlRevisitKeepsADateThePageNeverShowed(t *testing.T, e db.Engine) {
	store, _ := openTestStore(t, e)
	now := time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)
	store.Now = func() time.Time { return now }
	listDay := time.Date(2026, 10, 1, 0, 0, 0, 0, KST)
	src := &pageSource{rows: []ListRow{{ID: 7, Title: "T", Published: listDay}}, posts: map[int64]Item{7: {Title: "T", Body: "<p>a</p>"}}}
	c := &Crawler{Store: store, Source: src, BackfillPages: 1, RevisitMax: 5, RevisitWindow: 30 * 24 * time.Hour, RevisitAfter: time.Hour}
	board := Board{Slug: "press", MID: "4", MPID: "2"}
	c.crawlBoard(context.Background(), board, 0)
	now = now.Add(2 * time.Hour)
	src.posts[7] = Item{Title: "T", Body: "<p>edited</p>"}
	run := c.crawlBoard(context.Background(), board, 0)
	if run.Revisited != 1 || run.Updated != 1 {
		t.Fatalf("run: %+v, want one revisit that finds the edit", run)
	}
	it, err := store.Item(context.Background(), "press", 7)
	if err != nil {
		t.Fatal(err)
	}
	if !it.Published.Equal(listDay) || it.DateFrom != DateFromList || it.Body != "<p>edited</p>" {
		t.Errorf("after the revisit: date %v from %q body %q", it.Published, it.DateFrom, it.Body)
	}
}

// TestSaveGivesEveryItemItsOwnUpdatedInstant: a feed's entries must not
// share an updated value, however fast posts are stored: with a clock that
// does not move, or moves by less than the column keeps, each save is still
// stamped a millisecond after the last.
func TestSaveGivesEveryItemItsOwnUpdatedInstant(t *testing.T) {
	dbtest.Each(t, saveGivesEveryItemItsOwnUpdatedInstant)
}

func saveGivesEveryItemItsOwnUpdatedInstant(t *testing.T, e db.Engine) {
	for _, step := range []time.Duration{0, 300 * time.Microsecond} {
		store, _ := openTestStore(t, e)
		now := time.Date(2026, 10, 2, 9, 0, 0, 123456789, KST)
		store.Now = func() time.Time { now = now.Add(step); return now }
		seen := map[string]bool{}
		for i := range 50 {
			it := Item{Board: "press", ID: int64(i + 1), Title: "T", URL: "https://www.msit.go.kr/x", Published: now}
			if _, err := store.Save(context.Background(), it, ""); err != nil {
				t.Fatal(err)
			}
		}
		items, err := store.Items(context.Background(), "press", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			s := feedInstant(it.Updated).Format(time.RFC3339Nano)
			if seen[s] {
				t.Fatalf("clock step %v: two items updated at %s", step, s)
			}
			seen[s] = true
		}
	}
}
