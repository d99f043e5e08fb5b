// Package msit is msitfeed's source for the English site of Korea's Ministry
// of Science and ICT: a polite HTTP client (robots.txt, rate limit, retries
// with backoff), board discovery from the home page, and the parsers of list
// and detail pages into feeds types. It knows nothing of storage, feeds or
// mail; see /work/shared/docs/msit-site.md for the markup it reads.
package msit

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	DefaultRate          = 1.0
	DefaultTimeout       = 30 * time.Second
	DefaultRetries       = 3
	DefaultMaxBytes      = 10 << 20
	DefaultBackoffBase   = time.Second
	DefaultBackoffMax    = time.Minute
	DefaultMaxRetryAfter = 5 * time.Minute
	DefaultRobotsTTL     = 24 * time.Hour
	DefaultRobotsRetry   = time.Minute
	DefaultContact       = "https://github.com/msitfeed/msitfeed"
)

// Options configure a Client. Zero values mean the defaults above.
type Options struct {
	BaseURL      string        // site root, for relative URLs given to Get
	Rate         float64       // requests per second, every request counted
	Contact      string        // URL or address put in the User-Agent
	Version      string        // msitfeed's version for the User-Agent ("dev")
	Timeout      time.Duration // per attempt, body included
	Retries      int           // retries after the first attempt; negative: none
	MaxBytes     int64         // largest body accepted, after decompression
	IgnoreRobots bool          // do not read or honour robots.txt
	HTTPClient   *http.Client  // transport to use; copied, never modified
	Logger       *slog.Logger

	// OnResponse, if set, is called with every response body the client
	// reads: robots.txt, pages, retried attempts and error statuses alike
	// (an error status's body is cut at 64 KiB), with the final URL after
	// redirects. A body refused as too large or cut by a read error is not
	// passed. It may be called from several goroutines at once and must
	// not keep body past the call.
	OnResponse func(url string, status int, header http.Header, body []byte)

	BackoffBase   time.Duration // first retry waits up to this (full jitter)
	BackoffMax    time.Duration // no backoff wait exceeds this
	MaxRetryAfter time.Duration // Retry-After values are capped at this
	RobotsTTL     time.Duration // how long robots.txt is trusted
	RobotsRetry   time.Duration // how long a failed robots.txt read is remembered
}

// Client fetches pages from the site politely: it identifies itself, honours
// robots.txt, spaces every request (robots.txt, retries and redirects
// included) with one rate limiter, retries 429, 5xx and connection failures
// with exponential backoff and full jitter (honouring Retry-After), caps body
// sizes, and refuses redirects to other hosts. It is safe for concurrent use.
type Client struct {
	opts      Options
	base      *url.URL
	http      *http.Client
	limiter   *rate.Limiter
	userAgent string
	log       *slog.Logger
	requests  atomic.Int64

	robotsMu sync.Mutex
	robots   map[string]robotsEntry
}

// NewClient returns a Client with opts, defaults filled in.
func NewClient(opts Options) *Client {
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.Contact == "" {
		opts.Contact = DefaultContact
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.RobotsTTL <= 0 {
		opts.RobotsTTL = DefaultRobotsTTL
	}
	if opts.RobotsRetry <= 0 {
		opts.RobotsRetry = DefaultRobotsRetry
	}
	c := &Client{
		opts:      opts,
		limiter:   rate.NewLimiter(rate.Limit(opts.Rate), 1),
		userAgent: fmt.Sprintf("msitfeed/%s (+%s)", opts.Version, opts.Contact),
		log:       opts.Logger,
		robots:    map[string]robotsEntry{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if u, err := url.Parse(opts.BaseURL); err == nil && u.Host != "" {
		c.base = u
	}
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &politeTransport{next: next, c: c}
	hc.CheckRedirect = sameHostRedirects(hc.CheckRedirect)
	hc.Timeout = 0 // the per-attempt context carries the timeout
	c.http = hc
	return c
}

// UserAgent returns the User-Agent header the client sends.
func (c *Client) UserAgent() string { return c.userAgent }

// Requests returns how many HTTP requests the client has sent, counting
// robots.txt, retries and redirects.
func (c *Client) Requests() int64 { return c.requests.Load() }

// politeTransport waits for the rate limiter and counts every request that
// goes out, whichever path (first try, retry, redirect) sent it.
type politeTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *politeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.c.limiter.Wait(req.Context()); err != nil {
		return nil, err
	}
	t.c.requests.Add(1)
	return t.next.RoundTrip(req)
}

// slowDown lowers the request rate to one per d if that is slower than the
// configured rate (robots.txt Crawl-delay).
func (c *Client) slowDown(d time.Duration) {
	if l := rate.Every(d); l < c.limiter.Limit() {
		c.limiter.SetLimit(l)
		c.log.Info("robots.txt crawl-delay lowers the request rate", "delay", d)
	}
}

// Errors of Get, to decide on with errors.Is and errors.As.
var (
	ErrTooLarge          = errors.New("body too large")
	ErrCrossHostRedirect = errors.New("redirect to another host refused")
)

// StatusError is a response with a status other than 2xx (after retries
// for 429 and 5xx).
type StatusError struct {
	URL        string
	Status     int
	RetryAfter time.Duration // from the Retry-After header, 0 if none
}

// Error reads "fetch URL: status N".
func (e *StatusError) Error() string { return fmt.Sprintf("fetch %s: status %d", e.URL, e.Status) }

// TooLargeError is a body larger than Options.MaxBytes (after
// decompression).
type TooLargeError struct {
	URL   string
	Limit int64
}

// Error names the URL and the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("fetch %s: %s: more than %d bytes", e.URL, ErrTooLarge, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// RedirectError is a redirect to another host, which the client refuses.
type RedirectError struct {
	From, To string
}

// Error names both ends of the refused redirect.
func (e *RedirectError) Error() string {
	return fmt.Sprintf("fetch %s: %s: %s", e.From, ErrCrossHostRedirect, e.To)
}

// Unwrap makes errors.Is(err, ErrCrossHostRedirect) true.
func (e *RedirectError) Unwrap() error { return ErrCrossHostRedirect }

func sameHostRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if !strings.EqualFold(req.URL.Host, first.Host) {
			return &RedirectError{From: first.String(), To: req.URL.String()}
		}
		if len(via) >= 10 {
			return fmt.Errorf("fetch %s: more than 10 redirects", first)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// Get fetches rawURL (absolute, or relative to Options.BaseURL) and returns
// its body, after checking robots.txt.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	if c.base != nil {
		u = c.base.ResolveReference(u)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fetch %s: not an absolute http(s) URL", rawURL)
	}
	if !c.opts.IgnoreRobots {
		rules, err := c.robotsFor(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", u, err)
		}
		if !rules.allowed(u) {
			return nil, &DisallowedError{URL: u.String()}
		}
	}
	return c.fetch(ctx, u, c.opts.MaxBytes)
}

// fetch GETs u with retries.
func (c *Client) fetch(ctx context.Context, u *url.URL, limit int64) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, retry, err := c.once(ctx, u, limit)
		if err == nil {
			return body, nil
		}
		if !retry || attempt >= c.opts.Retries || ctx.Err() != nil {
			return nil, err
		}
		wait := c.backoff(attempt)
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > 0 {
			wait = min(se.RetryAfter, c.opts.MaxRetryAfter)
		}
		c.log.Warn("fetch failed, retrying", "url", u.String(), "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff returns a wait drawn uniformly from [0, min(max, base·2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.opts.BackoffMax
	if attempt < 30 {
		ceiling = min(ceiling, c.opts.BackoffBase<<attempt)
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// once makes one attempt; retry says whether another may succeed.
func (c *Client) once(ctx context.Context, u *url.URL, limit int64) (body []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, fmt.Errorf("fetch %s: %w", u, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Language", "en,ko;q=0.5")
	// Accept-Encoding is left to net/http, which then asks for gzip and
	// decodes it transparently.
	resp, err := c.http.Do(req)
	if err != nil {
		var re *RedirectError
		if errors.As(err, &re) {
			return nil, false, re
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, isTemporary(err), fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		if c.opts.OnResponse != nil {
			errBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			c.opts.OnResponse(responseURL(resp, u), resp.StatusCode, resp.Header, errBody)
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		}
		se := &StatusError{URL: u.String(), Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
		return nil, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, se
	}
	if resp.ContentLength > limit {
		return nil, false, &TooLargeError{URL: u.String(), Limit: limit}
	}
	var r io.Reader = resp.Body
	if !resp.Uncompressed && strings.EqualFold(strings.TrimSpace(resp.Header.Get("Content-Encoding")), "gzip") {
		// A server that gzips without being asked (or a transport with
		// compression disabled): decode here, under the same cap.
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, false, fmt.Errorf("fetch %s: gzip: %w", u, err)
		}
		defer zr.Close()
		r = zr
	}
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, isTemporary(err), fmt.Errorf("fetch %s: read body: %w", u, err)
	}
	if int64(len(body)) > limit {
		return nil, false, &TooLargeError{URL: u.String(), Limit: limit}
	}
	c.log.Debug("fetched", "url", u.String(), "status", resp.StatusCode, "bytes", len(body))
	if c.opts.OnResponse != nil {
		c.opts.OnResponse(responseURL(resp, u), resp.StatusCode, resp.Header, body)
	}
	return body, false, nil
}

// responseURL is the URL that answered: the last of any redirects.
func responseURL(resp *http.Response, asked *url.URL) string {
	if resp.Request != nil && resp.Request.URL != nil {
		return resp.Request.URL.String()
	}
	return asked.String()
}

// isTemporary reports whether a transport error may go away: timeouts,
// refused or reset connections, an early EOF. A cancelled context is final.
func isTemporary(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
