package web

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/accesslog"
)

// get makes one request over client and returns the response with its body
// read.
func get(t *testing.T, client *http.Transport, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := client.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// names returns the header's field names, sorted.
func names(h http.Header) []string {
	var n []string
	for k := range h {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// A feed reader's poll, over HTTP through the server as serve runs it (the
// access log on, feed pages on): the 304 carries exactly the validators
// and caching fields of the 200 (ETag, Last-Modified, Cache-Control, the
// Vary of a URL shared with the page) and nothing of the body's; the ETag
// is the same on every request and connection; lists of several ETags,
// weak tags, "*", If-Modified-Since and HEAD answer as RFC 9110 says; the
// gzip form has its own ETag; and each request's line says what it got.
func TestFeed304Behaviour(t *testing.T) {
	var out syncBuffer
	lines := accesslog.New(&out, accesslog.Options{Interval: time.Hour})
	e := newEnv(t, func(s *Server) {
		s.AccessLog = true
		s.AccessLines = lines
	})
	url := e.base + "/feeds/press.rss"
	// Two clients, so two connections; neither decompresses on its own.
	a, b := &http.Transport{DisableCompression: true}, &http.Transport{DisableCompression: true}
	defer a.CloseIdleConnections()
	defer b.CloseIdleConnections()

	first, body := get(t, a, "GET", url)
	etag, lastMod := first.Header.Get("Etag"), first.Header.Get("Last-Modified")
	want200 := []string{"Cache-Control", "Content-Length", "Content-Type", "Date", "Etag", "Last-Modified", "Vary"}
	if first.StatusCode != 200 || body == "" || !slices.Equal(names(first.Header), want200) {
		t.Fatalf("GET: %d, %d bytes, fields %v, want 200 with %v", first.StatusCode, len(body), names(first.Header), want200)
	}
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("ETag %q is not a strong entity tag", etag)
	}
	for field, want := range map[string]string{
		"Cache-Control": "public, max-age=300",
		"Content-Type":  "application/rss+xml; charset=utf-8",
		"Vary":          "Accept, Accept-Encoding, Sec-Fetch-Dest",
	} {
		if got := first.Header.Get(field); got != want {
			t.Errorf("200 %s: %q, want %q", field, got, want)
		}
	}
	modified, err := http.ParseTime(lastMod)
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", lastMod, err)
	}
	earlier := modified.Add(-time.Second).Format(http.TimeFormat)
	later := modified.Add(time.Hour).Format(http.TimeFormat)

	// The ETag holds across requests and connections.
	for i, c := range []*http.Transport{a, b, a, b} {
		if resp, _ := get(t, c, "GET", url); resp.Header.Get("Etag") != etag {
			t.Fatalf("request %d: ETag %q, the first was %q", i, resp.Header.Get("Etag"), etag)
		}
	}

	gz, _ := get(t, a, "GET", url, "Accept-Encoding", "gzip")
	gzTag := gz.Header.Get("Etag")
	if gz.Header.Get("Content-Encoding") != "gzip" || gzTag == "" || gzTag == etag {
		t.Fatalf("gzip: Content-Encoding %q, ETag %q (identity %q)", gz.Header.Get("Content-Encoding"), gzTag, etag)
	}

	want304 := []string{"Cache-Control", "Date", "Etag", "Last-Modified", "Vary"}
	for _, tc := range []struct {
		name   string
		method string
		header []string
		code   int
		etag   string // of the response; the identity one if empty
	}{
		{"the ETag", "GET", []string{"If-None-Match", etag}, 304, ""},
		{"the ETag, HEAD", "HEAD", []string{"If-None-Match", etag}, 304, ""},
		{"the weak form", "GET", []string{"If-None-Match", "W/" + etag}, 304, ""},
		{"several ETags, ours last", "GET", []string{"If-None-Match", `"old", W/"older", ` + etag}, 304, ""},
		{"several ETags over two field lines", "GET", []string{"If-None-Match", `"old"`, "If-None-Match", `"older",` + etag}, 304, ""},
		{"star", "GET", []string{"If-None-Match", "*"}, 304, ""},
		{"several ETags, none ours", "GET", []string{"If-None-Match", `"old", W/"older"`}, 200, ""},
		{"the gzip ETag without gzip", "GET", []string{"If-None-Match", gzTag}, 200, ""},
		{"the gzip ETag with gzip", "GET", []string{"If-None-Match", gzTag, "Accept-Encoding", "gzip"}, 304, gzTag},
		{"If-Modified-Since, equal", "GET", []string{"If-Modified-Since", lastMod}, 304, ""},
		{"If-Modified-Since, later", "GET", []string{"If-Modified-Since", later}, 304, ""},
		{"If-Modified-Since, earlier", "GET", []string{"If-Modified-Since", earlier}, 200, ""},
		{"If-None-Match first", "GET", []string{"If-None-Match", `"old"`, "If-Modified-Since", later}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := get(t, b, tc.method, url, tc.header...)
			wantTag := tc.etag
			if wantTag == "" {
				wantTag = etag
			}
			if resp.StatusCode != tc.code || resp.Header.Get("Etag") != wantTag {
				t.Fatalf("%d with ETag %q, want %d with %q", resp.StatusCode, resp.Header.Get("Etag"), tc.code, wantTag)
			}
			if tc.code != 304 {
				return
			}
			if got != "" || !slices.Equal(names(resp.Header), want304) {
				t.Fatalf("304 with %d bytes and fields %v, want none and %v", len(got), names(resp.Header), want304)
			}
			for _, f := range []string{"Cache-Control", "Last-Modified", "Vary"} {
				if resp.Header.Get(f) != first.Header.Get(f) {
					t.Errorf("304 %s %q, the 200 said %q", f, resp.Header.Get(f), first.Header.Get(f))
				}
			}
		})
	}

	if err := lines.Close(); err != nil {
		t.Fatal(err)
	}
	read := parseAccessLines(t, accesslog.Text, out.String())
	if len(read) != 6+13 {
		t.Fatalf("%d lines for %d requests", len(read), 6+13)
	}
	for _, l := range read {
		if l.Path != "/feeds/press.rss" || l.Status != 200 && l.Status != 304 || l.Status == 304 && l.Bytes != 0 ||
			l.Status == 200 && l.Method == "GET" && l.Bytes == 0 {
			t.Errorf("line %+v", l)
		}
	}
	if n := strings.Count(out.String(), "status=304"); n != 9 {
		t.Errorf("%d lines of 304, want 9", n)
	}
}
