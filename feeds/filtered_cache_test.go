package feeds

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// fillFilteredQuery fills the filtered document of the raw query on
// press.rss with limit 50.
func fillFilteredQuery(t *testing.T, c *Cache, raw string) *Entry {
	t.Helper()
	q, _ := url.ParseQuery(raw)
	f, err := ParseFilter(q)
	if err != nil || f == nil {
		t.Fatalf("filter %q: %v", raw, err)
	}
	e, err := c.fillFiltered(context.Background(), filteredKey{board: "press", format: FormatRSS, query: raw}, 50, f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A document filtered by filter_time is stale when its first post leaves
// the window, or after filteredTTL, whichever comes first; others never go
// stale by the clock.
func TestCache_FilterTimeEntriesExpire(t *testing.T) {
	s, _ := openCacheTestStore(t)
	c, clock := newTestCache(t, s, Options{})
	s.Now = clock.now
	now := clock.now()
	for _, it := range []Item{
		{Board: "press", ID: 1, Title: "fifty seconds old", URL: "https://www.msit.go.kr/1", Published: now.Add(-50 * time.Second)},
		{Board: "press", ID: 2, Title: "ten minutes old", URL: "https://www.msit.go.kr/2", Published: now.Add(-10 * time.Minute)},
	} {
		mustSave(t, s, it)
	}
	// Let the cache see the writes now, not in the middle of the test.
	clock.advance(time.Second)
	c.maybeRefresh()
	now = clock.now()

	const minute = "filter_time=60"
	e := fillFilteredQuery(t, c, minute)
	if e.Filter != minute || !e.expires.Equal(now.Add(9*time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("entry filter %q expires %v, want %q at the first post's end", e.Filter, e.expires, minute)
	}
	key := filteredKey{board: "press", format: FormatRSS, query: minute}
	clock.advance(8 * time.Second)
	if c.cachedFiltered(key) != e {
		t.Fatal("the entry is gone before its first post left the window")
	}
	clock.advance(2 * time.Second)
	if c.cachedFiltered(key) != nil {
		t.Fatal("the entry is still served after its first post left the window")
	}
	if e2 := fillFilteredQuery(t, c, minute); e2 == e || e2.ETag == e.ETag || !e2.expires.IsZero() {
		t.Errorf("rebuilt entry: same %v, ETag %s (was %s), expires %v; want an empty feed that never expires by itself",
			e2 == e, e2.ETag, e.ETag, e2.expires)
	}

	// An hour's window: the posts stay in it longer than filteredTTL.
	const hour = "filter_time=3600"
	e = fillFilteredQuery(t, c, hour)
	key.query = hour
	clock.advance(filteredTTL - time.Second)
	if c.cachedFiltered(key) != e {
		t.Fatal("the entry is gone before filteredTTL")
	}
	clock.advance(2 * time.Second)
	if c.cachedFiltered(key) != nil {
		t.Fatal("the entry is still served after filteredTTL")
	}

	// Without filter_time the clock changes nothing.
	e = fillFilteredQuery(t, c, "filter=old")
	key.query = "filter=old"
	clock.advance(24 * time.Hour)
	if c.cachedFiltered(key) != e {
		t.Error("a filter without filter_time went stale with time")
	}
}

// Invalidate drops the filtered documents of the boards it names, of all,
// and with no board every one; a build that an invalidation overtook is
// served but not kept.
func TestCache_InvalidateDropsFilteredDocuments(t *testing.T) {
	s, _ := openCacheTestStore(t)
	mustSave(t, s, cacheTestItem("press", 1, "press one"))
	mustSave(t, s, cacheTestItem("notice", 2, "notice two"))
	c, _ := newTestCache(t, s, Options{})
	f, _ := ParseFilter(url.Values{"filter": {"one|two"}})
	keys := map[string]filteredKey{}
	for _, board := range []string{"press", "notice", AllSlug} {
		keys[board] = filteredKey{board: board, format: FormatAtom, query: "filter=one|two"}
		if _, err := c.fillFiltered(context.Background(), keys[board], 50, f); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate("press")
	if c.cachedFiltered(keys["press"]) != nil || c.cachedFiltered(keys[AllSlug]) != nil || c.cachedFiltered(keys["notice"]) == nil {
		t.Error("Invalidate(press) should drop press and all, and keep notice")
	}
	if st := c.FilteredStats(); st.Entries != 1 || st.Bytes <= 0 {
		t.Errorf("stats %+v", st)
	}
	c.Invalidate()
	if st := c.FilteredStats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after Invalidate(): %+v", st)
	}
}

// Filtered documents have their own byte budget, a quarter of MaxBytes, so
// that they never push the feeds themselves out.
func TestCache_FilteredDocumentsKeepToTheirByteBudget(t *testing.T) {
	s, _ := openCacheTestStore(t)
	for i := range 20 {
		mustSave(t, s, cacheTestItem("press", int64(i+1), "press post"))
	}
	one, _ := BuildEntry(context.Background(), s, Options{}, "press", FormatRSS, 50)
	c, _ := newTestCache(t, s, Options{MaxBytes: 4 * 3 * one.size()}) // room for about three filtered
	if _, err := c.Get(context.Background(), "press", FormatRSS, 50); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"filter=post", "filter=press", "filter=p", "filter=s", "filter=t", "filter=o"} {
		fillFilteredQuery(t, c, q)
	}
	st := c.FilteredStats()
	if st.Bytes > c.opts.MaxBytes/4 || st.Entries > 3 || st.Evicted < 3 {
		t.Errorf("stats %+v over a budget of %d bytes", st, c.opts.MaxBytes/4)
	}
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	if n != 1 {
		t.Errorf("the unfiltered feed was pushed out by filtered ones (%d entries)", n)
	}
}
