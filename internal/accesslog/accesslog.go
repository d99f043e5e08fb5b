// Package accesslog writes one line per HTTP request in the format of
// log/slog's text or JSON handler, built without allocations into a reused
// buffer and written in batches, off the request path.
//
// A line is the record slog would print for
//
//	logger.Info("request", "method", m, "path", p, "status", code,
//		"bytes", n, "duration", d, "remote", addr)
//
// with a logger made by slog.NewTextHandler or slog.NewJSONHandler with no
// options: the same keys in the same order, the same quoting and escaping,
// the same time and duration forms. Log processors see one format whether a
// line came from here or from the program's other logs.
//
// Lines wait in memory until a background goroutine writes them: at least
// once per flush interval (a second by default), and as soon as the buffer
// holds Size bytes, when the request that filled it wakes the goroutine.
// Requests write only when the goroutine has fallen behind by four times
// Size (a stalled disk), so memory stays bounded and no line is ever
// dropped. Close writes what is left; a line logged after Close is written
// at once.
//
// Now is a clock for the lines that reads only the monotonic clock, which
// costs half of what time.Now does.
package accesslog

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format is the form of the lines.
type Format uint8

const (
	// Text is slog.TextHandler's key=value form.
	Text Format = iota
	// JSON is slog.JSONHandler's one object per line.
	JSON
)

// Defaults of Options.
const (
	DefaultInterval = time.Second
	DefaultSize     = 64 << 10
)

// Options tune a Log; zero fields take the defaults.
type Options struct {
	Format Format
	// Interval is the longest a line waits in memory before it is written.
	Interval time.Duration
	// Size is the bytes of lines held before they are written (a write of
	// about 450 lines at the default). The flushing goroutine writes them;
	// past four times Size, while it is still busy with the batch before,
	// the request adding a line writes them itself.
	Size int
}

// Log buffers access-log lines and writes them to an io.Writer. Its
// methods are safe for concurrent use.
type Log struct {
	out    io.Writer
	format Format
	size   int // bytes of lines that wake the flushing goroutine
	limit  int // bytes of lines that the request adding to them writes

	// base is a recent reading of time.Now, renewed at every flush
	// interval, from which Now counts with the monotonic clock alone.
	base atomic.Pointer[time.Time]

	mu     sync.Mutex // guards buf, closed and the time cache
	buf    []byte     // lines not yet written
	closed bool
	sec    int64          // the Unix second the time cache holds
	loc    *time.Location // and its location
	secFmt []byte         // that second as 2006-01-02T15:04:05
	zone   []byte         // its zone as Z07:00

	wmu   sync.Mutex // held while writing to out; guards spare and err
	spare []byte     // the other buffer, empty, swapped with buf on a write
	err   error      // the first write error

	kick chan struct{} // wakes the flushing goroutine for a full buffer
	stop chan struct{}
	done chan struct{}
}

// New returns a Log writing to out and starts its flushing goroutine; stop
// it with Close. Give out a writer that is safe for concurrent use if
// anything else writes to it (an *os.File is).
func New(out io.Writer, opts Options) *Log {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	l := &Log{
		out:    out,
		format: opts.Format,
		size:   opts.Size,
		limit:  4 * opts.Size,
		// Room for a full buffer and the lines that come while the
		// goroutine wakes, so neither buffer has to grow.
		buf:    make([]byte, 0, 2*opts.Size),
		spare:  make([]byte, 0, 2*opts.Size),
		sec:    -1 << 63,
		secFmt: make([]byte, 0, 32),
		zone:   make([]byte, 0, 8),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	now := time.Now()
	l.base.Store(&now)
	go l.run(opts.Interval)
	return l
}

// run writes the buffer every interval, and when a request finds it full,
// until Close.
func (l *Log) run(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			now := time.Now()
			l.base.Store(&now)
			l.Flush()
		case <-l.kick:
			l.Flush()
		case <-l.stop:
			return
		}
	}
}

// Now returns the current time for a line: a wall-clock reading taken at
// most a flush interval ago plus the monotonic time since, so it reads one
// clock where time.Now reads two (about 45 ns against 90 on a VM whose
// clock reads are slow). A step of the wall clock shows in it within the
// interval. It carries a monotonic reading: time.Since works on it.
func (l *Log) Now() time.Time {
	base := l.base.Load()
	return base.Add(time.Since(*base))
}

// Request logs one request that ended at end. path is logged as given:
// redact it first if it can hold a secret.
func (l *Log) Request(end time.Time, method, path string, status int, bytes int64, d time.Duration, remote string) {
	l.mu.Lock()
	l.buf = l.appendLine(l.buf, end, method, path, status, bytes, d, remote)
	n, closed := len(l.buf), l.closed
	l.mu.Unlock()
	switch {
	case n >= l.limit || closed:
		l.write(false)
	case n >= l.size:
		select {
		case l.kick <- struct{}{}:
		default: // already woken
		}
	}
}

// Flush writes every buffered line now and returns the first write error
// the Log has met.
func (l *Log) Flush() error {
	return l.write(true)
}

// write swaps the buffer out and writes it. Unless always, it writes only
// if the buffer is still past the limit (or the Log closed): the requests
// that found it so while another write was in progress find it emptied.
func (l *Log) write(always bool) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if !always && len(l.buf) < l.limit && !l.closed {
		l.mu.Unlock()
		return l.err
	}
	batch := l.buf
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if len(batch) > 0 {
		if _, err := l.out.Write(batch); err != nil && l.err == nil {
			l.err = err
		}
	}
	l.spare = batch[:0]
	return l.err
}

// Close stops the flushing goroutine and writes what is buffered; lines
// logged afterwards are written at once. It returns the first write error.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.Flush()
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return l.Flush()
}

// appendLine appends one line in l's format.
func (l *Log) appendLine(b []byte, t time.Time, method, path string, status int, n int64, d time.Duration, remote string) []byte {
	if l.format == JSON {
		b = append(b, `{"time":"`...)
		b = l.appendTime(b, t)
		b = append(b, `","level":"INFO","msg":"request","method":"`...)
		b = appendJSONString(b, method)
		b = append(b, `","path":"`...)
		b = appendJSONString(b, path)
		b = append(b, `","status":`...)
		b = appendStatus(b, status)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, `,"remote":"`...)
		b = appendJSONString(b, remote)
		return append(b, "\"}\n"...)
	}
	b = append(b, "time="...)
	b = l.appendTime(b, t)
	b = append(b, " level=INFO msg=request method="...)
	b = appendTextString(b, method)
	b = append(b, " path="...)
	b = appendTextString(b, path)
	b = append(b, " status="...)
	b = appendStatus(b, status)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, " duration="...)
	b = appendDuration(b, d)
	b = append(b, " remote="...)
	b = appendTextString(b, remote)
	return append(b, '\n')
}

// appendStatus appends an HTTP status code: three digits but for a code
// out of the range, which strconv writes.
func appendStatus(b []byte, code int) []byte {
	if code < 100 || code > 999 {
		return strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
}

// appendTime appends t as slog does: RFC 3339 with milliseconds in text,
// time.RFC3339Nano in JSON. The date, clock and zone are formatted once per
// second; only the fraction is formatted per line. Call with l.mu held.
func (l *Log) appendTime(b []byte, t time.Time) []byte {
	if s := t.Unix(); s != l.sec || t.Location() != l.loc {
		l.sec, l.loc = s, t.Location()
		l.secFmt = t.AppendFormat(l.secFmt[:0], "2006-01-02T15:04:05")
		l.zone = t.AppendFormat(l.zone[:0], "Z07:00")
	}
	b = append(b, l.secFmt...)
	ns := t.Nanosecond()
	if l.format == JSON {
		b = appendFraction(b, uint64(ns), 9)
	} else {
		ms := ns / 1e6
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	}
	return append(b, l.zone...)
}

// appendFraction appends v, a fraction of 10^prec, as '.' and its digits
// without trailing zeros, or nothing when v is zero.
func appendFraction(b []byte, v uint64, prec int) []byte {
	if v == 0 {
		return b
	}
	for v%10 == 0 {
		v /= 10
		prec--
	}
	b = append(b, '.')
	n := len(b)
	b = append(b, make([]byte, prec)...) // grows b; allocates nothing more
	for i := len(b) - 1; i >= n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// appendDuration appends d as time.Duration.String writes it ("1h2m3.5s",
// "1.5ms", "12µs", "0s"), without making a string.
func appendDuration(b []byte, d time.Duration) []byte {
	if d == 0 {
		return append(b, "0s"...)
	}
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = -u
	}
	if u < uint64(time.Second) {
		switch {
		case u < uint64(time.Microsecond):
			b = strconv.AppendUint(b, u, 10)
			return append(b, "ns"...)
		case u < uint64(time.Millisecond):
			b = strconv.AppendUint(b, u/1e3, 10)
			b = appendFraction(b, u%1e3, 3)
			return append(b, "µs"...)
		default:
			b = strconv.AppendUint(b, u/1e6, 10)
			b = appendFraction(b, u%1e6, 6)
			return append(b, "ms"...)
		}
	}
	frac := u % 1e9
	secs := u / 1e9
	if h := secs / 3600; h > 0 {
		b = strconv.AppendUint(b, h, 10)
		b = append(b, 'h')
	}
	if m := secs / 60; m > 0 {
		b = strconv.AppendUint(b, m%60, 10)
		b = append(b, 'm')
	}
	b = strconv.AppendUint(b, secs%60, 10)
	b = appendFraction(b, frac, 9)
	return append(b, 's')
}

// appendTextString appends s as slog's text handler does: bare when it
// has nothing a reader could mistake for a separator or cannot see, else
// Go-quoted.
func appendTextString(b []byte, s string) []byte {
	if textNeedsQuotes(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// textNeedsQuotes reports whether slog's text handler quotes s: when it is
// empty, or holds a space, '=', '"', an ASCII control character, invalid
// UTF-8, or a non-ASCII space or unprintable rune.
func textNeedsQuotes(s string) bool {
	if s == "" {
		return true
	}
	i := 0
	for i < len(s) && textPlain[s[i]] {
		i++
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

const hexDigits = "0123456789abcdef"

// textPlain and jsonPlain are the bytes that stand for themselves, with
// nothing to check further, in a bare text value and in a JSON string:
// printable ASCII but for a few.
var textPlain, jsonPlain [256]bool

func init() {
	for c := ' '; c < utf8.RuneSelf; c++ {
		textPlain[c] = c != ' ' && c != '=' && c != '"'
		jsonPlain[c] = c != '"' && c != '\\'
	}
}

// appendJSONString appends s escaped for a JSON string as slog's JSON
// handler does it: '"' and '\\' and control characters escaped (\n, \r, \t
// or \u00XX), invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and
// \u2029, everything else as it is ('<', '>' and '&' included).
func appendJSONString(b []byte, s string) []byte {
	i := 0
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	if i == len(s) {
		return append(b, s...)
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
