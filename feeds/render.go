package feeds

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is one of the syndication formats a feed is rendered in; its value
// is the file extension that selects it.
type Format string

// The three formats every feed is served in.
const (
	FormatRSS  Format = "rss"  // RSS 2.0
	FormatAtom Format = "atom" // Atom 1.0 (RFC 4287)
	FormatJSON Format = "json" // JSON Feed 1.1
)

// Formats returns every Format in a fixed order.
func Formats() []Format { return []Format{FormatRSS, FormatAtom, FormatJSON} }

// ParseFormat returns the Format named by a file extension (without the dot).
func ParseFormat(ext string) (Format, bool) {
	switch f := Format(ext); f {
	case FormatRSS, FormatAtom, FormatJSON:
		return f, true
	}
	return "", false
}

// ContentType is the media type a feed of this format is served with.
func (f Format) ContentType() string {
	switch f {
	case FormatRSS:
		return "application/rss+xml; charset=utf-8"
	case FormatAtom:
		return "application/atom+xml; charset=utf-8"
	case FormatJSON:
		return "application/feed+json; charset=utf-8"
	}
	return "application/octet-stream"
}

// FeedLanguage is the language of the site's English boards, and so of the
// feeds of the built-in boards and of all; a board added by configuration
// has its own (Board.Lang, FeedMeta.Language).
const FeedLanguage = "en"

// FeedGenerator names this program in every feed.
const FeedGenerator = "msitfeed"

// publisher is the feed-level author, so an Atom entry without a department
// still has an author.
const publisher = "Ministry of Science and ICT"

// idAuthority is the authority and fixed date of the tag: URIs used as ids.
// The date is part of the scheme, not of any post, so ids never change.
const idAuthority = "tag:msit.go.kr,2024:"

// ItemID returns the permanent id of a post, the same in RSS (guid,
// isPermaLink="false"), Atom (id) and JSON Feed (id), in a board's feed and
// in the all feed alike.
//
// It is a tag: URI (RFC 4151) built only from what never changes for a post:
// the site's authority with a fixed date, the English site, the board and the
// site's nttSeqNo, e.g. "tag:msit.go.kr,2024:eng/press/1234". The canonical
// URL was not chosen because its query carries menu ids (mId, mPid) that the
// site may renumber; a post edited, re-dated or moved to a new URL keeps its id.
func ItemID(board string, ntt int64) string {
	return idAuthority + "eng/" + board + "/" + strconv.FormatInt(ntt, 10)
}

// feedID is the permanent id of a whole feed (Atom's feed id).
func feedID(board string) string { return idAuthority + "eng/feeds/" + board }

// FeedMeta is what a feed says of itself, as opposed to its items.
type FeedMeta struct {
	Board       string    // a board slug or AllSlug
	Title       string    // e.g. "MSIT — Press Releases"
	Description string    // one sentence
	SelfURL     string    // where this document is served
	SiteURL     string    // the board's list page on the site (the alternate link)
	Updated     time.Time // the feed's last change; zero renders as the Unix epoch
	// Language is the feed's language tag (RSS language, Atom xml:lang,
	// JSON Feed language); FeedLanguage when empty.
	Language string
	// Hubs are the URLs of the WebSub hubs to which the publisher reports
	// this feed's changes (rel="hub" links; JSON Feed's hubs).
	Hubs []string
}

// Meta returns what the feed of board (a slug or AllSlug) in format says of
// itself. boards supplies the site's ids for the alternate link (a board not
// yet discovered links to the site's English home page); limit goes into the
// self link when it is not the default (0 means the default); updated is the
// feed's last change.
func (o Options) Meta(boards []Board, board string, format Format, limit int, updated time.Time) FeedMeta {
	o = o.withDefaults()
	source := strings.TrimRight(o.SourceURL, "/")
	m := FeedMeta{
		Board:       board,
		Title:       "MSIT — All boards",
		Description: "Every post of the English boards of the Ministry of Science and ICT (MSIT), Korea.",
		SelfURL:     strings.TrimRight(o.BaseURL, "/") + "/feeds/" + board + "." + string(format),
		SiteURL:     source + "/eng/index.do",
		Updated:     updated,
		Hubs:        o.Hubs,
	}
	if limit > 0 && limit != o.Limit {
		m.SelfURL += "?limit=" + strconv.Itoa(limit)
	}
	if board == AllSlug {
		for _, b := range boards {
			if b.Configured {
				m.Description = "Every post of the boards of the Ministry of Science and ICT (MSIT), Korea, that this feed follows."
				break
			}
		}
		return m
	}
	b := Board{Slug: board, Name: board}
	for _, d := range DefaultBoards() {
		if d.Slug == board {
			b = d
		}
	}
	for _, s := range boards {
		if s.Slug == board {
			b = s
		}
	}
	site := "English site"
	if b.Section() != "eng" {
		site = "Korean site"
	}
	m.Title = "MSIT — " + b.Name
	m.Description = "Posts of the " + b.Name + " board of the Ministry of Science and ICT (MSIT), Korea, " + site + "."
	m.Language = b.Language()
	if b.Resolved() {
		m.SiteURL = source + b.Directory() + "/list.do?sCode=" + url.QueryEscape(b.Section()) +
			"&mPid=" + url.QueryEscape(b.MPID) + "&mId=" + url.QueryEscape(b.MID)
	}
	return m
}

// Render renders items as one feed document in format. It is a pure
// function of its arguments: the same input gives the same bytes. Every
// string is stripped of characters XML 1.0 cannot carry, in every format, so
// the three documents say the same thing.
func Render(meta FeedMeta, items []Item, format Format) ([]byte, error) {
	entries := make([]feedEntry, len(items))
	for i, it := range items {
		entries[i] = newFeedEntry(it)
	}
	meta = cleanMeta(meta)
	switch format {
	case FormatRSS:
		return renderRSS(meta, entries)
	case FormatAtom:
		return renderAtom(meta, entries)
	case FormatJSON:
		return renderJSON(meta, entries)
	}
	return nil, fmt.Errorf("render %s feed: unknown format %q", meta.Board, format)
}

// NewestUpdate returns the time a feed of items last changed: the newest
// Updated among them, or fallback (the board's last change) when there are
// none.
func NewestUpdate(items []Item, fallback time.Time) time.Time {
	var newest time.Time
	for _, it := range items {
		if u := itemUpdated(it); u.After(newest) {
			newest = u
		}
	}
	if newest.IsZero() {
		return fallback
	}
	return newest
}

// feedEntry is an item reduced to what every format shows, cleaned once.
type feedEntry struct {
	id, title, link, summary, content, author, image string
	categories                                       []string
	published, updated                               time.Time
	attachments                                      []Attachment
}

func newFeedEntry(it Item) feedEntry {
	e := feedEntry{
		id:        ItemID(it.Board, it.ID),
		title:     cleanLine(it.Title),
		link:      cleanXML(it.URL),
		summary:   cleanXML(it.Summary),
		author:    cleanLine(it.Department),
		image:     cleanXML(it.Thumbnail),
		published: feedTime(itemPublished(it)),
		updated:   feedInstant(itemUpdated(it)),
	}
	if e.author != "" {
		e.categories = append(e.categories, e.author)
	}
	for _, a := range it.Attachments {
		a = Attachment{Name: cleanLine(a.Name), URL: cleanXML(a.URL), Type: cleanLine(a.Type)}
		if a.URL == "" {
			continue
		}
		if a.Type == "" {
			a.Type = "application/octet-stream"
		}
		if a.Name == "" {
			a.Name = a.URL
		}
		e.attachments = append(e.attachments, a)
	}
	e.content = contentHTML(cleanXML(it.Body), e.image, e.title, e.attachments)
	return e
}

func itemPublished(it Item) time.Time {
	for _, t := range []time.Time{it.Published, it.FirstSeen, it.Updated} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// itemUpdated is the instant the entry last changed in a way that matters:
// when msitfeed stored the post or its latest edit (the store gives every
// save its own instant, so no two entries share one), else its publication.
func itemUpdated(it Item) time.Time {
	if !it.Updated.IsZero() {
		return it.Updated
	}
	return itemPublished(it)
}

// feedInstant puts t in KST at whole milliseconds, the precision the store
// keeps: two saves a moment apart stay two instants.
func feedInstant(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.In(KST).Truncate(time.Millisecond)
}

// feedTime puts t in KST at whole seconds, so every format writes the same
// instant with a +09:00 offset.
func feedTime(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.In(KST).Truncate(time.Second)
}

// contentHTML is the full HTML of an entry: the gallery thumbnail when the
// body shows no image, the (already sanitised) body, then every attachment
// as a link, because RSS can carry only one enclosure and many readers show
// none.
func contentHTML(body, image, title string, atts []Attachment) string {
	var b strings.Builder
	b.Grow(len(body) + 200*len(atts) + 200)
	if image != "" && !strings.Contains(strings.ToLower(body), "<img") {
		fmt.Fprintf(&b, `<p><img src="%s" alt="%s"></p>`, html.EscapeString(image), html.EscapeString(title))
		b.WriteString("\n")
	}
	b.WriteString(body)
	if len(atts) > 0 {
		b.WriteString("\n<h3>Attachments</h3>\n<ul>\n")
		for _, a := range atts {
			fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(a.URL), html.EscapeString(a.Name))
		}
		b.WriteString("</ul>")
	}
	return b.String()
}

// rssEnclosure picks the one attachment RSS can carry: the first PDF, else
// the first file.
func rssEnclosure(atts []Attachment) *Attachment {
	for i, a := range atts {
		if a.Type == "application/pdf" || strings.HasSuffix(strings.ToLower(a.Name), ".pdf") {
			return &atts[i]
		}
	}
	if len(atts) > 0 {
		return &atts[0]
	}
	return nil
}

func cleanMeta(m FeedMeta) FeedMeta {
	m.Title = cleanLine(m.Title)
	m.Description = cleanLine(m.Description)
	m.SelfURL = cleanXML(m.SelfURL)
	m.SiteURL = cleanXML(m.SiteURL)
	if len(m.Hubs) > 0 {
		hubs := make([]string, 0, len(m.Hubs))
		for _, h := range m.Hubs {
			if h = cleanXML(h); h != "" {
				hubs = append(hubs, h)
			}
		}
		m.Hubs = hubs
	}
	m.Language = cleanLine(m.Language)
	if m.Language == "" {
		m.Language = FeedLanguage
	}
	m.Updated = feedTime(m.Updated)
	return m
}

// isXMLChar reports whether r may appear in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// cleanXML drops characters XML 1.0 cannot carry (NUL, most C0 controls,
// surrogates, U+FFFE/U+FFFF) and bytes that are not UTF-8.
func cleanXML(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !isXMLChar(r) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !(r == utf8.RuneError && size == 1) && isXMLChar(r) {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cleanLine is cleanXML for one-line text (titles, names): runs of white
// space, CR and LF included, become one space.
func cleanLine(s string) string {
	return strings.Join(strings.Fields(cleanXML(s)), " ")
}

// xmlDocument writes the XML declaration and doc, indented. It names no
// stylesheet: browser tabs get the feed's HTML page instead (FeedPage).
func xmlDocument(doc any, sizeHint int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(sizeHint)
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func sizeHint(entries []feedEntry) int {
	n := 2048
	for _, e := range entries {
		n += len(e.content) + len(e.summary) + 1024
	}
	return n
}
