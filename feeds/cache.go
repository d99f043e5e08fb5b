package feeds

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
)

// MaxLimit is the most items a feed can be asked for with ?limit=.
const MaxLimit = 500

// Options configures the feeds that are served and exported. The zero value
// of every field but the URLs means its default.
type Options struct {
	BaseURL   string // public URL of msitfeed (config base_url), for self links
	SourceURL string // the MSIT site root (config source.url), for alternate links
	Limit     int    // items per feed when ?limit= is absent (config feeds.limit); 50 if 0
	// Page renders the HTML page a browser tab gets for a feed URL (see
	// Handler); nil serves every client the feed document.
	Page PageRenderer

	// CheckInterval is how often at most the cache asks the database whether any
	// connection or process has written; 500ms if 0.
	CheckInterval time.Duration
	// MaxBytes bounds the rendered bytes the cache keeps; 64 MiB if 0.
	// Filtered feeds (?filter=...) have a budget of their own, a quarter of
	// it, so that they never push out the feeds themselves.
	MaxBytes int64
	// MaxFiltered bounds the filtered documents the cache keeps (the least
	// recently used go first); 256 if 0.
	MaxFiltered int
	// Logger receives the causes of 500 responses; nothing is logged if nil.
	Logger *slog.Logger
	// Hubs are the WebSub hubs of every feed: RSS and Atom link to each
	// with rel="hub", JSON Feed lists them in hubs. None if empty.
	Hubs []string
}

func (o Options) withDefaults() Options {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 500 * time.Millisecond
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.MaxFiltered <= 0 {
		o.MaxFiltered = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrUnknownFeed is returned for a board, format or limit no feed has.
var ErrUnknownFeed = errors.New("unknown feed")

// Entry is one rendered feed document, ready to be served. It is never
// modified once built.
type Entry struct {
	Board    string
	Format   Format
	Limit    int
	Body     []byte    // the document
	Gzip     []byte    // Body gzip-compressed once, at build time
	ETag     string    // strong validator of Body, quoted
	GzipETag string    // strong validator of Gzip, quoted (a different representation)
	Modified time.Time // the feed's last change, UTC, whole seconds (Last-Modified); zero for a page
	// Page marks the HTML page of the feed (BuildPage) rather than the
	// feed document.
	Page bool
	// Filter is the canonical query of the keyword filter of a filtered
	// feed (Filter.Query), "" for the feed itself.
	Filter string

	// expires is when a document filtered by filter_time changes by the
	// clock alone; zero for any other.
	expires time.Time

	// Header values prepared once so serving allocates nothing for them.
	contentType, etag, gzipETag, lastModified, length, gzipLength []string
	header                                                        http.Header // more fields of a page (PageRenderer.FeedPageHeader)
}

// BuildEntry reads the latest limit items of board (a slug or AllSlug) and
// renders them in format, with their compressed form and validators.
func BuildEntry(ctx context.Context, store *Store, opts Options, board string, format Format, limit int) (*Entry, error) {
	return buildEntry(ctx, store, opts, board, format, limit, nil)
}

// buildEntry is BuildEntry with the posts f keeps (all for a nil f).
func buildEntry(ctx context.Context, store *Store, opts Options, board string, format Format, limit int, f *Filter) (*Entry, error) {
	opts = opts.withDefaults()
	if err := checkFeed(store.Registry, board, format, limit); err != nil {
		return nil, err
	}
	meta, items, err := loadFeed(ctx, store, opts, board, format, limit, f)
	if err != nil {
		return nil, err
	}
	body, err := Render(meta, items, format)
	if err != nil {
		return nil, fmt.Errorf("build %s.%s: %w", board, format, err)
	}
	e, err := newEntry(board, format, limit, body, feedTime(meta.Updated))
	if err != nil || f == nil {
		return e, err
	}
	markFiltered(e, f, items)
	return e, nil
}

// loadFeed reads what the feed of board in format with limit items says:
// its meta and its items; opts has its defaults. With a filter f, the
// items are the first limit that f keeps of the newest MaxLimit, and the
// self link carries f's query.
func loadFeed(ctx context.Context, store *Store, opts Options, board string, format Format, limit int, f *Filter) (FeedMeta, []Item, error) {
	boards, err := store.Boards(ctx)
	if err != nil {
		return FeedMeta{}, nil, fmt.Errorf("build %s.%s: %w", board, format, err)
	}
	versions, err := store.Versions(ctx)
	if err != nil {
		return FeedMeta{}, nil, fmt.Errorf("build %s.%s: %w", board, format, err)
	}
	var changed time.Time
	for slug, v := range versions {
		if (board == AllSlug || slug == board) && v.Changed.After(changed) {
			changed = v.Changed
		}
	}
	items, err := loadItems(ctx, store, board, limit, f)
	if err != nil {
		return FeedMeta{}, nil, fmt.Errorf("build %s.%s: %w", board, format, err)
	}
	// The feed changed when its board last changed (a post stored or edited),
	// even if the new post's own dates are older than the newest shown.
	updated := NewestUpdate(items, changed)
	if changed.After(updated) {
		updated = changed
	}
	if updated.IsZero() {
		// An empty board that never changed: its last crawl, else now,
		// rather than 1970.
		if updated, err = store.LastCrawl(ctx, board); err != nil {
			return FeedMeta{}, nil, fmt.Errorf("build %s.%s: %w", board, format, err)
		}
		if updated.IsZero() {
			updated = store.Now()
		}
	}
	meta := opts.Meta(boards, board, format, limit, updated)
	if f != nil {
		meta.SelfURL = withQuery(meta.SelfURL, f.Query())
		// A hub takes the feeds themselves as topics, not filtered ones:
		// a filtered feed names none rather than one that would refuse it.
		meta.Hubs = nil
	}
	return meta, items, nil
}

func newEntry(board string, format Format, limit int, body []byte, updated time.Time) (*Entry, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compress %s.%s: %w", board, format, err)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("compress %s.%s: %w", board, format, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress %s.%s: %w", board, format, err)
	}
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:16])
	e := &Entry{
		Board:    board,
		Format:   format,
		Limit:    limit,
		Body:     body,
		Gzip:     gz.Bytes(),
		ETag:     `"` + tag + `"`,
		GzipETag: `"` + tag + `-gzip"`,
		Modified: updated.UTC(),
	}
	// One-element slices have no spare capacity, so a middleware appending
	// to a header copies rather than writes into a slice shared by responses.
	e.contentType = []string{format.ContentType()}
	e.etag = []string{e.ETag}
	e.gzipETag = []string{e.GzipETag}
	e.lastModified = []string{e.Modified.Format(http.TimeFormat)}
	e.length = []string{fmt.Sprint(len(e.Body))}
	e.gzipLength = []string{fmt.Sprint(len(e.Gzip))}
	return e, nil
}

func (e *Entry) size() int64 { return int64(len(e.Body) + len(e.Gzip) + 256) }

func checkFeed(reg *Registry, board string, format Format, limit int) error {
	if board != AllSlug && !reg.Has(board) {
		return fmt.Errorf("%w: no board %q", ErrUnknownFeed, board)
	}
	if _, ok := ParseFormat(string(format)); !ok {
		return fmt.Errorf("%w: no format %q", ErrUnknownFeed, format)
	}
	if limit < 1 || limit > MaxLimit {
		return fmt.Errorf("%w: limit %d is not between 1 and %d", ErrUnknownFeed, limit, MaxLimit)
	}
	return nil
}

// Cache keeps rendered feeds per (board, format, limit) and rebuilds one
// only after its board's data changed; the all feed after any board changed.
//
// Changes are noticed whoever makes them, this process or another one on the
// same database file (msitfeed crawl beside msitfeed serve): at most every
// CheckInterval, and only when a request comes, the cache reads the
// engine's change token (db.Engine.ChangeToken: SQLite's PRAGMA
// data_version, PostgreSQL's current snapshot) on a connection of its own,
// which moves whenever another connection commits; only then does it read the boards' versions and drop
// the entries of boards whose version moved. Between checks a request costs a
// map lookup. Invalidate drops entries at once.
//
// The documents of the default limit, what feed readers poll, are also in a
// copy keyed by file name ("press.rss") made at every change of the entries
// (ByFile), which a request reads without taking the lock.
type Cache struct {
	store *Store
	opts  Options
	// now is the clock of the checks and of filtered feeds' lives: elapsed
	// time is all it is used for, so it counts from the start with the
	// monotonic clock alone (monoClock). Tests move it instead of sleeping.
	now func() time.Time

	lastCheck atomic.Int64 // UnixNano of the last check
	checkMu   sync.Mutex   // one check at a time; others serve what is cached
	// recent holds from a check until a timer of CheckInterval clears it:
	// meanwhile a request does not read the clock. An idle cache has no
	// timer running. Off (timed false) when a test moves the clock.
	recent atomic.Bool
	timed  bool

	// Guarded by checkMu.
	conn        *sql.Conn
	changeToken string // "" forces a versions read
	versions    map[string]int64

	mu      sync.RWMutex
	entries map[cacheKey]*Entry
	byFile  atomic.Pointer[map[string]*Entry] // see publish
	flights map[cacheKey]*flight
	gens    map[string]uint64 // per board (and AllSlug): bumped when its entries are dropped
	epoch   uint64            // bumped when every entry is dropped
	bytes   int64

	builds atomic.Int64 // documents rendered, for tests

	filtered filteredCache // documents of filtered feeds (filtercache.go)
}

type cacheKey struct {
	board  string
	format Format
	limit  int
	page   bool // the HTML page of the feed rather than the document
}

// flight is one build in progress that other requests for the same key
// wait for instead of rendering the same feed again.
type flight struct {
	done  chan struct{}
	entry *Entry
	err   error
}

// NewCache returns a Cache over store. It takes one connection from the
// store's pool for as long as it lives (so the pool must allow more than one
// open connection); Close gives it back.
func NewCache(ctx context.Context, store *Store, opts Options) (*Cache, error) {
	c := &Cache{
		store:   store,
		opts:    opts.withDefaults(),
		now:     monoClock(),
		timed:   true,
		entries: map[cacheKey]*Entry{},
		flights: map[cacheKey]*flight{},
		gens:    map[string]uint64{},
	}
	c.filtered.init(c.opts)
	c.publish()
	if err := c.refresh(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("start feed cache: %w", err)
	}
	c.lastCheck.Store(c.now().UnixNano())
	c.checked()
	return c, nil
}

// monoClock returns a clock that reads the monotonic clock only: requests
// read the cache's clock (when no check was made within CheckInterval, and
// for filtered feeds), and time.Now also reads the wall clock, which doubles
// its cost (about 90 ns against 45 on a VM whose clock reads are slow). Its
// times are the start's plus the time elapsed since, so a step of the wall
// clock does not move them.
func monoClock() func() time.Time {
	start := time.Now()
	return func() time.Time { return start.Add(time.Since(start)) }
}

// Options returns the options the cache renders with, defaults filled in.
func (c *Cache) Options() Options { return c.opts }

// Close releases the cache's database connection.
func (c *Cache) Close() error {
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	c.lastCheck.Store(1<<63 - 1) // never check again
	if err != nil {
		return fmt.Errorf("close feed cache: %w", err)
	}
	return nil
}

// Get returns the feed of board (a slug or AllSlug) in format with at most
// limit items, rendering it only if it is not cached or its data changed.
// Concurrent requests for a feed being rendered wait for that one rendering.
func (c *Cache) Get(ctx context.Context, board string, format Format, limit int) (*Entry, error) {
	c.maybeRefresh()
	key := cacheKey{board: board, format: format, limit: limit}
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	if err := checkFeed(c.store.Registry, board, format, limit); err != nil {
		return nil, err
	}
	return c.fill(ctx, key)
}

// Page returns the HTML page of the feed of board in format with at most
// limit items (BuildPage), kept and dropped like the feed itself: rendered
// once per change of its board's data, not per request, so a browser tab
// costs a map lookup like a feed reader and gets an ETag that holds until
// the posts change. It fails if the cache's options have no Page renderer.
func (c *Cache) Page(ctx context.Context, board string, format Format, limit int) (*Entry, error) {
	c.maybeRefresh()
	key := cacheKey{board: board, format: format, limit: limit, page: true}
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	if err := checkFeed(c.store.Registry, board, format, limit); err != nil {
		return nil, err
	}
	return c.fill(ctx, key)
}

// ByFile returns the cached document of the default limit named file
// ("press.rss": board, '.', format as ParseFormat returns it), or nil if it
// is not cached or no such feed exists; Get then builds it. It checks for
// changes as Get does, then costs one string lookup and no lock.
func (c *Cache) ByFile(file string) *Entry {
	c.maybeRefresh()
	return (*c.byFile.Load())[file]
}

// publish makes the copy of the entries ByFile reads; c.mu is held (or the
// cache is new). Entries change only when a feed is built or dropped, so
// copying them then is cheap beside the rendering or the crawl that caused it.
func (c *Cache) publish() {
	m := make(map[string]*Entry)
	for k, e := range c.entries {
		if !k.page && k.limit == c.opts.Limit {
			m[k.board+"."+string(k.format)] = e
		}
	}
	c.byFile.Store(&m)
}

func (c *Cache) fill(ctx context.Context, key cacheKey) (*Entry, error) {
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		c.mu.Unlock()
		return e, nil
	}
	if f := c.flights[key]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.entry, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s.%s: %w", key.board, key.format, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	epoch, gen := c.epoch, c.gens[key.board]
	c.mu.Unlock()

	// The build serves every waiter, so one client going away must not cancel it.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if key.page {
		f.entry, f.err = BuildPage(bctx, c.store, c.opts, key.board, key.format, key.limit)
	} else {
		f.entry, f.err = BuildEntry(bctx, c.store, c.opts, key.board, key.format, key.limit)
	}
	cancel()
	c.builds.Add(1)

	c.mu.Lock()
	delete(c.flights, key)
	// Data read before an invalidation that came during the build may be
	// stale: serve it to those who asked, but do not keep it.
	if f.err == nil && epoch == c.epoch && gen == c.gens[key.board] {
		c.keep(key, f.entry)
	}
	c.mu.Unlock()
	close(f.done)
	return f.entry, f.err
}

// keep stores e under key within the byte budget; c.mu is held.
func (c *Cache) keep(key cacheKey, e *Entry) {
	if old := c.entries[key]; old != nil {
		c.bytes -= old.size()
	}
	c.entries[key] = e
	c.bytes += e.size()
	// Feeds asked for with many different limits can outgrow the budget:
	// drop others, in Go's random map order, until it fits.
	for k, old := range c.entries {
		if c.bytes <= c.opts.MaxBytes {
			break
		}
		if k != key {
			delete(c.entries, k)
			c.bytes -= old.size()
		}
	}
	c.publish()
}

// Invalidate drops the cached feeds of the given boards and of the all
// feed, or every cached feed when no board is given. Writers in this process
// may call it to skip the wait for the next check.
func (c *Cache) Invalidate(boards ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filtered.drop(boards)
	defer c.publish()
	if len(boards) == 0 {
		clear(c.entries)
		c.bytes = 0
		c.epoch++
		return
	}
	for _, b := range boards {
		c.gens[b]++
	}
	c.gens[AllSlug]++
	for k, e := range c.entries {
		if k.board == AllSlug || containsSlug(boards, k.board) {
			delete(c.entries, k)
			c.bytes -= e.size()
		}
	}
}

func containsSlug(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// maybeRefresh checks for changes if CheckInterval has passed since the
// last check. The request that finds it due runs the check, so it sees fresh
// data; requests meanwhile serve what is cached rather than wait.
func (c *Cache) maybeRefresh() {
	if c.recent.Load() {
		return
	}
	now := c.now().UnixNano()
	if now-c.lastCheck.Load() < int64(c.opts.CheckInterval) {
		return
	}
	if !c.checkMu.TryLock() {
		return
	}
	defer c.checkMu.Unlock()
	if now-c.lastCheck.Load() < int64(c.opts.CheckInterval) {
		return // another request checked while this one was arriving
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.refresh(ctx); err != nil {
		// Freshness cannot be shown: drop everything, and start over with a
		// new connection at the next check.
		c.opts.Logger.Warn("feed cache: check for changes", "err", err)
		c.Invalidate()
		if c.conn != nil {
			c.conn.Close()
			c.conn = nil
		}
		c.changeToken = ""
	}
	c.lastCheck.Store(c.now().UnixNano())
	c.checked()
}

// checked marks a check just made: for CheckInterval, requests skip the
// clock. The timer starts after lastCheck was stored, so when it fires the
// clock says the interval has passed.
func (c *Cache) checked() {
	if !c.timed {
		return
	}
	c.recent.Store(true)
	time.AfterFunc(c.opts.CheckInterval, func() { c.recent.Store(false) })
}

// refresh drops the entries of boards whose version moved since the last
// refresh; the caller holds checkMu (or is NewCache).
func (c *Cache) refresh(ctx context.Context) error {
	if c.conn == nil {
		conn, err := c.store.DB().Conn(ctx)
		if err != nil {
			return fmt.Errorf("reserve connection: %w", err)
		}
		c.conn, c.changeToken = conn, ""
	}
	tok, err := db.EngineOf(c.store.DB()).ChangeToken(ctx, c.conn)
	if err != nil {
		return err
	}
	if tok == c.changeToken {
		return nil
	}
	// The token is read before the versions, so a commit between the two
	// reads shows up again at the next check rather than being missed.
	vs, err := c.store.Versions(ctx)
	if err != nil {
		return err
	}
	var moved []string
	next := make(map[string]int64, len(vs))
	for slug, v := range vs {
		next[slug] = v.Version
		if old, ok := c.versions[slug]; !ok || old != v.Version {
			moved = append(moved, slug)
		}
	}
	for slug := range c.versions {
		if _, ok := next[slug]; !ok {
			moved = append(moved, slug)
		}
	}
	first := c.versions == nil
	c.versions, c.changeToken = next, tok
	if len(moved) > 0 && !first {
		c.Invalidate(moved...)
	}
	return nil
}
