package websub

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
)

// Topic is a feed a subscription can be to: /feeds/{board}.{format} of the
// registry (a board or all), with an optional ?limit=.
type Topic struct {
	Board  string
	Format feeds.Format
	Limit  int // 0: the default
}

// topics knows the topic URLs of one msitfeed: its public base URL, its
// boards and its default feed length.
type topics struct {
	base     *url.URL // base_url, parsed
	baseText string   // base_url without a trailing slash
	reg      *feeds.Registry
	limit    int // feeds.limit
}

func newTopics(baseURL string, reg *feeds.Registry, limit int) (topics, error) {
	base := strings.TrimRight(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil {
		return topics{}, err
	}
	if limit <= 0 {
		limit = 50
	}
	return topics{base: u, baseText: base, reg: reg, limit: limit}, nil
}

// URL is the canonical URL of t: the self link its feed carries.
func (ts topics) URL(t Topic) string {
	u := ts.baseText + "/feeds/" + t.Board + "." + string(t.Format)
	if t.Limit > 0 {
		u += "?limit=" + strconv.Itoa(t.Limit)
	}
	return u
}

// boardTopics returns the default-length topics of board: its three feeds.
func boardTopics(board string) []Topic {
	out := make([]Topic, 0, 3)
	for _, f := range feeds.Formats() {
		out = append(out, Topic{Board: board, Format: f})
	}
	return out
}

// Parse reads a hub.topic: one of this msitfeed's feed URLs, in any
// spelling that means the same URL (host case, a default port, encoded
// unreserved characters). It reports false for anything else.
func (ts topics) Parse(raw string) (Topic, bool) {
	if raw == "" || len(raw) > maxURLBytes {
		return Topic{}, false
	}
	u, err := url.Parse(decodeUnreserved(raw))
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return Topic{}, false
	}
	if !strings.EqualFold(u.Scheme, ts.base.Scheme) || canonicalHost(u) != canonicalHost(ts.base) {
		return Topic{}, false
	}
	prefix := strings.TrimRight(ts.base.Path, "/") + "/feeds/"
	file, ok := strings.CutPrefix(u.Path, prefix)
	if !ok || strings.Contains(file, "/") {
		return Topic{}, false
	}
	dot := strings.LastIndexByte(file, '.')
	if dot < 0 {
		return Topic{}, false
	}
	t := Topic{Board: file[:dot]}
	if t.Format, ok = feeds.ParseFormat(file[dot+1:]); !ok {
		return Topic{}, false
	}
	if t.Board != feeds.AllSlug && !ts.reg.Has(t.Board) {
		return Topic{}, false
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(q) != 1 || len(q["limit"]) != 1 {
			return Topic{}, false
		}
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > feeds.MaxLimit {
			return Topic{}, false
		}
		if n != ts.limit {
			t.Limit = n
		}
	}
	return t, true
}

// canonicalHost is u's host in lower case without its scheme's default
// port.
func canonicalHost(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || (port == "80" && strings.EqualFold(u.Scheme, "http")) || (port == "443" && strings.EqualFold(u.Scheme, "https")) {
		return host
	}
	return host + ":" + port
}
