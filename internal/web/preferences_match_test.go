package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/mailer"
)

// The preferences page shows and saves the keyword filter with the boards,
// over the real SQLite store; a pattern the matcher refuses is a form
// error that changes nothing.
func TestPreferences_KeywordFilter(t *testing.T) {
	e := newEnv(t, nil)
	s := e.addSub("reader@example.org", mailer.StatusActive, "press")
	if _, err := e.subs.SetMatch(context.Background(), s.UID, "AI|6G"); err != nil {
		t.Fatal(err)
	}
	path := "/preferences/" + e.sign(mailer.PurposePreferences, s.UID)

	code, _, body := e.get(path)
	if code != http.StatusOK || !strings.Contains(body, `name="match" value="AI|6G"`) || !strings.Contains(body, "(?i)") {
		t.Fatalf("GET: status %d, the page does not show the filter and its case rule:\n%s", code, body)
	}

	for _, tc := range []struct {
		name        string
		form        url.Values
		status      int
		says        string
		match, brds string // stored afterwards
	}{
		{"saving a filter stores it with the boards",
			url.Values{"board": {"press", "notice"}, "match": {" (?i)quantum|반도체 "}}, 200,
			`Your digest holds only their posts matching <code>(?i)quantum|반도체</code>`, "(?i)quantum|반도체", "notice,press"},
		{"a bad pattern is a form error and changes nothing",
			url.Values{"board": {"photo"}, "match": {"(AI"}}, 422,
			`The keyword filter cannot be used: missing closing ). Write a regular expression such as AI|6G`, "(?i)quantum|반도체", "notice,press"},
		{"a pattern over the length cap is refused",
			url.Values{"board": {"photo"}, "match": {strings.Repeat("x", 513)}}, 422,
			"longer than the 512 allowed", "(?i)quantum|반도체", "notice,press"},
		{"no board is still refused first",
			url.Values{"match": {"(AI"}}, 422, "Choose at least one board.", "(?i)quantum|반도체", "notice,press"},
		{"a form without the field keeps the filter",
			url.Values{"board": {"press"}}, 200, "Your boards are saved.", "(?i)quantum|반도체", "press"},
		{"markup in a filter is escaped on the page",
			url.Values{"board": {"press"}, "match": {`"><b>x</b>`}}, 200, `value="&#34;&gt;&lt;b&gt;x&lt;/b&gt;"`, `"><b>x</b>`, "press"},
		{"an empty filter clears it",
			url.Values{"board": {"press"}, "match": {""}}, 200, "Your boards are saved.</p>", "", "press"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("action", "save")
			code, _, body := e.post(path, tc.form)
			if code != tc.status || !strings.Contains(body, tc.says) {
				t.Errorf("status %d, want %d with %q:\n%s", code, tc.status, tc.says, body)
			}
			if tc.status == 422 && !strings.Contains(body, `value="`+tc.form.Get("match")+`"`) && len(tc.form.Get("match")) < 100 {
				t.Errorf("the refused form lost what was typed:\n%s", body)
			}
			sub := e.sub("reader@example.org")
			if sub.Match != tc.match || strings.Join(sub.Boards, ",") != tc.brds {
				t.Errorf("stored match %q boards %v, want %q and %s", sub.Match, sub.Boards, tc.match, tc.brds)
			}
		})
	}
}
