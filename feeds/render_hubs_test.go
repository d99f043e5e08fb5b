package feeds_test

import (
	"encoding/json"
	"encoding/xml"
	"slices"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// xmlLinks are the atom:link (RSS channel) or link (Atom feed) elements
// at the top of a document, as "rel href".
func xmlLinks(t *testing.T, doc []byte, format feeds.Format) []string {
	t.Helper()
	type link struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
		Type string `xml:"type,attr"`
	}
	var links []link
	if format == feeds.FormatRSS {
		var rss struct {
			Channel struct {
				Links []link `xml:"http://www.w3.org/2005/Atom link"`
			} `xml:"channel"`
		}
		if err := xml.Unmarshal(doc, &rss); err != nil {
			t.Fatal(err)
		}
		links = rss.Channel.Links
	} else {
		var atom struct {
			Links []link `xml:"http://www.w3.org/2005/Atom link"`
		}
		if err := xml.Unmarshal(doc, &atom); err != nil {
			t.Fatal(err)
		}
		links = atom.Links
	}
	var out []string
	for _, l := range links {
		out = append(out, l.Rel+" "+l.Href)
	}
	return out
}

func TestRender_HubLinks(t *testing.T) {
	hubs := []string{"https://feeds.example.org/websub", "https://pubsubhubbub.appspot.com/"}
	opts := feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: "https://www.msit.go.kr", Hubs: hubs}
	updated := feeds.NewestUpdate(renderFixture(), time.Time{})
	for _, format := range []feeds.Format{feeds.FormatRSS, feeds.FormatAtom} {
		t.Run(string(format)+" links to its self URL and to every hub", func(t *testing.T) {
			doc, err := feeds.Render(opts.Meta(feeds.DefaultBoards(), "press", format, 0, updated), renderFixture(), format)
			if err != nil {
				t.Fatal(err)
			}
			got := xmlLinks(t, doc, format)
			for _, want := range []string{
				"self https://feeds.example.org/feeds/press." + string(format),
				"hub https://feeds.example.org/websub",
				"hub https://pubsubhubbub.appspot.com/",
			} {
				if !slices.Contains(got, want) {
					t.Errorf("links %q lack %q", got, want)
				}
			}
			if res := runFeedparser(t, doc); res.Bozo != 0 {
				t.Errorf("feedparser finds the document ill-formed: %s", res.BozoException)
			}
		})
	}
	t.Run("JSON Feed lists every hub as a WebSub hub", func(t *testing.T) {
		doc, err := feeds.Render(opts.Meta(feeds.DefaultBoards(), feeds.AllSlug, feeds.FormatJSON, 0, updated), renderFixture(), feeds.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		var feed struct {
			FeedURL string `json:"feed_url"`
			Hubs    []struct{ Type, URL string }
		}
		if err := json.Unmarshal(doc, &feed); err != nil {
			t.Fatal(err)
		}
		if feed.FeedURL != "https://feeds.example.org/feeds/all.json" {
			t.Errorf("feed_url = %q", feed.FeedURL)
		}
		if len(feed.Hubs) != 2 || feed.Hubs[0].Type != "WebSub" || feed.Hubs[0].URL != hubs[0] ||
			feed.Hubs[1].Type != "WebSub" || feed.Hubs[1].URL != hubs[1] {
			t.Errorf("hubs = %+v, want %q as type WebSub", feed.Hubs, hubs)
		}
	})
	t.Run("a feed without hubs has no hub link and no hubs member", func(t *testing.T) {
		plain := feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: "https://www.msit.go.kr"}
		for _, format := range []feeds.Format{feeds.FormatRSS, feeds.FormatAtom} {
			doc, err := feeds.Render(plain.Meta(feeds.DefaultBoards(), "press", format, 0, updated), renderFixture(), format)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range xmlLinks(t, doc, format) {
				if l[:4] == "hub " {
					t.Errorf("%s: unexpected %q", format, l)
				}
			}
		}
		doc, err := feeds.Render(plain.Meta(feeds.DefaultBoards(), "press", feeds.FormatJSON, 0, updated), renderFixture(), feeds.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		var feed map[string]any
		if err := json.Unmarshal(doc, &feed); err != nil {
			t.Fatal(err)
		}
		if _, ok := feed["hubs"]; ok {
			t.Errorf("JSON Feed has hubs: %v", feed["hubs"])
		}
	})
}
