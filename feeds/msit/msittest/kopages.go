package msittest

import (
	"fmt"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
)

const koPageHead = `<!DOCTYPE html>
<html lang="ko">
<head>
<meta charset="UTF-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<title>%s | 과학기술정보통신부</title>
<link rel="stylesheet" href="/css/user/common.css">
<script src="/js/jquery-3.6.0.min.js"></script>
</head>
<body>
<div id="skipNav"><a href="#contents">본문 바로가기</a></div>
`

const koPageFoot = `<div id="footer"><p>(30121) 세종특별자치시 갈매로 477 정부세종청사 4동 과학기술정보통신부</p></div>
</body>
</html>
`

// koHeader is the Korean site's header menu.
func koHeader() string {
	var b strings.Builder
	b.WriteString("<div id=\"header\">\n  <h1 class=\"logo\"><a href=\"/index.do\"><img src=\"/images/user/img_logo.png\" alt=\"과학기술정보통신부\"></a></h1>\n  <ul class=\"gnb\">\n")
	for _, bd := range KoreanBoards() {
		fmt.Fprintf(&b, "    <li><a href=\"/bbs/list.do?sCode=user&amp;mPid=%s&amp;mId=%s\">%s</a></li>\n", bd.MPID, bd.MID, esc(bd.Name))
	}
	b.WriteString("  </ul>\n</div>\n")
	return b.String()
}

// koTop writes the top of a ShapeKorean page: the Korean site's head and
// menu for its boards, the English site's for an English board; then the
// script, and the board name and hidden form.
func koTop(b *strings.Builder, bd feeds.Board, title, script, action string, page int, ntt string) {
	if isKorean(bd) {
		fmt.Fprintf(b, koPageHead, title)
		b.WriteString(script)
		b.WriteString(koHeader())
	} else {
		fmt.Fprintf(b, pageHead, title)
		b.WriteString(script)
		b.WriteString(gnb())
	}
	fmt.Fprintf(b, `<div id="contents">
  <h2 class="sub_tit">%s</h2>
  <form id="mainForm" name="mainForm" method="post" action="%s">
    <input type="hidden" name="sCode" value="%s">
    <input type="hidden" name="mId" value="%s">
    <input type="hidden" name="mPid" value="%s">
    <input type="hidden" name="bbsSeqNo" value="%s">
    <input type="hidden" id="nttSeqNo" name="nttSeqNo" value="%s">
`, esc(bd.Name), action, boardSCode(bd), bd.MID, bd.MPID, bd.BBSSeqNo, ntt)
	if page > 0 {
		fmt.Fprintf(b, "    <input type=\"hidden\" id=\"pageIndex\" name=\"pageIndex\" value=\"%d\">\n", page)
	}
	b.WriteString("  </form>\n")
}

func koFoot(b *strings.Builder, bd feeds.Board) string {
	b.WriteString("</div>\n")
	if isKorean(bd) {
		b.WriteString(koPageFoot)
	} else {
		b.WriteString(pageFoot)
	}
	return b.String()
}

// koreanList is a list page in ShapeKorean: a header row, static toggle
// rows with empty cells inside a fn_detail anchor, and one script after
// all rows that fills them.
func koreanList(v listView) string {
	bd := v.bd
	dir := boardDir(bd)
	var b strings.Builder
	koTop(&b, bd, esc(bd.Name), `<script>
  function fn_detail(nttSeqNo) {
    $('#nttSeqNo').val(nttSeqNo);
    $('#mainForm').attr('action', '`+dir+`/view.do').submit();
  }
  function fn_paging(pageIndex) {
    $('#pageIndex').val(pageIndex);
    $('#mainForm').attr('action', '`+dir+`/list.do').submit();
  }
</script>
`, dir+"/list.do", v.page, "")
	b.WriteString("  <div class=\"board_list\">\n")
	b.WriteString("    <div class=\"toggle thead\"><a aria-hidden=\"true\"><div class=\"num\">번호</div><p class=\"title\">제목</p><div class=\"date\">등록일</div></a></div>\n")
	if len(v.rows) == 0 {
		b.WriteString("    <div class=\"no_data\"><p>" + noPosts + "</p></div>\n")
	}
	for i, p := range v.rows {
		// Rows alternate between fn_detail(N) and fn_detail('N').
		arg := fmt.Sprint(p.ID)
		if i%2 == 1 {
			arg = "'" + arg + "'"
		}
		thumb, dept := "", ""
		if bd.Gallery {
			thumb = fmt.Sprintf("<span class=\"img\"><img src=\"%s\" alt=\"%s\"></span>", esc(p.Thumbnail), esc(p.Title))
		}
		if !v.hideDept {
			dept = fmt.Sprintf("<div class=\"dept\" id=\"td_CHRG_DEPT_NM_%d\"></div>", i)
		}
		fmt.Fprintf(&b, "    <div class=\"toggle\"><a href=\"javascript:;\" onclick=\"fn_detail(%[2]s);\">%[3]s<div class=\"num\" id=\"td_NO_%[1]d\"></div><p class=\"title\" id=\"td_NTT_SJ_%[1]d\"></p>%[4]s<div class=\"date\" id=\"td_REG_DT_%[1]d\"></div></a></div>\n",
			i, arg, thumb, dept)
	}
	b.WriteString("  </div>\n  <script type=\"text/javascript\">\n")
	for i, p := range v.rows {
		koreanRowScript(&b, i, p, v.firstNo-i, v.hideDept)
	}
	b.WriteString("  </script>\n")
	writePager(&b, v.page, v.last)
	return koFoot(&b, bd)
}

// koreanRowScript writes row i's statements in the page's one script. The
// title goes through replyHrml, ctgryHtml and newHtml, which the page
// never defines; the unescape argument is escape()d on odd rows and raw
// text on even ones. The live date stands among two commented-out copies
// and a block-commented one.
func koreanRowScript(b *strings.Builder, i int, p Post, no int, hideDept bool) {
	var title string
	if i%2 == 0 {
		// Raw text: a '%' must still survive unescape.
		title = jsString(strings.ReplaceAll(htmlText(p.Title), "%", "%25"))
	} else {
		title = "'" + jsEscape(htmlText(p.Title)) + "'"
	}
	fmt.Fprintf(b, "    var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape(%s); sHtml+= newHtml; $('#td_'+'NTT_SJ'+'_%d').html(sHtml);\n", title, i)
	if !hideDept {
		fmt.Fprintf(b, "    $('#td_'+'CHRG_DEPT_NM'+'_%d').html(%s);\n", i, jsString(htmlText(p.Department)))
	}
	fmt.Fprintf(b, "    $('#td_'+'NO'+'_%d').html('%d');\n", i, no)
	live := fmt.Sprintf("$('#td_'+'REG_DT'+'_%d').html('%s');", i, koDate(p.Date))
	other := fmt.Sprintf("//$('#td_'+'REG_DT'+'_%d').html('%s');", i, koDate(shiftDay(p.Date, -1)))
	empty := fmt.Sprintf("//$('#td_'+'REG_DT'+'_%d').html('');", i)
	block := fmt.Sprintf("/* $('#td_'+'REG_DT'+'_%d').html('%s'); */", i, koDate(shiftDay(p.Date, 7)))
	order := []string{other, live, empty, block}
	if i%2 == 1 {
		order = []string{block, empty, live, other}
	}
	for _, st := range order {
		b.WriteString("    " + st + "\n")
	}
}

// koreanContacts are the 담당자 names of Korean post pages.
var koreanContacts = []string{"홍길동", "김과학", "이정보", "박통신"}

// koreanPost is a post page in ShapeKorean: no div.board_view; the title in
// .view_head h2 with dl.tit_con metadata, the body in #cont-wrap.view_cont
// .texteditor-area-inner opening with the title, attachments in
// ul.down_file_new, and the neighbours with their dates.
func koreanPost(v postView) string {
	bd, p := v.bd, v.p
	dir := boardDir(bd)
	var b strings.Builder
	koTop(&b, bd, esc(p.Title)+" | "+esc(bd.Name), `<script>
  function fn_download(atchFileNo, fileOrd, ext) {
    location.href = '/ssm/file/fileDown.do?atchFileNo=' + atchFileNo + '&fileOrd=' + fileOrd + '&fileBtn=A';
  }
  function fn_detail(nttSeqNo) {
    $('#nttSeqNo').val(nttSeqNo);
    $('#mainForm').attr('action', '`+dir+`/view.do').submit();
  }
  function fn_list() { $('#mainForm').attr('action', '`+dir+`/list.do').submit(); }
</script>
`, dir+"/view.do", 0, fmt.Sprint(p.ID))
	fmt.Fprintf(&b, `  <div class="bbs_view">
    <div class="view_head"><h2>%s</h2><dl class="tit_con"><dt>담당부서</dt><dd>%s</dd><dt>담당자</dt><dd>%s</dd><dt>연락처</dt><dd>044-202-%04d</dd><dt>등록일</dt><dd>%s</dd></dl></div>
    <div id="cont-wrap" class="view_cont"><div class="texteditor-area-inner">
%s
%s
    </div></div>
    <div class="file_box">
      <strong class="tit">첨부파일</strong>
      <ul class="down_file_new">
`, esc(p.Title), esc(p.Department), koreanContacts[p.ID%int64(len(koreanContacts))], 4000+p.ID%1000, koDate(p.Date), titleParagraph(p.Title), p.BodyHTML)
	for _, a := range p.Attachments {
		fmt.Fprintf(&b, "        <li><a href=\"javascript:;\" onclick=\"fn_download('%d','%d','%s');\">%s</a> <a href=\"javascript:;\" onclick=\"fn_preview('%d','%d');\" class=\"btn_view\">바로보기</a></li>\n",
			a.FileNo, a.Ord, esc(a.Ext), esc(a.Name), a.FileNo, a.Ord)
	}
	b.WriteString("      </ul>\n    </div>\n    <ul class=\"view_pre_next\">\n")
	if q := v.prev; q != nil {
		fmt.Fprintf(&b, "      <li class=\"prev\"><span class=\"tit\">이전글</span><a href=\"javascript:;\" onclick=\"fn_detail('%d');\">%s</a><span class=\"date\">%s</span></li>\n", q.ID, esc(q.Title), koDate(q.Date))
	}
	if q := v.next; q != nil {
		fmt.Fprintf(&b, "      <li class=\"next\"><span class=\"tit\">다음글</span><a href=\"javascript:;\" onclick=\"fn_detail('%d');\">%s</a><span class=\"date\">%s</span></li>\n", q.ID, esc(q.Title), koDate(q.Date))
	}
	b.WriteString("    </ul>\n    <div class=\"btn_wrap\"><a href=\"javascript:fn_list();\" class=\"btn\">목록</a></div>\n  </div>\n")
	return koFoot(&b, bd)
}
