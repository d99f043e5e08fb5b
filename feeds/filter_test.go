package feeds_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// filterNow is the clock of the matcher tests.
var filterNow = time.Date(2025, 6, 10, 12, 0, 0, 0, feeds.KST)

// filterItems are four posts that each parameter tells apart: A has its
// keyword in the title, D only in the summary and in lower case, B has no
// summary (its description is its title) and no department (no author,
// no category).
func filterItems() []feeds.Item {
	return []feeds.Item{
		{Board: "press", ID: 1, Title: "AI strategy announced", Summary: "The ministry plans new measures.",
			Department: "AI Policy Division", Published: filterNow.Add(-2 * time.Hour)},
		{Board: "press", ID: 2, Title: "6G network trial", Summary: "",
			Department: "", Published: filterNow.Add(-3 * 24 * time.Hour)},
		{Board: "notice", ID: 3, Title: "Semiconductor export report", Summary: "Exports of chips rose.",
			Department: "Trade Division", Published: filterNow.Add(-10 * 24 * time.Hour)},
		{Board: "notice", ID: 4, Title: "Budget notice", Summary: "About ai funding.",
			Department: "Planning Office", Published: filterNow.Add(-1 * time.Hour)},
	}
}

// kept names the posts of filterItems that f keeps, A to D.
func kept(f *feeds.Filter, items []feeds.Item) string {
	var b strings.Builder
	for _, it := range f.Apply(items, filterNow, 0) {
		b.WriteByte(byte('A' + it.ID - 1))
	}
	return b.String()
}

func TestFilter_KeepsWhatEachParameterSelects(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
	}{
		{"no parameter keeps everything", "", "ABCD"},
		{"other parameters are not filters", "limit=2&utm_source=x", "ABCD"},
		{"an empty filter is no filter, as in RSSHub", "filter=&filterout=", "ABCD"},
		{"filter_case_sensitive alone changes nothing", "filter_case_sensitive=false", "ABCD"},

		{"filter matches the title, case-sensitively by default", "filter=AI", "A"},
		{"filter matches the description (summary)", "filter=chips", "C"},
		{"filter_case_sensitive=false ignores case", "filter=ai&filter_case_sensitive=false", "AD"},
		{"filter_case_sensitive=0 is false too", "filter=ai&filter_case_sensitive=0", "AD"},
		{"filter_case_sensitive=true is the default", "filter=ai&filter_case_sensitive=true", "D"},
		{"(?i) in a pattern ignores case without the flag", "filter=(?i)ai", "AD"},
		{"a pattern is a regular expression", "filter=^(AI|6G) ", "AB"},
		{"filter does not look at the department", "filter=Trade", ""},

		{"filter_title looks at the title only", "filter_title=chips|Semi", "C"},
		{"filter_description looks at the summary", "filter_description=funding", "D"},
		{"a post without a summary is described by its title", "filter_description=6G", "B"},
		{"filter_author is the department", "filter_author=Division", "AC"},
		{"an empty department matches what matches nothing", "filter_author=^$", "B"},
		{"filter_category is the department", "filter_category=Office", "D"},
		{"a post without a department has no category", "filter_category=.*", "ACD"},
		{"per-field filters must all match", "filter_title=report&filter_author=Trade", "C"},
		{"per-field filters must all match (none does)", "filter_title=report&filter_author=AI", ""},
		{"filter wins over per-field filters, as in RSSHub", "filter=AI&filter_title=6G", "A"},

		{"filterout drops a title match", "filterout=AI", "BCD"},
		{"filterout drops a summary match", "filterout=chips", "ABD"},
		{"filterout with filter_case_sensitive=false", "filterout=ai&filter_case_sensitive=false", "BC"},
		{"filterout_title drops by title", "filterout_title=6G", "ACD"},
		{"filterout_description drops by summary", "filterout_description=funding", "ABC"},
		{"filterout_title replaces filterout for the title", "filterout=AI&filterout_title=6G", "ACD"},
		{"filterout_author drops by department", "filterout_author=Division", "BD"},
		{"filterout_category keeps posts without a department", "filterout_category=.*", "B"},

		{"filter_time keeps posts published in the last N seconds", "filter_time=86400", "AD"},
		{"filter_time keeps a post exactly N seconds old", "filter_time=7200", "AD"},
		{"filter_time=3600", "filter_time=3600", "D"},
		{"filter_time over days", "filter_time=345600", "ABD"},

		{"include, then exclude", "filter=(?i)ai|semi&filterout_author=Trade", "AD"},
		{"include, exclude and time", "filter=ai|AI&filterout_category=Office&filter_time=86400", "A"},
		{"per-field include and exclude", "filter_author=Division&filterout_title=AI", "C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			f, err := feeds.ParseFilter(q)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.query, err)
			}
			if got := kept(f, filterItems()); got != tc.want {
				t.Errorf("%q keeps %q, want %q", tc.query, got, tc.want)
			}
		})
	}
}

func TestFilter_ApplyStopsAtTheLimit(t *testing.T) {
	f, err := feeds.ParseFilter(url.Values{"filter": {"(?i)ai|6G"}})
	if err != nil {
		t.Fatal(err)
	}
	items := filterItems()
	for limit, want := range map[int]int{0: 3, 1: 1, 2: 2, 3: 3, 10: 3} {
		if got := f.Apply(items, filterNow, limit); len(got) != want {
			t.Errorf("limit %d: %d posts, want %d", limit, len(got), want)
		}
	}
	if got := f.Apply(items, filterNow, 2); got[0].ID != 1 || got[1].ID != 2 {
		t.Errorf("limit 2 kept %d and %d, want the first two that match, in order", got[0].ID, got[1].ID)
	}
	if !slices.EqualFunc(items, filterItems(), func(a, b feeds.Item) bool { return a.ID == b.ID && a.Title == b.Title }) {
		t.Error("Apply changed its input")
	}
}

func TestFilter_RefusesWhatItCannotUse(t *testing.T) {
	long := strings.Repeat("a", feeds.MaxPatternBytes+1)
	for _, tc := range []struct {
		name, param, value, reason string
	}{
		{"an unclosed group", "filter", "(AI", "missing closing )"},
		{"a bad repetition", "filter_title", "a{2000}", "invalid repeat count"},
		{"a Perl look-ahead RE2 does not have", "filterout", "AI(?=x)", "invalid or unsupported Perl syntax"},
		{"a back-reference RE2 does not have", "filter_author", `(a)\1`, "invalid escape sequence"},
		{"a pattern over the length cap", "filter", long, "longer than the 512 allowed"},
		{"a pattern with a line break", "filter_description", "a\n(", "missing closing )"},
		{"a case flag that is not a boolean", "filter_case_sensitive", "maybe", "use true or false"},
		{"a time that is not a number", "filter_time", "1h", "whole number of seconds"},
		{"a time of zero", "filter_time", "0", "whole number of seconds"},
		{"a negative time", "filter_time", "-60", "whole number of seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feeds.ParseFilter(url.Values{tc.param: {tc.value}})
			var fe *feeds.FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FilterError", err)
			}
			msg := err.Error()
			if fe.Param != tc.param || !strings.Contains(msg, tc.reason) || !strings.HasPrefix(msg, "bad "+tc.param+" ") {
				t.Errorf("error %q, want one about %s saying %q", msg, tc.param, tc.reason)
			}
			if strings.ContainsAny(msg, "\r\n") || len(msg) > 200 {
				t.Errorf("error is not one short line: %q", msg)
			}
		})
	}
	t.Run("a pattern at the length cap is taken", func(t *testing.T) {
		if _, err := feeds.ParseFilter(url.Values{"filter": {long[1:]}}); err != nil {
			t.Error(err)
		}
	})
}

func TestFilter_QueryIsCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"filter_time=60&filter=AI|6G&filter_case_sensitive=FALSE&utm=x&limit=5",
			"filter=AI%7C6G&filter_case_sensitive=false&filter_time=60"},
		{"filterout_category=Office&filter_title=a+b&filter_case_sensitive=true",
			"filter_title=a+b&filterout_category=Office"},
		{"filter=%EC%9D%B8%EA%B3%B5%EC%A7%80%EB%8A%A5", "filter=%EC%9D%B8%EA%B3%B5%EC%A7%80%EB%8A%A5"},
	} {
		q, _ := url.ParseQuery(tc.in)
		f, err := feeds.ParseFilter(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Query(); got != tc.want {
			t.Errorf("%q: query %q, want %q", tc.in, got, tc.want)
		}
		again, _ := url.ParseQuery(f.Query())
		g, err := feeds.ParseFilter(again)
		if err != nil || g.Query() != f.Query() || kept(g, filterItems()) != kept(f, filterItems()) {
			t.Errorf("%q does not parse back to the same filter: %v", f.Query(), err)
		}
	}
}

// A subscriber's match is ?filter=: title or summary, case-sensitive
// unless the pattern says (?i).
func TestKeywordFilter_IsTheFeedsFilter(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"AI|6G", "AB"},
		{"(?i)ai", "AD"},
		{"chips", "C"},
		{"Division", ""},
	} {
		f, err := feeds.NewKeywordFilter(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := url.ParseQuery("filter=" + url.QueryEscape(tc.pattern))
		g, _ := feeds.ParseFilter(q)
		if got := kept(f, filterItems()); got != tc.want || got != kept(g, filterItems()) {
			t.Errorf("match %q keeps %q (?filter= keeps %q), want %q", tc.pattern, got, kept(g, filterItems()), tc.want)
		}
	}
	if f, err := feeds.NewKeywordFilter(""); f != nil || err != nil {
		t.Errorf("empty match: %v, %v; want no filter", f, err)
	}
	if _, err := feeds.NewKeywordFilter("(AI"); err == nil || !strings.Contains(err.Error(), "missing closing )") {
		t.Errorf("bad match: %v", err)
	}
}
