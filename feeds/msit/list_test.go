package msit

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
)

// Boards as the tests address them.
var (
	testNotice = feeds.Board{Slug: "notice", Name: "Notice", MID: "3", MPID: "2"}
	testPress  = feeds.Board{Slug: "press", Name: "Press Releases", MID: "4", MPID: "2", BBSSeqNo: "42"}
	testPhoto  = feeds.Board{Slug: "photo", Name: "Photo News", MID: "5", MPID: "2", Gallery: true}
)

const testListURL = "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kst(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, feeds.KST) }

func TestParseList(t *testing.T) {
	pressRows := []feeds.ListRow{
		{ID: 1284, Title: "MSIT Hosts Korea-Latin America & Caribbean Digital Forum", Published: kst(2024, 10, 30), Department: "International Cooperation Division"},
		{ID: 1283, Title: "“K-Science” Week 2024 opens with 과학기술 fair", Published: kst(2024, 10, 29), Department: "Science & Technology Policy Division"},
		{ID: 1282, Title: "Minister meets AI start-ups 😀 at Pangyo <AI Basic Act> New", Published: kst(2024, 10, 28), Department: "AI Policy Division"},
		{ID: 1281, Title: "Korea's 6G strategy – next steps", Published: kst(2024, 10, 25), Department: "Network Policy Division"},
	}
	tests := []struct {
		name  string
		file  string
		board feeds.Board
		want  feeds.ListPage
	}{
		{
			name:  "script-hydrated rows run only live statements",
			file:  "list_press.html",
			board: testPress,
			want:  feeds.ListPage{Rows: pressRows, LastPage: 128, BBSSeqNo: "42", HasDepartment: true},
		},
		{
			name:  "gallery rows keep absolute thumbnails and skip icons",
			file:  "list_photo.html",
			board: testPhoto,
			want: feeds.ListPage{Rows: []feeds.ListRow{
				{ID: 5501, Title: "Photo: Minister visits 😀 lab", Published: kst(2024, 11, 2), Thumbnail: "https://www.msit.go.kr/attach/thumb/photo_5501.jpg"},
				{ID: 5500, Title: "Photo: “Digital Bill of Rights” ceremony", Published: kst(2024, 10, 31), Thumbnail: "https://www.msit.go.kr/upload/thumb_5500.jpg"},
			}, LastPage: 2, BBSSeqNo: "43"},
		},
		{
			name:  "plain markup rows take anchor text and date cells",
			file:  "list_plain.html",
			board: testNotice,
			want: feeds.ListPage{Rows: []feeds.ListRow{
				{ID: 777, Title: "2025 R&D Programme Call", Published: kst(2025, 1, 15), Department: "Research Policy Bureau"},
				{ID: 776, Title: "Holiday notice: office closed 2025.01.28–30", Published: kst(2025, 1, 10), Department: "General Services Division"},
			}, LastPage: 5, BBSSeqNo: "41", HasDepartment: true},
		},
		{
			name:  "an empty board is no rows and no error",
			file:  "list_empty.html",
			board: feeds.Board{Slug: "newsletter", MID: "7", MPID: "2"},
			want:  feeds.ListPage{BBSSeqNo: "45"},
		},
		{
			name:  "truncated HTML gives the rows that are there",
			file:  "list_truncated.html",
			board: testPress,
			want:  feeds.ListPage{Rows: []feeds.ListRow{pressRows[0], pressRows[1], {ID: 1282}}, BBSSeqNo: "42", HasDepartment: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList(mustURL(t, testListURL), tt.board, readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseList(%s):\n got %+v\nwant %+v", tt.file, got, tt.want)
			}
		})
	}
}

func TestParseListEmptyBoards(t *testing.T) {
	pages := map[string]string{
		"an English no-posts message": `<html><body><h2>Notice</h2><div class="board_list"><p>There are no posts.</p></div></body></html>`,
		"an empty board table":        `<html><body><table class="board"><thead><tr><th>No</th><th>Title</th></tr></thead><tbody></tbody></table></body></html>`,
		"a Korean message alone":      `<html><body><div>검색된 게시물이 없습니다</div></body></html>`,
	}
	for name, page := range pages {
		t.Run(name, func(t *testing.T) {
			got, err := ParseList(mustURL(t, testListURL), testNotice, []byte(page))
			if err != nil || len(got.Rows) != 0 {
				t.Errorf("got %+v, %v; want no rows and no error", got, err)
			}
		})
	}
}

func TestParseListWithoutRowsFails(t *testing.T) {
	pages := map[string][]byte{
		"a page whose rows changed shape": readTestdata(t, "list_broken.html"),
		"an empty response":               nil,
		"a page of something else":        []byte(`<html><body><h1>Service temporarily unavailable</h1><p>Please try later.</p></body></html>`),
	}
	for name, page := range pages {
		t.Run(name, func(t *testing.T) {
			_, err := ParseList(mustURL(t, testListURL), testPress, page)
			if !errors.Is(err, ErrNoRows) {
				t.Fatalf("error = %v, want ErrNoRows", err)
			}
			var nre *NoRowsError
			if !errors.As(err, &nre) || nre.Board != "press" {
				t.Errorf("error %v is not a *NoRowsError for press", err)
			}
			for _, part := range []string{"press", "fn_detail", "view.do"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestParseListRefusesDeepNesting(t *testing.T) {
	page := strings.Repeat("<div>", 600) + `<a onclick="fn_detail(1)">x</a>`
	_, err := ParseList(mustURL(t, testListURL), testPress, []byte(page))
	if !errors.Is(err, ErrUnparseable) {
		t.Errorf("error = %v, want ErrUnparseable", err)
	}
}

func FuzzParseList(f *testing.F) {
	for _, name := range []string{"list_press.html", "list_photo.html", "list_plain.html", "list_empty.html", "list_broken.html", "list_truncated.html",
		"list_eng2026.html", "list_eng2026_gallery.html", "list_ko.html", "list_ko_empty.html", "list_mixed.html"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`<a onclick="fn_detail(1)"><span id="td_NTT_SJ_0"></span></a><script>if ('a' == 'a') { $('#td_NTT_SJ_0').html(unescape('%uD83D')); }</script>`))
	base := mustURL(f, testListURL)
	f.Fuzz(func(t *testing.T, page []byte) {
		for _, b := range []feeds.Board{testPress, testPhoto} {
			lp, err := ParseList(base, b, page)
			if err != nil && !errors.Is(err, ErrNoRows) && !errors.Is(err, ErrUnparseable) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			for _, r := range lp.Rows {
				if r.ID <= 0 {
					t.Fatalf("row with id %d", r.ID)
				}
				if !utf8.ValidString(r.Title) || !utf8.ValidString(r.Department) || !utf8.ValidString(r.Thumbnail) {
					t.Fatalf("invalid UTF-8 in row %+v", r)
				}
				if !r.Published.IsZero() && r.Published.Location() != feeds.KST {
					t.Fatalf("date %v not in KST", r.Published)
				}
			}
		}
	})
}

func BenchmarkParseList(b *testing.B) {
	page := readTestdata(b, "list_press.html")
	base := mustURL(b, testListURL)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseList(base, testPress, page); err != nil {
			b.Fatal(err)
		}
	}
}

// The two shapes seen on the live site in 2026 (msit-site.md), as the
// smallest pages that show them.
func TestParseListLiveShapes(t *testing.T) {
	tests := []struct {
		name  string
		page  string
		board feeds.Board
		want  []feeds.ListRow
	}{
		{
			name:  "English rows whose only link is inside the title statement's string",
			board: testPress,
			page: `<html><body><table><tbody>
<tr><td id="td_NO_0"></td><td id="td_NTT_SJ_0"></td><td id="td_CHRG_DEPT_NM_0"></td><td id="td_REG_DT_0"></td></tr>
<script>
$('#td_'+'NTT_SJ'+'_0').html('<a href="javascript:;" onclick="fn_detail("1290")" title="Korea &amp; UK Hold"><span>Korea &amp; UK Hold the 2nd Dialogue</span></a>');
$('#td_'+'CHRG_DEPT_NM'+'_0').html('International Cooperation Division');
//if('REG_DT' == 'REG_DT'){ $('#td_'+'REG_DT'+'_0').html('Oct 1, 2025') }
if('REG_DT' == 'REG_DT'){ $('#td_'+'REG_DT'+'_0').html('Nov 5, 2025') }
</script>
<tr><td id="td_NO_1"></td><td id="td_NTT_SJ_1"></td><td id="td_CHRG_DEPT_NM_1"></td><td id="td_REG_DT_1"></td></tr>
<script>
$('#td_'+'NTT_SJ'+'_1').html('<a href="javascript:;" onclick="fn_detail(\'1289\')" title="It&#39;s"><span>MSIT\'s plan for Nov 2025</span></a>');
$('#td_'+'CHRG_DEPT_NM'+'_1').html('AI Policy Division');
if('REG_DT' == 'PSTG_YMD'){ $('#td_'+'REG_DT'+'_1').html('Jan 1, 2020') }
if('REG_DT' == 'REG_DT'){ $('#td_'+'REG_DT'+'_1').html('Nov 4, 2025') }
</script>
</tbody></table></body></html>`,
			want: []feeds.ListRow{
				{ID: 1290, Title: "Korea & UK Hold the 2nd Dialogue", Published: kst(2025, 11, 5), Department: "International Cooperation Division"},
				{ID: 1289, Title: "MSIT's plan for Nov 2025", Published: kst(2025, 11, 4), Department: "AI Policy Division"},
			},
		},
		{
			name:  "Korean static rows filled by one script after all rows",
			board: feeds.Board{Slug: "ko-press", MID: "307", MPID: "208", Lang: "ko", SCode: "user", Dir: "/bbs"},
			page: `<html><body><div class="board_list">
<div class="toggle thead"><a aria-hidden="true"><div class="num">번호</div><p class="title">제목</p><div class="date">등록일</div></a></div>
<div class="toggle"><a href="javascript:;" onclick="fn_detail(3186887);"><div class="num" id="td_NO_0"></div><p class="title" id="td_NTT_SJ_0"></p><div class="date" id="td_REG_DT_0"></div></a></div>
<div class="toggle"><a href="javascript:;" onclick="fn_detail('3186886');"><div class="num" id="td_NO_1"></div><p class="title" id="td_NTT_SJ_1"></p><div class="date" id="td_REG_DT_1"></div></a></div>
</div>
<script>
var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape('2026%uB144%uB3C4 %uC5F0%uAD6C'); sHtml+= newHtml;
$('#td_'+'NTT_SJ'+'_0').html(sHtml);
//$('#td_'+'REG_DT'+'_0').html('2026. 9. 30');
/* $('#td_'+'REG_DT'+'_0').html('2026. 9. 29'); */
$('#td_'+'REG_DT'+'_0').html('2026. 10. 1');
//$('#td_'+'REG_DT'+'_0').html('');
var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape('과학기술 &amp; 정보통신'); sHtml+= newHtml;
$('#td_'+'NTT_SJ'+'_1').html(sHtml);
$('#td_'+'REG_DT'+'_1').html('2026. 9. 30');
</script></body></html>`,
			want: []feeds.ListRow{
				{ID: 3186887, Title: "2026년도 연구", Published: kst(2026, 10, 1)},
				{ID: 3186886, Title: "과학기술 & 정보통신", Published: kst(2026, 9, 30)},
			},
		},
		{
			name:  "static and script-only rows merge in page order",
			board: testPress,
			page: `<html><body><table><tbody>
<tr><td><a href="javascript:;" onclick="fn_detail(10);">Ten</a></td><td>2025-01-10</td></tr>
<tr><td id="td_NTT_SJ_1"></td><td>2025-01-09</td></tr>
<tr><td><a href="/eng/bbs/view.do?sCode=eng&amp;mId=4&amp;mPid=2&amp;bbsSeqNo=42&amp;nttSeqNo=8">Eight</a></td><td>2025-01-08</td></tr>
<tr><td id="td_NTT_SJ_3"></td><td>2025-01-07</td></tr>
<tr><td><a href="javascript:;" onclick="fn_detail(10);">Ten again</a></td><td>2025-01-10</td></tr>
</tbody></table>
<script>$('#td_NTT_SJ_1').html('<a onclick="fn_detail("9")">Nine</a>');
$('#td_NTT_SJ_3').html('<a href="view.do?sCode=eng&amp;mId=4&amp;mPid=2&amp;nttSeqNo=7">Seven</a>');</script>
</body></html>`,
			want: []feeds.ListRow{
				{ID: 10, Title: "Ten", Published: kst(2025, 1, 10)},
				{ID: 9, Title: "Nine", Published: kst(2025, 1, 9)},
				{ID: 8, Title: "Eight", Published: kst(2025, 1, 8)},
				{ID: 7, Title: "Seven", Published: kst(2025, 1, 7)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList(mustURL(t, testListURL), tt.board, []byte(tt.page))
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			if !reflect.DeepEqual(got.Rows, tt.want) {
				t.Errorf("rows:\n got %+v\nwant %+v", got.Rows, tt.want)
			}
		})
	}
}
