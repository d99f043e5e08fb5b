package msit

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// testClient returns a fast client for srv: a high rate, millisecond
// backoff, no robots.txt unless asked.
func testClient(t *testing.T, srv *httptest.Server, opts Options) *Client {
	t.Helper()
	opts.BaseURL = srv.URL
	if opts.Rate == 0 {
		opts.Rate = 1000
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 5 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	opts.HTTPClient = srv.Client()
	return NewClient(opts)
}

// hits counts requests per path on a test server.
type hits struct {
	mu sync.Mutex
	m  map[string]int
}

func (h *hits) add(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]int{}
	}
	h.m[path]++
	return h.m[path]
}

func (h *hits) get(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[path]
}

func TestClientSendsUserAgent(t *testing.T) {
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			ua.Store(r.Header.Get("User-Agent"))
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := testClient(t, srv, Options{Version: "1.2.3", Contact: "https://example.org/msitfeed"})
	body, err := c.Get(context.Background(), "/page")
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "ok" {
		t.Errorf("body = %q", body)
	}
	if got, want := ua.Load(), "msitfeed/1.2.3 (+https://example.org/msitfeed)"; got != want {
		t.Errorf("User-Agent = %q, want %q", got, want)
	}
	if got := c.Requests(); got != 2 {
		t.Errorf("Requests() = %d, want 2 (robots.txt and the page)", got)
	}
}

func TestClientHonoursRobots(t *testing.T) {
	var h hits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add(r.URL.Path)
		if r.URL.Path == "/robots.txt" {
			w.Write([]byte("User-agent: *\nDisallow: /private\nCrawl-delay: 0.5\n"))
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := testClient(t, srv, Options{})
	ctx := context.Background()

	_, err := c.Get(ctx, srv.URL+"/private/page")
	var de *DisallowedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDisallowed) {
		t.Fatalf("error = %v, want a *DisallowedError", err)
	}
	if !strings.Contains(err.Error(), srv.URL+"/private/page") {
		t.Errorf("error %q does not name the URL", err)
	}
	if h.get("/private/page") != 0 {
		t.Error("the disallowed page was fetched")
	}
	if _, err := c.Get(ctx, srv.URL+"/public"); err != nil {
		t.Fatal(err)
	}
	if n := h.get("/robots.txt"); n != 1 {
		t.Errorf("robots.txt fetched %d times, want once", n)
	}
	if got := c.limiter.Limit(); got != rate.Limit(2) {
		t.Errorf("rate after Crawl-delay 0.5 = %v, want 2 (slower than 1000)", got)
	}
}

func TestClientRobotsStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantErr   error
		wantPages int
	}{
		{"a missing robots.txt allows everything", http.StatusNotFound, nil, 1},
		{"a forbidden robots.txt allows everything", http.StatusForbidden, nil, 1},
		{"a failing robots.txt stops the crawl", http.StatusServiceUnavailable, ErrRobotsUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hits
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.add(r.URL.Path)
				if r.URL.Path == "/robots.txt" {
					w.WriteHeader(tt.status)
					return
				}
				w.Write([]byte("ok"))
			}))
			defer srv.Close()
			c := testClient(t, srv, Options{Retries: 1})
			for range 2 {
				_, err := c.Get(context.Background(), "/page")
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			}
			if got := h.get("/page"); got != 2*tt.wantPages {
				t.Errorf("page fetched %d times, want %d", got, 2*tt.wantPages)
			}
			// A 5xx is retried once, then remembered: the second Get does
			// not ask again.
			wantRobots := 1
			if tt.status >= 500 {
				wantRobots = 2
			}
			if got := h.get("/robots.txt"); got != wantRobots {
				t.Errorf("robots.txt fetched %d times, want %d", got, wantRobots)
			}
		})
	}
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int // one per attempt; the last repeats
		retries    int
		wantErr    bool
		wantStatus int
		wantTries  int
	}{
		{"503 then 200 is retried", []int{503, 200}, 3, false, 0, 2},
		{"500 502 504 then 200", []int{500, 502, 504, 200}, 3, false, 0, 4},
		{"503 forever gives up after the retries", []int{503}, 2, true, 503, 3},
		{"404 is not retried", []int{404}, 3, true, 404, 1},
		{"403 is not retried", []int{403}, 3, true, 403, 1},
		{"no retries when negative", []int{503, 200}, -1, true, 503, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tries atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(tries.Add(1)) - 1
				st := tt.statuses[min(n, len(tt.statuses)-1)]
				w.WriteHeader(st)
				w.Write([]byte("body"))
			}))
			defer srv.Close()
			c := testClient(t, srv, Options{Retries: tt.retries, IgnoreRobots: true})
			body, err := c.Get(context.Background(), "/eng/bbs/list.do")
			if got := int(tries.Load()); got != tt.wantTries {
				t.Errorf("attempts = %d, want %d", got, tt.wantTries)
			}
			if got := c.Requests(); got != int64(tt.wantTries) {
				t.Errorf("Requests() = %d, want %d", got, tt.wantTries)
			}
			if !tt.wantErr {
				if err != nil || string(body) != "body" {
					t.Fatalf("got %q, %v", body, err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tt.wantStatus {
				t.Fatalf("error = %v, want status %d", err, tt.wantStatus)
			}
			if want := fmt.Sprintf("fetch %s/eng/bbs/list.do: status %d", srv.URL, tt.wantStatus); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestClientHonoursRetryAfter(t *testing.T) {
	t.Run("seconds", func(t *testing.T) {
		var tries atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tries.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		c := testClient(t, srv, Options{IgnoreRobots: true})
		start := time.Now()
		if _, err := c.Get(context.Background(), "/"); err != nil {
			t.Fatal(err)
		}
		// Backoff alone would wait at most 5ms.
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("retried after %v, want at least the 1s of Retry-After", d)
		}
	})
	t.Run("capped", func(t *testing.T) {
		var tries atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tries.Add(1) == 1 {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		c := testClient(t, srv, Options{IgnoreRobots: true, MaxRetryAfter: 20 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Get(ctx, "/"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		defer srv.Close()
		c := testClient(t, srv, Options{IgnoreRobots: true})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Get(ctx, "/")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want the context's deadline", err)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != time.Minute {
			t.Errorf("error %v should keep the 429 and its Retry-After", err)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 10, 30, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"Wed, 30 Oct 2024 12:00:30 GMT": 30 * time.Second,
		"Wed, 30 Oct 2024 11:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClientRetriesConnectionErrors(t *testing.T) {
	t.Run("a dropped connection", func(t *testing.T) {
		var tries atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tries.Add(1) == 1 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		c := testClient(t, srv, Options{IgnoreRobots: true})
		body, err := c.Get(context.Background(), "/")
		if err != nil || string(body) != "ok" {
			t.Fatalf("got %q, %v", body, err)
		}
		if tries.Load() != 2 {
			t.Errorf("attempts = %d, want 2", tries.Load())
		}
	})
	t.Run("a timeout", func(t *testing.T) {
		var tries atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tries.Add(1) == 1 {
				<-r.Context().Done() // hang until the client gives up
				return
			}
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		c := testClient(t, srv, Options{IgnoreRobots: true, Timeout: 100 * time.Millisecond})
		body, err := c.Get(context.Background(), "/")
		if err != nil || string(body) != "ok" {
			t.Fatalf("got %q, %v", body, err)
		}
	})
}

func TestClientCapsBodies(t *testing.T) {
	const limit = 1000
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	bomb := gz(make([]byte, 10<<20)) // 10 MiB of zeros in ~10 KiB
	small := gz([]byte("<html>compressed</html>"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/exact":
			w.Write(bytes.Repeat([]byte("a"), limit))
		case "/over":
			w.Write(bytes.Repeat([]byte("a"), limit+1))
		case "/chunked-over":
			for range 3 {
				w.Write(bytes.Repeat([]byte("a"), limit/2))
				w.(http.Flusher).Flush()
			}
		case "/bomb":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb)
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(small)
		}
	}))
	defer srv.Close()
	tests := []struct {
		path        string
		noTransport bool // a transport that does not decode gzip itself
		want        string
		tooLarge    bool
	}{
		{path: "/exact", want: strings.Repeat("a", limit)},
		{path: "/over", tooLarge: true},
		{path: "/chunked-over", tooLarge: true},
		{path: "/bomb", tooLarge: true},
		{path: "/bomb", noTransport: true, tooLarge: true},
		{path: "/gzip", want: "<html>compressed</html>"},
		{path: "/gzip", noTransport: true, want: "<html>compressed</html>"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := testClient(t, srv, Options{IgnoreRobots: true, MaxBytes: limit})
			if tt.noTransport {
				c = NewClient(Options{BaseURL: srv.URL, Rate: 1000, IgnoreRobots: true, MaxBytes: limit,
					HTTPClient: &http.Client{Transport: &http.Transport{DisableCompression: true}}})
			}
			body, err := c.Get(context.Background(), tt.path)
			if tt.tooLarge {
				var tle *TooLargeError
				if !errors.As(err, &tle) || !errors.Is(err, ErrTooLarge) {
					t.Fatalf("got %d bytes, error %v; want a *TooLargeError", len(body), err)
				}
				if c.Requests() != 1 {
					t.Errorf("Requests() = %d: a too large body must not be retried", c.Requests())
				}
				return
			}
			if err != nil || string(body) != tt.want {
				t.Fatalf("got %d bytes %.40q, %v", len(body), body, err)
			}
		})
	}
}

func TestClientRedirects(t *testing.T) {
	var other hits
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.add(r.URL.Path)
		w.Write([]byte("elsewhere"))
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/landing", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusMovedPermanently)
		case "/here":
			w.Write([]byte("here"))
		}
	}))
	defer srv.Close()
	c := testClient(t, srv, Options{IgnoreRobots: true})

	_, err := c.Get(context.Background(), "/away")
	if !errors.Is(err, ErrCrossHostRedirect) {
		t.Fatalf("error = %v, want ErrCrossHostRedirect", err)
	}
	if other.get("/landing") != 0 {
		t.Error("the other host was contacted")
	}
	if c.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1: a refused redirect is not retried", c.Requests())
	}

	body, err := c.Get(context.Background(), "/moved")
	if err != nil || string(body) != "here" {
		t.Fatalf("same-host redirect: got %q, %v", body, err)
	}
	if c.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3: redirects are requests too", c.Requests())
	}
}

func TestClientRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer srv.Close()

	c := NewClient(Options{})
	if c.limiter.Limit() != rate.Limit(DefaultRate) || c.limiter.Burst() != 1 {
		t.Errorf("default limiter = %v/s burst %d, want %v/s burst 1", c.limiter.Limit(), c.limiter.Burst(), DefaultRate)
	}

	// At 20 requests a second with a burst of 1, six requests (robots.txt
	// and five pages) need at least five intervals of 50ms, from several
	// goroutines as well as one.
	c = testClient(t, srv, Options{Rate: 20})
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), "/"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c.Requests() != 6 {
		t.Errorf("Requests() = %d, want 6", c.Requests())
	}
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Errorf("6 requests at 20/s took %v, want at least 250ms", d)
	}
}

func TestClientOnResponseSeesEveryBody(t *testing.T) {
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("User-agent: *\nDisallow: /private\n"))
		case "/page":
			w.Header().Set("X-Page", "yes")
			w.Write([]byte("<html>page</html>"))
		case "/moved":
			http.Redirect(w, r, "/page", http.StatusFound)
		case "/flaky":
			if flaky.Add(1) == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("recovered"))
		default:
			http.Error(w, "no such page", http.StatusNotFound)
		}
	}))
	defer srv.Close()

	type seen struct {
		url    string
		status int
		header string
		body   string
	}
	var mu sync.Mutex
	var got []seen
	c := testClient(t, srv, Options{Retries: 2, OnResponse: func(url string, status int, header http.Header, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, seen{url, status, header.Get("X-Page"), string(body)})
	}})
	for _, tt := range []struct {
		name    string
		path    string
		wantErr bool
		want    []seen // after the bodies of the steps before
	}{
		{"robots.txt and a page are both passed", "/page", false, []seen{
			{srv.URL + "/robots.txt", 200, "", "User-agent: *\nDisallow: /private\n"},
			{srv.URL + "/page", 200, "yes", "<html>page</html>"},
		}},
		{"a redirect passes the page it ends on", "/moved", false, []seen{
			{srv.URL + "/page", 200, "yes", "<html>page</html>"},
		}},
		{"an error status passes its body", "/gone", true, []seen{
			{srv.URL + "/gone", 404, "", "no such page\n"},
		}},
		{"a retried request passes every attempt", "/flaky", false, []seen{
			{srv.URL + "/flaky", 503, "", "busy\n"},
			{srv.URL + "/flaky", 200, "", "recovered"},
		}},
		{"a page robots.txt forbids is not fetched", "/private", true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			_, err := c.Get(context.Background(), tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Get(%s) error = %v, want error %v", tt.path, err, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("OnResponse saw\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}
