package feeds

import (
	"bytes"
	"encoding/json"
	"fmt"

	gorilla "github.com/gorilla/feeds"
)

type jsonFeed struct {
	gorilla.JSONFeed
	Items []*gorilla.JSONItem `json:"items"`
}

// JSONFeedVersion is the version URL of JSON Feed 1.1.
const JSONFeedVersion = "https://jsonfeed.org/version/1.1"

func renderJSON(meta FeedMeta, entries []feedEntry) ([]byte, error) {
	feed := jsonFeed{
		JSONFeed: gorilla.JSONFeed{
			Version:     JSONFeedVersion,
			Title:       meta.Title,
			Language:    meta.Language,
			HomePageUrl: meta.SiteURL,
			FeedUrl:     meta.SelfURL,
			Description: meta.Description,
			Authors:     []*gorilla.JSONAuthor{{Name: publisher}},
		},
		Items: make([]*gorilla.JSONItem, len(entries)),
	}
	for _, h := range meta.Hubs {
		feed.Hubs = append(feed.Hubs, &gorilla.JSONHub{Type: "WebSub", Url: h})
	}
	for i, e := range entries {
		published, updated := e.published, e.updated
		ji := &gorilla.JSONItem{
			Id:            e.id,
			Url:           e.link,
			Title:         e.title,
			ContentHTML:   e.content,
			Summary:       e.summary,
			Image:         e.image,
			PublishedDate: &published,
			ModifiedDate:  &updated,
			Tags:          e.categories,
		}
		if e.author != "" {
			// author is JSON Feed 1.0's field, kept for readers that know only 1.0.
			a := &gorilla.JSONAuthor{Name: e.author}
			ji.Author, ji.Authors = a, []*gorilla.JSONAuthor{a}
		}
		for _, a := range e.attachments {
			ji.Attachments = append(ji.Attachments, gorilla.JSONAttachment{Url: a.URL, MIMEType: a.Type, Title: a.Name})
		}
		feed.Items[i] = ji
	}
	var buf bytes.Buffer
	buf.Grow(sizeHint(entries))
	enc := json.NewEncoder(&buf)
	// Content is HTML on purpose; \u003c escapes would only make it unreadable.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(feed); err != nil {
		return nil, fmt.Errorf("render %s JSON Feed: %w", meta.Board, err)
	}
	return buf.Bytes(), nil
}
