package msit

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// golden compares got with testdata/name, rewriting the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got %s\nwant %s", name, got, want)
	}
}

const testViewURL = "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"

func TestParseDetail(t *testing.T) {
	item, err := ParseDetail(mustURL(t, testViewURL), testPress, 1284, readTestdata(t, "detail_press.html"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "detail_press.body.golden", item.Body)

	t.Run("the title is the post's, not the board name nor a neighbour's", func(t *testing.T) {
		if want := "MSIT Hosts Korea-Latin America & Caribbean Digital Forum"; item.Title != want {
			t.Errorf("Title = %q, want %q", item.Title, want)
		}
	})
	t.Run("fields", func(t *testing.T) {
		want := feeds.Item{
			Board:      "press",
			ID:         1284,
			Title:      item.Title,
			URL:        testViewURL,
			Published:  kst(2024, 10, 30),
			Department: "International Cooperation Division",
			Body:       item.Body,
			Summary:    "The Ministry of Science and ICT (Minister Yoo Sang-im) hosted the forum on 30 October. Participants from 33 countries joined. Session AI & Digital Back to the list bad link Keep this label Please refer to the attached PDF.",
			Attachments: []feeds.Attachment{
				{Name: "Press release_Korea-LAC forum.pdf", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=54751&fileOrd=3&fileBtn=A", Type: "application/pdf"},
				{Name: "Press release_Korea-LAC forum.hwp", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=54751&fileOrd=4&fileBtn=A", Type: "application/x-hwp"},
				{Name: "Participants.xlsx", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=54752&fileOrd=1&fileBtn=A", Type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
				{Name: "Photos", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=54753&fileOrd=1&fileBtn=A", Type: "application/zip"},
			},
		}
		if !reflect.DeepEqual(item, want) {
			t.Errorf("got  %+v\nwant %+v", item, want)
		}
	})
	t.Run("the body keeps content and drops active parts", func(t *testing.T) {
		for _, keep := range []string{
			`<img src="https://www.msit.go.kr/attach/img/2024/forum_1284.jpg" alt="Forum"/>`,
			`<a href="https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&amp;mId=4&amp;mPid=2">Back to the list</a>`,
			`<strong>33 countries</strong>`, `<table>`, "Please refer to the attached PDF.",
		} {
			if !strings.Contains(item.Body, keep) {
				t.Errorf("body lacks %s", keep)
			}
		}
		for _, drop := range []string{"<script", "alert", "<style", "<form", "<input", "<button", "onclick", "onerror", "style=", "javascript:", "data:", "<iframe", "youtube", "Previous", "Views 123", "<h2"} {
			if strings.Contains(item.Body, drop) {
				t.Errorf("body still holds %q", drop)
			}
		}
	})
}

func TestParseDetailWithoutViewHead(t *testing.T) {
	item, err := ParseDetail(mustURL(t, testViewURL), testNotice, 900, readTestdata(t, "detail_minimal.html"))
	if err != nil {
		t.Fatal(err)
	}
	want := feeds.Item{
		Board:      "notice",
		ID:         900,
		Title:      "Call for the 2025 ICT R&D Proposals",
		URL:        "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=3&mPid=2&bbsSeqNo=&nttSeqNo=900",
		Published:  kst(2025, 1, 15),
		Department: "ICT R&D Policy Division",
		Body:       `<div>Proposals are due by <b>28 February</b>. See <a href="https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&amp;nttSeqNo=1">the guide</a>.</div>`,
		Summary:    "Proposals are due by 28 February. See the guide.",
	}
	if !reflect.DeepEqual(item, want) {
		t.Errorf("got  %+v\nwant %+v", item, want)
	}
}

// A page that lacks the date or the title is still read: the crawl fills
// what is missing from the list row.
func TestParseDetailPartsMissing(t *testing.T) {
	tests := []struct {
		name      string
		page      []byte
		wantTitle string
		wantDate  time.Time
	}{
		{"no date", readTestdata(t, "detail_nodate.html"), "A title without a date", time.Time{}},
		{"no title", []byte(`<html><body><h2>Press Releases</h2><div class="board_view"><div class="view_head"><span class="date">2024.10.30</span></div><div class="view_cont"><p>Text</p></div></div></body></html>`), "", kst(2024, 10, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item, err := ParseDetail(mustURL(t, testViewURL), testPress, 1284, tt.page)
			if err != nil {
				t.Fatalf("ParseDetail: %v", err)
			}
			if item.Title != tt.wantTitle || !item.Published.Equal(tt.wantDate) || item.Body != "<p>Text</p>" {
				t.Errorf("got title %q date %v body %q; want title %q date %v body <p>Text</p>", item.Title, item.Published, item.Body, tt.wantTitle, tt.wantDate)
			}
		})
	}
}

func TestParseDetailMissingParts(t *testing.T) {
	tests := []struct {
		name string
		page []byte
		want error
	}{
		{"neighbour titles only", []byte(`<div class="board_view"><div class="view_nav"><h2>Other post</h2><span class="date">2024.10.30</span></div></div>`), ErrNoTitle},
		{"empty page", nil, ErrNoTitle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDetail(mustURL(t, testViewURL), testPress, 1284, tt.page)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "press 1284") {
				t.Errorf("error %q does not name the post", err)
			}
		})
	}
}

func TestParseDetailGalleryThumbnail(t *testing.T) {
	page := `<div class="board_view"><div class="view_head"><h2>Photo</h2><span class="date">2024-11-02</span></div>
<div class="view_cont"><p><img src="data:image/gif;base64,R0lGOD"><img src="../../upload/photo_5501.jpg" alt="x"></p></div></div>`
	item, err := ParseDetail(mustURL(t, testViewURL), testPhoto, 5501, []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://www.msit.go.kr/upload/photo_5501.jpg"; item.Thumbnail != want {
		t.Errorf("Thumbnail = %q, want %q", item.Thumbnail, want)
	}
}

func TestSummarize(t *testing.T) {
	long := strings.Repeat("word ", 100) // 500 runes
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short text is kept", "Short text.", 300, "Short text."},
		{"cut on a word boundary", "alpha beta gamma", 12, "alpha beta…"},
		{"no space in the second half cuts hard", "abcdefghijklmnop", 10, "abcdefghij…"},
		{"runes, not bytes", "과학기술 정보통신부 장관", 7, "과학기술…"},
		{"long text", long, 300, strings.TrimSpace(strings.Repeat("word ", 60)) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("summarize = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > tt.max+1 {
				t.Errorf("summary has %d runes, more than %d+1", n, tt.max)
			}
		})
	}
}

func FuzzParseDetail(f *testing.F) {
	for _, name := range []string{"detail_press.html", "detail_minimal.html", "detail_nodate.html", "detail_eng2026.html", "detail_ko.html", "detail_nodate2026.html"} {
		f.Add(readTestdata(f, name))
	}
	base := mustURL(f, testViewURL)
	f.Fuzz(func(t *testing.T, page []byte) {
		for _, b := range []feeds.Board{testPress, testPhoto} {
			item, err := ParseDetail(base, b, 1284, page)
			if err != nil {
				if !errors.Is(err, ErrNoTitle) && !errors.Is(err, ErrUnparseable) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				continue
			}
			if item.Title == "" && item.Published.IsZero() {
				t.Fatalf("no error but neither title nor date")
			}
			if !utf8.ValidString(item.Body) || !utf8.ValidString(item.Summary) {
				t.Fatal("invalid UTF-8 in body or summary")
			}
			if problem := activeContent(item.Body); problem != "" {
				t.Fatalf("body holds %s: %s", problem, item.Body)
			}
		}
	})
}

func BenchmarkParseDetail(b *testing.B) {
	page := readTestdata(b, "detail_press.html")
	base := mustURL(b, testViewURL)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDetail(base, testPress, 1284, page); err != nil {
			b.Fatal(err)
		}
	}
}

// activeContent parses sanitised HTML and names the first element or
// attribute that should not have survived: scripts, styles, frames, forms,
// event handlers, style attributes, non-http(s) URLs.
func activeContent(body string) string {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(body), ctx)
	if err != nil {
		return "unparseable HTML"
	}
	var problem string
	var check func(*html.Node)
	check = func(n *html.Node) {
		if problem != "" {
			return
		}
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Iframe, atom.Form, atom.Input, atom.Button, atom.Object, atom.Embed:
				problem = "<" + n.Data + ">"
				return
			}
			for _, a := range n.Attr {
				key := strings.ToLower(a.Key)
				val := strings.ToLower(strings.TrimSpace(a.Val))
				switch {
				case strings.HasPrefix(key, "on"), key == "style":
					problem = "attribute " + key
				case (key == "href" || key == "src") && !strings.HasPrefix(val, "http://") && !strings.HasPrefix(val, "https://") && !strings.HasPrefix(val, "mailto:"):
					problem = key + "=" + a.Val
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			check(c)
		}
	}
	for _, n := range nodes {
		check(n)
	}
	return problem
}

func TestParseDetailShapes2026(t *testing.T) {
	koBoard := feeds.Board{Slug: "ko-press", MID: "307", MPID: "208", BBSSeqNo: "94", Lang: "ko", SCode: "user", Dir: "/bbs"}
	tests := []struct {
		name  string
		board feeds.Board
		page  string
		want  feeds.Item // Title, Published, Department, Summary, attachment names
	}{
		{
			name:  "Korean site: dl.tit_con metadata, texteditor body, ul.down_file_new",
			board: koBoard,
			page: `<html><body><div id="container"><div class="view_head"><h2>2026년도 우주 · 항공 연구개발 사업 공고</h2>
<dl class="tit_con"><dt>담당부서</dt><dd>우주정책과</dd><dt>담당자</dt><dd>홍길동</dd><dt>연락처</dt><dd>044-202-4321</dd><dt>등록일</dt><dd>2026. 10. 1</dd></dl></div>
<div id="cont-wrap" class="view_cont"><div class="texteditor-area-inner"><p>2026년도 우주·항공 연구개발 사업 공고</p><p>과학기술정보통신부는 사업을 공고합니다.</p></div></div>
<ul class="down_file_new"><li><a href="javascript:;" onclick="fn_download('123','1','hwp');">공고문.hwp</a></li></ul>
<div class="prev_next"><dl><dt>이전글</dt><dd><a onclick="fn_detail(3186886)">다른 글</a> 2026. 9. 30</dd></dl></div>
</div></body></html>`,
			want: feeds.Item{Title: "2026년도 우주 · 항공 연구개발 사업 공고", Published: kst(2026, 10, 1), Department: "우주정책과",
				Summary: "과학기술정보통신부는 사업을 공고합니다.", Attachments: []feeds.Attachment{{Name: "공고문.hwp"}}},
		},
		{
			name:  "English site 2026: a written-out date and a body opening with the title",
			board: testPress,
			page: `<html><body><div class="board_view"><div class="view_head"><h2>Korea &amp; UK Hold the 2nd Dialogue</h2><span class="date">Nov 5, 2025</span><span class="dept">Department : International Cooperation Division</span></div>
<div class="view_cont"><p><strong>Korea &amp; UK hold the 2nd dialogue.</strong></p><p>The two ministers met in London.</p></div>
<div class="view_file"><ul><li><a href="javascript:void(0);" onclick="fn_download('54751', '3', 'pdf');">dialogue.pdf</a></li></ul></div></div></body></html>`,
			want: feeds.Item{Title: "Korea & UK Hold the 2nd Dialogue", Published: kst(2025, 11, 5), Department: "International Cooperation Division",
				Summary: "The two ministers met in London.", Attachments: []feeds.Attachment{{Name: "dialogue.pdf"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item, err := ParseDetail(mustURL(t, testViewURL), tt.board, 1, []byte(tt.page))
			if err != nil {
				t.Fatalf("ParseDetail: %v", err)
			}
			var names []string
			for _, a := range item.Attachments {
				names = append(names, a.Name)
			}
			var wantNames []string
			for _, a := range tt.want.Attachments {
				wantNames = append(wantNames, a.Name)
			}
			if item.Title != tt.want.Title || !item.Published.Equal(tt.want.Published) || item.Department != tt.want.Department ||
				item.Summary != tt.want.Summary || !reflect.DeepEqual(names, wantNames) {
				t.Errorf("got title %q date %v dept %q summary %q files %q\nwant title %q date %v dept %q summary %q files %q",
					item.Title, item.Published, item.Department, item.Summary, names,
					tt.want.Title, tt.want.Published, tt.want.Department, tt.want.Summary, wantNames)
			}
			if !strings.Contains(htmlText(item.Body), tt.want.Title[:10]) {
				t.Errorf("body %q lost its opening title paragraph", item.Body)
			}
		})
	}
}

func TestSummaryLeavesOutARepeatedTitle(t *testing.T) {
	tests := []struct{ name, title, body, want string }{
		{"first paragraph repeats the title", "MSIT Announces X", "<p>MSIT Announces X</p><p>The plan starts now.</p>", "The plan starts now."},
		{"punctuation and case differ", "MSIT announces 'X'", "<div><p><b>MSIT Announces “X”.</b></p></div><p>The plan.</p>", "The plan."},
		{"a first paragraph that only starts with the title stays", "MSIT", "<p>MSIT announced a plan.</p><p>More.</p>", "MSIT announced a plan. More."},
		{"a body that is only the title stays", "Photo: lab visit", "<p>Photo: lab visit</p>", "Photo: lab visit"},
		{"no title", "", "<p>Text</p><p>More</p>", "Text More"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summary(tt.title, tt.body); got != tt.want {
				t.Errorf("Summary(%q, %q) = %q, want %q", tt.title, tt.body, got, tt.want)
			}
		})
	}
}
