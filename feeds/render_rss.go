package feeds

import (
	"fmt"
	"html"
	"time"

	gorilla "github.com/gorilla/feeds"
)

// RSS 2.0. gorilla's RssFeedXml, RssFeed and RssItem are embedded; fields
// declared here with the same XML name take precedence (encoding/xml prefers
// the shallower field), which is how the channel gets its atom:link and the
// items their dc:creator, several categories and atom:updated. The
// channel's atom:link elements are its self link and its WebSub hubs.
type rssDocument struct {
	gorilla.RssFeedXml
	AtomNamespace string      `xml:"xmlns:atom,attr"`
	DCNamespace   string      `xml:"xmlns:dc,attr"`
	Channel       *rssChannel `xml:"channel"`
}

type rssChannel struct {
	gorilla.RssFeed
	Links []rssAtomLink `xml:"atom:link"`
	Items []*rssItem    `xml:"item"`
}

type rssAtomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
}

type rssItem struct {
	gorilla.RssItem
	Creator    string   `xml:"dc:creator,omitempty"`
	Categories []string `xml:"category"`
	Updated    string   `xml:"atom:updated"`
}

// rssDate writes t as RFC 822 wants it, or nothing for a zero time.
func rssDate(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return ""
	}
	return t.Format(time.RFC1123Z)
}

func renderRSS(meta FeedMeta, entries []feedEntry) ([]byte, error) {
	ch := &rssChannel{
		RssFeed: gorilla.RssFeed{
			Title:         meta.Title,
			Link:          meta.SiteURL,
			Description:   meta.Description,
			Language:      meta.Language,
			LastBuildDate: rssDate(meta.Updated),
			Generator:     FeedGenerator,
		},
		Links: []rssAtomLink{{Href: meta.SelfURL, Rel: "self", Type: "application/rss+xml"}},
		Items: make([]*rssItem, len(entries)),
	}
	for _, h := range meta.Hubs {
		ch.Links = append(ch.Links, rssAtomLink{Href: h, Rel: "hub"})
	}
	for i, e := range entries {
		it := &rssItem{
			RssItem: gorilla.RssItem{
				Title:       e.title,
				Link:        e.link,
				Description: html.EscapeString(e.summary), // readers take it as HTML
				Content:     &gorilla.RssContent{Content: e.content},
				Guid:        &gorilla.RssGuid{Id: e.id, IsPermaLink: "false"},
				PubDate:     e.published.Format(time.RFC1123Z),
			},
			Creator:    e.author,
			Categories: e.categories,
			Updated:    e.updated.Format(time.RFC3339Nano),
		}
		if a := rssEnclosure(e.attachments); a != nil {
			// RSS requires a length; the site does not tell it, and 0 means unknown.
			it.Enclosure = &gorilla.RssEnclosure{Url: a.URL, Length: "0", Type: a.Type}
		}
		ch.Items[i] = it
	}
	doc := rssDocument{
		RssFeedXml: gorilla.RssFeedXml{
			Version:          "2.0",
			ContentNamespace: "http://purl.org/rss/1.0/modules/content/",
		},
		AtomNamespace: "http://www.w3.org/2005/Atom",
		DCNamespace:   "http://purl.org/dc/elements/1.1/",
		Channel:       ch,
	}
	b, err := xmlDocument(doc, sizeHint(entries))
	if err != nil {
		return nil, fmt.Errorf("render %s RSS: %w", meta.Board, err)
	}
	return b, nil
}

// Atom 1.0. gorilla's AtomFeed, AtomEntry and AtomLink are embedded; the
// fields below replace its single feed link, its plain-text category (Atom
// wants a term attribute) and its links without titles.
