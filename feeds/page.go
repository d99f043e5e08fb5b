package feeds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// FeedPage is what the HTML page of a feed shows. A browser tab that opens
// a feed URL gets this page instead of the document (see Handler), because
// browsers show a feed as raw text or download it, and are removing XSLT.
type FeedPage struct {
	// Meta is what the feed document says of itself; Meta.SelfURL is the
	// URL the tab opened, the one to copy into a feed reader.
	Meta   FeedMeta
	Format Format // the format of the URL opened
	// Links is the same feed (board and limit) in every format, in the
	// order of Formats, the one opened included.
	Links []FeedLink
	Items []Item // newest first, as in the document
	// Filter is the keyword filter of a filtered feed as a query
	// (Filter.Query), "" for the feed itself; Meta.SelfURL and Links
	// carry it.
	Filter string
}

// FeedLink is the URL of a feed in one format.
type FeedLink struct {
	Format Format
	URL    string
}

// PageRenderer renders the HTML page of a feed. Set Options.Page to one to
// serve browser tabs pages; without one they get the feed document like
// every other client.
type PageRenderer interface {
	// RenderFeedPage returns the whole page, UTF-8.
	RenderFeedPage(p FeedPage) ([]byte, error)
	// FeedPageHeader returns the header fields every page response carries
	// besides the representation's own (security headers). It is read once
	// per rendered page and not modified.
	FeedPageHeader() http.Header
}

// errNoPageRenderer is returned when a page is asked of options without one.
var errNoPageRenderer = errors.New("no page renderer (Options.Page)")

var pageTypeValue = []string{"text/html; charset=utf-8"}

// BuildPage reads the latest limit items of board (a slug or AllSlug) and
// renders them with opts.Page as the HTML page of the feed in format, with
// its compressed form and validators. The page has no Modified time: it
// changes with msitfeed's templates as well as with the data, so its ETag,
// a hash of its bytes, is its only validator.
func BuildPage(ctx context.Context, store *Store, opts Options, board string, format Format, limit int) (*Entry, error) {
	return buildPage(ctx, store, opts, board, format, limit, nil)
}

// buildPage is BuildPage with the posts f keeps (all for a nil f).
func buildPage(ctx context.Context, store *Store, opts Options, board string, format Format, limit int, f *Filter) (*Entry, error) {
	opts = opts.withDefaults()
	if opts.Page == nil {
		return nil, fmt.Errorf("build page of %s.%s: %w", board, format, errNoPageRenderer)
	}
	if err := checkFeed(store.Registry, board, format, limit); err != nil {
		return nil, err
	}
	meta, items, err := loadFeed(ctx, store, opts, board, format, limit, f)
	if err != nil {
		return nil, err
	}
	p := FeedPage{Meta: meta, Format: format, Items: items, Filter: f.Query()}
	for _, other := range Formats() {
		// The self link of the feed in that format, as Meta writes it.
		self := withQuery(opts.Meta(nil, board, other, limit, meta.Updated).SelfURL, f.Query())
		p.Links = append(p.Links, FeedLink{Format: other, URL: self})
	}
	body, err := opts.Page.RenderFeedPage(p)
	if err != nil {
		return nil, fmt.Errorf("build page of %s.%s: %w", board, format, err)
	}
	e, err := newEntry(board, format, limit, body, time.Time{})
	if err != nil {
		return nil, err
	}
	e.Page = true
	e.Modified = time.Time{}
	e.contentType = pageTypeValue
	e.lastModified = nil
	if h := opts.Page.FeedPageHeader(); len(h) > 0 {
		e.header = make(http.Header, len(h))
		for k, v := range h {
			// Without spare capacity, as the values of newEntry.
			e.header[http.CanonicalHeaderKey(k)] = slices.Clip(slices.Clone(v))
		}
	}
	if f != nil {
		markFiltered(e, f, items)
	}
	return e, nil
}
