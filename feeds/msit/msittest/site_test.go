package msittest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit"
)

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestJSEscapeRoundTrips(t *testing.T) {
	for _, s := range []string{"plain", "R&amp;D <b>", "“K-Science” 과학기술", "lab 😀 x", "100% café"} {
		esc := jsEscape(s)
		if strings.ContainsAny(esc, " &<>“과😀") {
			t.Errorf("jsEscape(%q) = %q still holds characters escape() encodes", s, esc)
		}
		if got := msit.Unescape(esc); got != s {
			t.Errorf("Unescape(jsEscape(%q)) = %q", s, got)
		}
	}
	if got, want := jsEscape("😀"), "%uD83D%uDE00"; got != want {
		t.Errorf("jsEscape(😀) = %q, want %q", got, want)
	}
}

func TestSafeCut(t *testing.T) {
	s := "ab%uD83D%uDE00cd%20e"
	inside := map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 9: true, 10: true, 11: true, 12: true, 13: true, 17: true, 18: true}
	for n := 0; n <= len(s); n++ {
		cut := safeCut(s, n)
		if cut < n || inside[cut] {
			t.Errorf("safeCut(%d) = %d: before n or inside an escape", n, cut)
		}
	}
}

func TestSitePages(t *testing.T) {
	site := NewSite(SamplePosts())
	tests := []struct {
		name, target string
		status       int
		contains     []string
		kind         Kind
	}{
		{"robots.txt allows the crawl", "/robots.txt", 200, []string{"User-agent: *"}, KindRobots},
		{"the home page has the News & Notice menu", "/eng/index.do", 200, []string{"News &amp; Notice", "mId=3\">Notice<", "mId=6\">Science &amp; ICT Trends<"}, KindHome},
		{"a list page hydrates rows from scripts", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1", 200,
			[]string{"onclick=\"fn_detail(1284); return false;\"", "sHtml += unescape('MSIT%20Hosts", "//$('#td_'+'NTT_SJ'+'_0')", "if ('PSTG_YMD' == 'REG_DT')", "fn_paging(3)", "name=\"bbsSeqNo\" value=\"42\""}, KindList},
		{"the photo list has thumbnails", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=5", 200, []string{"<img src=\"/upload/photo/2024/thumb_5505.jpg\""}, KindList},
		{"a page past the end is an empty board page", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=9", 200, []string{"등록된 게시물이 없습니다"}, KindList},
		{"a post page, jsessionid ignored", "/eng/bbs/view.do;jsessionid=ABC?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284&pageIndex=1", 200,
			[]string{"<div class=\"view_head\">", "<h2>MSIT Hosts Korea-Latin America &amp; Caribbean Digital Forum</h2>", "<span class=\"date\">2024.11.28</span>", "fn_download('55284', '1', 'pdf')", "class=\"view_nav\""}, KindView},
		{"an attachment", "/ssm/file/fileDown.do?atchFileNo=55284&fileOrd=2&fileBtn=A", 200, []string{"보도자료 1284.hwp"}, KindDownload},
		{"an image", "/upload/photo/2024/thumb_5505.jpg", 200, []string{"GIF89a"}, KindImage},
		{"an unknown board", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=99", 404, nil, KindList},
		{"an unknown post", "/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&nttSeqNo=1", 404, nil, KindView},
		{"an unknown attachment", "/ssm/file/fileDown.do?atchFileNo=1&fileOrd=1", 404, nil, KindDownload},
		{"anything else", "/eng/other.do", 404, nil, KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := site.RequestsOf(tt.kind)
			status, body := get(t, site, tt.target)
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			for _, c := range tt.contains {
				if !strings.Contains(body, c) {
					t.Errorf("page lacks %q", c)
				}
			}
			if site.RequestsOf(tt.kind) != before+1 {
				t.Errorf("%s requests not counted", tt.kind)
			}
		})
	}
	if site.Requests() != int64(len(tests)) {
		t.Errorf("Requests() = %d, want %d", site.Requests(), len(tests))
	}
	site.ResetRequests()
	if site.Requests() != 0 || site.RequestsOf(KindList) != 0 {
		t.Error("ResetRequests did not reset")
	}
}

func TestSiteChanges(t *testing.T) {
	site := NewSite(nil)
	site.AddPost(Post{Board: "notice", ID: 1, Title: "Old", Date: "2024-01-01"})
	site.AddPost(Post{Board: "notice", ID: 2, Title: "New", Date: "2024-01-02"})
	site.AddPost(Post{Board: "notice", ID: 3, Title: "Same day, higher id", Date: "2024-01-02"})
	if got := ids(site.Posts("notice")); !reflect.DeepEqual(got, []int64{3, 2, 1}) {
		t.Errorf("order = %v, want newest first", got)
	}
	if !site.EditPost("notice", 1, "Edited", "") || site.EditPost("notice", 9, "x", "") {
		t.Error("EditPost found the wrong posts")
	}
	if p := site.Posts("notice")[2]; p.Title != "Edited" {
		t.Errorf("title after edit = %q", p.Title)
	}
	if !site.RemovePost("notice", 2) || len(site.Posts("notice")) != 2 {
		t.Error("RemovePost did not remove")
	}
	site.AddPost(Post{Board: "notice", ID: 3, Title: "Replaced", Date: "2024-01-02"})
	if ps := site.Posts("notice"); len(ps) != 2 || ps[0].Title != "Replaced" {
		t.Errorf("AddPost of an existing id: %+v", ps)
	}
}

func ids(ps []Post) []int64 {
	var out []int64
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestSiteFaultAndLatency(t *testing.T) {
	site := NewSite(SamplePosts(), WithFault(func(r *http.Request) (int, bool) {
		return http.StatusTooManyRequests, r.URL.Path == "/eng/index.do"
	}), WithLatency(time.Hour))
	srv := httptest.NewServer(site)
	defer srv.Close()
	// The latency gives way to a cancelled request.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/robots.txt", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("a one-hour latency answered in 50ms")
	}

	site = NewSite(SamplePosts(), WithFault(func(r *http.Request) (int, bool) {
		return http.StatusTooManyRequests, r.URL.Path == "/eng/index.do"
	}))
	if status, _ := get(t, site, "/eng/index.do"); status != http.StatusTooManyRequests {
		t.Errorf("faulted status %d", status)
	}
	if status, _ := get(t, site, "/robots.txt"); status != 200 {
		t.Errorf("unfaulted status %d", status)
	}
}

func TestSamplePosts(t *testing.T) {
	a, b := SamplePosts(), SamplePosts()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("SamplePosts is not deterministic")
	}
	per := map[string]int{}
	seen := map[string]bool{}
	var all strings.Builder
	for _, p := range a {
		per[p.Board]++
		key := p.Board + "/" + p.Date + "/" + p.Title
		if seen[key] {
			t.Errorf("duplicate post %s", key)
		}
		seen[key] = true
		if p.Date >= SampleToday().AddDate(0, 0, 1).Format("2006-01-02") {
			t.Errorf("post %d dated %s, after %s", p.ID, p.Date, SampleToday())
		}
		if strings.TrimSpace(p.Title) != p.Title || strings.Contains(p.Title, "  ") {
			t.Errorf("title %q has stray spaces", p.Title)
		}
		if p.Board == "press" && len(p.Attachments) != 2 {
			t.Errorf("press %d has %d attachments", p.ID, len(p.Attachments))
		}
		if p.Board == "photo" && p.Thumbnail == "" {
			t.Errorf("photo %d has no thumbnail", p.ID)
		}
		all.WriteString(p.Title)
	}
	for _, bd := range Boards() {
		if per[bd.Slug] != SamplePostsPerBoard {
			t.Errorf("%s has %d posts, want %d", bd.Slug, per[bd.Slug], SamplePostsPerBoard)
		}
	}
	for _, want := range []string{"“", "’", "과학", "😀", "&", "<"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no title holds %q", want)
		}
	}
}
