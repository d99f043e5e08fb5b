package msit

import (
	"errors"
	"net/url"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCanonicalURL(t *testing.T) {
	tests := []struct {
		name, base string
		want       string
	}{
		{"from the site root", "https://www.msit.go.kr", "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"},
		{"only scheme and host of a page URL are used", "https://WWW.msit.go.kr:443/eng/bbs/list.do?x=1#top", "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"},
		{"a test server keeps its scheme and port", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanonicalURL(mustURL(t, tt.base), "4", "2", "42", 1284); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalize(t *testing.T) {
	const want = "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"
	tests := []struct {
		name, in string
		want     string
		wantErr  bool
	}{
		{"the canonical form is kept", want, want, false},
		{"jsessionid and list parameters are dropped", "https://www.msit.go.kr/eng/bbs/view.do;jsessionid=A1B2C3.node1?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284&pageIndex=3&searchOpt=ALL&searchTxt=", want, false},
		{"parameters in any order", "https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=1284&searchTxt=6G&bbsSeqNo=42&mPid=2&pageIndex=1&mId=4&sCode=eng", want, false},
		{"parameter names in other case", "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mid=4&mpid=2&bbsseqno=42&nttseqno=1284", want, false},
		{"missing sCode means eng", "https://www.msit.go.kr/eng/bbs/view.do?mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284#x", want, false},
		{"host case and default port", "HTTPS://WWW.MSIT.GO.KR:443/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=01284", want, false},
		{"a list link is refused", "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mId=4&mPid=2", "", true},
		{"a relative link is refused", "/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284", "", true},
		{"a non-numeric nttSeqNo is refused", "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=x", "", true},
		{"a missing bbsSeqNo is refused", "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&nttSeqNo=1284", "", true},
		{"garbage is refused", "://", "", true},
		{"a Korean post keeps its own path", "https://www.msit.go.kr/bbs/view.do;jsessionid=X1?sCode=user&mPid=208&mId=307&bbsSeqNo=94&nttSeqNo=3186887&pageIndex=2",
			"https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887", false},
		{"a Korean post without sCode is user", "https://www.msit.go.kr/bbs/view.do?mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887",
			"https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Canonicalize(%q) = %q, want an error", tt.in, got)
				}
				if tt.in != "://" && !errors.Is(err, ErrNotViewURL) {
					t.Errorf("error %v does not wrap ErrNotViewURL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonicalize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Canonicalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestListAndDownloadURL(t *testing.T) {
	base := mustURL(t, "https://www.msit.go.kr")
	press := feeds.Board{Slug: "press", MID: "4", MPID: "2"}
	tests := []struct{ got, want string }{
		{ListURL(base, press, 3), "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=3"},
		{ListURL(base, press, 0), "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1"},
		{DownloadURL(base, "54751", "3"), "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=54751&fileOrd=3&fileBtn=A"},
		{HomeURL(base), "https://www.msit.go.kr/eng/index.do"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestPostAndListURLFollowTheBoardsSite(t *testing.T) {
	base := mustURL(t, "https://www.msit.go.kr/eng/index.do")
	press := feeds.Board{Slug: "press", MID: "4", MPID: "2", BBSSeqNo: "42"}
	korean := feeds.Board{Slug: "bodo", Name: "보도자료", MID: "307", MPID: "208", BBSSeqNo: "94", SCode: "user", Dir: "/bbs", Lang: "ko", Configured: true}
	tests := []struct {
		name, got, want string
	}{
		{"an English post is CanonicalURL", PostURL(base, press, 1284), CanonicalURL(base, "4", "2", "42", 1284)},
		{"an English post", PostURL(base, press, 1284), "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284"},
		{"a Korean post", PostURL(base, korean, 3186887), "https://www.msit.go.kr/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887"},
		{"a Korean list page", ListURL(base, korean, 2), "https://www.msit.go.kr/bbs/list.do?sCode=user&mPid=208&mId=307&pageIndex=2"},
		{"an English list page", ListURL(base, press, 1), "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
	t.Run("the canonical Korean post URL is a fixed point of Canonicalize", func(t *testing.T) {
		u := PostURL(base, korean, 3186887)
		if got, err := Canonicalize(u); err != nil || got != u {
			t.Errorf("Canonicalize(%s) = %s, %v", u, got, err)
		}
	})
}
