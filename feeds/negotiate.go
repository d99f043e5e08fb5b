package feeds

import "strings"

// wantsPage reports whether a request for a feed comes from a browser tab,
// which gets the feed's HTML page rather than the document: a navigation
// ("Sec-Fetch-Dest: document"), or a client that says by the q-values of
// its Accept field that it prefers text/html to every feed and XML type
// (browsers without Fetch Metadata send text/html first for a navigation).
// "*/*" alone, no Accept at all, or a tie is a feed: feed readers, curl and
// libraries get what they have always got.
//
// It runs on every feed request, so it allocates nothing and looks at each
// byte of Accept at most a few times.
func wantsPage(dest, accept []string) bool {
	if len(dest) > 0 && dest[0] == "document" {
		return true
	}
	if len(accept) == 0 {
		return false
	}
	return prefersHTML(accept)
}

// The media types whose preference an Accept field is read for: text/html,
// and every type a feed of ours, or a reader asking for one, may name.
const (
	targetHTML     = iota // text/html
	targetTextXML         // text/xml
	targetRSS             // application/rss+xml
	targetAtom            // application/atom+xml
	targetFeedJSON        // application/feed+json
	targetAppXML          // application/xml
	targetJSON            // application/json
	numTargets
)

// Target sets of the wildcard ranges.
const (
	allTargets  = 1<<numTargets - 1
	textTargets = 1<<targetHTML | 1<<targetTextXML
	appTargets  = allTargets &^ textTargets
)

// prefersHTML reports whether the Accept field values give text/html a
// higher quality than any feed type. Each type takes the quality of the most
// specific media range that matches it (RFC 9110 section 12.5.1):
// type/subtype over type/* over */*; a type no range matches has quality 0.
func prefersHTML(values []string) bool {
	if !mayNameHTML(values) {
		return false // most feed readers: no range can match text/html
	}
	// Quality in thousandths and the specificity (1 */*, 2 type/*,
	// 3 type/subtype) of the range that set it, per target.
	var q, spec [numTargets]int
	for _, v := range values {
		for i := 0; i < len(v); {
			typ, sub, rq, next := scanRange(v, i)
			i = next
			if typ == "" || sub == "" || (typ == "*" && sub != "*") {
				continue // not a media range
			}
			targets, s := classify(typ, sub)
			if s == 3 && rq == 1000 && targets&^(1<<targetHTML) != 0 {
				// A feed type named with full quality: no range can
				// override it, nor rank text/html above it. Readers
				// name theirs first, so they stop here.
				return false
			}
			for t := 0; targets != 0; t, targets = t+1, targets>>1 {
				if targets&1 != 0 && s > spec[t] {
					q[t], spec[t] = rq, s
				}
			}
		}
	}
	html := q[targetHTML]
	if html == 0 {
		return false
	}
	for i, feed := range q {
		if i != targetHTML && feed >= html {
			return false
		}
	}
	return true
}

// mayNameHTML reports whether a range of values may match text/html: only
// text/html, text/* and */* do, and a field with no '*' and no 'h' in any
// case has none of them. It is a few vectorised byte searches, so a reader
// listing feed types only is answered without parsing.
func mayNameHTML(values []string) bool {
	for _, v := range values {
		if strings.IndexByte(v, '*') >= 0 || strings.IndexByte(v, 'h') >= 0 || strings.IndexByte(v, 'H') >= 0 {
			return true
		}
	}
	return false
}

// classify returns the targets a media range matches and its specificity.
// Lengths are compared before names, so most ranges cost no comparison of
// text at all.
func classify(typ, sub string) (targets uint, specificity int) {
	switch {
	case typ == "*":
		return allTargets, 1
	case len(typ) == 4 && equalLower(typ, "text"):
		switch {
		case sub == "*":
			return textTargets, 2
		case len(sub) == 4 && equalLower(sub, "html"):
			return 1 << targetHTML, 3
		case len(sub) == 3 && equalLower(sub, "xml"):
			return 1 << targetTextXML, 3
		}
	case len(typ) == 11 && equalLower(typ, "application"):
		switch {
		case sub == "*":
			return appTargets, 2
		case len(sub) == 7 && equalLower(sub, "rss+xml"):
			return 1 << targetRSS, 3
		case len(sub) == 8 && equalLower(sub, "atom+xml"):
			return 1 << targetAtom, 3
		case len(sub) == 9 && equalLower(sub, "feed+json"):
			return 1 << targetFeedJSON, 3
		case len(sub) == 3 && equalLower(sub, "xml"):
			return 1 << targetAppXML, 3
		case len(sub) == 4 && equalLower(sub, "json"):
			return 1 << targetJSON, 3
		}
	}
	return 0, 0
}

// scanRange reads the element of an Accept value that starts at v[i]: a
// media range's type and subtype (empty if it has none) and its q
// parameter in thousandths (1000 when absent), and returns where the next
// element starts. Quoted parameter values may hold ',' and ';'. It is one
// pass over the bytes with no function call per parameter: it runs for
// every feed request whose Accept has a wildcard.
func scanRange(v string, i int) (typ, sub string, q, next int) {
	start := i
	for i < len(v) && v[i] != ';' && v[i] != ',' {
		i++
	}
	typ, sub, _ = strings.Cut(trimOWS(v[start:i]), "/")
	q = 1000
	seenQ := false
	for i < len(v) && v[i] == ';' {
		i++
		nameStart := i
		for i < len(v) && v[i] != '=' && v[i] != ';' && v[i] != ',' {
			i++
		}
		if i == len(v) || v[i] != '=' {
			continue // a parameter without a value
		}
		name := trimOWS(v[nameStart:i])
		i++
		valueStart := i
		for i < len(v) && v[i] != ';' && v[i] != ',' {
			if v[i] == '"' {
				for i++; i < len(v) && v[i] != '"'; i++ {
					if v[i] == '\\' {
						i++
					}
				}
			}
			i++
		}
		// Parameters after q are accept extensions, not a second q.
		if !seenQ && len(name) == 1 && (name[0] == 'q' || name[0] == 'Q') {
			q, seenQ = parseQ(trimOWS(v[valueStart:min(i, len(v))])), true
		}
	}
	if i < len(v) {
		i++ // the comma
	}
	return typ, sub, q, i
}

// equalLower reports whether s is lower, a lower-case ASCII name, in any
// case. strings.EqualFold also folds Unicode, which media types never need.
func equalLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	if s == lower {
		return true // as clients write them
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// trimOWS trims the spaces and tabs HTTP allows around elements.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseQ reads a qvalue ("0", "0.8", "1.000") in thousandths. Anything
// else is 0, so a range with a broken q counts for nothing.
func parseQ(s string) int {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	n := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return n
	}
	if s[1] != '.' || len(s) > 5 {
		return 0
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n += int(c-'0') * scale
		scale /= 10
	}
	if n > 1000 {
		return 0
	}
	return n
}
