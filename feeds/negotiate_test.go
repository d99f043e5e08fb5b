package feeds

import "testing"

// Accept fields as real clients send them.
const (
	acceptChromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	acceptFirefox  = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	acceptSafari   = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	// WebKit and Chrome before 2011 put XML first.
	acceptOldWebKit = "application/xml,application/xhtml+xml,text/html;q=0.9,text/plain;q=0.8,image/png,*/*;q=0.5"
	acceptFeedparse = "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"
	acceptReader    = "application/rss+xml, application/rdf+xml;q=0.8, application/atom+xml;q=0.6, application/xml;q=0.4, text/xml;q=0.4"
)

func TestWantsPage(t *testing.T) {
	tests := []struct {
		name   string
		dest   []string
		accept []string
		want   bool
	}{
		{"a navigation (Sec-Fetch-Dest: document) gets the page", []string{"document"}, nil, true},
		{"a navigation gets the page whatever it accepts", []string{"document"}, []string{"application/rss+xml"}, true},
		{"a script's fetch (Sec-Fetch-Dest: empty) accepting anything gets the feed", []string{"empty"}, []string{"*/*"}, false},
		{"a frame gets the feed", []string{"iframe"}, nil, false},
		{"no header at all is a feed reader", nil, nil, false},
		{"Chromium's Accept for a navigation prefers HTML", nil, []string{acceptChromium}, true},
		{"Firefox's Accept prefers HTML", nil, []string{acceptFirefox}, true},
		{"Safari's Accept prefers HTML", nil, []string{acceptSafari}, true},
		{"old WebKit's Accept puts XML above HTML", nil, []string{acceptOldWebKit}, false},
		{"a reader asking for Atom first does not prefer HTML", nil, []string{"application/atom+xml,application/xml;q=0.9,*/*;q=0.8"}, false},
		{"*/* alone (curl) is a tie, so the feed", nil, []string{"*/*"}, false},
		{"text/* is a tie with text/xml", nil, []string{"text/*"}, false},
		{"feedparser's Accept gets the feed", nil, []string{acceptFeedparse}, false},
		{"a reader's weighted list gets the feed", nil, []string{acceptReader}, false},
		{"text/html alone prefers HTML", nil, []string{"text/html"}, true},
		{"media types are case-insensitive", nil, []string{"TEXT/HTML"}, true},
		{"text/html with q=0 is refused HTML", nil, []string{"text/html;q=0"}, false},
		{"a broken q counts for nothing", nil, []string{"text/html;q=high"}, false},
		{"q above 1 is broken", nil, []string{"text/html;q=1.5"}, false},
		{"HTML below RSS gets the feed", nil, []string{"text/html;q=0.5, application/rss+xml"}, false},
		{"HTML above RSS gets the page", nil, []string{"text/html, application/rss+xml;q=0.5"}, true},
		{"a feed type at full quality after HTML is a tie", nil, []string{"text/html, application/rss+xml"}, false},
		{"a wildcard at full quality before HTML does not settle it", nil, []string{"application/*;q=0.5, text/xml;q=0.5, */*, text/html"}, true},
		{"a tie between HTML and RSS gets the feed", nil, []string{"text/html;q=0.7, application/rss+xml;q=0.7"}, false},
		{"JSON above HTML gets the feed", nil, []string{"application/json, text/html;q=0.9"}, false},
		{"the most specific range wins over */*", nil, []string{"*/*;q=0.1, text/html"}, true},
		{"the most specific range wins even when lower", nil, []string{"text/html;q=0.2, */*"}, false},
		{"q after other parameters is read", nil, []string{"text/html;level=1;q=0.9, application/xml;q=0.8"}, true},
		{"a quoted comma does not split a range", nil, []string{`text/html;x="a,application/xml";q=0.9, application/xml;q=0.8`}, true},
		{"spaces around parameters are allowed", nil, []string{"text/html ; q=0.9 , application/xml ; q=0.8"}, true},
		{"ranges on two field lines count together", nil, []string{"application/rss+xml;q=0.5", "text/html"}, true},
		{"garbage is no preference", nil, []string{"garbage, ,;,/,*/html"}, false},
		{"an empty Accept is no preference", nil, []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wantsPage(tt.dest, tt.accept); got != tt.want {
				t.Errorf("wantsPage(%q, %q) = %v, want %v", tt.dest, tt.accept, got, tt.want)
			}
		})
	}
}

func TestParseQ(t *testing.T) {
	for in, want := range map[string]int{
		"0": 0, "1": 1000, "0.5": 500, "0.25": 250, "0.125": 125, "1.0": 1000, "1.000": 1000, "0.": 0, "1.": 1000,
		"1.001": 0, "0.1234": 0, "2": 0, "": 0, ".5": 0, "0,5": 0, "-1": 0, "0.9x": 0,
	} {
		if got := parseQ(in); got != want {
			t.Errorf("parseQ(%q) = %d, want %d", in, got, want)
		}
	}
}

// Every feed request asks wantsPage, so it must not allocate.
func TestWantsPageAllocatesNothing(t *testing.T) {
	for _, accept := range []string{acceptChromium, acceptReader, acceptFeedparse, "*/*", `text/html;x="a,b";q=0.9`} {
		values := []string{accept}
		n := testing.AllocsPerRun(100, func() { wantsPage(nil, values) })
		if n != 0 {
			t.Errorf("%d allocations for Accept %q", int(n), accept)
		}
	}
}

func BenchmarkWantsPage(b *testing.B) {
	for _, bc := range []struct{ name, accept string }{{"reader", acceptReader}, {"feedparser", acceptFeedparse}, {"curl", "*/*"}, {"chromium", acceptChromium}} {
		accept := []string{bc.accept}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				wantsPage(nil, accept)
			}
		})
	}
}
