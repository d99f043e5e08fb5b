package feeds

import (
	"fmt"
	"html"
	"time"

	gorilla "github.com/gorilla/feeds"
)

type atomFeed struct {
	gorilla.AtomFeed
	Lang      string       `xml:"xml:lang,attr"`
	Generator string       `xml:"generator"`
	Links     []atomLink   `xml:"link"`
	Entries   []*atomEntry `xml:"entry"`
}

type atomEntry struct {
	gorilla.AtomEntry
	Categories []atomCategory `xml:"category"`
	Links      []atomLink     `xml:"link"`
}

type atomLink struct {
	gorilla.AtomLink
	Title string `xml:"title,attr,omitempty"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

func renderAtom(meta FeedMeta, entries []feedEntry) ([]byte, error) {
	feed := atomFeed{
		AtomFeed: gorilla.AtomFeed{
			Xmlns:    "http://www.w3.org/2005/Atom",
			Title:    meta.Title,
			Id:       feedID(meta.Board),
			Updated:  meta.Updated.Format(time.RFC3339),
			Subtitle: meta.Description,
			Author:   &gorilla.AtomAuthor{AtomPerson: gorilla.AtomPerson{Name: publisher}},
		},
		Lang:      meta.Language,
		Generator: FeedGenerator,
		Links: []atomLink{
			{AtomLink: gorilla.AtomLink{Href: meta.SelfURL, Rel: "self", Type: "application/atom+xml"}},
			{AtomLink: gorilla.AtomLink{Href: meta.SiteURL, Rel: "alternate", Type: "text/html"}},
		},
		Entries: make([]*atomEntry, len(entries)),
	}
	for _, h := range meta.Hubs {
		feed.Links = append(feed.Links, atomLink{AtomLink: gorilla.AtomLink{Href: h, Rel: "hub"}})
	}
	for i, e := range entries {
		ae := &atomEntry{
			AtomEntry: gorilla.AtomEntry{
				Title:     e.title,
				Updated:   e.updated.Format(time.RFC3339Nano),
				Id:        e.id,
				Published: e.published.Format(time.RFC3339),
				Content:   &gorilla.AtomContent{Type: "html", Content: e.content},
			},
			Links: []atomLink{{AtomLink: gorilla.AtomLink{Href: e.link, Rel: "alternate", Type: "text/html"}}},
		}
		if e.summary != "" {
			// Escaped as HTML: readers treat a summary as HTML whatever
			// its type says, so "i.e. < 10 ms" must reach them as &lt;.
			ae.Summary = &gorilla.AtomSummary{Type: "html", Content: html.EscapeString(e.summary)}
		}
		if e.author != "" {
			ae.Author = &gorilla.AtomAuthor{AtomPerson: gorilla.AtomPerson{Name: e.author}}
		}
		for _, c := range e.categories {
			ae.Categories = append(ae.Categories, atomCategory{Term: c})
		}
		for _, a := range e.attachments {
			ae.Links = append(ae.Links, atomLink{
				AtomLink: gorilla.AtomLink{Href: a.URL, Rel: "enclosure", Type: a.Type},
				Title:    a.Name,
			})
		}
		feed.Entries[i] = ae
	}
	b, err := xmlDocument(feed, sizeHint(entries))
	if err != nil {
		return nil, fmt.Errorf("render %s Atom: %w", meta.Board, err)
	}
	return b, nil
}

// JSON Feed 1.1. gorilla's JSONFeed already has the 1.1 fields (language,
// authors, attachments); its version string is for 1.0 and it omits an empty
// items array, which 1.1 requires.
