package msit

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// scriptPostID finds a post id in the raw string a script puts into an
// element. The English list pages write
// onclick="fn_detail("1290")" inside a double-quoted attribute, which is
// broken as HTML: parsed, the attribute is just `fn_detail(`, so the id is
// read from the string itself.
var scriptPostID = []*regexp.Regexp{
	regexp.MustCompile(`fn_detail\s*\(\s*(?:\\?["']|&quot;|&#0*34;|&#0*39;|&apos;)?\s*([0-9]+)`),
	regexp.MustCompile(`(?i)view\.do[^"'<>\s]*[?&;]nttSeqNo=([0-9]+)`),
}

// hydrate puts into each element the HTML that a live statement of the
// page's scripts set for its id, as a browser running the page would, so
// that rows, cells and thumbnails are read the same way whether the markup
// or a script holds them. It returns the elements whose new content names a
// post only in a form the HTML parser cannot read as a link, with that
// post's id: such an element stands for the row's link.
func hydrate(base *url.URL, board feeds.Board, doc *html.Node, cells map[string]string) map[*html.Node]int64 {
	links := map[*html.Node]int64{}
	if len(cells) == 0 {
		return links
	}
	byID := map[string]*html.Node{}
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode || n.DataAtom == atom.Script || n.DataAtom == atom.Head {
			return n.Type == html.DocumentNode
		}
		if id := attr(n, "id"); id != "" {
			if _, dup := byID[id]; !dup {
				byID[id] = n
			}
		}
		return true
	})
	for id, v := range cells {
		n := byID[id]
		if n == nil || voidElem(n) {
			continue
		}
		nodes, err := html.ParseFragment(strings.NewReader(v), n)
		if err != nil {
			continue
		}
		for c := n.FirstChild; c != nil; c = n.FirstChild {
			n.RemoveChild(c)
		}
		parsed := false
		for _, c := range nodes {
			n.AppendChild(c)
			walk(c, func(x *html.Node) bool {
				if _, ok := rowLinkID(base, board, x); ok {
					parsed = true
				}
				return !parsed
			})
		}
		if parsed || !strings.Contains(v, "fn_detail") && !strings.Contains(strings.ToLower(v), "view.do") {
			continue
		}
		for _, re := range scriptPostID {
			if m := re.FindStringSubmatch(v); m != nil {
				if ntt, err := strconv.ParseInt(m[1], 10, 64); err == nil && ntt > 0 {
					links[n] = ntt
					break
				}
			}
		}
	}
	return links
}

// voidElem reports an element that cannot hold content (an img or input
// with an id).
func voidElem(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Img, atom.Input, atom.Br, atom.Hr, atom.Meta, atom.Link, atom.Area, atom.Base, atom.Col, atom.Embed, atom.Source, atom.Track, atom.Wbr:
		return true
	}
	return false
}

// departmentHeaders are column headers (lower case) that name the
// department column of a board's table.
var departmentHeaders = []string{"department", "dept", "담당부서", "부서"}

// columnText returns the text of a table row's cell in the column whose
// header names any of headers (lower case), "" if there is none: plain
// tables put the department in an unmarked cell under a "Department"
// header.
func columnText(tr *html.Node, headers []string) string {
	if !isElem(tr, atom.Tr) {
		return ""
	}
	table := closest(tr, elem(atom.Table))
	if table == nil {
		return ""
	}
	head := find(table, func(n *html.Node) bool { return isElem(n, atom.Tr) && find(n, elem(atom.Th)) != nil })
	if head == nil || head == tr {
		return ""
	}
	col := -1
	for i, th := range findAll(head, func(n *html.Node) bool { return isElem(n, atom.Th) || isElem(n, atom.Td) }) {
		t := strings.ToLower(nodeText(th))
		for _, h := range headers {
			if strings.Contains(t, h) {
				col = i
			}
		}
		if col >= 0 {
			break
		}
	}
	if col < 0 {
		return ""
	}
	cells := findAll(tr, func(n *html.Node) bool { return isElem(n, atom.Td) || isElem(n, atom.Th) })
	if col >= len(cells) {
		return ""
	}
	return nodeText(cells[col])
}

// hasDepartmentColumn reports whether a list page has a place for each
// row's department: a td_CHRG_DEPT_NM_n cell or a column header naming it.
func hasDepartmentColumn(doc *html.Node) bool {
	return find(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return false
		}
		if f, ok := cellField(attr(n, "id")); ok && f == fieldDept {
			return true
		}
		if n.DataAtom == atom.Th {
			t := strings.ToLower(nodeText(n))
			for _, h := range departmentHeaders {
				if strings.Contains(t, h) {
					return true
				}
			}
		}
		return false
	}) != nil
}
