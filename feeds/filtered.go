package feeds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Filtered feeds: a feed URL with filter parameters (filter.go) is a
// document of its own, with its own validators and self link, kept in a
// bounded cache beside the feeds themselves.
//
// A request is looked up by its raw query string before anything is
// parsed, so a filtered feed that is cached costs a map lookup more than
// the feed itself; only a miss parses the query and compiles its patterns.
// Two spellings of one filter are two entries of the same bytes (the same
// ETag): the cache is bounded, so that costs memory, never correctness.

// filteredTTL is the longest a document filtered by filter_time is kept:
// its posts leave the window as time passes, whatever the data does.
const filteredTTL = time.Minute

// filteredCacheControl is the Cache-Control of a document filtered by
// filter_time, which changes with the clock.
var filteredCacheControl = []string{"public, max-age=60"}

// maxFilteredBuilds bounds the filtered documents rendered at once: each
// miss reads MaxLimit posts, and their URLs are the client's to choose.
const maxFilteredBuilds = 4

// filteredKey names one filtered document: the feed, page or document, and
// the request's raw query (limit included).
type filteredKey struct {
	board  string
	format Format
	page   bool
	query  string
}

// filteredEntry is a cached filtered document.
type filteredEntry struct {
	key     filteredKey
	e       *Entry
	expires int64       // UnixNano after which it is stale (filter_time); 0 never
	ref     atomic.Bool // used since the clock hand last passed it
}

// matches reports whether fe is the document of the feed board in format,
// page or not (its query is the one it was found under).
func (fe *filteredEntry) matches(board string, format Format, page bool) bool {
	return fe.key.page == page && fe.key.format == format && fe.key.board == board
}

// filteredCache holds the filtered documents of a Cache: at most max of
// them and maxBytes of rendered bytes. They are found by the raw query
// first (a string map, hashed without the rest of the key), then among the
// few feeds asked for with that query. Eviction is CLOCK, the usual
// approximation of least-recently-used: a hit only sets its entry's
// reference bit (a read, and a write the first time), so hits on
// different cores do not contend on a shared counter; to make room the
// hand sweeps the ring, clearing bits, and drops the first entry whose bit
// is clear. A new entry goes in just behind the hand with its bit clear,
// so one-off queries go before documents that are asked for again. The
// maps, ring and bytes are guarded by Cache.mu, so documents are dropped
// with the feeds they filter (Invalidate) under the same generations.
type filteredCache struct {
	max      int
	maxBytes int64
	byQuery  map[string][]*filteredEntry
	ring     []*filteredEntry // every entry once, in clock order
	hand     int              // the ring's next entry to look at
	flights  map[filteredKey]*flight
	bytes    int64

	slots   chan struct{} // filtered builds running
	builds  atomic.Int64
	evicted atomic.Int64
}

func (fc *filteredCache) init(opts Options) {
	fc.max = opts.MaxFiltered
	fc.maxBytes = opts.MaxBytes / 4
	fc.byQuery = map[string][]*filteredEntry{}
	fc.flights = map[filteredKey]*flight{}
	fc.slots = make(chan struct{}, maxFilteredBuilds)
}

// lookup returns the entry of key, or nil; Cache.mu is held for reading.
func (fc *filteredCache) lookup(key filteredKey) *filteredEntry {
	for _, fe := range fc.byQuery[key.query] {
		if fe.matches(key.board, key.format, key.page) {
			return fe
		}
	}
	return nil
}

// remove takes fe out of the maps and the ring; Cache.mu is held.
func (fc *filteredCache) remove(fe *filteredEntry) {
	list := fc.byQuery[fe.key.query]
	if i := slices.Index(list, fe); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(fc.byQuery, fe.key.query)
	} else {
		fc.byQuery[fe.key.query] = list
	}
	if i := slices.Index(fc.ring, fe); i >= 0 {
		fc.ring = slices.Delete(fc.ring, i, i+1)
		if i < fc.hand {
			fc.hand--
		}
	}
	fc.bytes -= fe.e.size()
}

// drop removes the documents of boards and of all, or every one when
// boards is empty; Cache.mu is held.
func (fc *filteredCache) drop(boards []string) {
	if len(boards) == 0 {
		clear(fc.byQuery)
		clear(fc.ring)
		fc.ring, fc.hand, fc.bytes = fc.ring[:0], 0, 0
		return
	}
	for _, fe := range slices.Clone(fc.ring) {
		if fe.key.board == AllSlug || containsSlug(boards, fe.key.board) {
			fc.remove(fe)
		}
	}
}

// keep stores e under key, then drops others until the cache is within
// its bounds; Cache.mu is held.
func (fc *filteredCache) keep(key filteredKey, e *Entry, expires int64) {
	if old := fc.lookup(key); old != nil {
		fc.remove(old)
	}
	fe := &filteredEntry{key: key, e: e, expires: expires}
	fc.byQuery[key.query] = append(fc.byQuery[key.query], fe)
	fc.hand = min(fc.hand, len(fc.ring))
	fc.ring = slices.Insert(fc.ring, fc.hand, fe)
	fc.hand++ // the new entry is the last the hand comes to
	fc.bytes += e.size()
	for len(fc.ring) > 1 && (len(fc.ring) > fc.max || fc.bytes > fc.maxBytes) {
		if fc.hand >= len(fc.ring) {
			fc.hand = 0
		}
		x := fc.ring[fc.hand]
		switch {
		case x == fe:
			fc.hand++ // the new one stays, even if large by itself
		case x.ref.Load():
			x.ref.Store(false)
			fc.hand++
		default:
			fc.remove(x)
			fc.evicted.Add(1)
		}
	}
}

// FilteredStats says what a Cache holds of filtered feeds.
type FilteredStats struct {
	Entries int   // documents kept
	Bytes   int64 // their rendered bytes (document and gzip)
	Builds  int64 // documents rendered since the cache started
	Evicted int64 // documents dropped to stay within the bounds
}

// FilteredStats returns the cache's figures for filtered feeds (metrics).
func (c *Cache) FilteredStats() FilteredStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return FilteredStats{
		Entries: len(c.filtered.ring),
		Bytes:   c.filtered.bytes,
		Builds:  c.filtered.builds.Load(),
		Evicted: c.filtered.evicted.Load(),
	}
}

// cachedFiltered returns the cached document of key, or nil.
func (c *Cache) cachedFiltered(key filteredKey) *Entry {
	c.maybeRefresh()
	c.mu.RLock()
	fe := c.filtered.lookup(key)
	c.mu.RUnlock()
	if fe == nil || (fe.expires != 0 && c.now().UnixNano() >= fe.expires) {
		return nil
	}
	if !fe.ref.Load() {
		fe.ref.Store(true)
	}
	return fe.e
}

// errBuildAbandoned is a filtered build given up by the request that
// waited for a slot; the requests waiting for it try again.
var errBuildAbandoned = errors.New("filtered build abandoned")

// fillFiltered returns the document of key, the feed of limit posts that
// f keeps, rendering it unless another request is already doing so.
func (c *Cache) fillFiltered(ctx context.Context, key filteredKey, limit int, f *Filter) (*Entry, error) {
	if err := checkFeed(c.store.Registry, key.board, key.format, limit); err != nil {
		return nil, err
	}
	if key.page && c.opts.Page == nil {
		return nil, fmt.Errorf("build page of %s.%s: %w", key.board, key.format, errNoPageRenderer)
	}
	fc := &c.filtered
	for {
		c.mu.Lock()
		if fe := fc.lookup(key); fe != nil && (fe.expires == 0 || c.now().UnixNano() < fe.expires) {
			c.mu.Unlock()
			fe.ref.Store(true)
			return fe.e, nil
		}
		if fl := fc.flights[key]; fl != nil {
			c.mu.Unlock()
			select {
			case <-fl.done:
				if errors.Is(fl.err, errBuildAbandoned) {
					continue
				}
				return fl.entry, fl.err
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for %s.%s: %w", key.board, key.format, ctx.Err())
			}
		}
		fl := &flight{done: make(chan struct{})}
		fc.flights[key] = fl
		epoch, gen := c.epoch, c.gens[key.board]
		c.mu.Unlock()

		select {
		case fc.slots <- struct{}{}:
			// The build serves every waiter, so one client going away must not cancel it.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if key.page {
				fl.entry, fl.err = buildPage(bctx, c.store, c.opts, key.board, key.format, limit, f)
			} else {
				fl.entry, fl.err = buildEntry(bctx, c.store, c.opts, key.board, key.format, limit, f)
			}
			cancel()
			<-fc.slots
			c.builds.Add(1)
			fc.builds.Add(1)
		case <-ctx.Done():
			fl.err = fmt.Errorf("wait to build %s.%s: %w: %w", key.board, key.format, errBuildAbandoned, ctx.Err())
		}

		c.mu.Lock()
		delete(fc.flights, key)
		if fl.err == nil && epoch == c.epoch && gen == c.gens[key.board] {
			var expires int64
			if f.Window() > 0 {
				expires = c.now().Add(filteredTTL).UnixNano()
				if t := fl.entry.expires; !t.IsZero() && t.UnixNano() < expires {
					expires = t.UnixNano()
				}
			}
			fc.keep(key, fl.entry, expires)
		}
		c.mu.Unlock()
		close(fl.done)
		return fl.entry, fl.err
	}
}

// loadItems reads the items of the feed of board with limit posts: the
// newest limit, or with a filter the first limit of the newest MaxLimit
// that it keeps.
func loadItems(ctx context.Context, store *Store, board string, limit int, f *Filter) ([]Item, error) {
	if f == nil {
		return store.Items(ctx, board, limit)
	}
	items, err := store.Items(ctx, board, MaxLimit)
	if err != nil {
		return nil, err
	}
	return f.Apply(items, store.Now(), limit), nil
}

// markFiltered makes e, rendered from the posts kept by f, the document
// of a filtered feed. One filtered by filter_time changes with the clock:
// it is cached for a short time, says so in Cache-Control, and has no
// Last-Modified, which the clock alone would not move.
func markFiltered(e *Entry, f *Filter, kept []Item) {
	e.Filter = f.Query()
	if f.Window() <= 0 {
		return
	}
	e.expires = f.expiry(kept)
	e.Modified = time.Time{}
	e.lastModified = nil
	h := make(http.Header, len(e.header)+1)
	for k, v := range e.header {
		h[k] = v
	}
	h[hdrCacheControl] = filteredCacheControl
	e.header = h
}

// withQuery appends query to the URL u.
func withQuery(u, query string) string {
	switch {
	case query == "":
		return u
	case strings.Contains(u, "?"):
		return u + "&" + query
	}
	return u + "?" + query
}

// mayFilter reports whether a raw query may hold a filter parameter: it
// names one, or has an escape that could spell one. Others are served as
// before, without a look at the filtered cache.
func mayFilter(raw string) bool {
	return strings.Contains(raw, "filter") || strings.IndexByte(raw, '%') >= 0
}

// serveFiltered serves a feed whose query may hold filter parameters: from
// the filtered cache when it is there, else after checking the query (400
// for a bad limit or filter) and rendering it.
func (h *Handler) serveFiltered(w http.ResponseWriter, r *http.Request, board string, format Format, page bool, raw string) {
	key := filteredKey{board: board, format: format, page: page, query: raw}
	if e := h.cache.cachedFiltered(key); e != nil {
		h.serveEntry(w, r, e)
		return
	}
	q := r.URL.Query()
	limit, ok := h.limit(w, format, q)
	if !ok {
		return
	}
	f, err := ParseFilter(q)
	if err != nil {
		h.observe(format, http.StatusBadRequest)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var e *Entry
	switch {
	case f != nil:
		e, err = h.cache.fillFiltered(r.Context(), key, limit, f)
	case page:
		e, err = h.cache.Page(r.Context(), board, format, limit)
	default:
		e, err = h.cache.Get(r.Context(), board, format, limit)
	}
	h.answer(w, r, board, format, limit, e, err)
}

// FeedQuery checks the limit and filter parameters of q and returns them
// as a canonical query to append to feed URLs ("" when q has none): what
// /feeds.opml carries onto every feed it lists. Other parameters are left
// out. A bad limit or filter is an error of one line.
func FeedQuery(q url.Values) (string, error) {
	var parts []string
	if q.Has("limit") {
		n, err := parseLimit(q.Get("limit"))
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("limit=%d", n))
	}
	f, err := ParseFilter(q)
	if err != nil {
		return "", err
	}
	if f != nil {
		parts = append(parts, f.Query())
	}
	return strings.Join(parts, "&"), nil
}
