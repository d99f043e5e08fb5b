package msit

import (
	"errors"
	"reflect"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
)

func TestDiscover(t *testing.T) {
	got, err := Discover(readTestdata(t, "home.html"), feeds.DefaultBoards())
	if err != nil {
		t.Fatal(err)
	}
	want := []feeds.Board{
		{Slug: "notice", Name: "Notice", MID: "3", MPID: "2"},
		{Slug: "press", Name: "Press Releases", MID: "4", MPID: "2", BBSSeqNo: "42"},
		{Slug: "photo", Name: "Photo News", MID: "5", MPID: "2", Gallery: true},
		{Slug: "trends", Name: "Science & ICT Trends", MID: "6", MPID: "2"},
		{Slug: "newsletter", Name: "Newsletter", MID: "7", MPID: "2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDiscoverKeepsResolvedBoards(t *testing.T) {
	in := []feeds.Board{{Slug: "notice", Name: "Notice", MID: "30", MPID: "20", BBSSeqNo: "410"}}
	got, err := Discover(readTestdata(t, "home.html"), in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("got %+v, want the configured ids %+v", got, in)
	}
	if &got[0] == &in[0] {
		t.Error("Discover returned the caller's slice; want a copy")
	}
}

func TestDiscoverReportsUnresolvedBoards(t *testing.T) {
	got, err := Discover(readTestdata(t, "home_partial.html"), feeds.DefaultBoards())
	if !errors.Is(err, ErrBoardNotFound) {
		t.Fatalf("error = %v, want ErrBoardNotFound", err)
	}
	// "News & Notice" (mId=99) is not "Notice"; the trends link does not go
	// to list.do.
	const want = `discover board notice: no menu link with text "Notice" to /eng/bbs/list.do on the home page
discover board photo: no menu link with text "Photo News" to /eng/bbs/list.do on the home page
discover board trends: no menu link with text "Science & ICT Trends" to /eng/bbs/list.do on the home page
discover board newsletter: no menu link with text "Newsletter" to /eng/bbs/list.do on the home page`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	if got[0].Resolved() || !got[1].Resolved() {
		t.Errorf("notice resolved %v (want false), press resolved %v (want true)", got[0].Resolved(), got[1].Resolved())
	}
}

func TestNormalizeMenuText(t *testing.T) {
	tests := map[string]string{
		"Science&ICT Trends":        "science & ict trends",
		"Science &amp; ICT  Trends": "science & ict trends",
		"\n  Newsletter\n":          "newsletter",
		"News & Notice":             "news & notice",
	}
	for in, want := range tests {
		if got := normalizeMenuText(in); got != want {
			t.Errorf("normalizeMenuText(%q) = %q, want %q", in, got, want)
		}
	}
}
