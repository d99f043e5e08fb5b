package msit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrDisallowed reports a URL that robots.txt forbids msitfeed to fetch.
var ErrDisallowed = errors.New("disallowed by robots.txt")

// ErrRobotsUnavailable reports a robots.txt that could not be read (a 5xx,
// 429 or connection failure after retries): nothing is fetched from the host
// until it can be.
var ErrRobotsUnavailable = errors.New("robots.txt unavailable")

// DisallowedError is the error for a URL robots.txt disallows; it is
// returned without fetching the URL.
type DisallowedError struct {
	URL string
}

// Error names the URL robots.txt disallows.
func (e *DisallowedError) Error() string { return fmt.Sprintf("fetch %s: %s", e.URL, ErrDisallowed) }

// Unwrap makes errors.Is(err, ErrDisallowed) true.
func (e *DisallowedError) Unwrap() error { return ErrDisallowed }

// robotsAgent is the product token msitfeed looks for in robots.txt.
const robotsAgent = "msitfeed"

// robotsMaxBytes caps robots.txt as RFC 9309 allows (at least 500 KiB read).
const robotsMaxBytes = 512 << 10

// robotsRule is one Allow or Disallow line.
type robotsRule struct {
	allow   bool
	pattern string // path pattern with * and a trailing $
}

// robotsRules are the rules of the group that applies to msitfeed.
type robotsRules struct {
	rules      []robotsRule
	crawlDelay time.Duration
}

// parseRobots reads robots.txt and keeps the rules of the groups naming
// agent, else of the groups for "*". Groups are one or more User-agent lines
// followed by their rules; several groups for the same agent merge.
func parseRobots(body []byte, agent string) *robotsRules {
	type group struct {
		agents []string
		rules  []robotsRule
		delay  time.Duration
	}
	var groups []*group
	var cur *group
	inAgents := false
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))))
	sc.Buffer(make([]byte, 0, 4096), robotsMaxBytes)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch key {
		case "user-agent":
			if !inAgents {
				cur = &group{}
				groups = append(groups, cur)
				inAgents = true
			}
			cur.agents = append(cur.agents, strings.ToLower(val))
		case "allow", "disallow":
			inAgents = false
			if cur == nil || val == "" {
				// An empty Disallow allows everything: no rule.
				continue
			}
			cur.rules = append(cur.rules, robotsRule{allow: key == "allow", pattern: val})
		case "crawl-delay":
			inAgents = false
			if cur == nil {
				continue
			}
			if s, err := strconv.ParseFloat(val, 64); err == nil && s > 0 && s < 3600 {
				cur.delay = time.Duration(s * float64(time.Second))
			}
		default:
			// Sitemap and unknown lines do not end the agent list of a
			// group; they belong to no group.
		}
	}
	var mine, star robotsRules
	found := false
	for _, g := range groups {
		for _, a := range g.agents {
			switch {
			case a == agent || strings.HasPrefix(a, agent+"/"):
				mine.rules = append(mine.rules, g.rules...)
				mine.crawlDelay = max(mine.crawlDelay, g.delay)
				found = true
			case a == "*":
				star.rules = append(star.rules, g.rules...)
				star.crawlDelay = max(star.crawlDelay, g.delay)
			}
		}
	}
	if found {
		return &mine
	}
	return &star
}

// allowed reports whether the path and query of u may be fetched: the
// longest matching pattern decides, Allow winning a tie; no match allows.
func (r *robotsRules) allowed(u *url.URL) bool {
	if r == nil {
		return true
	}
	target := u.EscapedPath()
	if target == "" {
		target = "/"
	}
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	if target == "/robots.txt" {
		return true
	}
	best, allow := -1, true
	for _, rule := range r.rules {
		if !robotsMatch(rule.pattern, target) {
			continue
		}
		n := len(rule.pattern)
		if n > best || (n == best && rule.allow) {
			best, allow = n, rule.allow
		}
	}
	return allow
}

// robotsMatch matches a robots.txt path pattern (a prefix, with * for any
// run of characters and a final $ anchoring the end) against a path.
func robotsMatch(pattern, target string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	parts := strings.Split(pattern, "*")
	// The first part is a prefix.
	if !strings.HasPrefix(target, parts[0]) {
		return false
	}
	pos := len(parts[0])
	if len(parts) == 1 {
		return !anchored || pos == len(target)
	}
	for i := 1; i < len(parts); i++ {
		p := parts[i]
		if i == len(parts)-1 && anchored {
			// The last part must end the target.
			return len(target)-len(p) >= pos && strings.HasSuffix(target, p)
		}
		j := strings.Index(target[pos:], p)
		if j < 0 {
			return false
		}
		pos += j + len(p)
	}
	return true
}

// robotsEntry caches one host's robots.txt, or the failure to read it.
type robotsEntry struct {
	rules   *robotsRules
	err     error
	expires time.Time
}

// robotsFor returns the rules for u's host, fetching robots.txt when it is
// not cached. A 4xx other than 429 means no rules (RFC 9309); a 5xx, 429 or
// connection failure (after the client's retries) is cached for a short
// while as ErrRobotsUnavailable, so a crawl fails fast instead of hammering
// a struggling host.
func (c *Client) robotsFor(ctx context.Context, u *url.URL) (*robotsRules, error) {
	key := strings.ToLower(u.Scheme + "://" + u.Host)
	c.robotsMu.Lock()
	defer c.robotsMu.Unlock()
	now := time.Now()
	if e, ok := c.robots[key]; ok && now.Before(e.expires) {
		return e.rules, e.err
	}
	robotsURL := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}
	body, err := c.fetch(ctx, robotsURL, robotsMaxBytes)
	e := robotsEntry{expires: now.Add(c.opts.RobotsTTL)}
	var se *StatusError
	switch {
	case err == nil:
		e.rules = parseRobots(body, robotsAgent)
	case errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests:
		e.rules = &robotsRules{}
	case ctx.Err() != nil:
		// The caller gave up: nothing learnt about the host.
		return nil, err
	default:
		e.err = fmt.Errorf("%w: %w", ErrRobotsUnavailable, err)
		e.expires = now.Add(c.opts.RobotsRetry)
		c.log.Warn("robots.txt unavailable", "url", robotsURL.String(), "err", err)
	}
	if e.rules != nil && e.rules.crawlDelay > 0 {
		c.slowDown(e.rules.crawlDelay)
	}
	c.robots[key] = e
	return e.rules, e.err
}
