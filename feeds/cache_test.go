package feeds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// openCacheTestStore opens a migrated SQLite database in a temp directory
// and returns its store and path.
func openCacheTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	return openTestStore(t, db.SQLite)
}

// openTestStore opens a fresh migrated database of engine and returns its
// store and its database setting (to open it again as another process).
func openTestStore(t *testing.T, e db.Engine) (*Store, string) {
	t.Helper()
	dsn := dbtest.DSN(t, e)
	sqldb, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqldb.Close() })
	return NewStore(sqldb), dsn
}

func cacheTestItem(board string, id int64, title string) Item {
	return Item{
		Board: board, ID: id, Title: title,
		URL:        "https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=" + title,
		Published:  time.Date(2024, 5, 1, 0, 0, 0, 0, KST).AddDate(0, 0, int(id%20)),
		Department: "Division",
		Body:       "<p>" + title + "</p>",
		Summary:    title,
	}
}

func mustSave(t *testing.T, s *Store, it Item) {
	t.Helper()
	if _, err := s.Save(context.Background(), it, ""); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is the cache's clock under the test's control.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestCache(t *testing.T, s *Store, opts Options) (*Cache, *fakeClock) {
	t.Helper()
	c, err := NewCache(context.Background(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c.now = clock.now
	c.timed = false // checks follow the test's clock alone
	c.recent.Store(false)
	c.lastCheck.Store(clock.ns.Load())
	return c, clock
}

func mustGet(t *testing.T, c *Cache, board string, format Format) *Entry {
	t.Helper()
	e, err := c.Get(context.Background(), board, format, 50)
	if err != nil {
		t.Fatalf("get %s.%s: %v", board, format, err)
	}
	return e
}

func TestCache_RebuildsOnlyWhenTheBoardVersionMoves(t *testing.T) {
	dbtest.Each(t, cacheRebuildsOnlyWhenTheBoardVersionMoves)
}

func cacheRebuildsOnlyWhenTheBoardVersionMoves(t *testing.T, e db.Engine) {
	s, _ := openTestStore(t, e)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	mustSave(t, s, cacheTestItem("photo", 2, "photo one"))
	c, clock := newTestCache(t, s, Options{})

	press, photo, all := mustGet(t, c, "press", FormatRSS), mustGet(t, c, "photo", FormatRSS), mustGet(t, c, AllSlug, FormatRSS)
	if n := c.builds.Load(); n != 3 {
		t.Fatalf("%d builds for three feeds", n)
	}

	t.Run("a second request is served from memory", func(t *testing.T) {
		clock.advance(time.Second)
		if mustGet(t, c, "press", FormatRSS) != press || c.builds.Load() != 3 {
			t.Errorf("rebuilt without a change")
		}
	})

	t.Run("a write that changes nothing a reader sees rebuilds nothing", func(t *testing.T) {
		mustSave(t, s, cacheTestItem("press", 1, "press one"))
		clock.advance(time.Second)
		if mustGet(t, c, AllSlug, FormatRSS) != all || mustGet(t, c, "press", FormatRSS) != press {
			t.Errorf("rebuilt though no board version moved")
		}
	})

	mustSave(t, s, cacheTestItem("press", 3, "press two"))

	t.Run("the change is not looked for before the check interval", func(t *testing.T) {
		if mustGet(t, c, "press", FormatRSS) != press {
			t.Errorf("checked for changes before the interval passed")
		}
	})

	t.Run("after the interval the changed board and all are rebuilt, others kept", func(t *testing.T) {
		clock.advance(c.opts.CheckInterval)
		if mustGet(t, c, "photo", FormatRSS) != photo {
			t.Errorf("photo rebuilt though only press changed")
		}
		p := mustGet(t, c, "press", FormatRSS)
		if p == press || p.ETag == press.ETag {
			t.Errorf("press not rebuilt after its version moved")
		}
		a := mustGet(t, c, AllSlug, FormatRSS)
		if a == all || a.ETag == all.ETag {
			t.Errorf("all not rebuilt after press changed")
		}
		if n := c.builds.Load(); n != 5 {
			t.Errorf("%d builds, want 5", n)
		}
	})
}

func TestCache_NoticesWritesFromAnotherProcess(t *testing.T) {
	dbtest.Each(t, cacheNoticesWritesFromAnotherProcess)
}

func cacheNoticesWritesFromAnotherProcess(t *testing.T, e db.Engine) {
	s, path := openTestStore(t, e)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	c, err := NewCache(context.Background(), s, Options{CheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	before := mustGet(t, c, "press", FormatJSON)
	beforeAll := mustGet(t, c, AllSlug, FormatJSON)

	// A second *sql.DB on the same file is what `msitfeed crawl` beside
	// `msitfeed serve` looks like: its commits reach the cache only through
	// the database file.
	other, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustSave(t, NewStore(other), cacheTestItem("press", 7, "from the crawler"))

	deadline := time.Now().Add(5 * time.Second)
	for {
		after := mustGet(t, c, "press", FormatJSON)
		if after.ETag != before.ETag {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write by another connection was not noticed within 5s")
		}
		time.Sleep(c.opts.CheckInterval / 2) // poll pace, not an assertion
	}
	if mustGet(t, c, AllSlug, FormatJSON).ETag == beforeAll.ETag {
		t.Errorf("all not rebuilt after another process changed press")
	}
}

func TestCache_Invalidate(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	c, _ := newTestCache(t, s, Options{})
	press, photo, all := mustGet(t, c, "press", FormatAtom), mustGet(t, c, "photo", FormatAtom), mustGet(t, c, AllSlug, FormatAtom)

	t.Run("a board drops that board and all", func(t *testing.T) {
		c.Invalidate("press")
		if mustGet(t, c, "press", FormatAtom) == press || mustGet(t, c, AllSlug, FormatAtom) == all {
			t.Errorf("press or all kept after Invalidate(press)")
		}
		if mustGet(t, c, "photo", FormatAtom) != photo {
			t.Errorf("photo dropped by Invalidate(press)")
		}
	})
	t.Run("no board drops everything", func(t *testing.T) {
		c.Invalidate()
		if mustGet(t, c, "photo", FormatAtom) == photo {
			t.Errorf("photo kept after Invalidate()")
		}
	})
}

// With the real clock, a request within CheckInterval of a check reads
// neither the database nor the clock and gets what is cached; the first
// request after it checks and gets the change.
func TestCache_ChecksAtMostEveryIntervalOnTheRealClock(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	const interval = 300 * time.Millisecond
	c, err := NewCache(context.Background(), s, Options{CheckInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	first := mustGet(t, c, "press", FormatRSS)
	checked := time.Unix(0, c.lastCheck.Load())
	mustSave(t, s, cacheTestItem("press", 2, "press two"))
	if e := mustGet(t, c, "press", FormatRSS); time.Since(checked) < interval && e != first {
		t.Errorf("rebuilt within the check interval")
	}
	deadline := time.Now().Add(10 * interval)
	for mustGet(t, c, "press", FormatRSS) == first {
		if time.Now().After(deadline) {
			t.Fatalf("the change was not seen %v after it (check interval %v)", 10*interval, interval)
		}
		time.Sleep(interval / 10)
	}
	if since := time.Since(checked); since < interval {
		t.Errorf("checked again %v after the last check, before the interval (%v)", since, interval)
	}
}

// ByFile finds what Get cached for the default limit, by file name, and
// follows every change of the entries: a build, an invalidation, a check
// that finds a board changed, an eviction.
func TestCache_ByFileFollowsTheEntries(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	mustSave(t, s, cacheTestItem("photo", 2, "photo one"))
	c, clock := newTestCache(t, s, Options{Limit: 20})
	if e := c.ByFile("press.rss"); e != nil {
		t.Fatalf("ByFile before any Get: %v", e.Board)
	}
	press := mustGet(t, c, "press", FormatRSS) // not the default limit: 50
	if e := c.ByFile("press.rss"); e != nil {
		t.Fatalf("ByFile found the document of limit %d", e.Limit)
	}
	press, err := c.Get(context.Background(), "press", FormatRSS, 20)
	if err != nil {
		t.Fatal(err)
	}
	photo, err := c.Get(context.Background(), "photo", FormatJSON, 20)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]*Entry{"press.rss": press, "photo.json": photo, "press.atom": nil, "press": nil, "nope.rss": nil, "press.RSS": nil} {
		if got := c.ByFile(file); got != want {
			t.Errorf("ByFile(%q) = %p, want %p", file, got, want)
		}
	}

	c.Invalidate("photo")
	if c.ByFile("photo.json") != nil || c.ByFile("press.rss") != press {
		t.Errorf("after Invalidate(photo): photo.json %p, press.rss %p (want nil, %p)", c.ByFile("photo.json"), c.ByFile("press.rss"), press)
	}

	// A change found by the check drops the board's document from ByFile
	// itself, and the next Get puts the new one there.
	mustSave(t, s, cacheTestItem("press", 3, "press two"))
	clock.advance(c.opts.CheckInterval)
	if e := c.ByFile("press.rss"); e != nil {
		t.Fatalf("ByFile after press changed: the old document")
	}
	fresh, err := c.Get(context.Background(), "press", FormatRSS, 20)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == press || c.ByFile("press.rss") != fresh {
		t.Errorf("ByFile after the rebuild: %p, want the new %p", c.ByFile("press.rss"), fresh)
	}

	c.Invalidate()
	if c.ByFile("press.rss") != nil {
		t.Errorf("ByFile after Invalidate(): the dropped document")
	}
}

// A document evicted for the byte budget leaves ByFile too.
func TestCache_ByFileLosesEvictedDocuments(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	c, _ := newTestCache(t, s, Options{MaxBytes: 1})
	if _, err := c.Get(context.Background(), "press", FormatRSS, 50); err != nil {
		t.Fatal(err)
	}
	if c.ByFile("press.rss") == nil {
		t.Fatal("ByFile lacks the only document")
	}
	if _, err := c.Get(context.Background(), "press", FormatAtom, 50); err != nil {
		t.Fatal(err)
	}
	if c.ByFile("press.rss") != nil || c.ByFile("press.atom") == nil {
		t.Errorf("after an eviction: press.rss %p, press.atom %p", c.ByFile("press.rss"), c.ByFile("press.atom"))
	}
}

func TestCache_ConcurrentRequestsRenderOnce(t *testing.T) {
	s, _ := openCacheTestStore(t)
	for i := int64(1); i <= 30; i++ {
		mustSave(t, s, cacheTestItem("trends", i, "trend"))
	}
	c, _ := newTestCache(t, s, Options{})
	var wg sync.WaitGroup
	entries := make([]*Entry, 32)
	for i := range entries {
		wg.Go(func() {
			e, err := c.Get(context.Background(), "trends", FormatRSS, 50)
			if err != nil {
				t.Error(err)
			}
			entries[i] = e
		})
	}
	wg.Wait()
	if n := c.builds.Load(); n != 1 {
		t.Errorf("%d builds for 32 simultaneous requests, want 1", n)
	}
	for _, e := range entries {
		if e != entries[0] {
			t.Fatalf("requests got different entries")
		}
	}
}

func TestCache_StaysWithinItsByteBudget(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	c, _ := newTestCache(t, s, Options{MaxBytes: 1})
	for limit := 1; limit <= 5; limit++ {
		if _, err := c.Get(context.Background(), "press", FormatRSS, limit); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d entries kept over a 1-byte budget, want only the newest", n)
	}
}

func TestCache_RejectsUnknownFeeds(t *testing.T) {
	s, _ := openCacheTestStore(t)
	c, _ := newTestCache(t, s, Options{})
	for _, tc := range []struct {
		board  string
		format Format
		limit  int
	}{{"nope", FormatRSS, 50}, {"press", "xml", 50}, {"press", FormatRSS, 0}, {"press", FormatRSS, MaxLimit + 1}} {
		if _, err := c.Get(context.Background(), tc.board, tc.format, tc.limit); err == nil {
			t.Errorf("Get(%q, %q, %d) succeeded", tc.board, tc.format, tc.limit)
		}
	}
}

func TestBuildEntry_ValidatorsAndCompression(t *testing.T) {
	s, _ := openCacheTestStore(t)
	it := cacheTestItem("press", 1, "press one")
	mustSave(t, s, it)
	e, err := BuildEntry(context.Background(), s, Options{}, "press", FormatAtom, 50)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := s.Item(context.Background(), "press", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := saved.Updated.UTC().Truncate(time.Second); !e.Modified.Equal(want) || e.Modified.Location() != time.UTC {
		t.Errorf("Modified %v, want the item's Updated %v in UTC", e.Modified, want)
	}
	if len(e.ETag) < 10 || e.ETag[0] != '"' || e.ETag == e.GzipETag {
		t.Errorf("ETag %s, gzip ETag %s", e.ETag, e.GzipETag)
	}
	if len(e.Gzip) == 0 || len(e.Gzip) >= len(e.Body) {
		t.Errorf("gzip %d bytes for %d", len(e.Gzip), len(e.Body))
	}
}
