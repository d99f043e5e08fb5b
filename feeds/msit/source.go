package msit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/msitfeed/msitfeed/feeds"
)

// ErrUnresolved reports a board whose mId and mPid are not known yet: run
// Discover or set them in the configuration.
var ErrUnresolved = errors.New("board ids (mId, mPid) unknown: discover them or set them in the configuration")

// ErrTruncated reports a post page that ends before its closing </html>:
// the server stopped mid-page. What arrived is not the post, and storing it
// would keep a cut body for good, since an unchanged list row is never
// fetched again.
var ErrTruncated = errors.New("page ends before </html> (truncated)")

// Source reads boards and posts from the site through a Client. It
// remembers each board's bbsSeqNo once a list page has shown it, so that
// canonical URLs carry it even when the configuration does not. It is safe
// for concurrent use.
type Source struct {
	client *Client
	base   *url.URL

	mu  sync.Mutex
	bbs map[string]string // board slug → bbsSeqNo learnt from list pages
}

// NewSource returns a Source for the site at base (its root, e.g.
// https://www.msit.go.kr).
func NewSource(c *Client, base *url.URL) *Source {
	return &Source{client: c, base: base, bbs: map[string]string{}}
}

// Requests returns how many HTTP requests the Source's client has sent.
func (s *Source) Requests() int64 { return s.client.Requests() }

// List fetches and parses page (1-based) of board's list.
func (s *Source) List(ctx context.Context, board feeds.Board, page int) (feeds.ListPage, error) {
	if !board.Resolved() {
		return feeds.ListPage{}, fmt.Errorf("list %s page %d: %w", board.Slug, page, ErrUnresolved)
	}
	u := ListURL(s.base, board, page)
	body, err := s.client.Get(ctx, u)
	if err != nil {
		return feeds.ListPage{}, fmt.Errorf("list %s page %d: %w", board.Slug, page, err)
	}
	pageURL, err := url.Parse(u)
	if err != nil {
		return feeds.ListPage{}, fmt.Errorf("list %s page %d: %w", board.Slug, page, err)
	}
	lp, err := ParseList(pageURL, board, body)
	if err != nil {
		return lp, fmt.Errorf("list %s page %d: %w", board.Slug, page, err)
	}
	if lp.BBSSeqNo != "" {
		s.mu.Lock()
		s.bbs[board.Slug] = lp.BBSSeqNo
		s.mu.Unlock()
	}
	return lp, nil
}

// Detail fetches and parses the post ntt of board. The page is fetched by
// GET at its canonical URL, which is also the Item's URL.
func (s *Source) Detail(ctx context.Context, board feeds.Board, ntt int64) (feeds.Item, error) {
	if !board.Resolved() {
		return feeds.Item{}, fmt.Errorf("detail %s %d: %w", board.Slug, ntt, ErrUnresolved)
	}
	if board.BBSSeqNo == "" {
		s.mu.Lock()
		board.BBSSeqNo = s.bbs[board.Slug]
		s.mu.Unlock()
	}
	u := PostURL(s.base, board, ntt)
	body, err := s.client.Get(ctx, u)
	if err != nil {
		return feeds.Item{}, fmt.Errorf("detail %s %d: %w", board.Slug, ntt, err)
	}
	if !bytes.Contains(bytes.ToLower(body), []byte("</html")) {
		return feeds.Item{}, fmt.Errorf("detail %s %d: %s: %w", board.Slug, ntt, u, ErrTruncated)
	}
	pageURL, err := url.Parse(u)
	if err != nil {
		return feeds.Item{}, fmt.Errorf("detail %s %d: %w", board.Slug, ntt, err)
	}
	item, err := ParseDetail(pageURL, board, ntt, body)
	if err != nil {
		return item, fmt.Errorf("detail %s %d: %w", board.Slug, ntt, err)
	}
	return item, nil
}

// Discover fetches the home page and fills the ids of the boards not yet
// resolved (see the package function Discover). It returns every board and
// an error naming each one left unresolved.
func (s *Source) Discover(ctx context.Context, boards []feeds.Board) ([]feeds.Board, error) {
	body, err := s.client.Get(ctx, HomeURL(s.base))
	if err != nil {
		return boards, fmt.Errorf("discover boards: %w", err)
	}
	return Discover(body, boards)
}
