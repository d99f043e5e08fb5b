package msit

import (
	"testing"
)

func TestRobots(t *testing.T) {
	const robots = "\xef\xbb\xbf# MSIT\n" + `
User-agent: Googlebot
Disallow: /

User-agent: *
User-agent: OtherBot
Disallow: /ssm/
Allow: /ssm/file/fileDown.do
Disallow: /*.jsp$
Disallow: /eng/search
Crawl-delay: 2

Sitemap: https://www.msit.go.kr/sitemap.xml
`
	const ours = robots + `
User-agent: msitfeed
Disallow: /eng/bbs/view.do?*searchTxt=
Allow: /eng/private/public
Disallow: /eng/private
`
	tests := []struct {
		name, robots, path string
		want               bool
	}{
		{"no rule allows", robots, "/eng/bbs/list.do?mId=4", true},
		{"the * group disallows a prefix", robots, "/ssm/other.do", false},
		{"a longer Allow wins", robots, "/ssm/file/fileDown.do?atchFileNo=1&fileOrd=1", true},
		{"the $ anchor matches the end", robots, "/x/page.jsp", false},
		{"the $ anchor needs the end", robots, "/x/page.jsp?x=1", true},
		{"another bot's group does not apply", robots, "/eng/index.do", true},
		{"robots.txt itself is always allowed", "User-agent: *\nDisallow: /\n", "/robots.txt", true},
		{"disallow all", "User-agent: *\nDisallow: /\n", "/eng/index.do", false},
		{"an empty Disallow allows all", "User-agent: *\nDisallow:\n", "/eng/index.do", true},
		{"our own group replaces the * group", ours, "/ssm/other.do", true},
		{"our group's wildcard in the query", ours, "/eng/bbs/view.do?nttSeqNo=1&searchTxt=6G", false},
		{"our group's longest match", ours, "/eng/private/public/x", true},
		{"our group's shorter disallow", ours, "/eng/private/x", false},
		{"agent names are case-insensitive", "User-agent: MSITFEED\nDisallow: /a\n", "/a/b", false},
		{"an empty file allows all", "", "/a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := parseRobots([]byte(tt.robots), robotsAgent)
			if got := rules.allowed(mustURL(t, "https://www.msit.go.kr"+tt.path)); got != tt.want {
				t.Errorf("allowed(%s) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	if d := parseRobots([]byte(robots), robotsAgent).crawlDelay; d.Seconds() != 2 {
		t.Errorf("crawl delay = %v, want 2s", d)
	}
}

func TestRobotsMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/a", "/a/b", true},
		{"/a", "/b", false},
		{"/*.pdf", "/x/y.pdf", true},
		{"/*.pdf$", "/x/y.pdf?z", false},
		{"/a*b*c", "/a1b2c3", true},
		{"/a*b*c", "/a1c2b", false},
		{"/a$", "/a", true},
		{"/a$", "/ab", false},
		{"*", "/anything", true},
	}
	for _, tt := range tests {
		if got := robotsMatch(tt.pattern, tt.path); got != tt.want {
			t.Errorf("robotsMatch(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}
