package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/accesslog"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// accessLine is one access-log line read back.
type accessLine struct {
	Method, Path, Remote string
	Status               int
	Bytes                int64
	Duration             time.Duration
}

// parseAccessLines reads the lines of slog's text or JSON handler back,
// failing on any line that does not parse or lacks a key.
func parseAccessLines(t *testing.T, format accesslog.Format, out string) []accessLine {
	t.Helper()
	var lines []accessLine
	for _, raw := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if raw == "" {
			continue
		}
		kv := map[string]string{}
		if format == accesslog.JSON {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("line %q: %v", raw, err)
			}
			for k, v := range m {
				kv[k] = fmt.Sprint(v)
			}
		} else {
			rest := raw
			for rest != "" {
				k, v, ok := strings.Cut(rest, "=")
				if !ok {
					t.Fatalf("line %q: no key=value at %q", raw, rest)
				}
				if strings.HasPrefix(v, `"`) {
					q, err := strconv.QuotedPrefix(v)
					if err != nil {
						t.Fatalf("line %q: %s: %v", raw, k, err)
					}
					kv[k], _ = strconv.Unquote(q)
					rest = strings.TrimPrefix(v[len(q):], " ")
				} else {
					kv[k], rest, _ = strings.Cut(v, " ")
				}
			}
		}
		if kv["msg"] != "request" || kv["level"] != "INFO" {
			t.Fatalf("line %q: not a request line at INFO", raw)
		}
		if _, err := time.Parse(time.RFC3339Nano, kv["time"]); err != nil {
			t.Fatalf("line %q: time: %v", raw, err)
		}
		var l accessLine
		var err1, err2, err3 error
		l.Method, l.Path, l.Remote = kv["method"], kv["path"], kv["remote"]
		l.Status, err1 = strconv.Atoi(kv["status"])
		l.Bytes, err2 = strconv.ParseInt(kv["bytes"], 10, 64)
		if format == accesslog.JSON {
			var ns int64
			ns, err3 = strconv.ParseInt(kv["duration"], 10, 64)
			l.Duration = time.Duration(ns)
		} else {
			l.Duration, err3 = time.ParseDuration(kv["duration"])
		}
		if err1 != nil || err2 != nil || err3 != nil || l.Method == "" || l.Path == "" || l.Remote == "" || len(kv) != 9 {
			t.Fatalf("line %q read back as %v (%v %v %v)", raw, kv, err1, err2, err3)
		}
		lines = append(lines, l)
	}
	return lines
}

// With AccessLines, each request reaches the handler the mux would pick
// (feed URLs straight to the feed handler), a panic is a logged 500, and
// each gets one line saying what the client got, its path redacted.
func TestAccessLinesRoutingAndPanics(t *testing.T) {
	var logs, out syncBuffer
	var fed []string
	lines := accesslog.New(&out, accesslog.Options{Interval: time.Hour})
	t.Cleanup(func() { lines.Close() })
	e := newEnv(t, func(s *Server) {
		s.AccessLog = true
		s.AccessLines = lines
		s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		feedsHandler := s.Feeds
		s.Feeds = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fed = append(fed, r.Method+" "+r.URL.Path)
			if strings.HasPrefix(r.URL.Path, "/feeds/panic") {
				panic("boom")
			}
			feedsHandler.ServeHTTP(w, r)
		})
	})
	sub := e.addSub("reader@example.org", mailer.StatusActive)
	tok := e.sign(mailer.PurposeUnsubscribe, sub.UID)
	tests := []struct {
		method, path string
		wantFed      bool
		wantPath     string
	}{
		{"GET", "/feeds/press.rss", true, ""},
		{"HEAD", "/feeds/all.json", true, ""},
		{"GET", "/feeds/nope.atom", true, ""},
		{"GET", "/feeds/panic.rss", true, ""},
		{"GET", "/feeds/feed.xsl", true, ""}, // not a feed URL: through the mux to the feed handler's 404
		{"POST", "/feeds/press.rss", false, ""},
		{"GET", "/feeds/../healthz", false, ""},
		{"GET", "/feeds//press.rss", false, ""},
		{"GET", "/healthz", false, ""},
		{"GET", "/unsubscribe/" + tok, false, "/unsubscribe/…"},
		{"GET", "/no/such/page", false, ""},
	}
	type result struct {
		status int
		bytes  int
	}
	var got []result
	for _, tc := range tests {
		fed = nil
		r := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if (len(fed) > 0) != tc.wantFed {
			t.Errorf("%s %s: feed handler saw %v, want %v", tc.method, tc.path, fed, tc.wantFed)
		}
		got = append(got, result{w.Code, w.Body.Len()})
	}
	if err := lines.Flush(); err != nil {
		t.Fatal(err)
	}
	read := parseAccessLines(t, accesslog.Text, out.String())
	if len(read) != len(tests) {
		t.Fatalf("%d lines for %d requests:\n%s", len(read), len(tests), out.String())
	}
	for i, tc := range tests {
		want := accessLine{Method: tc.method, Path: tc.path, Remote: "192.0.2.1:1234", Status: got[i].status, Bytes: int64(got[i].bytes)}
		if tc.wantPath != "" {
			want.Path = tc.wantPath
		}
		l := read[i]
		l.Duration = 0
		if l != want {
			t.Errorf("%s %s: line %+v, want %+v", tc.method, tc.path, l, want)
		}
	}
	if read[3].Status != http.StatusInternalServerError || !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("the panic was not a logged 500: line %+v\n%s", read[3], logs.String())
	}
	if strings.Contains(out.String(), tok) {
		t.Errorf("an access line holds a token:\n%s", out.String())
	}
	if strings.Contains(logs.String(), "msg=request") {
		t.Errorf("request lines went to Logger too:\n%s", logs.String())
	}
}

// A burst of concurrent feed requests (200, 304, gzip) over HTTP gives one
// complete line per request in either format, each saying what its client
// got.
func TestAccessLinesConcurrentBurst(t *testing.T) {
	for _, format := range []accesslog.Format{accesslog.Text, accesslog.JSON} {
		var out syncBuffer
		lines := accesslog.New(&out, accesslog.Options{Format: format, Size: 2 << 10})
		e := newEnv(t, func(s *Server) {
			s.AccessLog = true
			s.AccessLines = lines
		})
		// No transparent gzip: a plain request gets the plain body.
		client := &http.Transport{DisableCompression: true}
		defer client.CloseIdleConnections()
		first, _ := http.NewRequest("GET", e.base+"/feeds/press.rss", nil)
		resp, err := client.RoundTrip(first)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		etag := resp.Header.Get("Etag")
		if resp.StatusCode != 200 || etag == "" {
			t.Fatalf("GET: %d, ETag %q", resp.StatusCode, etag)
		}
		const workers, each = 8, 30
		var mu sync.Mutex
		seen := map[int]int{http.StatusOK: 1}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					req, _ := http.NewRequest("GET", e.base+"/feeds/press.rss", nil)
					switch i % 3 {
					case 0:
						req.Header.Set("If-None-Match", etag)
					case 1:
						req.Header.Set("Accept-Encoding", "gzip")
					}
					resp, err := client.RoundTrip(req)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					seen[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := lines.Close(); err != nil {
			t.Fatal(err)
		}
		read := parseAccessLines(t, format, out.String())
		if len(read) != workers*each+1 {
			t.Fatalf("format %d: %d lines for %d requests", format, len(read), workers*each+1)
		}
		logged := map[int]int{}
		for _, l := range read {
			logged[l.Status]++
			if l.Path != "/feeds/press.rss" || l.Method != "GET" || !strings.HasPrefix(l.Remote, "127.0.0.1:") || l.Duration <= 0 {
				t.Fatalf("format %d: line %+v", format, l)
			}
			if l.Status == http.StatusNotModified && l.Bytes != 0 || l.Status == http.StatusOK && l.Bytes <= 0 {
				t.Fatalf("format %d: line %+v", format, l)
			}
		}
		if fmt.Sprint(logged) != fmt.Sprint(seen) {
			t.Fatalf("format %d: statuses logged %v, clients got %v", format, logged, seen)
		}
		if read[0].Bytes != int64(len(body)) {
			t.Fatalf("format %d: first line says %d bytes, the body had %d", format, read[0].Bytes, len(body))
		}
	}
}

// nopWriter is a ResponseWriter that allocates nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// The access log adds no allocation to a feed request: the writer that
// records the status is pooled and the line is appended to a reused buffer.
func TestAccessLinesAllocateNothing(t *testing.T) {
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	})
	lines := accesslog.New(io.Discard, accesslog.Options{Interval: time.Hour, Size: 4 << 10})
	defer lines.Close()
	allocs := map[bool]float64{}
	for _, on := range []bool{false, true} {
		s, err := New(Server{Feeds: feed, AccessLog: on, AccessLines: lines})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/feeds/press.rss", nil)
		w := &nopWriter{h: http.Header{}}
		allocs[on] = testing.AllocsPerRun(2000, func() { s.ServeHTTP(w, r) })
	}
	t.Logf("allocations per feed request: %v with the access log, %v without", allocs[true], allocs[false])
	if allocs[true] != allocs[false] {
		t.Errorf("a feed request allocates %v times with the access log, %v without", allocs[true], allocs[false])
	}
}

// benchServer is a Server over a database of the test posts with the feed
// cache and handler as serve wires them, for benchmarks.
func benchServer(b *testing.B, change func(*Server)) *Server {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	store := feeds.NewStore(d)
	for _, it := range testPosts {
		it.URL = fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=%d", it.ID)
		if _, err := store.Save(ctx, it, "list-hash"); err != nil {
			b.Fatal(err)
		}
	}
	cache, err := feeds.NewCache(ctx, store, feeds.Options{BaseURL: "http://127.0.0.1", SourceURL: "https://www.msit.go.kr"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close() })
	s := Server{Store: store, Feeds: feeds.NewHandler(cache), BaseURL: "http://127.0.0.1"}
	change(&s)
	srv, err := New(s)
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkFeed304 is the handler chain of a feed reader's poll answered
// 304, through ServeHTTP with the access log on (the default; lines to
// io.Discard) and off, against a bare handler setting the same four fields
// with Header.Set, as bench/cmd/baseline does, in the same run: rounds
// alternate the two, and the figures are msitfeed's ns/op, B/op and
// allocs/op, the bare handler's ns/op, and the median over the rounds of
// the bare handler's time per request over msitfeed's (of-bare: msitfeed's
// throughput as a fraction of the bare handler's). Both write to a
// ResponseWriter that does nothing, so this is what the code of each adds
// to net/http's cost of a request (about 12-25 µs on loopback), not a
// ratio of servers: bench/run measures those.
func BenchmarkFeed304(b *testing.B) {
	lines := accesslog.New(io.Discard, accesslog.Options{})
	defer lines.Close()
	for _, mode := range []string{"log-on", "log-off"} {
		b.Run(mode, func(b *testing.B) {
			srv := benchServer(b, func(s *Server) {
				s.AccessLog = mode == "log-on"
				s.AccessLines = lines
			})
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("GET", "/feeds/press.rss", nil))
			etag := w.Header().Get("Etag")
			if w.Code != http.StatusOK || etag == "" {
				b.Fatalf("GET: %d, ETag %q", w.Code, etag)
			}
			bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("Etag", etag)
				h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
				h.Set("Cache-Control", "public, max-age=300")
				h.Set("Vary", "Accept-Encoding")
				if r.Header.Get("If-None-Match") == etag {
					w.WriteHeader(http.StatusNotModified)
				}
			})
			r := httptest.NewRequest("GET", "/feeds/press.rss", nil)
			r.Header.Set("If-None-Match", etag)
			nw := &nopWriter{h: http.Header{}}
			run := func(h http.Handler, n int) (time.Duration, uint64, uint64) {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				for range n {
					clear(nw.h)
					h.ServeHTTP(nw, r)
				}
				d := time.Since(start)
				runtime.ReadMemStats(&after)
				return d, after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc
			}
			b.ReportAllocs() // overridden below with msitfeed's own
			const rounds = 8
			n := max(b.N/rounds, 1)
			var ours, theirs time.Duration
			var allocs, bytes uint64
			ratios := make([]float64, 0, rounds)
			for i := range rounds {
				var dm, db time.Duration
				var a, by uint64
				if i%2 == 0 {
					db, _, _ = run(bare, n)
					dm, a, by = run(srv, n)
				} else {
					dm, a, by = run(srv, n)
					db, _, _ = run(bare, n)
				}
				ours, theirs, allocs, bytes = ours+dm, theirs+db, allocs+a, bytes+by
				ratios = append(ratios, float64(db)/float64(dm))
			}
			slices.Sort(ratios)
			total := float64(n * rounds)
			b.ReportMetric(float64(ours.Nanoseconds())/total, "ns/op")
			b.ReportMetric(float64(bytes)/total, "B/op")
			b.ReportMetric(float64(allocs)/total, "allocs/op")
			b.ReportMetric(float64(theirs.Nanoseconds())/total, "bare-ns/op")
			b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "of-bare")
		})
	}
}
