package feeds

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// TestStoreQueries runs every query of Store and its crawl runs once on
// each engine and checks what comes back.
func TestStoreQueries(t *testing.T) { dbtest.Each(t, storeQueries) }

func storeQueries(t *testing.T, e db.Engine) {
	ctx := context.Background()
	s, _ := openTestStore(t, e)
	now := time.Date(2026, 10, 2, 9, 0, 0, 0, KST)
	s.Now = func() time.Time { return now }
	day := func(d int) time.Time { return time.Date(2026, 9, d, 0, 0, 0, 0, KST) }

	if err := s.SaveBoard(ctx, Board{Slug: "press", Name: "Press Releases", MID: "40", MPID: "20", BBSSeqNo: "420"}); err != nil {
		t.Fatal(err)
	}
	bs, err := s.Boards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range bs {
		if b.Slug == "press" {
			found = b.MID == "40" && b.MPID == "20" && b.BBSSeqNo == "420"
		}
	}
	if !found {
		t.Errorf("boards: stored ids of press not returned: %+v", bs)
	}

	for i := int64(1); i <= 5; i++ {
		it := Item{Board: "press", ID: i, Title: "post", URL: "https://www.msit.go.kr/p", Published: day(int(i)),
			Attachments: []Attachment{{Name: "a.pdf", URL: "https://www.msit.go.kr/a"}, {Name: "b.hwp", URL: "https://www.msit.go.kr/b"}}}
		if res, err := s.Save(ctx, it, "v2:x"); err != nil || res != Created {
			t.Fatalf("save %d: %v %v", i, res, err)
		}
	}
	if res, err := s.Save(ctx, Item{Board: "notice", ID: 9, Title: "notice", URL: "https://www.msit.go.kr/n", Published: day(20)}, ""); err != nil || res != Created {
		t.Fatalf("save notice: %v %v", res, err)
	}
	if res, err := s.Save(ctx, Item{Board: "notice", ID: 9, Title: "notice, edited", URL: "https://www.msit.go.kr/n", Published: day(20)}, ""); err != nil || res != Updated {
		t.Fatalf("edit notice: %v %v", res, err)
	}

	items, err := s.Items(ctx, "press", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].ID != 5 || items[2].ID != 3 || len(items[0].Attachments) != 2 || items[0].Attachments[1].Name != "b.hwp" {
		t.Errorf("press items: %+v", items)
	}
	all, err := s.Items(ctx, AllSlug, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[0].ID != 9 || all[0].Title != "notice, edited" {
		t.Errorf("all items: %d, first %+v", len(all), all[0])
	}

	last, err := s.LastSeq(ctx)
	if err != nil || last != 6 {
		t.Fatalf("last seq %d, %v; want 6", last, err)
	}
	inSeq, err := s.ItemsInSeq(ctx, 2, 5, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inSeq) != 3 || inSeq[0].ID != 5 || inSeq[2].ID != 3 {
		t.Errorf("items in seq (2, 5]: %+v", inSeq)
	}
	if later, err := s.ItemsInSeq(ctx, 0, 6, now, time.Time{}); err != nil || len(later) != 0 {
		t.Errorf("items first seen after now: %d, %v", len(later), err)
	}
	if recent, err := s.ItemsInSeq(ctx, 0, 6, time.Time{}, day(4)); err != nil || len(recent) != 3 {
		t.Errorf("items published since the 4th: %d, %v; want 3", len(recent), err)
	}

	known, err := s.Known(ctx, "press", []int64{1, 3, 77})
	if err != nil || len(known) != 2 || known[1] != "v2:x" {
		t.Errorf("known: %v, %v", known, err)
	}
	if err := s.SetListHash(ctx, "press", 1, "v2:y"); err != nil {
		t.Fatal(err)
	}
	if known, _ := s.Known(ctx, "press", []int64{1}); known[1] != "v2:y" {
		t.Errorf("list hash after SetListHash: %q", known[1])
	}

	now = now.Add(time.Hour)
	if err := s.MarkChecked(ctx, "press", 4); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueForRevisit(ctx, "press", day(2), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 3 || due[0].ID != 5 || !due[0].Published.Equal(day(5)) {
		t.Errorf("due for revisit: %+v; want 5, 3, 2 (4 was just checked, 1 too old)", due)
	}

	vs, err := s.Versions(ctx)
	if err != nil || vs["press"].Version != 5 || vs["notice"].Version != 2 {
		t.Errorf("versions: %+v, %v", vs, err)
	}

	id, err := s.StartRun(ctx, "press")
	if err != nil || id == 0 {
		t.Fatalf("start run: %d, %v", id, err)
	}
	now = now.Add(time.Minute)
	if err := s.FinishRun(ctx, CrawlRun{ID: id, Board: "press", Pages: 2, Requests: 7, New: 5, ListRows: 10, Degraded: "d"}); err != nil {
		t.Fatal(err)
	}
	id2, err := s.StartRun(ctx, "notice")
	if err != nil || id2 <= id {
		t.Fatalf("second run id %d after %d, %v", id2, id, err)
	}
	run, err := s.LastRun(ctx, "press")
	if err != nil || run.ID != id || run.Requests != 7 || run.Degraded != "d" || !run.Finished.Equal(now) {
		t.Errorf("last run: %+v, %v", run, err)
	}
	for _, b := range []string{"press", AllSlug} {
		if at, err := s.LastCrawl(ctx, b); err != nil || !at.Equal(now) {
			t.Errorf("last crawl of %s: %v, %v; want %v", b, at, err, now)
		}
	}
	if at, err := s.LastCrawl(ctx, "notice"); err != nil || !at.IsZero() {
		t.Errorf("last crawl of notice (unfinished): %v, %v", at, err)
	}
	stats, err := s.Stats(ctx)
	if err != nil || stats["press"].Items != 5 || !stats["press"].Newest.Equal(day(5)) || stats["notice"].LastRun.ID != id2 {
		t.Errorf("stats: %+v, %v", stats, err)
	}
}

// TestConcurrentSaves: two processes storing posts at once get distinct
// storage sequence numbers and updated instants, with no error.
func TestConcurrentSaves(t *testing.T) { dbtest.Each(t, concurrentSaves) }

func concurrentSaves(t *testing.T, e db.Engine) {
	ctx := context.Background()
	first, dsn := openTestStore(t, e)
	other, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stores := []*Store{first, NewStore(other)}
	const each = 20
	var wg sync.WaitGroup
	for p, s := range stores {
		for w := range 2 {
			wg.Go(func() {
				for i := range each / 2 {
					id := int64(p*1000 + w*100 + i + 1)
					it := Item{Board: "press", ID: id, Title: "T", URL: "https://www.msit.go.kr/x", Published: time.Date(2026, 9, 1, 0, 0, 0, 0, KST)}
					if _, err := s.Save(ctx, it, ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var n, seqs, updates, maxSeq int
	err = first.DB().QueryRow(`SELECT count(*), count(DISTINCT seq), count(DISTINCT updated), max(seq) FROM items`).Scan(&n, &seqs, &updates, &maxSeq)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * 2 * each / 2; n != want || seqs != n || updates != n || maxSeq != n {
		t.Fatalf("%d posts (want %d), %d distinct seq, %d distinct updated, max seq %d", n, want, seqs, updates, maxSeq)
	}
}
