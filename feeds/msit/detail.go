package msit

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ErrNoTitle is wrapped by ParseDetail's error for a page that shows
// neither a title nor a date: it is no post page (an error page, or markup
// changed beyond recognition).
var ErrNoTitle = errors.New("no title and no date: looked for h2 in div.view_head and for span.date or a dt/dd date (dl.tit_con)")

// SummaryLength is the number of characters (runes) Item.Summary is cut
// to, before its ellipsis.
const SummaryLength = 300

// Class names of the parts of div.board_view, each with the fallbacks tried
// when the first is missing.
var (
	viewClasses = []string{"board_view", "bbs_view", "view_wrap", "board_view_wrap"}
	headClasses = []string{"view_head", "view_top", "view_title", "view_tit", "board_view_head"}
	bodyClasses = []string{"view_cont", "texteditor-area-inner", "board_con", "view_con", "view_content", "view_txt", "board_cont", "bbs_con", "cont_view"}
	fileClasses = []string{"view_file", "down_file_new", "down_file", "file_list", "attach", "file"}
	navClasses  = []string{"view_nav", "btn_list", "view_btn", "btn_area", "view_navi", "prev_next", "board_nav", "view_list"}
	deptClasses = []string{"dept", "department", "depart", "writer", "team", "part"}
)

// ParseDetail reads a post's page. base is the address the page was fetched
// from (or the site root): relative links and images resolve against it.
// The body is sanitised HTML with absolute URLs; Hash, FirstSeen and Updated
// are left for the store. What the page does not show is left empty (a zero
// Published when it has no date) for the caller to fill from the list; a
// page with neither title nor date is an error wrapping ErrNoTitle.
func ParseDetail(base *url.URL, board feeds.Board, ntt int64, page []byte) (feeds.Item, error) {
	item := feeds.Item{Board: board.Slug, ID: ntt}
	fail := func(err error) (feeds.Item, error) {
		return item, fmt.Errorf("parse detail %s %d: %w", board.Slug, ntt, err)
	}
	doc, err := parseHTML(page)
	if err != nil {
		return fail(err)
	}
	view := find(doc, withClass(viewClasses...))
	if view == nil {
		view = find(doc, elem(atom.Body))
	}
	if view == nil {
		return fail(ErrNoTitle)
	}
	head := find(view, withClass(headClasses...))

	titleNode := detailTitle(view, head)
	date, dateNode := detailDate(view, head)
	if titleNode == nil && dateNode == nil {
		return fail(ErrNoTitle)
	}
	if titleNode != nil {
		item.Title = nodeText(titleNode)
	}
	item.Published = date
	deptScope := head
	if deptScope == nil {
		deptScope = view
	}
	dept, deptNode := detailDepartment(deptScope, view)
	item.Department = dept

	files := find(view, withClass(fileClasses...))
	if files != nil {
		item.Attachments = attachments(base, files)
	} else {
		item.Attachments = attachments(base, view)
	}

	// Without a view_head, what the head would hold sits loose in
	// board_view: it must not be repeated in the body.
	used := []*html.Node{head, files, titleNode, dateNode, deptNode}
	body := detailBody(view, head, used)
	if body != nil {
		item.Body = sanitizeBody(base, body)
		item.Summary = Summary(item.Title, item.Body)
		if board.Gallery {
			if img := find(body, elem(atom.Img)); img != nil {
				item.Thumbnail = attr(img, "src")
			}
		}
	}

	bbs := board.BBSSeqNo
	if bbs == "" {
		bbs = bbsSeqNo(base, doc)
	}
	item.URL = PostURL(base, withBBSSeqNo(board, bbs), ntt)
	return item, nil
}

// inNav reports whether n sits in the post navigation or button bar, whose
// text names other posts.
func inNav(n, stop *html.Node) bool {
	for p := n; p != nil && p != stop; p = p.Parent {
		if hasClass(p, navClasses...) {
			return true
		}
	}
	return false
}

func detailTitle(view, head *html.Node) *html.Node {
	if head != nil {
		for _, a := range []atom.Atom{atom.H2, atom.H3, atom.H4, atom.H1} {
			if h := find(head, func(n *html.Node) bool { return isElem(n, a) && nodeText(n) != "" }); h != nil {
				return h
			}
		}
		return find(head, func(n *html.Node) bool {
			return hasClass(n, "title", "tit", "subject") && nodeText(n) != ""
		})
	}
	// No view_head: the first heading of the post itself, never one in the
	// navigation (neighbour posts) or outside board_view (the board name).
	return find(view, func(n *html.Node) bool {
		return (isElem(n, atom.H2) || isElem(n, atom.H3)) && !inNav(n, view) && nodeText(n) != ""
	})
}

// dateLabels are the labels (lower case, no colon) a post page puts
// before its date in dt/dd or th/td pairs.
var dateLabels = []string{"등록일", "등록일자", "작성일", "게시일", "date", "registration date", "reg. date", "posted", "posted on"}

// detailDate returns the post's date and the element that shows it, nil if
// there is none.
func detailDate(view, head *html.Node) (time.Time, *html.Node) {
	scope := head
	if scope == nil {
		scope = view
	}
	// A labelled date (the Korean site's dl.tit_con: <dt>등록일</dt><dd>2026. 10. 1</dd>).
	for _, root := range []*html.Node{scope, view} {
		var t time.Time
		var at *html.Node
		walk(root, func(n *html.Node) bool {
			if at != nil || inNav(n, view) || isElem(n, atom.Script) {
				return false
			}
			if !isElem(n, atom.Dt) && !isElem(n, atom.Th) {
				return true
			}
			label := strings.ToLower(strings.TrimSpace(strings.TrimRight(nodeText(n), ": ")))
			if !slices.Contains(dateLabels, label) {
				return false
			}
			for s := n.NextSibling; s != nil; s = s.NextSibling {
				if s.Type != html.ElementNode {
					continue
				}
				if d, ok := findDate(nodeText(s)); ok {
					t, at = d, s
				}
				break
			}
			return false
		})
		if at != nil {
			return t, at
		}
	}
	for _, class := range []string{"date", "day", "reg_date", "regdate", "write_date"} {
		for _, n := range findAll(scope, withClass(class)) {
			if inNav(n, view) {
				continue
			}
			if t, ok := findDate(nodeText(n)); ok {
				return t, n
			}
		}
	}
	if head == nil {
		return time.Time{}, nil
	}
	// The head's remaining text, leaving out the title, which may mention
	// another date.
	var t time.Time
	var at *html.Node
	walk(head, func(n *html.Node) bool {
		if at != nil || isElem(n, atom.H2) || isElem(n, atom.H3) || isElem(n, atom.Script) {
			return false
		}
		if n.Type == html.TextNode {
			if d, ok := findDate(n.Data); ok {
				t, at = d, n
			}
		}
		return true
	})
	return t, at
}

// departmentLabels are the labels (lower case, no colon) the head may put
// before the department's name.
var departmentLabels = []string{"department", "dept.", "dept", "담당부서", "부서", "writer", "작성자", "담당"}

// detailDepartment returns the department named in scope and the element
// naming it, leaving out the navigation of view.
func detailDepartment(scope, view *html.Node) (string, *html.Node) {
	if n := find(scope, func(n *html.Node) bool { return hasClass(n, deptClasses...) && !inNav(n, view) }); n != nil {
		if v := stripLabel(nodeText(n)); v != "" {
			return v, n
		}
	}
	// A label element (dt, th, strong, span, em) followed by the value.
	var value string
	var at *html.Node
	walk(scope, func(n *html.Node) bool {
		if value != "" || inNav(n, view) {
			return false
		}
		if n.Type != html.ElementNode || !isLabel(nodeText(n)) {
			return true
		}
		for s := n.NextSibling; s != nil; s = s.NextSibling {
			var v string
			if s.Type == html.TextNode {
				v = stripLabel(collapseSpace(s.Data))
			} else if s.Type == html.ElementNode {
				v = stripLabel(nodeText(s))
			}
			if v != "" {
				value, at = v, n.Parent
				return false
			}
		}
		return false
	})
	if value != "" {
		return value, at
	}
	// Text such as "Department : Space Policy Division" in one element.
	walk(scope, func(n *html.Node) bool {
		if value != "" || inNav(n, view) {
			return false
		}
		if n.Type == html.TextNode {
			t := collapseSpace(n.Data)
			if label, rest, ok := strings.Cut(t, ":"); ok && isLabel(label) {
				value, at = strings.TrimSpace(rest), n.Parent
			}
		}
		return true
	})
	return value, at
}

func isLabel(s string) bool {
	s = strings.ToLower(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ":")))
	for _, l := range departmentLabels {
		if s == l {
			return true
		}
	}
	return false
}

// stripLabel removes a leading "Department :" from a value.
func stripLabel(s string) string {
	s = strings.TrimSpace(s)
	if label, rest, ok := strings.Cut(s, ":"); ok && isLabel(label) {
		return strings.TrimSpace(rest)
	}
	if isLabel(s) {
		return ""
	}
	return s
}

// detailBody returns the element holding the post's content: a known body
// class, else board_view without its head, attachments, navigation and the
// used elements (title, date, department) found loose in it.
func detailBody(view, head *html.Node, used []*html.Node) *html.Node {
	if n := find(view, func(n *html.Node) bool {
		return hasClass(n, bodyClasses...) && !inNav(n, view) && (head == nil || !isAncestor(head, n))
	}); n != nil {
		return n
	}
	for _, u := range used {
		// A used element that is the view itself or holds the view is no
		// part to cut out.
		if u != nil && u != view && u.Parent != nil && isAncestor(view, u) {
			u.Parent.RemoveChild(u)
		}
	}
	rest := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for c := view.FirstChild; c != nil; {
		next := c.NextSibling
		if !hasClass(c, navClasses...) && !isElem(c, atom.Script) {
			view.RemoveChild(c)
			rest.AppendChild(c)
		}
		c = next
	}
	return rest
}

func isAncestor(a, n *html.Node) bool {
	for p := n; p != nil; p = p.Parent {
		if p == a {
			return true
		}
	}
	return false
}

// bodyPolicy allows the formatting, tables, images and links of user
// content, with absolute http(s) URLs only: no scripts, styles, forms,
// frames, event handlers or data: images.
var bodyPolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireNoFollowOnLinks(false)
	return p
})

// removedElems are dropped with their content before sanitising; forms are
// unwrapped instead, as some pages wrap the whole post in one.
var removedElems = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Iframe: true,
	atom.Frame: true, atom.Object: true, atom.Embed: true, atom.Input: true,
	atom.Button: true, atom.Select: true, atom.Textarea: true, atom.Link: true,
	atom.Meta: true, atom.Template: true,
}

// sanitizeBody makes the URLs of body absolute, drops active content, and
// returns the sanitised HTML of its children.
func sanitizeBody(base *url.URL, body *html.Node) string {
	clean(base, body)
	var b strings.Builder
	for c := body.FirstChild; c != nil; c = c.NextSibling {
		if err := html.Render(&b, c); err != nil {
			break
		}
	}
	return strings.TrimSpace(bodyPolicy().Sanitize(b.String()))
}

func clean(base *url.URL, n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		if c.Type == html.CommentNode || (c.Type == html.ElementNode && removedElems[c.DataAtom]) {
			n.RemoveChild(c)
			c = next
			continue
		}
		if c.Type == html.ElementNode {
			clean(base, c)
			if c.DataAtom == atom.Form {
				for g := c.FirstChild; g != nil; {
					gn := g.NextSibling
					c.RemoveChild(g)
					n.InsertBefore(g, c)
					g = gn
				}
				n.RemoveChild(c)
				c = next
				continue
			}
			dropImg := false
			attrs := c.Attr[:0]
			for _, a := range c.Attr {
				key := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(key, "on"), key == "style", key == "srcset":
					continue
				case key == "src" || key == "href":
					orig := strings.TrimSpace(a.Val)
					if key == "href" && strings.HasPrefix(strings.ToLower(orig), "mailto:") {
						break
					}
					if a.Val = resolve(base, orig); a.Val == "" {
						if c.DataAtom == atom.Img {
							dropImg = true
						}
						continue
					}
				}
				attrs = append(attrs, a)
			}
			c.Attr = attrs
			if dropImg {
				// An image whose source is not http(s) (a data: URL)
				// shows nothing once its src is gone.
				n.RemoveChild(c)
			}
		}
		c = next
	}
}

// summarize cuts plain text to at most max runes on a word boundary, adding
// an ellipsis when it cut.
func summarize(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	end, n := len(s), 0
	for i := range s {
		if n == max {
			end = i
			break
		}
		n++
	}
	head := s[:end]
	if sp := strings.LastIndexByte(head, ' '); sp > len(head)/2 {
		head = head[:sp]
	}
	head = strings.TrimRight(head, " ,.;:-–—")
	return head + "…"
}
