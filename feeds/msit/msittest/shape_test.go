package msittest

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"sync"
	"testing"

	nethtml "golang.org/x/net/html"

	"github.com/msitfeed/msitfeed/feeds/msit"
)

const (
	pressList   = "/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1"
	pressEmpty  = "/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=9"
	photoList   = "/eng/bbs/list.do?sCode=eng&mPid=2&mId=5"
	pressView   = "/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"
	koPressList = "/bbs/list.do?sCode=user&mPid=208&mId=307&pageIndex=1"
	koPressP2   = "/bbs/list.do?sCode=user&mPid=208&mId=307&pageIndex=2"
	koNotice    = "/bbs/list.do?sCode=user&mPid=121&mId=129"
	koPressView = "/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887"
)

// apostrophePost is a press release whose title needs every escape.
var apostrophePost = Post{Board: "press", ID: 1300, Title: `Korea & UK's "AI" <Safety> pact`, Date: "2024-11-29",
	Department: "Spokesperson's Office", BodyHTML: "<p>Second paragraph.</p>"}

func allPosts() []Post { return append(SamplePosts(), KoreanSamplePosts()...) }

var scriptRE = regexp.MustCompile(`(?s)<script[^>]*>.*?</script>`)

// outsideScripts returns the page without its scripts.
func outsideScripts(page string) string { return scriptRE.ReplaceAllString(page, "") }

func TestShapePages(t *testing.T) {
	tests := []struct {
		name     string
		shape    Shape
		hide     bool
		target   string
		contains []string
		lacks    []string
		check    func(t *testing.T, page string)
	}{
		{name: "english2026 list: empty cells, links in script strings", shape: ShapeEnglish2026, target: pressList,
			contains: []string{
				`<tr><td id="td_NO_0"></td><td id="td_NTT_SJ_0"></td><td id="td_CHRG_DEPT_NM_0"></td><td id="td_REG_DT_0"></td></tr>`,
				`$('#td_'+'NTT_SJ'+'_0').html('<a href="javascript:;" onclick="fn_detail("1300")" title="Korea &amp; UK&#39;s &quot;AI&quot; &lt;Safety&gt; pact"><span>Korea &amp; UK\'s &quot;AI&quot; &lt;Safety&gt; pact</span></a>');`,
				`onclick="fn_detail("1284")" title="MSIT Hosts Korea-Latin America &amp; Caribbean Digital Forum"`,
				`$('#td_'+'CHRG_DEPT_NM'+'_0').html('Spokesperson\'s Office');`,
				`$('#td_'+'NO'+'_0').html('26');`,
				`if('REG_DT' == 'REG_DT'){ $('#td_'+'REG_DT'+'_1').html('Nov 28, 2024') }`,
				`//$('#td_'+'REG_DT'+'_1').html('Nov 27, 2024');`,
				`if('REG_DT' == 'PSTG_YMD'){ $('#td_'+'REG_DT'+'_1').html('Dec 28, 2024') }`,
				`/* $('#td_'+'NTT_SJ'+'_1').html('<a href="javascript:;" onclick="fn_detail("1284")" title="[draft] MSIT`,
				`fn_paging(3)`, `name="bbsSeqNo" value="42"`,
			},
			lacks: []string{"td_PSTG_YMD", "unescape(", "<span id=\"td_"},
			check: func(t *testing.T, page string) {
				out := outsideScripts(page)
				for _, s := range []string{"fn_detail", "view.do", "Caribbean"} {
					if strings.Contains(out, s) {
						t.Errorf("%q outside scripts", s)
					}
				}
				emptyCells(t, page, "td_")
			}},
		{name: "english2026 list: odd rows write apostrophes &#39;", shape: ShapeEnglish2026, target: pressList,
			check: func(t *testing.T, page string) {
				site := NewSite(nil, WithShape(ShapeEnglish2026))
				site.AddPost(apostrophePost)
				site.AddPost(Post{Board: "press", ID: 1301, Title: "Newer", Date: "2024-11-30"})
				_, page = get(t, site, pressList)
				if !strings.Contains(page, `<span>Korea &amp; UK&#39;s &quot;AI&quot; &lt;Safety&gt; pact</span>`) {
					t.Error("row 1 does not write its apostrophe as &#39;")
				}
			}},
		{name: "english2026 gallery: link and thumbnail only in scripts", shape: ShapeEnglish2026, target: photoList,
			contains: []string{`<div class="tit" id="td_NTT_SJ_0"></div>`,
				`onclick="fn_detail("5505")" title="Photo: Minister visits KSTAR fusion lab 😀"><span class="thumb"><img src="/upload/photo/2024/thumb_5505.jpg"`,
				`html('Nov 27, 2024')`},
			check: func(t *testing.T, page string) {
				out := outsideScripts(page)
				for _, s := range []string{"fn_detail", "/upload/", "KSTAR"} {
					if strings.Contains(out, s) {
						t.Errorf("%q outside scripts", s)
					}
				}
			}},
		{name: "english2026 post: Nov 5 dates, title paragraph first", shape: ShapeEnglish2026, target: pressView,
			contains: []string{`<div class="board_view">`, `<span class="date">Nov 28, 2024</span>`,
				"<div class=\"view_cont\">\n<p style=\"text-align: center;\"><strong>MSIT Hosts Korea-Latin America &amp; Caribbean Digital Forum</strong></p>\n<p>The Ministry",
				`fn_download('55284', '1', 'pdf')`, `class="view_nav"`, `Department : Science &amp; Technology Policy Division`, `<span class="date">Nov 25, 2024</span>`},
			lacks: []string{"2024.11.28"}},
		{name: "korean list of an English board", shape: ShapeKorean, target: pressList,
			contains: []string{
				`<div class="toggle thead"><a aria-hidden="true"><div class="num">번호</div><p class="title">제목</p><div class="date">등록일</div></a></div>`,
				`<div class="toggle"><a href="javascript:;" onclick="fn_detail(1300);"><div class="num" id="td_NO_0"></div><p class="title" id="td_NTT_SJ_0"></p><div class="dept" id="td_CHRG_DEPT_NM_0"></div><div class="date" id="td_REG_DT_0"></div></a></div>`,
				`onclick="fn_detail('1284');"`,
				`var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape('Korea &amp; UK\'s &quot;AI&quot; &lt;Safety&gt; pact'); sHtml+= newHtml; $('#td_'+'NTT_SJ'+'_0').html(sHtml);`,
				`sHtml+= unescape('MSIT%20Hosts%20Korea-Latin%20America%20%26amp%3B%20Caribbean%20Digital%20Forum');`,
				`$('#td_'+'REG_DT'+'_1').html('2024. 11. 28');`, `//$('#td_'+'REG_DT'+'_1').html('');`,
				`$('#td_'+'REG_DT'+'_0').html('2024. 11. 29');`, `/* $('#td_'+'REG_DT'+'_0').html('2024. 12. 6'); */`,
				`name="bbsSeqNo" value="42"`, `fn_paging(3)`, "'/eng/bbs/view.do'",
			},
			lacks: []string{"var replyHrml", "var ctgryHtml", "var newHtml", "replyHrml =", "newHtml =", "ctgryHtml ="},
			check: func(t *testing.T, page string) {
				scripts := scriptRE.FindAllString(page[strings.Index(page, `class="board_list"`):], -1)
				if len(scripts) != 1 {
					t.Errorf("%d scripts after the rows, want one", len(scripts))
				}
				if n := strings.Count(page, `$('#td_'+'REG_DT'+'_3')`); n != 4 {
					t.Errorf("row 3's date statement stands %d times, want 4 (one live)", n)
				}
				emptyCells(t, page, "td_")
			}},
		{name: "korean board in the classic site", shape: ShapeClassic, target: koPressList,
			contains: []string{`<html lang="ko">`, `onclick="fn_detail(3186887);"`, `onclick="fn_detail('3186880');"`,
				`unescape('과기정통부, 인공지능 반도체 산업 육성 전략 발표')`, `unescape('2026%uB144%uB3C4%20`,
				`unescape('과기정통부 \'K-클라우드\' 확산 &amp; 데이터센터 지원 방안 발표')`,
				`$('#td_'+'REG_DT'+'_0').html('2026. 10. 1');`, `$('#td_'+'CHRG_DEPT_NM'+'_0').html('인공지능반도체과');`,
				`<input type="hidden" name="sCode" value="user">`, `name="bbsSeqNo" value="94"`, "'/bbs/view.do'", `fn_paging(2)`},
			lacks: []string{"/eng/bbs/view.do", "fn_detail(3186810"}},
		{name: "korean board page 2", shape: ShapeEnglish2026, target: koPressP2,
			contains: []string{`onclick="fn_detail(3186817);"`, `onclick="fn_detail('3186810');"`, `html('2026. 9. 11');`},
			lacks:    []string{"3186887"}},
		{name: "korean post", shape: ShapeBroken, target: koPressView,
			contains: []string{
				`<div class="view_head"><h2>과기정통부, 인공지능 반도체 산업 육성 전략 발표</h2><dl class="tit_con"><dt>담당부서</dt><dd>인공지능반도체과</dd><dt>담당자</dt><dd>`,
				`<dt>연락처</dt><dd>044-202-`, `<dt>등록일</dt><dd>2026. 10. 1</dd></dl></div>`,
				"<div id=\"cont-wrap\" class=\"view_cont\"><div class=\"texteditor-area-inner\">\n<p style=\"text-align: center;\"><strong>과기정통부, 인공지능 반도체 산업 육성 전략 발표</strong></p>\n<p>과학기술정보통신부는 10월 1일",
				`<ul class="down_file_new">`, `onclick="fn_download('416887','1','hwpx');">(보도자료) 3186887.hwpx</a>`,
				`onclick="fn_download('416887','2','pdf');"`,
				`fn_detail('3186880');">2026년도 국가연구개발사업 예산 배분·조정안 확정</a><span class="date">2026. 9. 29</span>`},
			lacks: []string{"board_view", "view_file"}},
		{name: "korean post of an English board", shape: ShapeKorean, target: pressView,
			contains: []string{`<h2>MSIT Hosts Korea-Latin America &amp; Caribbean Digital Forum</h2><dl class="tit_con">`, `<dd>2024. 11. 28</dd>`,
				`fn_download('55284','1','pdf')`, "'/eng/bbs/view.do'"},
			lacks: []string{"board_view"}},
		{name: "broken list: no fn_detail, no view.do", shape: ShapeBroken, target: pressList,
			contains: []string{`data-ntt="1284"`, `goView(this)`, `>MSIT Hosts Korea-Latin America &amp; Caribbean Digital Forum</a>`, `<td class="date">2024-11-28</td>`},
			lacks:    []string{"fn_detail", "view.do", "td_NTT_SJ"}},
		{name: "broken gallery", shape: ShapeBroken, target: photoList,
			contains: []string{`data-ntt="5505"`, `<img src="/upload/photo/2024/thumb_5505.jpg"`},
			lacks:    []string{"fn_detail", "view.do"}},
		{name: "broken post is classic", shape: ShapeBroken, target: pressView,
			contains: []string{`<div class="board_view">`, `<span class="date">2024.11.28</span>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := NewSite(allPosts(), WithShape(tt.shape), WithoutDepartment(tt.hide))
			site.AddPost(apostrophePost)
			status, page := get(t, site, tt.target)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			if !strings.HasSuffix(page, "</html>\n") {
				t.Error("page does not end with </html>")
			}
			for _, c := range tt.contains {
				if !strings.Contains(page, c) {
					t.Errorf("page lacks %q", c)
				}
			}
			for _, c := range tt.lacks {
				if strings.Contains(page, c) {
					t.Errorf("page holds %q", c)
				}
			}
			if tt.check != nil {
				tt.check(t, page)
			}
		})
	}
}

// emptyCells fails if an element whose id starts with prefix has children
// in the markup (the shapes that fill their cells by script).
func emptyCells(t *testing.T, page, prefix string) {
	t.Helper()
	doc, err := nethtml.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(*nethtml.Node)
	walk = func(nd *nethtml.Node) {
		if nd.Type == nethtml.ElementNode {
			for _, a := range nd.Attr {
				if a.Key == "id" && strings.HasPrefix(a.Val, prefix) {
					n++
					if nd.FirstChild != nil {
						t.Errorf("cell %s is not empty", a.Val)
					}
				}
			}
		}
		for c := nd.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if n == 0 {
		t.Error("no cells")
	}
}

// jsUnquote undoes jsString for the literals the shapes write.
var jsUnquote = strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\n`, "\n", `\r`, "\r", `<\/`, `</`).Replace

func TestShapeTitlesDecode(t *testing.T) {
	// Every shape's live title statement gives back the exact title.
	posts := []Post{apostrophePost,
		{Board: "press", ID: 1301, Title: "Korea’s “K-Science” 과학 😀 & 100% <b>", Date: "2024-11-28"},
		{Board: "press", ID: 1302, Title: "Plain ' & ' \\ backslash", Date: "2024-11-27"}}
	engRE := regexp.MustCompile(`(?m)^\s*\$\('#td_'\+'NTT_SJ'\+'_(\d+)'\)\.html\('(.*)'\);$`)
	spanRE := regexp.MustCompile(`<span>(.*)</span>`)
	koRE := regexp.MustCompile(`sHtml\+= unescape\('(.*?)'\); sHtml\+= newHtml; \$\('#td_'\+'NTT_SJ'\+'_(\d+)'\)`)
	for _, sh := range []Shape{ShapeEnglish2026, ShapeKorean} {
		t.Run(sh.String(), func(t *testing.T) {
			site := NewSite(posts, WithShape(sh))
			_, page := get(t, site, pressList)
			var got []string
			if sh == ShapeEnglish2026 {
				for _, m := range engRE.FindAllStringSubmatch(page, -1) {
					span := spanRE.FindStringSubmatch(jsUnquote(m[2]))
					if span == nil {
						t.Fatalf("no span in %s", m[2])
					}
					got = append(got, html.UnescapeString(span[1]))
				}
			} else {
				for _, m := range koRE.FindAllStringSubmatch(page, -1) {
					got = append(got, html.UnescapeString(msit.Unescape(jsUnquote(m[1]))))
				}
			}
			if len(got) != len(posts) {
				t.Fatalf("%d title statements, want %d", len(got), len(posts))
			}
			for i, p := range posts {
				if got[i] != p.Title {
					t.Errorf("row %d title %q, want %q", i, got[i], p.Title)
				}
			}
		})
	}
}

func TestShapeEmptyBoard(t *testing.T) {
	for _, sh := range []Shape{ShapeClassic, ShapeEnglish2026, ShapeKorean, ShapeBroken} {
		for _, hide := range []bool{false, true} {
			site := NewSite(SamplePosts(), WithShape(sh), WithoutDepartment(hide))
			for _, target := range []string{pressEmpty, photoList + "&pageIndex=9", koPressList, koNotice} {
				status, page := get(t, site, target)
				if status != 200 || !strings.Contains(page, noPosts) {
					t.Errorf("%s hide=%v %s: status %d, no %q", sh, hide, target, status, noPosts)
				}
				if strings.Contains(outsideScripts(page), "td_NTT_SJ_0") || strings.Contains(page, "data-ntt=") {
					t.Errorf("%s %s: an empty board has a row", sh, target)
				}
			}
		}
	}
}

func TestWithoutDepartment(t *testing.T) {
	for _, sh := range []Shape{ShapeClassic, ShapeEnglish2026, ShapeKorean, ShapeBroken} {
		for _, target := range []string{pressList, photoList, koPressList} {
			t.Run(fmt.Sprintf("%s %s", sh, target), func(t *testing.T) {
				site := NewSite(allPosts(), WithShape(sh), WithoutDepartment(true))
				_, page := get(t, site, target)
				for _, s := range []string{"CHRG_DEPT_NM", `class="dept"`, ">Department<", "Science &amp; Technology Policy Division", "AI Policy Division", "인공지능반도체과", "Department to be announced"} {
					if strings.Contains(page, s) {
						t.Errorf("list page holds %q", s)
					}
				}
				if !strings.Contains(page, "td_REG_DT_0") && !strings.Contains(page, "td_PSTG_YMD_0") && !strings.Contains(page, `class="date">20`) {
					t.Error("list page lost its date column")
				}
				site.SetHideDepartment(false)
				if _, page := get(t, site, target); !strings.Contains(page, "CHRG_DEPT_NM") && !strings.Contains(page, `class="dept"`) {
					t.Error("SetHideDepartment(false) did not bring the department back")
				}
			})
		}
	}
	site := NewSite(allPosts(), WithoutDepartment(true))
	for _, sh := range []Shape{ShapeClassic, ShapeEnglish2026, ShapeKorean, ShapeBroken} {
		site.SetShape(sh)
		if _, page := get(t, site, pressView); !strings.Contains(page, "Science &amp; Technology Policy Division") {
			t.Errorf("%s: the post page lost its department", sh)
		}
		if _, page := get(t, site, koPressView); !strings.Contains(page, "<dd>인공지능반도체과</dd>") {
			t.Errorf("%s: the Korean post page lost its department", sh)
		}
	}
}

func TestSetShape(t *testing.T) {
	site := NewSite(allPosts())
	if site.Shape() != ShapeClassic {
		t.Fatalf("default shape %s", site.Shape())
	}
	_, classic := get(t, site, pressList)
	_, koClassic := get(t, site, koPressList)
	marks := map[Shape]string{
		ShapeClassic:     `onclick="fn_detail(1284); return false;"`,
		ShapeEnglish2026: `onclick="fn_detail("1284")"`,
		ShapeKorean:      `<div class="toggle"><a href="javascript:;" onclick="fn_detail(1284);">`,
		ShapeBroken:      `data-ntt="1284"`,
	}
	for _, sh := range []Shape{ShapeEnglish2026, ShapeKorean, ShapeBroken, ShapeClassic} {
		site.SetShape(sh)
		if site.Shape() != sh {
			t.Errorf("Shape() = %s after SetShape(%s)", site.Shape(), sh)
		}
		_, page := get(t, site, pressList)
		for other, mark := range marks {
			if strings.Contains(page, mark) != (other == sh) {
				t.Errorf("in %s, mark of %s present: %v", sh, other, other != sh)
			}
		}
		// The Korean boards do not follow the site's shape.
		if _, ko := get(t, site, koPressList); ko != koClassic {
			t.Errorf("in %s, the Korean board's page changed", sh)
		}
	}
	if _, page := get(t, site, pressList); page != classic {
		t.Error("back in ShapeClassic, the page differs from before")
	}
	if s := Shape(9).String(); s != "Shape(9)" {
		t.Errorf("String of an unknown shape: %q", s)
	}
}

func TestShapeChangesAndCounts(t *testing.T) {
	site := NewSite(allPosts(), WithShape(ShapeEnglish2026))
	site.EditPost("press", 1284, "Edited title", "")
	site.RemovePost("press", 1283)
	site.AddPost(Post{Board: "ko-press", ID: 3190001, Title: "새 보도자료", Date: "2026-10-02", Department: "대변인실"})
	_, page := get(t, site, pressList)
	if !strings.Contains(page, `title="Edited title"`) || strings.Contains(page, `fn_detail("1283")`) {
		t.Error("edit or removal not shown in ShapeEnglish2026")
	}
	_, page = get(t, site, koPressList)
	if !strings.Contains(page, "fn_detail(3190001);") || !strings.Contains(page, "html('2026. 10. 2');") {
		t.Error("the added Korean post is not first")
	}
	if status, _ := get(t, site, "/ssm/file/fileDown.do?atchFileNo=416887&fileOrd=2&fileBtn=A"); status != 200 {
		t.Errorf("Korean attachment: status %d", status)
	}
	for _, target := range []string{"/bbs/list.do?sCode=user&mId=4", "/eng/bbs/list.do?sCode=eng&mId=307", "/bbs/view.do?mId=307&nttSeqNo=1284"} {
		if status, _ := get(t, site, target); status != 404 {
			t.Errorf("%s: status %d, want 404", target, status)
		}
	}
	if site.RequestsOf(KindList) != 4 || site.RequestsOf(KindView) != 1 || site.Requests() != 6 {
		t.Errorf("counts: list %d view %d total %d", site.RequestsOf(KindList), site.RequestsOf(KindView), site.Requests())
	}
}

func TestShapeConcurrentSwitch(t *testing.T) {
	site := NewSite(allPosts())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if g == 0 {
					site.SetShape(Shape(i % 4))
					site.SetHideDepartment(i%3 == 0)
					continue
				}
				if status, _ := get(t, site, []string{pressList, photoList, koPressList, pressView}[(g+i)%4]); status != 200 {
					t.Errorf("status %d", status)
				}
			}
		})
	}
	wg.Wait()
}

func TestKoreanSamplePosts(t *testing.T) {
	a, b := KoreanSamplePosts(), KoreanSamplePosts()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("KoreanSamplePosts is not deterministic")
	}
	slugs := map[string]bool{}
	for _, bd := range KoreanBoards() {
		slugs[bd.Slug] = true
		if bd.Lang != "ko" || bd.SCode != "user" || bd.Dir != "/bbs" || !bd.Resolved() {
			t.Errorf("board %+v", bd)
		}
	}
	files := map[[2]int64]bool{}
	for _, p := range SamplePosts() {
		for _, at := range p.Attachments {
			files[[2]int64{at.FileNo, int64(at.Ord)}] = true
		}
	}
	per := map[string]int{}
	ids := map[string]bool{}
	var withBoth, withFiles int
	for _, p := range a {
		per[p.Board]++
		if !slugs[p.Board] {
			t.Errorf("post %d on board %q", p.ID, p.Board)
		}
		if p.ID < 1000000 || p.ID > 9999999 {
			t.Errorf("id %d is not seven digits", p.ID)
		}
		key := fmt.Sprint(p.Board, p.ID)
		if ids[key] {
			t.Errorf("duplicate %s", key)
		}
		ids[key] = true
		if p.Date > KoreanSampleToday().Format("2006-01-02") {
			t.Errorf("post %d dated %s", p.ID, p.Date)
		}
		if strings.Contains(p.Title, "&") && strings.Contains(p.Title, "'") {
			withBoth++
		}
		if len(p.Attachments) > 0 {
			withFiles++
		}
		for _, at := range p.Attachments {
			k := [2]int64{at.FileNo, int64(at.Ord)}
			if files[k] {
				t.Errorf("attachment %v used twice", k)
			}
			files[k] = true
		}
	}
	for slug := range slugs {
		if per[slug] != KoreanSamplePostsPerBoard {
			t.Errorf("%s has %d posts", slug, per[slug])
		}
	}
	if withBoth == 0 || withFiles == 0 || withFiles == len(a) {
		t.Errorf("titles with & and ': %d; posts with attachments: %d of %d", withBoth, withFiles, len(a))
	}
}
