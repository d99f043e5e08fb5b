package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/templates"
)

// FeedPages renders the page a browser tab gets when it opens a feed URL
// (feeds.PageRenderer): the feed's title and description, how to subscribe
// to it, and its posts, in the layout of the other pages. Browsers show a
// feed document as raw text or download it, and are removing the XSLT a
// stylesheet would need, so the page is rendered here.
//
// Set it as feeds.Options.Page of the cache the feed handler serves from;
// the cache renders a page once per change of its board's posts, not per
// request.
type FeedPages struct {
	page   *template.Template
	layout layout
	boards *feeds.Registry
}

// NewFeedPages parses the feed page with the layout, for boards (nil: the
// built-in ones) served under baseURL (no trailing slash) from the site at
// siteURL. A template error is returned here, at start.
func NewFeedPages(boards *feeds.Registry, baseURL, siteURL string) (*FeedPages, error) {
	t, err := template.New("feed.html").ParseFS(templates.Web, "web/layout.html", "web/feed.html")
	if err != nil {
		return nil, fmt.Errorf("parse page feed.html: %w", err)
	}
	return &FeedPages{
		page:   t,
		layout: layout{Feeds: allFeedLinks(boards, baseURL), SiteURL: siteURL},
		boards: boards,
	}, nil
}

// feedPage is what feed.html reads.
type feedPage struct {
	layout
	Title, Description string
	URL                string // the feed URL opened, to copy into a reader
	BoardURL           string // the board's list on the site (the site's home for all)
	Lang               string // the posts' language when not English
	Others             []formatLink
	Items              []feedPageItem
	// Filter is the keyword filter of a filtered feed, one parameter =
	// value after another, decoded; Unfiltered the same feed without it.
	Filter     []filterParam
	Unfiltered string
}

// filterParam is one parameter of a feed's filter, as the reader typed it.
type filterParam struct{ Name, Value string }

// formatLink is the same feed in another format.
type formatLink struct{ Name, URL string }

type feedPageItem struct {
	Title, URL  string
	Board       string // the board's name, in the all feed only
	Date        string // YYYY-MM-DD in Korea
	Department  string
	Summary     string
	Attachments []feedPageFile
}

// feedPageFile is an attachment shown by its file name.
type feedPageFile struct{ Name, URL string }

var formatNames = map[feeds.Format]string{feeds.FormatRSS: "RSS", feeds.FormatAtom: "Atom", feeds.FormatJSON: "JSON Feed"}

// RenderFeedPage renders p as a whole HTML page.
func (fp *FeedPages) RenderFeedPage(p feeds.FeedPage) ([]byte, error) {
	data := feedPage{
		layout:      fp.layout,
		Title:       p.Meta.Title,
		Description: p.Meta.Description,
		URL:         p.Meta.SelfURL,
		BoardURL:    p.Meta.SiteURL,
	}
	if l := p.Meta.Language; l != "" && l != "en" && !strings.HasPrefix(l, "en-") {
		data.Lang = l
	}
	if p.Filter != "" {
		data.Filter = decodeFilter(p.Filter)
		data.Unfiltered = strings.TrimRight(strings.TrimSuffix(p.Meta.SelfURL, p.Filter), "?&")
	}
	for _, l := range p.Links {
		if l.Format != p.Format {
			data.Others = append(data.Others, formatLink{Name: formatNames[l.Format], URL: l.URL})
		}
	}
	for _, it := range p.Items {
		item := feedPageItem{Title: it.Title, URL: it.URL, Department: it.Department, Summary: it.Summary}
		if p.Meta.Board == feeds.AllSlug {
			item.Board = fp.boards.Name(it.Board)
		}
		date := it.Published
		if date.IsZero() {
			date = it.FirstSeen
		}
		if !date.IsZero() {
			item.Date = date.In(feeds.KST).Format("2006-01-02")
		}
		for _, a := range it.Attachments {
			if a.URL == "" {
				continue
			}
			name := a.Name
			if name == "" {
				name = a.URL
			}
			item.Attachments = append(item.Attachments, feedPageFile{Name: name, URL: a.URL})
		}
		data.Items = append(data.Items, item)
	}
	var buf bytes.Buffer
	if err := fp.page.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render feed page: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeFilter splits a canonical filter query (feeds.Filter.Query) into
// its parameters, decoded, in order.
func decodeFilter(query string) []filterParam {
	var out []filterParam
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		out = append(out, filterParam{Name: k, Value: v})
	}
	return out
}

// FeedPageHeader returns the fields every page of Server.page carries: the
// feed page shows titles from another site, so it gets the same policy.
func (fp *FeedPages) FeedPageHeader() http.Header {
	return http.Header{
		"Content-Security-Policy": {pageCSP},
		"X-Content-Type-Options":  {"nosniff"},
		"X-Frame-Options":         {"DENY"},
		"Referrer-Policy":         {"no-referrer"},
	}
}
