package msittest

import (
	"fmt"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// Shape is the markup the site gives its English boards' list and post
// pages. The Korean boards are always in ShapeKorean.
type Shape int

// The shapes the site can take.
const (
	// ShapeClassic: per-row scripts fill empty cells of a table (gallery:
	// list items) whose rows link to their posts with onclick="fn_detail(N)";
	// titles in unescape('%u...'), dates in a PSTG_YMD cell as YYYY-MM-DD.
	// Post pages: div.board_view > div.view_head (h2, span.date YYYY.MM.DD,
	// span.dept) / div.view_cont / div.view_file / div.view_nav.
	ShapeClassic Shape = iota
	// ShapeEnglish2026 is the English site as seen live in 2026: the table
	// cells are empty and carry no link; each row's script sets the title
	// cell to '<a ... onclick="fn_detail("N")" title="..."><span>TITLE</span></a>'
	// (HTML with entities, in a single-quoted JS literal) and the REG_DT
	// cell to "Nov 5, 2025". Gallery rows get their link and thumbnail the
	// same way. Post pages as classic but dated "Nov 5, 2025" and with a
	// body whose first paragraph is the title.
	ShapeEnglish2026
	// ShapeKorean is the ministry's Korean site: div.toggle rows with empty
	// cells inside a fn_detail anchor, one script after all rows building
	// titles from undefined variables and unescape('...') (escape()d or raw),
	// dates "2026. 10. 1" among commented-out copies. Post pages:
	// .view_head h2 and dl.tit_con, #cont-wrap.view_cont
	// .texteditor-area-inner (first paragraph the title), ul.down_file_new.
	ShapeKorean
	// ShapeBroken is a redesign no parser knows: list rows carry neither
	// fn_detail nor view.do links, only data-ntt attributes and goView();
	// post pages as classic.
	ShapeBroken
)

func (sh Shape) String() string {
	switch sh {
	case ShapeClassic:
		return "classic"
	case ShapeEnglish2026:
		return "english2026"
	case ShapeKorean:
		return "korean"
	case ShapeBroken:
		return "broken"
	}
	return fmt.Sprintf("Shape(%d)", int(sh))
}

// WithShape sets the shape of the English boards' pages (default
// ShapeClassic).
func WithShape(sh Shape) Option { return func(s *Site) { s.shape = sh } }

// WithoutDepartment, when hide is true, drops the department column from
// every list page (any shape), as a redesign might; post pages keep it.
func WithoutDepartment(hide bool) Option { return func(s *Site) { s.hideDept = hide } }

// SetShape switches the shape of the English boards' pages while the site
// runs.
func (s *Site) SetShape(sh Shape) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shape = sh
}

// Shape returns the shape of the English boards' pages.
func (s *Site) Shape() Shape {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shape
}

// SetHideDepartment drops (true) or restores (false) the department column
// of the list pages while the site runs.
func (s *Site) SetHideDepartment(hide bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hideDept = hide
}

// look returns the shape a board's pages take now and whether its list
// pages hide the department.
func (s *Site) look(bd feeds.Board) (Shape, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if isKorean(bd) {
		return ShapeKorean, s.hideDept
	}
	return s.shape, s.hideDept
}

func isKorean(bd feeds.Board) bool { return bd.SCode == "user" }

// boardDir is where a board's list.do and view.do live.
func boardDir(bd feeds.Board) string {
	if bd.Dir == "" {
		return "/eng/bbs"
	}
	return bd.Dir
}

// boardSCode is a board's sCode parameter.
func boardSCode(bd feeds.Board) string {
	if bd.SCode == "" {
		return "eng"
	}
	return bd.SCode
}

func parseDay(d string) (time.Time, bool) {
	t, err := time.Parse("2006-01-02", d)
	return t, err == nil
}

// engDate writes YYYY-MM-DD as "Nov 5, 2025".
func engDate(d string) string {
	if t, ok := parseDay(d); ok {
		return t.Format("Jan 2, 2006")
	}
	return d
}

// koDate writes YYYY-MM-DD as "2026. 10. 1".
func koDate(d string) string {
	if t, ok := parseDay(d); ok {
		return fmt.Sprintf("%d. %d. %d", t.Year(), int(t.Month()), t.Day())
	}
	return d
}

// shiftDay moves a YYYY-MM-DD date by days (for decoy dates); a date that
// does not parse becomes 1999-12-31.
func shiftDay(d string, days int) string {
	if t, ok := parseDay(d); ok {
		return t.AddDate(0, 0, days).Format("2006-01-02")
	}
	return "1999-12-31"
}

// htmlText escapes text for HTML content with named entities (&amp; &lt;
// &gt; &quot;), leaving apostrophes as they are.
var htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace

// htmlAttr escapes text for a double-quoted attribute, apostrophes as &#39;.
var htmlAttr = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace

// jsString writes s as a single-quoted JavaScript literal, escaping only
// what the literal needs (so "</span>" stays as it is).
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "</script", `<\/script`)
	return "'" + r.Replace(s) + "'"
}
