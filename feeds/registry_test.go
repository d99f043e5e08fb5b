package feeds_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
)

// koreanBoard is a board of the ministry's Korean site added by
// configuration.
func koreanBoard() feeds.Board {
	return feeds.Board{Slug: "bodo", Name: "보도자료", MID: "307", MPID: "208", BBSSeqNo: "94",
		SCode: "user", Dir: "/bbs", Lang: "ko"}
}

func mustRegistry(t testing.TB, configured ...feeds.Board) *feeds.Registry {
	t.Helper()
	r, err := feeds.NewRegistry(configured...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistry_BuiltInFirstThenConfiguredBySlug(t *testing.T) {
	events := feeds.Board{Slug: "events", Name: "Events", MID: "9", MPID: "2"}
	r := mustRegistry(t, koreanBoard(), events)
	want := append(feeds.BoardSlugs(), "bodo", "events")
	if got := r.Slugs(); !slices.Equal(got, want) {
		t.Fatalf("Slugs() = %v, want %v", got, want)
	}
	bs := r.Boards()
	for i, b := range bs {
		if b.Slug != want[i] || b.Configured != (i >= len(feeds.BoardSlugs())) {
			t.Errorf("board %d = %s configured %v", i, b.Slug, b.Configured)
		}
	}
	bs[0].Name = "changed"
	if b, _ := r.Board(bs[0].Slug); b.Name == "changed" {
		t.Error("Boards() returned the registry's own slice")
	}
	if b, ok := r.Board("bodo"); !ok || b.Name != "보도자료" || b.Language() != "ko" || !b.Configured {
		t.Errorf("Board(bodo) = %+v, %v", b, ok)
	}
	for slug, want := range map[string]bool{"press": true, "bodo": true, "events": true, "all": false, "sports": false, "": false} {
		if r.Has(slug) != want {
			t.Errorf("Has(%q) = %v, want %v", slug, !want, want)
		}
	}
	if r.Name("gone") != "gone" || r.Name("press") != "Press Releases" {
		t.Errorf("Name: %q %q", r.Name("gone"), r.Name("press"))
	}
}

func TestRegistry_NilIsTheBuiltInBoards(t *testing.T) {
	var r *feeds.Registry
	if !slices.Equal(r.Slugs(), feeds.BoardSlugs()) || !slices.Equal(r.Boards(), feeds.DefaultBoards()) {
		t.Fatalf("nil registry: %v", r.Slugs())
	}
	if !r.Has("photo") || r.Has("bodo") {
		t.Error("nil registry Has")
	}
	if empty := mustRegistry(t); !slices.Equal(empty.Slugs(), feeds.BoardSlugs()) {
		t.Errorf("NewRegistry() = %v", empty.Slugs())
	}
}

func TestRegistry_RefusesBadBoards(t *testing.T) {
	ok := koreanBoard()
	tests := []struct {
		name  string
		board feeds.Board
	}{
		{"a slug that is not a path segment", feeds.Board{Slug: "../x", Name: "x", MID: "1", MPID: "2"}},
		{"the slug all", feeds.Board{Slug: "all", Name: "x", MID: "1", MPID: "2"}},
		{"a built-in slug", feeds.Board{Slug: "press", Name: "x", MID: "1", MPID: "2"}},
		{"no name", feeds.Board{Slug: "x", MID: "1", MPID: "2"}},
		{"no ids", feeds.Board{Slug: "x", Name: "x"}},
		{"the list of Press Releases", feeds.Board{Slug: "x", Name: "x", MID: "4", MPID: "2"}},
		{"the list of another configured board", func() feeds.Board { b := koreanBoard(); b.Slug = "zz"; return b }()},
		{"the same slug twice", func() feeds.Board { b := koreanBoard(); b.MID = "999"; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := feeds.NewRegistry(ok, tt.board)
			if !errors.Is(err, feeds.ErrBadBoard) {
				t.Fatalf("err = %v, want ErrBadBoard", err)
			}
		})
	}
	t.Run("the same ids on another site are another list", func(t *testing.T) {
		b := feeds.Board{Slug: "kopress", Name: "x", MID: "4", MPID: "2", SCode: "user", Dir: "/bbs"}
		if _, err := feeds.NewRegistry(b); err != nil {
			t.Fatal(err)
		}
	})
}

// koreanItems are posts of the Korean board, one newer than every post of
// the render fixture so that it heads the all feed.
func koreanItems() []feeds.Item {
	return []feeds.Item{
		{Board: "bodo", ID: 3186887, Title: "2026년도 과학기술정보통신부 업무계획 발표",
			URL:       "https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887",
			Published: kst(2026, 10, 1, 0, 0), FirstSeen: kst(2026, 10, 1, 9, 0), Updated: kst(2026, 10, 1, 9, 0),
			Department: "대변인실", Body: "<p>과학기술정보통신부는 …</p>", Summary: "과학기술정보통신부는 …"},
		{Board: "bodo", ID: 3186700, Title: "인공지능 기본계획",
			URL:       "https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186700",
			Published: kst(2026, 9, 28, 0, 0), FirstSeen: kst(2026, 10, 1, 9, 0), Updated: kst(2026, 10, 1, 9, 0),
			Body: "<p>인공지능</p>"},
	}
}

func newRegistryFeedServer(t *testing.T) (*http.ServeMux, *feeds.Store) {
	t.Helper()
	store := newFeedStore(t, nil)
	store.Registry = mustRegistry(t, koreanBoard())
	for _, it := range append(renderFixture(), koreanItems()...) {
		if _, err := store.Save(context.Background(), it, ""); err != nil {
			t.Fatal(err)
		}
	}
	cache, err := feeds.NewCache(context.Background(), store, handlerTestOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	mux := http.NewServeMux()
	mux.Handle(feeds.HandlerPattern, feeds.NewHandler(cache))
	return mux, store
}

func TestHandler_ConfiguredBoardHasFeedsInItsLanguage(t *testing.T) {
	mux, _ := newRegistryFeedServer(t)
	for _, format := range feeds.Formats() {
		t.Run(string(format)+" of the Korean board says ko", func(t *testing.T) {
			w := serve(mux, "GET", "/feeds/bodo."+string(format))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			f, err := gofeed.NewParser().Parse(bytes.NewReader(w.Body.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if f.Language != "ko" {
				t.Errorf("language %q, want ko", f.Language)
			}
			if f.Title != "MSIT — 보도자료" {
				t.Errorf("title %q", f.Title)
			}
			if format != feeds.FormatJSON && f.Link != "https://www.msit.go.kr/bbs/list.do?sCode=user&mPid=208&mId=307" {
				t.Errorf("site link %q", f.Link)
			}
			want := koreanItems()
			if len(f.Items) != len(want) {
				t.Fatalf("%d items, want %d", len(f.Items), len(want))
			}
			for i, it := range f.Items {
				if it.GUID != feeds.ItemID("bodo", want[i].ID) || it.Title != want[i].Title || it.Link != want[i].URL {
					t.Errorf("item %d = %q %q %q", i, it.GUID, it.Title, it.Link)
				}
				if it.PublishedParsed == nil || !it.PublishedParsed.Equal(want[i].Published) {
					t.Errorf("item %d published %v, want %v", i, it.PublishedParsed, want[i].Published)
				}
			}
		})
		t.Run(string(format)+" of a built-in board and of all stay en", func(t *testing.T) {
			for _, board := range []string{"press", feeds.AllSlug} {
				w := serve(mux, "GET", "/feeds/"+board+"."+string(format))
				f, err := gofeed.NewParser().Parse(bytes.NewReader(w.Body.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if f.Language != "en" {
					t.Errorf("%s: language %q, want en", board, f.Language)
				}
			}
		})
	}
	t.Run("the Atom feed carries xml:lang on the feed element", func(t *testing.T) {
		body := serve(mux, "GET", "/feeds/bodo.atom").Body.String()
		if !strings.Contains(body, `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ko">`) {
			t.Errorf("no xml:lang=ko on <feed>: %.300s", body)
		}
	})
}

func TestHandler_AllIncludesConfiguredBoards(t *testing.T) {
	mux, _ := newRegistryFeedServer(t)
	w := serve(mux, "GET", "/feeds/all.json?limit=500")
	f, err := gofeed.NewParser().Parse(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range f.Items {
		ids = append(ids, it.GUID)
	}
	for _, it := range koreanItems() {
		if !slices.Contains(ids, feeds.ItemID("bodo", it.ID)) {
			t.Errorf("all lacks %s: %v", feeds.ItemID("bodo", it.ID), ids)
		}
	}
	if len(ids) != len(renderFixture())+len(koreanItems()) {
		t.Errorf("all has %d items, want %d", len(ids), len(renderFixture())+len(koreanItems()))
	}
}

func TestHandler_UnconfiguredBoardIsUnknown(t *testing.T) {
	mux, _ := newFeedServer(t, koreanItems()) // no registry: the built-in boards only
	w := serve(mux, "GET", "/feeds/bodo.atom")
	if w.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", w.Code)
	}
}

func TestExportAll_WritesConfiguredBoards(t *testing.T) {
	_, store := newRegistryFeedServer(t)
	dir := filepath.Join(t.TempDir(), "out")
	if err := feeds.ExportAll(context.Background(), store, handlerTestOptions, dir); err != nil {
		t.Fatal(err)
	}
	for _, format := range feeds.Formats() {
		b, err := os.ReadFile(filepath.Join(dir, "bodo."+string(format)))
		if err != nil {
			t.Fatal(err)
		}
		f, err := gofeed.NewParser().Parse(bytes.NewReader(b))
		if err != nil || f.Language != "ko" || len(f.Items) != len(koreanItems()) {
			t.Errorf("bodo.%s: %v, language %v", format, err, f)
		}
	}
}

func TestStoreBoards_ConfiguredBoardKeepsItsIDs(t *testing.T) {
	ctx := context.Background()
	store := newFeedStore(t, nil)
	noBBS := koreanBoard()
	noBBS.BBSSeqNo = ""
	store.Registry = mustRegistry(t, noBBS)
	// What a crawl records after a list page showed the bbsSeqNo.
	learnt := noBBS
	learnt.BBSSeqNo = "94"
	if err := store.SaveBoard(ctx, learnt); err != nil {
		t.Fatal(err)
	}
	bs, err := store.Boards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := bs[len(bs)-1]
	if got.Slug != "bodo" || got.MID != "307" || got.BBSSeqNo != "94" || got.Dir != "/bbs" || got.SCode != "user" || !got.Configured {
		t.Errorf("stored bodo = %+v", got)
	}
	// The list_url changed to another list: what was learnt of the old one
	// no longer applies.
	moved := noBBS
	moved.MID = "308"
	store.Registry = mustRegistry(t, moved)
	bs, err = store.Boards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := bs[len(bs)-1]; got.MID != "308" || got.BBSSeqNo != "" {
		t.Errorf("moved bodo = %+v", got)
	}
}

// registrySource is a Source serving one post per board, recording what
// the crawl asks of it.
type registrySource struct {
	discovered []string // slugs passed to Discover
	listed     []feeds.Board
}

func (s *registrySource) Discover(ctx context.Context, boards []feeds.Board) ([]feeds.Board, error) {
	out := slices.Clone(boards)
	for i := range out {
		s.discovered = append(s.discovered, out[i].Slug)
		out[i].MID, out[i].MPID = "1"+out[i].Slug, "2"
	}
	return out, nil
}

func (s *registrySource) List(ctx context.Context, b feeds.Board, page int) (feeds.ListPage, error) {
	s.listed = append(s.listed, b)
	if page > 1 {
		return feeds.ListPage{}, nil
	}
	return feeds.ListPage{LastPage: 1, Rows: []feeds.ListRow{{ID: 7, Title: b.Name + " post", Published: kst(2026, 10, 1, 0, 0)}}}, nil
}

func (s *registrySource) Detail(ctx context.Context, b feeds.Board, id int64) (feeds.Item, error) {
	return feeds.Item{Title: b.Name + " post", URL: "https://www.msit.go.kr" + b.Directory() + "/view.do?nttSeqNo=7",
		Published: kst(2026, 10, 1, 0, 0), Body: "<p>x</p>"}, nil
}

func (s *registrySource) Requests() int64 { return 0 }

func TestCrawl_ConfiguredBoardIsNeverDiscovered(t *testing.T) {
	ctx := context.Background()
	store := newFeedStore(t, nil)
	store.Registry = mustRegistry(t, koreanBoard())
	src := &registrySource{}
	c := &feeds.Crawler{Store: store, Source: src, BackfillPages: 1}
	runs, err := c.Crawl(ctx, feeds.CrawlOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 6 || runs[5].Board != "bodo" || runs[5].New != 1 {
		t.Fatalf("runs = %+v", runs)
	}
	if slices.Contains(src.discovered, "bodo") || slices.Contains(src.discovered, "press") {
		t.Errorf("discovered %v; want only the built-in boards without ids", src.discovered)
	}
	var listedBodo *feeds.Board
	for i, b := range src.listed {
		if b.Slug == "bodo" {
			listedBodo = &src.listed[i]
		}
	}
	if listedBodo == nil || listedBodo.MID != "307" || listedBodo.Dir != "/bbs" || listedBodo.SCode != "user" || listedBodo.Lang != "ko" {
		t.Errorf("bodo listed as %+v", listedBodo)
	}
	if _, err := store.Item(ctx, "bodo", 7); err != nil {
		t.Error(err)
	}

	t.Run("crawl --board takes a configured board and refuses an unknown one", func(t *testing.T) {
		src.discovered = nil
		runs, err := c.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"bodo"}})
		if err != nil || len(runs) != 1 || runs[0].Board != "bodo" || len(src.discovered) != 0 {
			t.Errorf("runs %+v, err %v, discovered %v", runs, err, src.discovered)
		}
		if _, err := c.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"sports"}}); err == nil || !strings.Contains(err.Error(), "bodo") {
			t.Errorf("unknown board: err = %v, want one listing bodo", err)
		}
	})
}
