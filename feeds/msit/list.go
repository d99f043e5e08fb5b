package msit

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ErrNoRows reports a list page that has content but no row the parser
// recognises: the markup has probably changed. Match it with errors.Is; the
// error itself is a *NoRowsError.
var ErrNoRows = errors.New("no recognisable rows")

// NoRowsError is the error ParseList returns for a page without rows that
// does not say the board is empty.
type NoRowsError struct {
	Board string // board slug
}

// Error names the board and what was looked for.
func (e *NoRowsError) Error() string {
	return fmt.Sprintf("parse list %s: %s: looked for links calling fn_detail(N) or to view.do?nttSeqNo=N, and for a \"no posts\" message", e.Board, ErrNoRows)
}

// Unwrap makes errors.Is(err, ErrNoRows) true.
func (e *NoRowsError) Unwrap() error { return ErrNoRows }

// Field names of the cells the list scripts fill, as in td_<FIELD>_<row>.
// The row number (NO) is filled too but says nothing feeds.ListRow keeps.
const (
	fieldTitle = "NTT_SJ"
	fieldDate  = "PSTG_YMD"
	fieldDept  = "CHRG_DEPT_NM"
)

// dateFields are tried in order for a row's date.
var dateFields = []string{fieldDate, "REG_DT", "FRST_REG_DT", "REG_YMD"}

// emptyBoardMessages are the phrases (lower case) a board page shows when
// it has no posts.
var emptyBoardMessages = []string{
	"등록된 게시물이 없습니다", "게시물이 없습니다", "검색된 게시물이 없습니다", "데이터가 없습니다",
	"no posts", "no data", "no results", "no registered", "there are no posts", "there is no post", "nothing has been posted",
}

// ParseList reads one page of a board's list. base is the address the page
// was fetched from (or the site root): relative links resolve against it.
//
// Rows are recognised by their link to the post (an onclick calling
// fn_detail(N), or a view.do href carrying nttSeqNo=N). Their title, date and
// department come from the cells the page's inline scripts fill
// (td_NTT_SJ_0, td_PSTG_YMD_0, td_CHRG_DEPT_NM_0), running only the live
// statements, or, for the plain-markup shape, from the anchor text and the
// row's cells. A page with content but no rows is a *NoRowsError; a page
// saying the board is empty gives no rows and no error.
func ParseList(base *url.URL, board feeds.Board, page []byte) (feeds.ListPage, error) {
	var lp feeds.ListPage
	doc, err := parseHTML(page)
	if err != nil {
		return lp, fmt.Errorf("parse list %s: %w", board.Slug, err)
	}
	run := newScriptRun()
	walk(doc, func(n *html.Node) bool {
		if isElem(n, atom.Script) && attr(n, "src") == "" && n.FirstChild != nil {
			var b strings.Builder
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.TextNode {
					b.WriteString(c.Data)
				}
			}
			run.run(b.String())
			return false
		}
		return true
	})

	scriptLinks := hydrate(base, board, doc, run.cells)

	seen := map[int64]bool{}
	containers := map[*html.Node]bool{}
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		if isPager(n) || n.DataAtom == atom.Script || n.DataAtom == atom.Head {
			return false
		}
		id, ok := scriptLinks[n]
		if !ok {
			id, ok = rowLinkID(base, board, n)
		}
		if !ok {
			return true
		}
		box := rowContainer(n)
		if seen[id] || containers[box] {
			return false
		}
		seen[id] = true
		containers[box] = true
		lp.Rows = append(lp.Rows, readRow(base, board, id, n, box))
		return false
	})
	lp.HasDepartment = hasDepartmentColumn(doc)

	lp.LastPage = lastPage(doc)
	lp.BBSSeqNo = bbsSeqNo(base, doc)
	if len(lp.Rows) == 0 && !isEmptyBoard(doc) {
		return lp, &NoRowsError{Board: board.Slug}
	}
	return lp, nil
}

// rowLinkID reports the nttSeqNo a row link points to.
func rowLinkID(base *url.URL, board feeds.Board, n *html.Node) (int64, bool) {
	for _, key := range []string{"onclick", "href"} {
		v := attr(n, key)
		if !strings.Contains(v, "fn_detail") {
			continue
		}
		if args, ok := callArgs(v, "fn_detail"); ok && len(args) > 0 {
			if id, err := strconv.ParseInt(strings.TrimSpace(args[0]), 10, 64); err == nil && id > 0 {
				return id, true
			}
		}
	}
	if n.DataAtom != atom.A {
		return 0, false
	}
	href := attr(n, "href")
	if !strings.Contains(href, "view.do") {
		return 0, false
	}
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil || !strings.HasSuffix(stripPathParams(u.Path), "view.do") {
		return 0, false
	}
	q := u.Query()
	id, err := strconv.ParseInt(queryValue(q, "nttSeqNo"), 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	// A link to another board's post (a sidebar, a related list) is no row.
	if mid := queryValue(q, "mId"); mid != "" && board.MID != "" && mid != board.MID {
		return 0, false
	}
	return id, true
}

// rowContainer returns the element that holds one row's cells: its table
// row or list item, else the link itself.
func rowContainer(link *html.Node) *html.Node {
	for p := link.Parent; p != nil; p = p.Parent {
		switch p.DataAtom {
		case atom.Tr, atom.Li, atom.Dl, atom.Article:
			return p
		case atom.Table, atom.Tbody, atom.Ul, atom.Ol, atom.Body:
			return link
		}
	}
	return link
}

func isPager(n *html.Node) bool {
	return classContains(n, "paging", "pagination", "pager", "page_num")
}

// readRow assembles one row from its cells, preferring what the live
// scripts put there over what the markup holds.
func readRow(base *url.URL, board feeds.Board, id int64, link, box *html.Node) feeds.ListRow {
	cells := map[string]*html.Node{} // field → element td_<FIELD>_<n>
	walk(box, func(n *html.Node) bool {
		if field, ok := cellField(attr(n, "id")); ok && n.Type == html.ElementNode {
			if _, dup := cells[field]; !dup {
				cells[field] = n
			}
		}
		return true
	})
	cell := func(field string) string {
		n := cells[field]
		if n == nil {
			return ""
		}
		return nodeText(n)
	}

	row := feeds.ListRow{ID: id}
	row.Title = cell(fieldTitle)
	if row.Title == "" {
		row.Title = nodeText(link)
	}
	if row.Title == "" {
		if t := find(box, withClass("title", "tit", "subject", "sbj", "txt_tit")); t != nil {
			row.Title = nodeText(t)
		}
	}
	if row.Title == "" {
		if img := find(box, elem(atom.Img)); img != nil {
			row.Title = collapseSpace(attr(img, "alt"))
		}
	}

	for _, f := range dateFields {
		if t, ok := findDate(cell(f)); ok {
			row.Published = t
			break
		}
	}
	if row.Published.IsZero() {
		row.Published = dateOutside(box, link)
	}

	row.Department = cell(fieldDept)
	if row.Department == "" {
		row.Department = columnText(box, departmentHeaders)
	}
	if row.Department == "" {
		if d := find(box, func(n *html.Node) bool {
			return n != link && classContains(n, "dept", "depart", "writer")
		}); d != nil {
			row.Department = nodeText(d)
		}
	}

	if board.Gallery {
		row.Thumbnail = thumbnail(base, link, box)
	}
	return row
}

// cellField splits an element id td_<FIELD>_<n> into FIELD.
func cellField(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "td_")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", false
	}
	if _, err := strconv.Atoi(rest[i+1:]); err != nil {
		return "", false
	}
	return rest[:i], true
}

// dateOutside finds the first date in the row's text outside the link,
// then inside it (a title may itself mention a date, so it comes last).
func dateOutside(box, link *html.Node) (t0 time.Time) {
	var found bool
	walk(box, func(n *html.Node) bool {
		if found || n == link || isElem(n, atom.Script) {
			return false
		}
		if n.Type == html.TextNode {
			if t, ok := findDate(n.Data); ok {
				t0, found = t, true
			}
		}
		return true
	})
	if !found {
		t0, _ = findDate(nodeText(link))
	}
	return t0
}

// thumbnail returns the row's image, preferring one inside the link, made
// absolute. Icons and data: URLs do not count.
func thumbnail(base *url.URL, link, box *html.Node) string {
	pick := func(root *html.Node) string {
		var src string
		walk(root, func(n *html.Node) bool {
			if src != "" {
				return false
			}
			if isElem(n, atom.Img) {
				s := attr(n, "src")
				if s == "" {
					s = attr(n, "data-src")
				}
				low := strings.ToLower(s)
				if strings.Contains(low, "/icon") || strings.Contains(low, "ico_") || strings.Contains(low, "/ico/") {
					return false
				}
				src = resolve(base, s)
			}
			return true
		})
		return src
	}
	if s := pick(link); s != "" {
		return s
	}
	return pick(box)
}

// lastPage returns the highest page number the pager links to.
func lastPage(doc *html.Node) int {
	last := 0
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		if n.DataAtom == atom.Script {
			return false
		}
		for _, key := range []string{"onclick", "href"} {
			v := attr(n, key)
			if strings.Contains(v, "fn_paging") || strings.Contains(v, "fn_page") || strings.Contains(v, "linkPage") {
				for _, fn := range []string{"fn_paging", "fn_page", "fn_link_page", "linkPage"} {
					if args, ok := callArgs(v, fn); ok && len(args) > 0 {
						if p, err := strconv.Atoi(strings.TrimSpace(args[0])); err == nil && p > last {
							last = p
						}
						break
					}
				}
			}
		}
		if href := attr(n, "href"); strings.Contains(href, "pageIndex=") && !strings.Contains(href, "view.do") {
			if u, err := url.Parse(strings.TrimSpace(href)); err == nil {
				if p, err := strconv.Atoi(queryValue(u.Query(), "pageIndex")); err == nil && p > last {
					last = p
				}
			}
		}
		return true
	})
	return last
}

// bbsSeqNo returns the board's bbsSeqNo from the hidden form field, else
// from the first view.do link that carries one.
func bbsSeqNo(base *url.URL, doc *html.Node) string {
	if in := find(doc, func(n *html.Node) bool {
		return isElem(n, atom.Input) && strings.EqualFold(attr(n, "name"), "bbsSeqNo") && strings.TrimSpace(attr(n, "value")) != ""
	}); in != nil {
		return strings.TrimSpace(attr(in, "value"))
	}
	var v string
	walk(doc, func(n *html.Node) bool {
		if v != "" {
			return false
		}
		if isElem(n, atom.A) && strings.Contains(attr(n, "href"), "view.do") {
			if u, err := url.Parse(strings.TrimSpace(attr(n, "href"))); err == nil {
				v = queryValue(u.Query(), "bbsSeqNo")
			}
		}
		return true
	})
	return v
}

// isEmptyBoard reports whether a page without rows says so: a "no posts"
// message, or a board table with headers and no data rows.
func isEmptyBoard(doc *html.Node) bool {
	body := find(doc, elem(atom.Body))
	if body == nil {
		return false
	}
	text := strings.ToLower(nodeText(body))
	for _, m := range emptyBoardMessages {
		if strings.Contains(text, m) {
			return true
		}
	}
	for _, t := range findAll(body, elem(atom.Table)) {
		if find(t, elem(atom.Th)) == nil {
			continue
		}
		data := 0
		for _, tr := range findAll(t, elem(atom.Tr)) {
			tds := findAll(tr, elem(atom.Td))
			if len(tds) > 1 || (len(tds) == 1 && attr(tds[0], "colspan") == "" && nodeText(tds[0]) != "") {
				data++
			}
		}
		if data == 0 {
			return true
		}
	}
	for _, l := range findAll(body, func(n *html.Node) bool {
		return (isElem(n, atom.Ul) || isElem(n, atom.Div)) && classContains(n, "board_list", "gallery", "bbs_list")
	}) {
		if find(l, func(n *html.Node) bool { return n != l && n.Type == html.ElementNode }) == nil && nodeText(l) == "" {
			return true
		}
	}
	return false
}
