package feeds

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Keyword filters: the query parameters RSSHub gives every feed, with the
// same meaning, so a URL written for RSSHub filters a msitfeed feed the
// same way. The feeds (Handler, the OPML list) and the mailer (a
// subscriber's match) share this one matcher.
//
// What each field of a post is:
//
//	title        the post's title
//	description  its summary (the description of RSS, summary of Atom and
//	             JSON Feed); the title when it has none
//	author       its department (dc:creator, author)
//	category     its department too: the one category the feeds carry;
//	             a post without a department has none
//
// Patterns are Go regular expressions (RE2 syntax: matching takes time
// linear in the text, whatever the pattern), at most MaxPatternBytes long,
// matched anywhere in the text.

// MaxPatternBytes is the longest pattern a filter takes.
const MaxPatternBytes = 512

// maxFilterTime bounds filter_time: ten years of seconds.
const maxFilterTime = 10 * 366 * 24 * 60 * 60

// The filter parameters, in the order of a canonical query.
const (
	paramFilter               = "filter"
	paramFilterTitle          = "filter_title"
	paramFilterDescription    = "filter_description"
	paramFilterAuthor         = "filter_author"
	paramFilterCategory       = "filter_category"
	paramFilterout            = "filterout"
	paramFilteroutTitle       = "filterout_title"
	paramFilteroutDescription = "filterout_description"
	paramFilteroutAuthor      = "filterout_author"
	paramFilteroutCategory    = "filterout_category"
	paramCaseSensitive        = "filter_case_sensitive"
	paramFilterTime           = "filter_time"
)

// patternParams are the parameters that carry a pattern, in canonical order.
var patternParams = [...]string{
	paramFilter, paramFilterTitle, paramFilterDescription, paramFilterAuthor, paramFilterCategory,
	paramFilterout, paramFilteroutTitle, paramFilteroutDescription, paramFilteroutAuthor, paramFilteroutCategory,
}

// Indexes into Filter.re, in the order of patternParams.
const (
	reFilter = iota
	reFilterTitle
	reFilterDescription
	reFilterAuthor
	reFilterCategory
	reFilterout
	reFilteroutTitle
	reFilteroutDescription
	reFilteroutAuthor
	reFilteroutCategory
	numPatterns
)

// Filter keeps the posts of a feed that its parameters select:
//
//   - filter: the title or the description matches. When it is given, the
//     per-field filter_title, filter_description, filter_author and
//     filter_category are ignored, as RSSHub ignores them.
//   - otherwise filter_title, filter_description, filter_author,
//     filter_category: every one given matches its field.
//   - filterout drops a post whose title or description matches; a
//     per-field filterout_title or filterout_description replaces it for
//     that field; filterout_author and filterout_category drop a post whose
//     department matches.
//   - filter_case_sensitive=false makes every pattern ignore case; it is
//     true by default (a pattern may still start with (?i)).
//   - filter_time=N keeps posts published in the last N seconds (by the
//     publication date the feed shows: the site gives days, so a post
//     counts from midnight KST of its day).
//
// An empty parameter is no parameter, as in RSSHub. A Filter is immutable
// and safe for concurrent use.
type Filter struct {
	re            [numPatterns]*regexp.Regexp
	caseSensitive bool
	window        time.Duration // filter_time; 0 for none
	query         string        // canonical query
}

// FilterError is a filter parameter that cannot be used: a pattern that is
// not a regular expression or too long, or a bad flag or time. Its message
// is one line.
type FilterError struct {
	Param  string // the query parameter, or "pattern" for NewKeywordFilter
	Value  string
	Reason string
}

func (e *FilterError) Error() string {
	v := e.Value
	if len(v) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	return fmt.Sprintf("bad %s %s: %s", e.Param, strconv.Quote(v), e.Reason)
}

// HasFilterParams reports whether q names a filter parameter with a value.
func HasFilterParams(q url.Values) bool {
	for _, p := range patternParams {
		if q.Get(p) != "" {
			return true
		}
	}
	return q.Get(paramFilterTime) != ""
}

// ParseFilter reads the filter parameters of q (limit is not one of them:
// the caller applies it after the filter). It returns nil and no error when
// q selects nothing (no pattern and no filter_time; filter_case_sensitive
// alone changes nothing), and a *FilterError for the first parameter that
// cannot be used. Parameters other than these are ignored.
func ParseFilter(q url.Values) (*Filter, error) {
	f := &Filter{caseSensitive: true}
	if v := q.Get(paramCaseSensitive); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, &FilterError{Param: paramCaseSensitive, Value: v, Reason: "use true or false"}
		}
		f.caseSensitive = b
	}
	active := false
	for i, p := range patternParams {
		v := q.Get(p)
		if v == "" {
			continue
		}
		re, err := compilePattern(p, v, f.caseSensitive)
		if err != nil {
			return nil, err
		}
		f.re[i], active = re, true
	}
	if v := q.Get(paramFilterTime); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > maxFilterTime {
			return nil, &FilterError{Param: paramFilterTime, Value: v,
				Reason: fmt.Sprintf("use a whole number of seconds from 1 to %d", maxFilterTime)}
		}
		f.window, active = time.Duration(n)*time.Second, true
	}
	if !active {
		return nil, nil
	}
	f.query = f.encode(q)
	return f, nil
}

// NewKeywordFilter returns the filter of ?filter=pattern: a post passes when
// its title or its description (summary) matches pattern, case-sensitively
// unless the pattern starts with (?i), as in a feed without
// filter_case_sensitive. It is the filter of a subscriber's match. An empty
// pattern gives nil: no filter.
func NewKeywordFilter(pattern string) (*Filter, error) {
	if pattern == "" {
		return nil, nil
	}
	re, err := compilePattern("pattern", pattern, true)
	if err != nil {
		return nil, err
	}
	f := &Filter{caseSensitive: true}
	f.re[reFilter] = re
	f.query = paramFilter + "=" + url.QueryEscape(pattern)
	return f, nil
}

// compilePattern compiles the value of param, ignoring case unless
// caseSensitive.
func compilePattern(param, v string, caseSensitive bool) (*regexp.Regexp, error) {
	if len(v) > MaxPatternBytes {
		return nil, &FilterError{Param: param, Value: v,
			Reason: fmt.Sprintf("the pattern is %d bytes, longer than the %d allowed", len(v), MaxPatternBytes)}
	}
	expr := v
	if !caseSensitive {
		expr = "(?i)" + v
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		reason := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			reason = string(se.Code)
			if se.Expr != "" && se.Expr != v && se.Expr != expr {
				reason += " at " + strconv.Quote(se.Expr)
			}
		}
		return nil, &FilterError{Param: param, Value: v, Reason: strings.ReplaceAll(reason, "\n", " ")}
	}
	return re, nil
}

// encode writes the canonical query of the parameters f was parsed from:
// the filter parameters with a value, in a fixed order, escaped;
// filter_case_sensitive only when false, filter_time as a plain number.
func (f *Filter) encode(q url.Values) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	for i, p := range patternParams {
		if f.re[i] != nil {
			add(p, q.Get(p))
		}
	}
	if !f.caseSensitive {
		add(paramCaseSensitive, "false")
	}
	if f.window > 0 {
		add(paramFilterTime, strconv.FormatInt(int64(f.window/time.Second), 10))
	}
	return b.String()
}

// Query is the filter as a canonical URL query (without "?" and without
// limit): the same filter always gives the same string, and parsing it
// gives the same filter. A nil Filter's is "".
func (f *Filter) Query() string {
	if f == nil {
		return ""
	}
	return f.query
}

// Window is filter_time: the age past which posts are dropped, or 0.
func (f *Filter) Window() time.Duration {
	if f == nil {
		return 0
	}
	return f.window
}

// Match reports whether the filter keeps it at time now (for
// filter_time). A nil Filter keeps every post.
func (f *Filter) Match(it Item, now time.Time) bool {
	if f == nil {
		return true
	}
	title := it.Title
	desc := it.Summary
	if desc == "" {
		desc = title
	}
	author := it.Department
	re := &f.re
	if r := re[reFilter]; r != nil {
		if !r.MatchString(title) && !r.MatchString(desc) {
			return false
		}
	} else {
		if r := re[reFilterTitle]; r != nil && !r.MatchString(title) {
			return false
		}
		if r := re[reFilterDescription]; r != nil && !r.MatchString(desc) {
			return false
		}
		if r := re[reFilterAuthor]; r != nil && !r.MatchString(author) {
			return false
		}
		if r := re[reFilterCategory]; r != nil && (author == "" || !r.MatchString(author)) {
			return false // the department is the only category; none matches nothing
		}
	}
	if r := firstRe(re[reFilteroutTitle], re[reFilterout]); r != nil && r.MatchString(title) {
		return false
	}
	if r := firstRe(re[reFilteroutDescription], re[reFilterout]); r != nil && r.MatchString(desc) {
		return false
	}
	if r := re[reFilteroutAuthor]; r != nil && r.MatchString(author) {
		return false
	}
	if r := re[reFilteroutCategory]; r != nil && author != "" && r.MatchString(author) {
		return false
	}
	if f.window > 0 {
		if pub := itemPublished(it); !pub.IsZero() && now.Sub(pub) > f.window {
			return false
		}
	}
	return true
}

func firstRe(a, b *regexp.Regexp) *regexp.Regexp {
	if a != nil {
		return a
	}
	return b
}

// Apply returns the items f keeps at now, in order, at most limit of them
// (all if limit < 1). It does not modify items.
func (f *Filter) Apply(items []Item, now time.Time, limit int) []Item {
	out := make([]Item, 0, min(len(items), max(limit, 0)))
	for _, it := range items {
		if limit > 0 && len(out) == limit {
			break
		}
		if f.Match(it, now) {
			out = append(out, it)
		}
	}
	return out
}

// expiry is when the document of kept (the items f kept at now) next
// changes by the clock alone: when the first of them grows older than
// filter_time. Zero when f has no filter_time or kept is empty: time
// passing then changes nothing, as no post can enter the window by it.
func (f *Filter) expiry(kept []Item) time.Time {
	if f == nil || f.window <= 0 {
		return time.Time{}
	}
	var first time.Time
	for _, it := range kept {
		pub := itemPublished(it)
		if pub.IsZero() {
			continue
		}
		if end := pub.Add(f.window); first.IsZero() || end.Before(first) {
			first = end
		}
	}
	return first
}
