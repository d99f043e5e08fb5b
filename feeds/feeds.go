// Package feeds owns msitfeed's domain: boards, items and their attachments,
// the SQLite tables that hold them, the crawl loop over a Source, and the
// rendering of items to RSS 2.0, Atom 1.0 and JSON Feed 1.1 with the cache and
// HTTP handlers that serve them. It knows nothing of the MSIT markup (that is
// feeds/msit) nor of subscribers (that is mailer).
package feeds

import (
	"time"
	_ "time/tzdata" // KST must not depend on the host's zoneinfo.
)

// KST is Asia/Seoul, the zone of every date the site publishes.
var KST = mustLoadKST()

func mustLoadKST() *time.Location {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		// tzdata is embedded, so this cannot happen; keep a fixed zone anyway.
		return time.FixedZone("KST", 9*60*60)
	}
	return loc
}

// Board is one of the site's bulletin boards and the ids that address it.
// MID, MPID and BBSSeqNo may be empty until discovered from the home page.
type Board struct {
	Slug     string // our name: notice, press, photo, trends, newsletter
	Name     string // the site's menu name, e.g. "Press Releases"
	MID      string
	MPID     string
	BBSSeqNo string
	Gallery  bool // rows carry thumbnails (Photo News)
	// Lang is the language of the board's posts ("en" or "ko"); empty
	// means "en".
	Lang string
	// SCode is the site section's sCode parameter: "eng" for the English
	// site (the default when empty), "user" for the Korean one.
	SCode string
	// Dir is the path under which list.do and view.do live: "/eng/bbs" for
	// the English site (the default when empty), "/bbs" for the Korean one.
	Dir string
	// Configured marks a board added by [boards.<slug>] in the
	// configuration rather than built in.
	Configured bool
}

// Language returns the board's language tag, "en" when unset.
func (b Board) Language() string {
	if b.Lang == "" {
		return "en"
	}
	return b.Lang
}

// Resolved reports whether the board's list page can be addressed.
func (b Board) Resolved() bool { return b.MID != "" && b.MPID != "" }

// AllSlug names the combined feed of every board.
const AllSlug = "all"

// DefaultBoards returns the five boards in their fixed display order, with
// the ids that are publicly known (Press Releases) filled in.
func DefaultBoards() []Board {
	return []Board{
		{Slug: "notice", Name: "Notice"},
		{Slug: "press", Name: "Press Releases", MID: "4", MPID: "2", BBSSeqNo: "42"},
		{Slug: "photo", Name: "Photo News", Gallery: true},
		{Slug: "trends", Name: "Science & ICT Trends"},
		{Slug: "newsletter", Name: "Newsletter"},
	}
}

// BoardSlugs returns the slugs of DefaultBoards in order.
func BoardSlugs() []string {
	bs := DefaultBoards()
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.Slug
	}
	return s
}

// IsBoardSlug reports whether s names one of the five boards (not "all").
func IsBoardSlug(s string) bool {
	for _, b := range DefaultBoards() {
		if b.Slug == s {
			return true
		}
	}
	return false
}

// Item is one post of a board, identified by (Board, ID).
type Item struct {
	Board       string    // board slug
	ID          int64     // the site's nttSeqNo
	Title       string    // plain text
	URL         string    // canonical view.do URL
	Published   time.Time // the posting date, midnight in KST
	FirstSeen   time.Time // when msitfeed first stored the post
	Updated     time.Time // when msitfeed last saw the post change (FirstSeen if never)
	Department  string
	Body        string // sanitised HTML with absolute URLs
	Summary     string // plain text, short
	Thumbnail   string // absolute image URL, gallery boards
	Hash        string // content hash over the fields that matter
	Attachments []Attachment
	// DateFrom says where Published came from when the post's own page
	// showed no date: DateFromList (the board's list) or DateFromSeen (the
	// day msitfeed first stored it). Empty means the post's page.
	DateFrom string
}

// Where a post's date came from when its page showed none.
const (
	DateFromList = "list"
	DateFromSeen = "seen"
)

// Attachment is a file attached to a post.
type Attachment struct {
	Name string // file name as shown on the site
	URL  string // absolute download URL
	Type string // MIME type guessed from the extension
}

// ListRow is what a board's list page says of one post.
type ListRow struct {
	ID         int64 // nttSeqNo
	Title      string
	Published  time.Time // midnight KST; zero if the row had no date
	Department string
	Thumbnail  string // absolute URL, gallery boards
}

// ListPage is one parsed page of a board's list.
type ListPage struct {
	Rows     []ListRow
	LastPage int    // highest page number linked from the pager; 0 if unknown
	BBSSeqNo string // the board's bbsSeqNo if the page reveals it
	// HasDepartment reports that the page has a place for each row's
	// department (a cell or a column header), so a row without one is a
	// field the parser failed to read rather than one the site dropped.
	HasDepartment bool
}
