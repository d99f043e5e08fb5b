// Package msittest is a fake of the MSIT English site for tests, the offline
// demo and benchmarks: an http.Handler serving the home page, list pages,
// post pages, attachments and robots.txt in the markup shapes feeds/msit
// parses (script-hydrated list rows with escape()d titles, dead and
// commented-out statements, gallery rows, view_head/view_cont/view_file/
// view_nav post pages). Its posts can change while it runs, it counts the
// requests it serves, and it can be slowed down or made to fail.
//
// The English boards' list and post pages come in several shapes (see
// [Shape]): the classic one above by default, the script-link shape seen on
// the live site in 2026, the Korean site's shape, and a broken redesign;
// the shape can be switched while the site runs. Two boards of the
// ministry's Korean site ([KoreanBoards]) are served under /bbs/ in the
// Korean shape.
package msittest

import (
	"fmt"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// Post is one post the site serves.
type Post struct {
	Board       string // board slug: notice, press, photo, trends, newsletter
	ID          int64  // nttSeqNo, unique within its board
	Title       string // plain text, as a reader sees it
	Date        string // YYYY-MM-DD
	Department  string
	BodyHTML    string // the post's content, as the site's editor stored it
	Attachments []Attachment
	Thumbnail   string // site-relative image path, gallery boards
}

// Attachment is a file attached to a post, downloaded from
// /ssm/file/fileDown.do?atchFileNo=FileNo&fileOrd=Ord.
type Attachment struct {
	Name   string // file name with its extension, as shown
	FileNo int64  // atchFileNo
	Ord    int    // fileOrd
	Ext    string // extension without the dot, as passed to fn_download
}

// Kind classifies the requests the site serves, for counting.
type Kind string

// Kinds of request.
const (
	KindRobots   Kind = "robots"
	KindHome     Kind = "home"
	KindList     Kind = "list"
	KindView     Kind = "view"
	KindDownload Kind = "download"
	KindImage    Kind = "image"
	KindOther    Kind = "other"
)

// DefaultRobots is the robots.txt the site serves unless told otherwise: it
// allows everything msitfeed reads.
const DefaultRobots = "User-agent: *\nDisallow: /eng/search\n"

// Boards returns the site's five boards with the ids its home page menu
// gives them, in feeds.DefaultBoards order.
func Boards() []feeds.Board {
	return []feeds.Board{
		{Slug: "notice", Name: "Notice", MID: "3", MPID: "2", BBSSeqNo: "41"},
		{Slug: "press", Name: "Press Releases", MID: "4", MPID: "2", BBSSeqNo: "42"},
		{Slug: "photo", Name: "Photo News", MID: "5", MPID: "2", BBSSeqNo: "43", Gallery: true},
		{Slug: "trends", Name: "Science & ICT Trends", MID: "6", MPID: "2", BBSSeqNo: "44"},
		{Slug: "newsletter", Name: "Newsletter", MID: "7", MPID: "2", BBSSeqNo: "45"},
	}
}

// Option configures a Site.
type Option func(*Site)

// WithLatency delays every response by d (for benchmarks and timeouts).
func WithLatency(d time.Duration) Option { return func(s *Site) { s.latency = d } }

// WithFault installs a hook asked before each request is served: when it
// returns ok, the site answers with its status and an empty body instead.
// The hook may be called from several goroutines at once.
func WithFault(fault func(r *http.Request) (status int, ok bool)) Option {
	return func(s *Site) { s.fault = fault }
}

// WithPageSize sets the rows per list page (default 10).
func WithPageSize(n int) Option {
	return func(s *Site) {
		if n > 0 {
			s.pageSize = n
		}
	}
}

// WithRobots replaces the robots.txt the site serves.
func WithRobots(body string) Option { return func(s *Site) { s.robots = body } }

// Site is the fake site. It is safe for concurrent use.
type Site struct {
	latency  time.Duration
	fault    func(*http.Request) (int, bool)
	pageSize int
	robots   string

	mu       sync.Mutex
	shape    Shape             // the English boards' shape
	hideDept bool              // list pages have no department column
	posts    map[string][]Post // board slug → posts, newest first
	counts   map[Kind]int64
	total    int64
}

// NewSite returns a site serving posts.
func NewSite(posts []Post, opts ...Option) *Site {
	s := &Site{pageSize: 10, robots: DefaultRobots, posts: map[string][]Post{}, counts: map[Kind]int64{}}
	for _, o := range opts {
		o(s)
	}
	for _, p := range posts {
		s.posts[p.Board] = append(s.posts[p.Board], clonePost(p))
	}
	for b := range s.posts {
		sortPosts(s.posts[b])
	}
	return s
}

func clonePost(p Post) Post {
	p.Attachments = slices.Clone(p.Attachments)
	return p
}

// sortPosts orders newest first: by date, then by id.
func sortPosts(ps []Post) {
	slices.SortStableFunc(ps, func(a, b Post) int {
		if c := strings.Compare(b.Date, a.Date); c != 0 {
			return c
		}
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
}

// AddPost publishes p (replacing a post with the same board and id).
func (s *Site) AddPost(p Post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := slices.DeleteFunc(s.posts[p.Board], func(q Post) bool { return q.ID == p.ID })
	s.posts[p.Board] = append(ps, clonePost(p))
	sortPosts(s.posts[p.Board])
}

// EditPost changes a post's title and body; an empty argument leaves that
// part as it is. It reports whether the post exists.
func (s *Site) EditPost(board string, id int64, title, bodyHTML string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.posts[board] {
		p := &s.posts[board][i]
		if p.ID != id {
			continue
		}
		if title != "" {
			p.Title = title
		}
		if bodyHTML != "" {
			p.BodyHTML = bodyHTML
		}
		return true
	}
	return false
}

// RemovePost deletes a post and reports whether it existed.
func (s *Site) RemovePost(board string, id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.posts[board])
	s.posts[board] = slices.DeleteFunc(s.posts[board], func(p Post) bool { return p.ID == id })
	return len(s.posts[board]) != n
}

// Posts returns a copy of a board's posts, newest first.
func (s *Site) Posts(board string) []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Post, len(s.posts[board]))
	for i, p := range s.posts[board] {
		out[i] = clonePost(p)
	}
	return out
}

// Requests returns how many requests the site has received.
func (s *Site) Requests() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestsOf returns how many requests of one kind the site has received.
func (s *Site) RequestsOf(k Kind) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[k]
}

// ResetRequests sets the request counters back to zero.
func (s *Site) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = 0
	clear(s.counts)
}

func kindOf(path string) Kind {
	switch {
	case path == "/robots.txt":
		return KindRobots
	case path == "/eng/index.do" || path == "/eng/" || path == "/":
		return KindHome
	case strings.HasSuffix(path, "/bbs/list.do"):
		return KindList
	case strings.HasSuffix(path, "/bbs/view.do"):
		return KindView
	case strings.HasSuffix(path, "/fileDown.do"):
		return KindDownload
	case strings.HasPrefix(path, "/upload/") || strings.HasPrefix(path, "/attach/") || strings.HasPrefix(path, "/images/"):
		return KindImage
	}
	return KindOther
}

// ServeHTTP serves the site. Path parameters such as ;jsessionid=... are
// ignored; the post pages answer GET and POST alike, as the real site's
// hidden form posts them.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := stripPathParams(r.URL.Path)
	kind := kindOf(path)
	s.mu.Lock()
	s.total++
	s.counts[kind]++
	s.mu.Unlock()

	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if s.fault != nil {
		if status, ok := s.fault(r); ok {
			w.WriteHeader(status)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch kind {
	case KindRobots:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, s.robots)
	case KindHome:
		s.serveHome(w)
	case KindList:
		s.serveList(w, r)
	case KindView:
		s.serveView(w, r)
	case KindDownload:
		s.serveDownload(w, r)
	case KindImage:
		serveImage(w, path)
	default:
		notFound(w)
	}
}

func stripPathParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			segs[i] = seg[:j]
		}
	}
	return strings.Join(segs, "/")
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><head><title>Page not found</title></head><body><h1>The page you requested cannot be found.</h1></body></html>`)
}

// boardByMID returns the board a list or view request addresses: one of
// KoreanBoards under /bbs/, one of Boards elsewhere.
func boardByMID(r *http.Request) (feeds.Board, bool) {
	mid := r.FormValue("mId")
	boards := Boards()
	if p := stripPathParams(r.URL.Path); p == "/bbs/list.do" || p == "/bbs/view.do" {
		boards = KoreanBoards()
	}
	for _, b := range boards {
		if b.MID == mid {
			return b, true
		}
	}
	return feeds.Board{}, false
}

func (s *Site) serveDownload(w http.ResponseWriter, r *http.Request) {
	fileNo, err1 := strconv.ParseInt(r.FormValue("atchFileNo"), 10, 64)
	ord, err2 := strconv.Atoi(r.FormValue("fileOrd"))
	if err1 != nil || err2 != nil {
		notFound(w)
		return
	}
	s.mu.Lock()
	var found *Attachment
	for _, ps := range s.posts {
		for _, p := range ps {
			for _, a := range p.Attachments {
				if a.FileNo == fileNo && a.Ord == ord {
					found = &a
				}
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename*=UTF-8''%s", strings.ReplaceAll(escapeURIComponent(found.Name), "'", "%27")))
	fmt.Fprintf(w, "fake %s file %d/%d: %s\n", found.Ext, found.FileNo, found.Ord, found.Name)
}

// tinyGIF is a 1×1 transparent GIF served for every image.
var tinyGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func serveImage(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "image/gif")
	w.Write(tinyGIF)
}

// escapeURIComponent percent-encodes s for a Content-Disposition filename*.
func escapeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("-_.!~*()", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// esc is HTML text escaping.
func esc(s string) string { return html.EscapeString(s) }
