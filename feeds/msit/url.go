package msit

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
)

// Paths of the site's pages, relative to its root.
const (
	HomePath     = "/eng/index.do"
	ListPath     = "/eng/bbs/list.do"
	ViewPath     = "/eng/bbs/view.do"
	DownloadPath = "/ssm/file/fileDown.do"

	// The Korean site's posts, and the sCode of its boards.
	koreanViewPath = "/bbs/view.do"
	koreanSCode    = "user"
)

// ErrNotViewURL reports a link that is not a post's view.do address.
var ErrNotViewURL = errors.New("not a view.do link to a post")

// origin returns scheme://host of base, defaulting to https.
func origin(base *url.URL) string {
	scheme := "https"
	host := ""
	if base != nil {
		if base.Scheme != "" {
			scheme = strings.ToLower(base.Scheme)
		}
		host = strings.ToLower(base.Host)
	}
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return scheme + "://" + host
}

// CanonicalURL returns the address of a post that msitfeed publishes:
// https://host/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1284,
// with exactly these five parameters in this order. Only base's scheme and
// host are used.
func CanonicalURL(base *url.URL, mid, mpid, bbsSeqNo string, ntt int64) string {
	return canonical(origin(base), ViewPath, "eng", mid, mpid, bbsSeqNo, strconv.FormatInt(ntt, 10))
}

// PostURL returns the canonical address of post ntt of board, in the
// board's directory and sCode (English: /eng/bbs and eng, the defaults;
// Korean: /bbs and user):
// https://host/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=3186887.
// Only base's scheme and host are used.
func PostURL(base *url.URL, board feeds.Board, ntt int64) string {
	return canonical(origin(base), board.Directory()+"/view.do", board.Section(),
		board.MID, board.MPID, board.BBSSeqNo, strconv.FormatInt(ntt, 10))
}

// withBBSSeqNo returns b with its bbsSeqNo set to bbs.
func withBBSSeqNo(b feeds.Board, bbs string) feeds.Board {
	b.BBSSeqNo = bbs
	return b
}

func canonical(origin, path, sCode, mid, mpid, bbs, ntt string) string {
	return origin + path +
		"?sCode=" + url.QueryEscape(sCode) +
		"&mId=" + url.QueryEscape(mid) +
		"&mPid=" + url.QueryEscape(mpid) +
		"&bbsSeqNo=" + url.QueryEscape(bbs) +
		"&nttSeqNo=" + url.QueryEscape(ntt)
}

// Canonicalize turns any absolute view.do link found in the wild (with
// ";jsessionid=..." before the query, extra parameters such as pageIndex,
// searchOpt and searchTxt, in any order, any case of parameter name) into
// the canonical form of CanonicalURL. It fails with ErrNotViewURL when the
// link is not to view.do or lacks one of mId, mPid, bbsSeqNo or a numeric
// nttSeqNo. The link keeps its own path (/eng/bbs/view.do on the English
// site, /bbs/view.do on the Korean one); a missing sCode is eng, or user
// under /bbs/view.do.
func Canonicalize(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("canonicalize %q: %w", raw, err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("canonicalize %q: not an absolute http(s) URL: %w", raw, ErrNotViewURL)
	}
	path := stripPathParams(u.Path)
	if !strings.HasSuffix(path, "/view.do") {
		return "", fmt.Errorf("canonicalize %q: %w", raw, ErrNotViewURL)
	}
	q := u.Query()
	sCode := queryValue(q, "sCode")
	switch {
	case sCode != "":
	case path == koreanViewPath:
		sCode = koreanSCode
	default:
		sCode = "eng"
	}
	mid, mpid, bbs, ntt := queryValue(q, "mId"), queryValue(q, "mPid"), queryValue(q, "bbsSeqNo"), queryValue(q, "nttSeqNo")
	n, err := strconv.ParseInt(ntt, 10, 64)
	if err != nil || n <= 0 || mid == "" || mpid == "" || bbs == "" {
		return "", fmt.Errorf("canonicalize %q: want mId, mPid, bbsSeqNo and a numeric nttSeqNo: %w", raw, ErrNotViewURL)
	}
	return canonical(origin(u), path, sCode, mid, mpid, bbs, strconv.FormatInt(n, 10)), nil
}

// stripPathParams removes ";name=value" path parameters such as jsessionid
// from each segment of a path.
func stripPathParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

// queryValue returns the first non-empty value of name, matching the name
// without regard to case (the site writes mId, links in the wild mid).
func queryValue(q url.Values, name string) string {
	if v := strings.TrimSpace(q.Get(name)); v != "" {
		return v
	}
	for k, vs := range q {
		if strings.EqualFold(k, name) {
			for _, v := range vs {
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// ListURL returns the address of page (1-based; lower values mean 1) of a
// board's list, in the board's directory and sCode:
// https://host/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1 for the
// English site, https://host/bbs/list.do?sCode=user&mPid=208&mId=307&pageIndex=1
// for the Korean one.
func ListURL(base *url.URL, board feeds.Board, page int) string {
	if page < 1 {
		page = 1
	}
	return origin(base) + board.Directory() + "/list.do" +
		"?sCode=" + url.QueryEscape(board.Section()) +
		"&mPid=" + url.QueryEscape(board.MPID) +
		"&mId=" + url.QueryEscape(board.MID) +
		"&pageIndex=" + strconv.Itoa(page)
}

// DownloadURL returns the address of an attachment:
// https://host/ssm/file/fileDown.do?atchFileNo=54751&fileOrd=3&fileBtn=A.
func DownloadURL(base *url.URL, atchFileNo, fileOrd string) string {
	return origin(base) + DownloadPath +
		"?atchFileNo=" + url.QueryEscape(atchFileNo) +
		"&fileOrd=" + url.QueryEscape(fileOrd) +
		"&fileBtn=A"
}

// HomeURL returns the address of the English home page.
func HomeURL(base *url.URL) string { return origin(base) + HomePath }

// resolve makes ref absolute against base, returning "" for references that
// are not http(s) after resolution (javascript:, data:, mailto: and the like
// are not page links).
func resolve(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return ""
	}
	return u.String()
}
