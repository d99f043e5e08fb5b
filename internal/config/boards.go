package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Board is one [boards.<slug>] table. For a built-in board (notice, press,
// photo, trends, newsletter) only MID, MPID and BBSSeqNo may be set: they
// override the ids found on the site. Any other slug adds a board of the
// site: Name and ListURL are required, and its ids come from ListURL.
type Board struct {
	MID      string `toml:"mid"`
	MPID     string `toml:"mpid"`
	BBSSeqNo string `toml:"bbsseqno"` // for a configured board, wins over list_url's

	Name    string `toml:"name"`     // shown in feeds, pages and mails
	ListURL string `toml:"list_url"` // any list.do address of the board on the site
	Gallery bool   `toml:"gallery"`  // rows carry thumbnails
	Lang    string `toml:"lang"`     // the language of its posts; "en" by default
}

// builtinBoards are the slugs of the built-in boards with the ids the site
// is known to use (empty: found on the site). They mirror
// feeds.DefaultBoards, which this package may not import; a test keeps the
// two in step.
var builtinBoards = map[string][2]string{ // slug → mId, mPid
	"notice":     {},
	"press":      {"4", "2"},
	"photo":      {},
	"trends":     {},
	"newsletter": {},
}

// IsBuiltinBoard reports whether slug names one of the five built-in
// boards; any other [boards.<slug>] is a board added by configuration.
func IsBuiltinBoard(slug string) bool {
	_, ok := builtinBoards[slug]
	return ok
}

// boardSlug is what a configured board's slug may be: it becomes a path
// segment, a file name and a metrics label.
var boardSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// langTag is a simple BCP 47 tag: a language, then optionally a script and
// a region ("ko", "en-GB", "zh-Hant-TW").
var langTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?$`)

// listID is what a list.do query value may be.
var listID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// bbsDir is the directory of a list.do: "/eng/bbs", "/bbs" and the like.
var bbsDir = regexp.MustCompile(`^(/[A-Za-z0-9_-]+)*/bbs$`)

// ListAddress is what a configured board's list_url says.
type ListAddress struct {
	Dir      string // the path holding list.do and view.do: "/eng/bbs" or "/bbs"
	SCode    string // "eng" on the English site, "user" on the Korean one
	MID      string
	MPID     string
	BBSSeqNo string // empty unless the address carries it
}

// ParseListURL reads a board's list page address: absolute on the host of
// source (the source.url) or a path on it, like
// /eng/bbs/list.do?sCode=eng&mPid=2&mId=4 (English site) or
// /bbs/list.do?sCode=user&mPid=208&mId=307 (Korean site). Parameter names
// match in any case; mId and mPid are required; a missing sCode is eng
// under /eng/ and user elsewhere.
func ParseListURL(raw, source string) (ListAddress, error) {
	var a ListAddress
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return a, fmt.Errorf("%q is not a URL", raw)
	}
	if u.Host != "" || u.Scheme != "" {
		src, err := url.Parse(source)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || hostKey(u) != hostKey(src) {
			return a, fmt.Errorf("%q is not on the host of source.url (%s)", raw, source)
		}
	}
	p := u.Path
	if i := strings.IndexByte(p, ';'); i >= 0 { // ;jsessionid=...
		p = p[:i]
	}
	dir, ok := strings.CutSuffix(p, "/list.do")
	if !ok || !bbsDir.MatchString(dir) {
		return a, fmt.Errorf("%q is not a board's list.do address (like /bbs/list.do?sCode=user&mPid=208&mId=307)", raw)
	}
	q := u.Query()
	a = ListAddress{Dir: dir, SCode: param(q, "sCode"), MID: param(q, "mId"), MPID: param(q, "mPid"), BBSSeqNo: param(q, "bbsSeqNo")}
	if a.MID == "" || a.MPID == "" {
		return a, fmt.Errorf("%q lacks mId or mPid", raw)
	}
	if a.SCode == "" {
		a.SCode = "user"
		if strings.HasPrefix(dir, "/eng/") {
			a.SCode = "eng"
		}
	}
	for _, v := range []string{a.SCode, a.MID, a.MPID, a.BBSSeqNo} {
		if v != "" && !listID.MatchString(v) {
			return a, fmt.Errorf("%q has a parameter value %q that is not an id", raw, v)
		}
	}
	return a, nil
}

// hostKey is u's host in lower case without its scheme's default port.
func hostKey(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return host + ":" + port
	}
	return host
}

// param returns the first non-empty value of name, in any case.
func param(q url.Values, name string) string {
	if v := strings.TrimSpace(q.Get(name)); v != "" {
		return v
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same answer every time when names repeat in other cases
	for _, k := range keys {
		if strings.EqualFold(k, name) {
			for _, v := range q[k] {
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// validateBoards checks every [boards.<slug>] table in slug order.
func (c Config) validateBoards(bad func(key, format string, a ...any)) {
	type listKey struct{ sCode, mid, mpid string }
	taken := map[listKey]string{} // the list each board reads → its slug
	slugs := make([]string, 0, len(c.Boards))
	for slug := range c.Boards {
		slugs = append(slugs, slug)
	}
	slices.Sort(slugs)
	// The built-in boards' lists first: overridden ids, else the known ones.
	for _, slug := range []string{"notice", "press", "photo", "trends", "newsletter"} {
		mid, mpid := builtinBoards[slug][0], builtinBoards[slug][1]
		if o := c.Boards[slug]; o.MID != "" && o.MPID != "" {
			mid, mpid = o.MID, o.MPID
		}
		if mid != "" && mpid != "" {
			taken[listKey{"eng", mid, mpid}] = slug
		}
	}
	for _, slug := range slugs {
		b := c.Boards[slug]
		key := "boards." + slug
		if IsBuiltinBoard(slug) {
			switch {
			case b.ListURL != "":
				bad(key+".list_url", "%s is a built-in board, found on the site; to add another board give it a slug of its own", slug)
			case b.Name != "" || b.Gallery || b.Lang != "":
				bad(key, "only mid, mpid and bbsseqno can be set for the built-in board %s", slug)
			}
			continue
		}
		if slug == "all" || !boardSlug.MatchString(slug) {
			bad(key, "%q cannot name a board: use 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit, and not \"all\"", slug)
			continue
		}
		if strings.TrimSpace(b.Name) == "" {
			bad(key+".name", "required for a board added by configuration (or use notice, press, photo, trends or newsletter)")
		}
		if b.MID != "" || b.MPID != "" {
			bad(key+".mid", "a board added by configuration takes its mId and mPid from list_url; remove mid and mpid")
		}
		if b.Lang != "" && !langTag.MatchString(b.Lang) {
			bad(key+".lang", "%q is not a language tag like ko or en", b.Lang)
		}
		if b.BBSSeqNo != "" && !listID.MatchString(b.BBSSeqNo) {
			bad(key+".bbsseqno", "%q is not an id", b.BBSSeqNo)
		}
		if b.ListURL == "" {
			bad(key+".list_url", "required for a board added by configuration: the address of its list page on the site")
			continue
		}
		a, err := ParseListURL(b.ListURL, c.Source.URL)
		if err != nil {
			bad(key+".list_url", "%v", err)
			continue
		}
		lk := listKey{a.SCode, a.MID, a.MPID}
		if other, ok := taken[lk]; ok {
			bad(key+".list_url", "board %s already reads this list (sCode=%s, mId=%s, mPid=%s)", other, a.SCode, a.MID, a.MPID)
			continue
		}
		taken[lk] = slug
	}
}

// applyBoardEnv applies MSITFEED_BOARDS_<SLUG>_<FIELD> variables: MID, MPID
// and BBSSEQNO for a built-in board; NAME, LIST_URL, GALLERY, LANG and
// BBSSEQNO for a board added in the configuration file. A variable cannot
// add a board (nor name one whose slug holds a '-', which environment
// names cannot carry).
func applyBoardEnv(c *Config, env map[string]string) error {
	for k, v := range env {
		rest, ok := strings.CutPrefix(k, "MSITFEED_BOARDS_")
		if !ok {
			continue
		}
		slug, field := boardEnvKey(c, rest)
		if slug == "" {
			return fmt.Errorf("environment %s: unknown board (use notice, press, photo, trends, newsletter, or a board of the configuration file whose slug has no '-')", k)
		}
		b := c.Boards[slug]
		builtin := IsBuiltinBoard(slug)
		switch {
		case field == "BBSSEQNO":
			b.BBSSeqNo = v
		case builtin && field == "MID":
			b.MID = v
		case builtin && field == "MPID":
			b.MPID = v
		case !builtin && field == "NAME":
			b.Name = v
		case !builtin && field == "LIST_URL":
			b.ListURL = v
		case !builtin && field == "LANG":
			b.Lang = v
		case !builtin && field == "GALLERY":
			g, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("environment %s: %q is not true or false", k, v)
			}
			b.Gallery = g
		case builtin:
			return fmt.Errorf("environment %s: unknown key (use MID, MPID or BBSSEQNO)", k)
		default:
			return fmt.Errorf("environment %s: unknown key (use NAME, LIST_URL, GALLERY, LANG or BBSSEQNO)", k)
		}
		if c.Boards == nil {
			c.Boards = map[string]Board{}
		}
		c.Boards[slug] = b
	}
	return nil
}

// boardEnvKey splits the part of a variable name after MSITFEED_BOARDS_
// into a known slug and a field, trying the longest slug first (a slug may
// hold '_'). It returns "" for no known slug.
func boardEnvKey(c *Config, rest string) (slug, field string) {
	known := []string{"notice", "press", "photo", "trends", "newsletter"}
	for s := range c.Boards {
		if !IsBuiltinBoard(s) && !strings.Contains(s, "-") {
			known = append(known, s)
		}
	}
	slices.SortFunc(known, func(a, b string) int { return len(b) - len(a) })
	for _, s := range known {
		if f, ok := strings.CutPrefix(rest, strings.ToUpper(s)+"_"); ok && f != "" {
			return s, f
		}
	}
	return "", ""
}
