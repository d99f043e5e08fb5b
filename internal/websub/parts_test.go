package websub

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
)

func TestTopicsParse(t *testing.T) {
	reg, err := feeds.NewRegistry(feeds.Board{Slug: "ko-press", Name: "Korean press", MID: "307", MPID: "208", Configured: true})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := newTopics("https://feeds.example.org/msit/", reg, 50)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, raw string
		want      Topic
		ok        bool
	}{
		{"a board's Atom feed", "https://feeds.example.org/msit/feeds/press.atom", Topic{Board: "press", Format: "atom"}, true},
		{"the all feed in JSON", "https://feeds.example.org/msit/feeds/all.json", Topic{Board: "all", Format: "json"}, true},
		{"a configured board", "https://feeds.example.org/msit/feeds/ko-press.rss", Topic{Board: "ko-press", Format: "rss"}, true},
		{"another spelling of the host and port", "https://FEEDS.example.org:443/msit/feeds/press.rss", Topic{Board: "press", Format: "rss"}, true},
		{"encoded unreserved characters", "https://feeds.example.org/msit/feeds/%70ress.rss", Topic{Board: "press", Format: "rss"}, true},
		{"a limit", "https://feeds.example.org/msit/feeds/press.rss?limit=10", Topic{Board: "press", Format: "rss", Limit: 10}, true},
		{"the default limit spelt out", "https://feeds.example.org/msit/feeds/press.rss?limit=50", Topic{Board: "press", Format: "rss"}, true},
		{"a limit past the maximum", "https://feeds.example.org/msit/feeds/press.rss?limit=501", Topic{}, false},
		{"another query", "https://feeds.example.org/msit/feeds/press.rss?x=1", Topic{}, false},
		{"an unknown board", "https://feeds.example.org/msit/feeds/sports.rss", Topic{}, false},
		{"an unknown format", "https://feeds.example.org/msit/feeds/press.xml", Topic{}, false},
		{"another scheme", "http://feeds.example.org/msit/feeds/press.rss", Topic{}, false},
		{"another host", "https://evil.example/msit/feeds/press.rss", Topic{}, false},
		{"outside the base path", "https://feeds.example.org/feeds/press.rss", Topic{}, false},
		{"a deeper path", "https://feeds.example.org/msit/feeds/x/press.rss", Topic{}, false},
		{"a fragment", "https://feeds.example.org/msit/feeds/press.rss#x", Topic{}, false},
		{"not a URL", "press.rss", Topic{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ts.Parse(tc.raw)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tc.raw, got, ok, tc.want, tc.ok)
			}
			if ok {
				if again, _ := ts.Parse(ts.URL(got)); again != got {
					t.Errorf("the canonical URL %q reads back as %+v", ts.URL(got), again)
				}
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	cases := map[string]bool{
		"93.184.216.34":        true,
		"2606:2800:220:1::248": true,
		"127.0.0.1":            false,
		"::1":                  false,
		"10.1.2.3":             false,
		"172.16.0.1":           false,
		"192.168.1.1":          false,
		"169.254.169.254":      false, // cloud metadata
		"fe80::1":              false,
		"fc00::1":              false,
		"0.0.0.0":              false,
		"::":                   false,
		"100.64.0.1":           false,
		"224.0.0.1":            false,
		"255.255.255.255":      false,
		"::ffff:127.0.0.1":     false, // IPv4-mapped loopback
		"64:ff9b::a00:1":       false, // NAT64 of 10.0.0.1
		"2002:c0a8:101::1":     false, // 6to4 of 192.168.1.1
		"64:ff9b::5db8:d822":   true,  // NAT64 of a public address
	}
	for s, want := range cases {
		if got := publicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestDecodeUnreserved(t *testing.T) {
	cases := map[string]string{
		"https://a.example/%7Euser/%41b%2Fc": "https://a.example/~user/Ab%2Fc",
		"https://a.example/x?q=%26%3D%2d":    "https://a.example/x?q=%26%3D-",
		"https://a.example/%":                "https://a.example/%",
		"https://a.example/%zz%4":            "https://a.example/%zz%4",
	}
	for in, want := range cases {
		if got := decodeUnreserved(in); got != want {
			t.Errorf("decodeUnreserved(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWithQueryKeepsTheCallbacksOwnParameters(t *testing.T) {
	q := url.Values{"hub.mode": {"subscribe"}}
	cases := map[string]string{
		"https://s.example/cb":                 "https://s.example/cb?hub.mode=subscribe",
		"https://s.example/cb?id=7":            "https://s.example/cb?id=7&hub.mode=subscribe",
		"https://s.example/cb?":                "https://s.example/cb?hub.mode=subscribe",
		"https://s.example/cb?hub.mode=mine&a": "https://s.example/cb?hub.mode=mine&a&hub.mode=subscribe",
	}
	for in, want := range cases {
		if got := withQuery(in, q); got != want {
			t.Errorf("withQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignature(t *testing.T) {
	// HMAC-SHA256 test case 2 of RFC 4231.
	got := Signature("Jefe", []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}
