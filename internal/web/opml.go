package web

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// OPMLPath serves every feed as one OPML 2.0 subscription list, so a reader
// can follow all boards with one import.
const OPMLPath = "/feeds.opml"

// opml is the subset of OPML 2.0 (http://opml.org/spec2.opml) that feed
// readers import: a head and one outline per feed of type "rss", which
// readers take to mean any feed format.
type opml struct {
	XMLName xml.Name   `xml:"opml"`
	Version string     `xml:"version,attr"`
	Title   string     `xml:"head>title"`
	Created string     `xml:"head>dateCreated"`
	Docs    string     `xml:"head>docs"`
	Feeds   []opmlFeed `xml:"body>outline"`
}

type opmlFeed struct {
	Type    string `xml:"type,attr"`
	Text    string `xml:"text,attr"`
	Title   string `xml:"title,attr"`
	XMLURL  string `xml:"xmlUrl,attr"`
	HTMLURL string `xml:"htmlUrl,attr"`
}

// handleOPML lists the feeds of every board and of all boards in one format
// (?format=rss, the default, atom or json). The limit and filter parameters
// given to it (feeds.FeedQuery) are carried onto every feed URL it lists,
// so one import follows every board through the same filter; a bad one is
// a 400.
func (s *Server) handleOPML(w http.ResponseWriter, r *http.Request) {
	format := feeds.FormatRSS
	query := r.URL.Query()
	carried, err := feeds.FeedQuery(query)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f := query.Get("format"); f != "" {
		var ok bool
		if format, ok = feeds.ParseFormat(f); !ok {
			http.Error(w, fmt.Sprintf("bad format %q: use rss, atom or json", f), http.StatusBadRequest)
			return
		}
	}
	boards, err := s.Store.Boards(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	opts := feeds.Options{BaseURL: s.BaseURL, SourceURL: s.SiteURL}
	doc := opml{Version: "2.0", Title: "MSIT boards (msitfeed)", Created: time.Now().UTC().Format(time.RFC1123Z),
		Docs: "http://opml.org/spec2.opml"}
	for _, slug := range append(s.Boards.Slugs(), feeds.AllSlug) {
		m := opts.Meta(boards, slug, format, 0, time.Time{})
		self := m.SelfURL
		if carried != "" {
			self += "?" + carried
		}
		doc.Feeds = append(doc.Feeds, opmlFeed{Type: "rss", Text: m.Title, Title: m.Title, XMLURL: self, HTMLURL: m.SiteURL})
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/x-opml; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	w.Write([]byte(xml.Header))
	w.Write(out)
	w.Write([]byte("\n"))
}
