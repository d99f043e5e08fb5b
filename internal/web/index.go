package web

import (
	"context"
	"html/template"
	"net/http"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
)

// feedLink is one autodiscovery link.
type feedLink struct {
	Type  template.HTMLAttr // type="…": html/template would write the + of a media type as &#43;, which naive feed finders miss
	Title string
	URL   string
}

// feedTypes are the media types of the feed formats, as attributes.
var feedTypes = map[string]template.HTMLAttr{
	"rss":  `type="application/rss+xml"`,
	"atom": `type="application/atom+xml"`,
	"json": `type="application/feed+json"`,
}

type boardRow struct {
	Name, Newest    string
	Lang            string // the board's language when not English, for the lang attribute
	Items           int
	RSS, Atom, JSON string
}

type latestRow struct{ Title, URL, Board, Date string }

// boardChoice is one checkbox of a board selection.
type boardChoice struct {
	Slug, Name string
	Lang       string // as boardRow.Lang
	Checked    bool
}

// subscribeForm is the subscribe form as shown: empty, or as the visitor
// filled it with what was wrong.
type subscribeForm struct {
	Email, Name string
	Boards      []boardChoice
	Token       string // the form token (see csrf.go)
	Error       string
}

type indexPage struct {
	layout
	Boards []boardRow
	Latest []latestRow
	Form   *subscribeForm // nil when sign-up is closed
}

// feedLinks returns the autodiscovery links for every feed, every format.
func (s *Server) feedLinks() []feedLink { return allFeedLinks(s.Boards, s.BaseURL) }

// allFeedLinks returns the autodiscovery links for every feed of boards,
// every format, under baseURL (no trailing slash).
func allFeedLinks(boards *feeds.Registry, baseURL string) []feedLink {
	var out []feedLink
	names := map[string]string{feeds.AllSlug: "All boards"}
	slugs := append([]string{feeds.AllSlug}, boards.Slugs()...)
	for _, b := range boards.Boards() {
		names[b.Slug] = b.Name
	}
	for _, slug := range slugs {
		out = append(out,
			feedLink{feedTypes["rss"], "MSIT " + names[slug] + " (RSS)", baseURL + "/feeds/" + slug + ".rss"},
			feedLink{feedTypes["atom"], "MSIT " + names[slug] + " (Atom)", baseURL + "/feeds/" + slug + ".atom"},
			feedLink{feedTypes["json"], "MSIT " + names[slug] + " (JSON Feed)", baseURL + "/feeds/" + slug + ".json"})
	}
	return out
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	var form *subscribeForm
	if s.signupOpen() {
		form = s.newSubscribeForm(nil)
	}
	page, err := s.indexPage(r.Context(), form)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// The form carries a token that expires; a cached copy would fail.
	w.Header().Set("Cache-Control", "no-cache")
	s.render(w, r, http.StatusOK, "index.html", page)
}

// indexPage gathers the boards and latest posts around form.
func (s *Server) indexPage(ctx context.Context, form *subscribeForm) (indexPage, error) {
	page := indexPage{layout: s.layout(), Form: form}
	stats, err := s.Store.Stats(ctx)
	if err != nil {
		return page, err
	}
	total, newest := 0, ""
	for _, b := range append([]feeds.Board{{Slug: feeds.AllSlug, Name: "All boards"}}, s.Boards.Boards()...) {
		row := boardRow{Name: b.Name, Lang: otherLanguage(b), RSS: "/feeds/" + b.Slug + ".rss", Atom: "/feeds/" + b.Slug + ".atom", JSON: "/feeds/" + b.Slug + ".json"}
		if st, ok := stats[b.Slug]; ok {
			row.Items = st.Items
			total += st.Items
			if !st.Newest.IsZero() {
				row.Newest = st.Newest.Format("2006-01-02")
				newest = max(newest, row.Newest)
			}
		}
		page.Boards = append(page.Boards, row)
	}
	page.Boards[0].Items, page.Boards[0].Newest = total, newest
	latest, err := s.Store.Items(ctx, feeds.AllSlug, 10)
	if err != nil {
		return page, err
	}
	for _, it := range latest {
		page.Latest = append(page.Latest, latestRow{Title: it.Title, URL: it.URL, Board: s.Boards.Name(it.Board), Date: it.Published.Format("2006-01-02")})
	}
	return page, nil
}

// boardChoices returns a checkbox per board, checked if chosen is empty
// (all boards) or names it.
func (s *Server) boardChoices(chosen []string) []boardChoice {
	var out []boardChoice
	for _, b := range s.Boards.Boards() {
		c := boardChoice{Slug: b.Slug, Name: b.Name, Lang: otherLanguage(b), Checked: len(chosen) == 0}
		for _, slug := range chosen {
			if slug == b.Slug {
				c.Checked = true
			}
		}
		out = append(out, c)
	}
	return out
}

// otherLanguage is b's language when the page's (English) is not its own.
func otherLanguage(b feeds.Board) string {
	if l := b.Language(); l != "en" && !strings.HasPrefix(l, "en-") {
		return l
	}
	return ""
}
