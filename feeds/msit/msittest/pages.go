package msittest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/msitfeed/msitfeed/feeds"
)

// jsEscape is JavaScript's escape(): ASCII letters, digits and @*_+-./
// stay, other code units below 256 become %XX, the rest %uXXXX (UTF-16,
// so characters beyond the BMP become two escapes).
func jsEscape(s string) string {
	var b strings.Builder
	for _, u := range utf16.Encode([]rune(s)) {
		switch {
		case u < 128 && (('a' <= u && u <= 'z') || ('A' <= u && u <= 'Z') || ('0' <= u && u <= '9') || strings.ContainsRune("@*_+-./", rune(u))):
			b.WriteByte(byte(u))
		case u < 256:
			fmt.Fprintf(&b, "%%%02X", u)
		default:
			fmt.Fprintf(&b, "%%u%04X", u)
		}
	}
	return b.String()
}

// jsQuote writes s as a single-quoted JavaScript literal.
func jsQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "</", `<\/`)
	return "'" + r.Replace(s) + "'"
}

const pageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s | Ministry of Science and ICT</title>
<link rel="stylesheet" href="/css/eng/common.css">
<script src="/js/jquery-3.6.0.min.js"></script>
<script src="/js/eng/common.js"></script>
</head>
<body>
<div id="skip"><a href="#container">Skip to content</a></div>
`

// gnb is the header menu of every page, with the "News & Notice" menu whose
// links give the boards' ids.
func gnb() string {
	var b strings.Builder
	b.WriteString(`<div id="header">
  <h1 class="logo"><a href="/eng/index.do"><img src="/images/eng/common/logo.png" alt="Ministry of Science and ICT"></a></h1>
  <ul class="gnb">
    <li><a href="/eng/contents.do?sCode=eng&amp;mPid=1&amp;mId=9">About MSIT</a></li>
    <li><a href="javascript:;">News &amp; Notice</a>
      <ul class="depth2">
`)
	for _, bd := range Boards() {
		fmt.Fprintf(&b, "        <li><a href=\"/eng/bbs/list.do?sCode=eng&amp;mPid=%s&amp;mId=%s\">%s</a></li>\n", bd.MPID, bd.MID, esc(bd.Name))
	}
	b.WriteString(`      </ul>
    </li>
    <li><a href="/eng/contents.do?sCode=eng&amp;mPid=10&amp;mId=11">Policies</a></li>
  </ul>
</div>
`)
	return b.String()
}

const pageFoot = `<div id="footer"><p>Government Complex-Sejong, 477, Galmae-ro, Sejong-si, Republic of Korea</p></div>
</body>
</html>
`

func writeHTML(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(s))
}

// dotted writes YYYY-MM-DD as YYYY.MM.DD.
func dotted(date string) string { return strings.ReplaceAll(date, "-", ".") }

func (s *Site) serveHome(w http.ResponseWriter) {
	var b strings.Builder
	fmt.Fprintf(&b, pageHead, "Home")
	b.WriteString(gnb())
	b.WriteString("<div id=\"container\" class=\"main\">\n")
	for _, bd := range Boards() {
		if bd.Slug == "newsletter" {
			continue
		}
		posts := s.Posts(bd.Slug)
		if len(posts) > 3 {
			posts = posts[:3]
		}
		fmt.Fprintf(&b, "  <div class=\"main_board %s\"><h3>%s</h3><a class=\"more\" href=\"/eng/bbs/list.do?sCode=eng&amp;mPid=%s&amp;mId=%s\"><span class=\"blind\">%s</span> more</a>\n    <ul>\n",
			bd.Slug, esc(bd.Name), bd.MPID, bd.MID, esc(bd.Name))
		for _, p := range posts {
			fmt.Fprintf(&b, "      <li><a href=\"/eng/bbs/view.do?sCode=eng&amp;mId=%s&amp;mPid=%s&amp;bbsSeqNo=%s&amp;nttSeqNo=%d\">%s</a> <span class=\"date\">%s.</span></li>\n",
				bd.MID, bd.MPID, bd.BBSSeqNo, p.ID, esc(p.Title), dotted(p.Date))
		}
		b.WriteString("    </ul>\n  </div>\n")
	}
	b.WriteString("</div>\n")
	b.WriteString(pageFoot)
	writeHTML(w, b.String())
}

// listView is what a list page shows.
type listView struct {
	bd       feeds.Board
	page     int    // this page, from 1
	last     int    // the last page, 0 for an empty board
	rows     []Post // this page's posts, newest first
	firstNo  int    // the row number of rows[0]; rows count down
	hideDept bool   // no department column
}

func (s *Site) serveList(w http.ResponseWriter, r *http.Request) {
	bd, ok := boardByMID(r)
	if !ok {
		notFound(w)
		return
	}
	page, err := strconv.Atoi(r.FormValue("pageIndex"))
	if err != nil || page < 1 {
		page = 1
	}
	posts := s.Posts(bd.Slug)
	last := (len(posts) + s.pageSize - 1) / s.pageSize
	from := min((page-1)*s.pageSize, len(posts))
	to := min(from+s.pageSize, len(posts))
	shape, hideDept := s.look(bd)
	v := listView{bd: bd, page: page, last: last, rows: posts[from:to], firstNo: len(posts) - from, hideDept: hideDept}
	switch shape {
	case ShapeEnglish2026:
		writeHTML(w, english2026List(v))
	case ShapeKorean:
		writeHTML(w, koreanList(v))
	case ShapeBroken:
		writeHTML(w, brokenList(v))
	default:
		writeHTML(w, classicList(v))
	}
}

// listScript defines the functions the list rows and pager call.
const listScript = `<script>
  function fn_detail(nttSeqNo) {
    document.mainForm.nttSeqNo.value = nttSeqNo;
    document.mainForm.action = '/eng/bbs/view.do';
    document.mainForm.submit();
  }
  function fn_paging(pageIndex) {
    document.mainForm.pageIndex.value = pageIndex;
    document.mainForm.action = '/eng/bbs/list.do';
    document.mainForm.submit();
  }
</script>
`

// englishListTop writes an English list page up to its rows: head, the
// script, the menu, the hidden form and the search box.
func englishListTop(b *strings.Builder, v listView, script string) {
	fmt.Fprintf(b, pageHead, esc(v.bd.Name))
	b.WriteString(script)
	b.WriteString(gnb())
	fmt.Fprintf(b, `<div id="container">
  <div class="sub_tit"><h2>%s</h2></div>
  <form id="mainForm" name="mainForm" method="post" action="/eng/bbs/list.do">
    <input type="hidden" name="sCode" value="eng">
    <input type="hidden" name="mId" value="%s">
    <input type="hidden" name="mPid" value="%s">
    <input type="hidden" name="bbsSeqNo" value="%s">
    <input type="hidden" name="nttSeqNo" value="">
    <input type="hidden" name="pageIndex" value="%d">
  </form>
  <div class="board_search"><label for="searchTxt">Search</label><input type="text" id="searchTxt" name="searchTxt"><button type="button">Search</button></div>
`, esc(v.bd.Name), v.bd.MID, v.bd.MPID, v.bd.BBSSeqNo, v.page)
}

// englishListBottom writes the pager and the end of the page.
func englishListBottom(b *strings.Builder, v listView) string {
	writePager(b, v.page, v.last)
	b.WriteString("</div>\n")
	b.WriteString(pageFoot)
	return b.String()
}

func classicList(v listView) string {
	var b strings.Builder
	englishListTop(&b, v, listScript)
	if v.bd.Gallery {
		writeGalleryRows(&b, v.bd, v.rows, v.firstNo, v.hideDept)
	} else {
		writeTableRows(&b, v.bd, v.rows, v.firstNo, v.hideDept)
	}
	return englishListBottom(&b, v)
}

// rowScript is the inline script that fills row i's cells, with the dead
// and commented-out statements the real site leaves in.
func rowScript(b *strings.Builder, i int, p Post, no int, hideDept bool) {
	title := jsEscape(esc(p.Title))
	// Long titles arrive in several pieces.
	var parts []string
	for len(title) > 60 {
		cut := safeCut(title, 60)
		parts = append(parts, title[:cut])
		title = title[cut:]
	}
	parts = append(parts, title)
	fmt.Fprintf(b, "  <script>\n    var sHtml = '';\n")
	for _, part := range parts {
		fmt.Fprintf(b, "    sHtml += unescape('%s');\n", part)
	}
	fmt.Fprintf(b, "    //$('#td_'+'NTT_SJ'+'_%d').html(unescape('%s'));\n", i, jsEscape("[draft] "+p.Title))
	fmt.Fprintf(b, "    $('#td_'+'NTT_SJ'+'_%d').html(sHtml);\n", i)
	if !hideDept {
		fmt.Fprintf(b, "    /* $('#td_'+'CHRG_DEPT_NM'+'_%d').html('Department to be announced'); */\n", i)
		fmt.Fprintf(b, "    $('#td_'+'CHRG_DEPT_NM'+'_%d').html(unescape('%s'));\n", i, jsEscape(esc(p.Department)))
	}
	fmt.Fprintf(b, "    $('#td_'+'NO'+'_%d').html('%d');\n", i, no)
	fmt.Fprintf(b, "    if ('PSTG_YMD' == 'REG_DT') { $('#td_'+'PSTG_YMD'+'_%d').html('1970-01-01'); }\n", i)
	fmt.Fprintf(b, "    if ('PSTG_YMD' == 'PSTG_YMD') { $('#td_'+'PSTG_YMD'+'_%d').html(%s); }\n", i, jsQuote(p.Date))
	fmt.Fprintf(b, "  </script>\n")
}

// safeCut returns a cut point at or after n that does not split a %XX or
// %uXXXX escape.
func safeCut(s string, n int) int {
	for i := 0; i < len(s); {
		size := 1
		if s[i] == '%' {
			size = 3
			if i+1 < len(s) && s[i+1] == 'u' {
				size = 6
			}
		}
		if i >= n {
			return i
		}
		i += size
		if i >= len(s) {
			return len(s)
		}
	}
	return len(s)
}

// viewHref is the link some rows carry besides their onclick, as found in
// the wild: with a session id and list parameters.
func viewHref(bd feeds.Board, id int64) string {
	return fmt.Sprintf("/eng/bbs/view.do;jsessionid=FAKE%04dX.node1?sCode=eng&amp;mId=%s&amp;mPid=%s&amp;bbsSeqNo=%s&amp;nttSeqNo=%d&amp;pageIndex=1&amp;searchOpt=ALL&amp;searchTxt=",
		id%10000, bd.MID, bd.MPID, bd.BBSSeqNo, id)
}

// tableHead writes the opening of a list table, with or without its
// department column.
func tableHead(b *strings.Builder, bd feeds.Board, hideDept bool) {
	dept := `<th scope="col">Department</th>`
	if hideDept {
		dept = ""
	}
	b.WriteString(`  <div class="board_list">
    <table>
      <caption>` + esc(bd.Name) + ` list</caption>
      <thead><tr><th scope="col">No.</th><th scope="col">Title</th>` + dept + `<th scope="col">Date</th></tr></thead>
      <tbody>
`)
}

// noPosts is the site's message for an empty board.
const noPosts = "등록된 게시물이 없습니다."

// tableEmpty writes the row of an empty board.
func tableEmpty(b *strings.Builder, hideDept bool) {
	cols := 4
	if hideDept {
		cols = 3
	}
	fmt.Fprintf(b, "        <tr><td colspan=\"%d\" class=\"no_data\">%s</td></tr>\n", cols, noPosts)
}

func writeTableRows(b *strings.Builder, bd feeds.Board, rows []Post, firstNo int, hideDept bool) {
	tableHead(b, bd, hideDept)
	if len(rows) == 0 {
		tableEmpty(b, hideDept)
	}
	for i, p := range rows {
		href := "javascript:;"
		if i%3 == 2 {
			href = viewHref(bd, p.ID)
		}
		dept := fmt.Sprintf("          <td><span id=\"td_CHRG_DEPT_NM_%d\"></span></td>\n", i)
		if hideDept {
			dept = ""
		}
		fmt.Fprintf(b, `        <tr>
          <td><span id="td_NO_%[1]d"></span></td>
          <td class="subject"><a href="%[2]s" onclick="fn_detail(%[3]d); return false;"><span id="td_NTT_SJ_%[1]d"></span></a></td>
%[4]s          <td><span id="td_PSTG_YMD_%[1]d"></span></td>
        </tr>
`, i, href, p.ID, dept)
		rowScript(b, i, p, firstNo-i, hideDept)
	}
	b.WriteString("      </tbody>\n    </table>\n  </div>\n")
}

func writeGalleryRows(b *strings.Builder, bd feeds.Board, rows []Post, firstNo int, hideDept bool) {
	b.WriteString("  <div class=\"board_gallery\">\n    <ul class=\"gallery_list\">\n")
	if len(rows) == 0 {
		b.WriteString("      <li class=\"no_data\">" + noPosts + "</li>\n")
	}
	for i, p := range rows {
		dept := fmt.Sprintf("        <span class=\"dept\" id=\"td_CHRG_DEPT_NM_%d\"></span>\n", i)
		if hideDept {
			dept = ""
		}
		fmt.Fprintf(b, `      <li>
        <a href="javascript:;" onclick="fn_detail(%[2]d);">
          <span class="thumb"><img src="%[3]s" alt="%[4]s"></span>
          <strong class="tit"><span id="td_NTT_SJ_%[1]d"></span></strong>
        </a>
%[5]s        <span class="date" id="td_PSTG_YMD_%[1]d"></span>
        <span class="blind" id="td_NO_%[1]d"></span>
      </li>
`, i, p.ID, esc(p.Thumbnail), esc(p.Title), dept)
		rowScript(b, i, p, firstNo-i, hideDept)
	}
	b.WriteString("    </ul>\n  </div>\n")
}

// writePager writes the page links: ten around the current page, with
// first/previous/next/last arrows calling fn_paging.
func writePager(b *strings.Builder, page, last int) {
	b.WriteString("  <div class=\"paging\">\n")
	if last > 0 {
		fmt.Fprintf(b, "    <a href=\"javascript:;\" onclick=\"fn_paging(1); return false;\" class=\"first\"><span class=\"blind\">first page</span></a>\n")
		fmt.Fprintf(b, "    <a href=\"javascript:;\" onclick=\"fn_paging(%d); return false;\" class=\"prev\"><span class=\"blind\">previous page</span></a>\n", max(1, page-1))
		start := (page-1)/10*10 + 1
		for p := start; p <= min(start+9, last); p++ {
			if p == page {
				fmt.Fprintf(b, "    <strong title=\"current page\">%d</strong>\n", p)
				continue
			}
			fmt.Fprintf(b, "    <a href=\"javascript:;\" onclick=\"fn_paging(%d); return false;\">%d</a>\n", p, p)
		}
		fmt.Fprintf(b, "    <a href=\"javascript:;\" onclick=\"fn_paging(%d); return false;\" class=\"next\"><span class=\"blind\">next page</span></a>\n", min(last, page+1))
		fmt.Fprintf(b, "    <a href=\"javascript:;\" onclick=\"fn_paging(%d); return false;\" class=\"last\"><span class=\"blind\">last page</span></a>\n", last)
	}
	b.WriteString("  </div>\n")
}

func (s *Site) serveView(w http.ResponseWriter, r *http.Request) {
	bd, ok := boardByMID(r)
	if !ok {
		notFound(w)
		return
	}
	id, err := strconv.ParseInt(r.FormValue("nttSeqNo"), 10, 64)
	if err != nil {
		notFound(w)
		return
	}
	posts := s.Posts(bd.Slug)
	at := -1
	for i, p := range posts {
		if p.ID == id {
			at = i
		}
	}
	if at < 0 {
		notFound(w)
		return
	}
	v := postView{bd: bd, p: posts[at]}
	// Posts are newest first: the previous (older) post follows this one.
	if at+1 < len(posts) {
		v.prev = &posts[at+1]
	}
	if at > 0 {
		v.next = &posts[at-1]
	}
	shape, _ := s.look(bd)
	switch shape {
	case ShapeEnglish2026:
		writeHTML(w, classicPost(v, engDate, titleParagraph(v.p.Title)+"\n"+v.p.BodyHTML))
	case ShapeKorean:
		writeHTML(w, koreanPost(v))
	default:
		writeHTML(w, classicPost(v, dotted, v.p.BodyHTML))
	}
}

// postView is what a post page shows.
type postView struct {
	bd         feeds.Board
	p          Post
	prev, next *Post // the older and the newer neighbour, if any
}

// classicPost is the English post page: div.board_view with view_head,
// view_cont (body), view_file and view_nav; date writes the dates.
func classicPost(v postView, date func(string) string, body string) string {
	bd, p := v.bd, v.p
	var b strings.Builder
	fmt.Fprintf(&b, pageHead, esc(p.Title)+" | "+esc(bd.Name))
	b.WriteString(`<script>
  function fn_download(atchFileNo, fileOrd, ext) {
    location.href = '/ssm/file/fileDown.do?atchFileNo=' + atchFileNo + '&fileOrd=' + fileOrd + '&fileBtn=A';
  }
  function fn_list() { document.mainForm.action = '/eng/bbs/list.do'; document.mainForm.submit(); }
</script>
`)
	b.WriteString(gnb())
	fmt.Fprintf(&b, `<div id="container">
  <div class="sub_tit"><h2>%s</h2></div>
  <form id="mainForm" name="mainForm" method="post" action="/eng/bbs/view.do">
    <input type="hidden" name="sCode" value="eng">
    <input type="hidden" name="mId" value="%s">
    <input type="hidden" name="mPid" value="%s">
    <input type="hidden" name="bbsSeqNo" value="%s">
    <input type="hidden" name="nttSeqNo" value="%d">
  </form>
  <div class="board_view">
    <div class="view_head">
      <h2>%s</h2>
      <div class="info">
        <span class="date">%s</span>
        <span class="dept">Department : %s</span>
        <span class="hit">Views %d</span>
      </div>
    </div>
    <div class="view_cont">
%s
    </div>
    <div class="view_file">
      <strong class="tit">Attachments</strong>
`, esc(bd.Name), bd.MID, bd.MPID, bd.BBSSeqNo, p.ID, esc(p.Title), date(p.Date), esc(p.Department), 100+p.ID%900, body)
	if len(p.Attachments) == 0 {
		b.WriteString("      <p>There are no attached files.</p>\n")
	} else {
		b.WriteString("      <ul>\n")
		for _, a := range p.Attachments {
			fmt.Fprintf(&b, "        <li><a href=\"javascript:void(0);\" onclick=\"fn_download('%d', '%d', '%s');\">%s (%d.%dMB)</a> <a href=\"javascript:void(0);\" onclick=\"fn_preview('%d', '%d');\" class=\"btn_preview\">Preview</a></li>\n",
				a.FileNo, a.Ord, esc(a.Ext), esc(a.Name), 1+a.FileNo%3, a.FileNo%10, a.FileNo, a.Ord)
		}
		b.WriteString("      </ul>\n")
	}
	b.WriteString("    </div>\n    <div class=\"view_nav\">\n")
	if q := v.prev; q != nil {
		fmt.Fprintf(&b, "      <dl class=\"prev\"><dt>Previous</dt><dd><a href=\"javascript:;\" onclick=\"fn_detail(%d);\">%s</a> <span class=\"date\">%s</span></dd></dl>\n", q.ID, esc(q.Title), date(q.Date))
	}
	if q := v.next; q != nil {
		fmt.Fprintf(&b, "      <dl class=\"next\"><dt>Next</dt><dd><a href=\"javascript:;\" onclick=\"fn_detail(%d);\">%s</a> <span class=\"date\">%s</span></dd></dl>\n", q.ID, esc(q.Title), date(q.Date))
	}
	b.WriteString("    </div>\n    <div class=\"btn_list\"><a href=\"javascript:fn_list();\" class=\"btn\">List</a></div>\n  </div>\n</div>\n")
	b.WriteString(pageFoot)
	return b.String()
}
