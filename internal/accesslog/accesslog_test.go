package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is what slog's own handler of format f prints for the request.
func slogLine(t testing.TB, f Format, end time.Time, method, path string, status int, n int64, d time.Duration, remote string) string {
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if f == JSON {
		h = slog.NewJSONHandler(&buf, nil)
	}
	r := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", method), slog.String("path", path), slog.Int("status", status),
		slog.Int64("bytes", n), slog.Duration("duration", d), slog.String("remote", remote))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// ourLine is what a Log of format f writes for the request.
func ourLine(f Format, end time.Time, method, path string, status int, n int64, d time.Duration, remote string) string {
	l := &Log{format: f, sec: math.MinInt64}
	return string(l.appendLine(nil, end, method, path, status, n, d, remote))
}

var (
	kst   = time.FixedZone("KST", 9*3600)
	minus = time.FixedZone("", -(3*3600 + 30*60))
)

var testTimes = []time.Time{
	time.Date(2026, 11, 26, 10, 39, 0, 0, kst),
	time.Date(2026, 11, 26, 10, 39, 0, 1, kst),
	time.Date(2026, 11, 26, 10, 39, 59, 999999999, kst),
	time.Date(2026, 11, 26, 10, 39, 1, 123000000, time.UTC),
	time.Date(2026, 11, 26, 10, 39, 1, 120000, minus),
	time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.Local),
	time.Date(1999, 12, 31, 23, 59, 59, 500, time.UTC),
}

var testDurations = []time.Duration{
	0, 1, 999, 1000, 1001, 1500, 999999, 1000000, 1234567, 999999999, time.Second, 1500 * time.Millisecond,
	61 * time.Second, time.Hour, 3*time.Hour + 2*time.Minute + time.Second + 1, 59*time.Minute + 59*time.Second,
	-1, -1500, -time.Hour - time.Nanosecond, math.MaxInt64, math.MinInt64,
}

var testStrings = []string{
	"", "GET", "/feeds/press.rss", "/unsubscribe/…", "/a b", "/a=b", `/"quoted"`, `/back\slash`,
	"/tab\t", "/nl\n", "/cr\r", "/nul\x00", "/esc\x1b", "/del\x7f", "/é", "/한국", "/nbsp\u00a0",
	"/ls\u2028", "/ps\u2029", "/bad\xff", "/bad\xc3", "/repl\ufffd", "/<script>&amp;", "127.0.0.1:54321",
	"[::1]:8080", "/zw\u200b", "/emoji😀", "{\"}",
}

// Every line is byte for byte what slog's text and JSON handlers print.
func TestLinesMatchSlog(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		for i, s := range testStrings {
			tm := testTimes[i%len(testTimes)]
			d := testDurations[i%len(testDurations)]
			for _, c := range []struct{ method, path, remote string }{{"GET", s, "127.0.0.1:1"}, {s, "/", "x"}, {"GET", "/", s}} {
				want := slogLine(t, f, tm, c.method, c.path, 200, int64(i), d, c.remote)
				if got := ourLine(f, tm, c.method, c.path, 200, int64(i), d, c.remote); got != want {
					t.Errorf("format %d, %q %q %q:\n got %s\nwant %s", f, c.method, c.path, c.remote, got, want)
				}
			}
		}
		for _, tm := range testTimes {
			for _, d := range testDurations {
				want := slogLine(t, f, tm, "HEAD", "/feeds/all.json", 304, 0, d, "10.0.0.1:80")
				if got := ourLine(f, tm, "HEAD", "/feeds/all.json", 304, 0, d, "10.0.0.1:80"); got != want {
					t.Errorf("format %d, %v %v:\n got %s\nwant %s", f, tm, d, got, want)
				}
			}
		}
	}
}

// The per-second time cache follows the clock across seconds and zones.
func TestTimeCache(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		l := &Log{format: f, sec: math.MinInt64}
		base := time.Date(2026, 3, 8, 1, 59, 58, 0, time.UTC)
		for i := 0; i < 50; i++ {
			tm := base.Add(time.Duration(i) * 97 * time.Millisecond)
			if i%7 == 3 {
				tm = tm.In(kst)
			}
			want := slogLine(t, f, tm, "GET", "/", 200, 1, 1, "r")
			if got := string(l.appendLine(nil, tm, "GET", "/", 200, 1, 1, "r")); got != want {
				t.Fatalf("format %d, %v:\n got %s\nwant %s", f, tm, got, want)
			}
		}
	}
}

func FuzzLinesMatchSlog(f *testing.F) {
	for i, s := range testStrings {
		f.Add(s, int64(testTimes[i%len(testTimes)].UnixNano()), int64(testDurations[i%len(testDurations)]), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, s string, unixNano, d int64, json bool) {
		format := Text
		if json {
			format = JSON
		}
		tm := time.Unix(0, unixNano).In(kst)
		if y := tm.Year(); y < 0 || y >= 10000 {
			return // slog reports an error for those years
		}
		want := slogLine(t, format, tm, "GET", s, 200, 5, time.Duration(d), s)
		if got := ourLine(format, tm, "GET", s, 200, 5, time.Duration(d), s); got != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// lockedBuffer collects writes and tells who waits about each.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	wrote  chan struct{} // one value per write, if not full
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{wrote: make(chan struct{}, 1000)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writes
}

// parseText reads a line of slog's text handler back into its keys and
// values, unquoting quoted values.
func parseText(line string) (map[string]string, error) {
	m := map[string]string{}
	for line != "" {
		k, rest, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil, fmt.Errorf("no key=value at %q", line)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("key %s: %v", k, err)
			}
			if v, err = strconv.Unquote(q); err != nil {
				return nil, err
			}
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
			if rest == " " {
				rest = ""
			}
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %s twice", k)
		}
		m[k] = v
		if rest != "" {
			if rest[0] != ' ' {
				return nil, fmt.Errorf("no space after %s", k)
			}
			rest = rest[1:]
		}
		line = rest
	}
	return m, nil
}

// parseLine reads one line of either format into strings.
func parseLine(f Format, line string) (map[string]string, error) {
	if f == Text {
		return parseText(line)
	}
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for k, v := range raw {
		m[k] = fmt.Sprint(v)
	}
	return m, nil
}

// A burst of concurrent requests, with batches written both for a full
// buffer and at the flush interval, gives complete lines
// that parse back to what was logged, each once, in both formats.
func TestConcurrentBurstParsesBack(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		out := newLockedBuffer()
		l := New(out, Options{Format: f, Size: 4 << 10, Interval: 2 * time.Millisecond})
		const workers, each = 8, 500
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					path := fmt.Sprintf("/feeds/press.rss?w=%d&i=%d", w, i)
					if i%5 == 0 {
						path = fmt.Sprintf("/odd path \"%d\"\t%d é\n", w, i) // quoted and escaped
					}
					l.Request(time.Now(), "GET", path, 200+i%2*104, int64(i), time.Duration(i)*time.Microsecond, "127.0.0.1:4000")
				}
			}()
		}
		wg.Wait()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		if !strings.HasSuffix(text, "\n") {
			t.Fatalf("format %d: output does not end with a newline", f)
		}
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if len(lines) != workers*each {
			t.Fatalf("format %d: %d lines, want %d", f, len(lines), workers*each)
		}
		seen := map[string]bool{}
		for _, line := range lines {
			m, err := parseLine(f, line)
			if err != nil {
				t.Fatalf("format %d: line %q: %v", f, line, err)
			}
			for _, k := range []string{"time", "level", "msg", "method", "path", "status", "bytes", "duration", "remote"} {
				if _, ok := m[k]; !ok {
					t.Fatalf("format %d: line %q has no %s", f, line, k)
				}
			}
			if len(m) != 9 || m["msg"] != "request" || m["level"] != "INFO" || m["method"] != "GET" || m["remote"] != "127.0.0.1:4000" {
				t.Fatalf("format %d: line %q read back as %v", f, line, m)
			}
			if _, err := time.Parse(time.RFC3339Nano, m["time"]); err != nil {
				t.Fatalf("format %d: time of %q: %v", f, line, err)
			}
			if seen[m["path"]] {
				t.Fatalf("format %d: path %q logged twice", f, m["path"])
			}
			seen[m["path"]] = true
		}
		if out.Writes() < 2 {
			t.Errorf("format %d: %d writes for %d bytes of lines: the buffer bound was not applied", f, out.Writes(), len(text))
		}
	}
}

// A line is written within the flush interval (one second by default)
// without a full buffer or a shutdown, and not by the request itself.
func TestFlushedWithinInterval(t *testing.T) {
	out := newLockedBuffer()
	l := New(out, Options{})
	defer l.Close()
	start := time.Now()
	l.Request(start, "GET", "/feeds/press.rss", 304, 0, time.Millisecond, "127.0.0.1:1")
	if out.Writes() != 0 {
		t.Fatal("the request wrote its line itself")
	}
	select {
	case <-out.wrote:
		t.Logf("written after %v", time.Since(start))
	case <-time.After(DefaultInterval + time.Second):
		t.Fatalf("nothing written after %v (flush interval %v)", time.Since(start), DefaultInterval)
	}
	if !strings.Contains(out.String(), "path=/feeds/press.rss status=304") {
		t.Fatalf("written: %q", out.String())
	}
}

// gateWriter holds every write until the test lets it through, and says
// when one starts.
type gateWriter struct {
	entered chan int // the bytes of each write, as it starts
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan int, 100), release: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- len(p)
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gateWriter) lines() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Count(g.buf.String(), "\n")
}

// logUntil logs requests until at least n bytes of lines were logged and
// returns how many it logged.
func logUntil(l *Log, n int) int {
	line := len(ourLine(Text, time.Now(), "GET", "/feeds/press.rss", 200, 1234, time.Millisecond, "127.0.0.1:1"))
	count := 0
	for count*line < n {
		l.Request(time.Now(), "GET", "/feeds/press.rss", 200, 1234, time.Millisecond, "127.0.0.1:1")
		count++
	}
	return count
}

// When the buffer holds Size bytes, the flushing goroutine writes the
// batch at once, while the requests go on: none waits for the write.
func TestFullBufferWrittenOffTheRequest(t *testing.T) {
	out := newGateWriter()
	l := New(out, Options{Size: 1 << 10, Interval: time.Hour})
	n := logUntil(l, 1<<10) // returns although the write cannot finish
	select {
	case size := <-out.entered:
		if size < 1<<10 {
			t.Errorf("a write of %d bytes, want the full buffer (%d)", size, 1<<10)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a full buffer was not written (the flush interval is an hour)")
	}
	n += logUntil(l, 1<<10) // the other buffer takes the lines meanwhile
	close(out.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.lines(); got != n {
		t.Fatalf("%d lines written, want %d", got, n)
	}
}

// A writer that does not keep up (a stalled disk) makes the request that
// finds four times Size waiting write them itself, so it waits for the
// write in progress: memory stays bounded and no line is dropped.
func TestStalledWriterHoldsRequestsBack(t *testing.T) {
	const size = 1 << 10
	out := newGateWriter()
	l := New(out, Options{Size: size, Interval: time.Hour})
	n := logUntil(l, size)
	<-out.entered                // the goroutine's write, held
	n += logUntil(l, 4*size-200) // a line is about 110 bytes: below the limit
	l.mu.Lock()
	held := len(l.buf)
	l.mu.Unlock()
	if held >= 4*size {
		t.Fatalf("%d bytes held, the limit is %d", held, 4*size)
	}
	blocked := make(chan int)
	go func() { blocked <- logUntil(l, 300) }()
	select {
	case <-blocked:
		t.Fatal("past four times Size, a request returned while the write before was stalled")
	case <-time.After(100 * time.Millisecond):
	}
	close(out.release)
	n += <-blocked
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.lines(); got != n {
		t.Fatalf("%d lines written, want %d", got, n)
	}
}

// Close writes every line, stops the goroutine, and lines after it are
// written at once.
func TestCloseWritesEverything(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		out := newLockedBuffer()
		l := New(out, Options{Format: f, Interval: time.Hour, Size: 1 << 20})
		for i := 0; i < 1000; i++ {
			l.Request(time.Now(), "GET", "/healthz", 200, 3, time.Microsecond, "127.0.0.1:1")
		}
		if out.Writes() != 0 {
			t.Fatalf("format %d: written before Close", f)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.done:
		default:
			t.Fatal("the flushing goroutine still runs after Close")
		}
		if got := strings.Count(out.String(), "\n"); got != 1000 {
			t.Fatalf("format %d: %d lines after Close, want 1000", f, got)
		}
		l.Request(time.Now(), "GET", "/late", 200, 3, time.Microsecond, "127.0.0.1:1")
		if !strings.Contains(out.String(), "/late") {
			t.Fatalf("format %d: a line after Close was not written at once", f)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorReported(t *testing.T) {
	l := New(failingWriter{}, Options{Interval: time.Hour})
	l.Request(time.Now(), "GET", "/", 200, 0, 0, "x")
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close: %v, want the write error", err)
	}
}

// Appending a line allocates nothing, in either format, quoted values and
// batch writes included.
func TestRequestAllocatesNothing(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		l := New(io.Discard, Options{Format: f, Size: 4 << 10, Interval: time.Hour})
		now := time.Now()
		i := 0
		allocs := testing.AllocsPerRun(5000, func() {
			i++
			path := "/feeds/press.rss"
			if i%3 == 0 {
				path = "/odd path \"é\"\n"
			}
			l.Request(now.Add(time.Duration(i)*time.Millisecond), "GET", path, 304, 0, time.Duration(i)*time.Microsecond, "127.0.0.1:54321")
		})
		l.Close()
		if allocs != 0 {
			t.Errorf("format %d: %v allocations per request, want 0", f, allocs)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	for _, f := range []Format{Text, JSON} {
		b.Run([]string{"text", "json"}[f], func(b *testing.B) {
			l := New(io.Discard, Options{Format: f})
			defer l.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					now := time.Now()
					l.Request(now, "GET", "/feeds/press.rss", 304, 0, 12*time.Microsecond, "127.0.0.1:54321")
				}
			})
		})
	}
}

// Now follows the wall clock, and time.Since measures from it.
func TestNow(t *testing.T) {
	l := New(io.Discard, Options{Interval: 10 * time.Millisecond})
	defer l.Close()
	for i := 0; i < 5; i++ {
		before := time.Now()
		got := l.Now()
		after := time.Now()
		// The wall clock may be slewed a little between renewals of the base.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("Now() = %v, between %v and %v", got, before, after)
		}
		if d := time.Since(got); d < 0 || d > time.Second {
			t.Fatalf("time.Since(Now()) = %v", d)
		}
		time.Sleep(15 * time.Millisecond) // past a renewal of the base
	}
}

// BenchmarkAppendLine is the formatting of a feed request's line alone.
func BenchmarkAppendLine(b *testing.B) {
	for _, f := range []Format{Text, JSON} {
		b.Run([]string{"text", "json"}[f], func(b *testing.B) {
			l := &Log{format: f, sec: math.MinInt64}
			buf := make([]byte, 0, 512)
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				buf = l.appendLine(buf[:0], now.Add(time.Duration(i)*time.Microsecond), "GET", "/feeds/press.rss", 304, 0, 12345*time.Nanosecond, "127.0.0.1:54321")
			}
		})
	}
}
