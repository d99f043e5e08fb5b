package websub

import (
	"net/http"

	"github.com/msitfeed/msitfeed/feeds"
)

// FeedLinks wraps the feed handler so that every feed response carries
// the WebSub discovery headers the Recommendation asks publishers for: a
// Link with rel="hub" for each hub and exactly one with rel="self", the
// feed's canonical URL (with its ?limit= when it is not the default). A
// subscriber checks these before the documents' own links, and they are the
// only ones a JSON Feed reader that knows WebSub but not JSON Feed's hubs
// finds. The values are built once per feed; a request costs a map lookup.
func (h *Hub) FeedLinks(next http.Handler) http.Handler {
	hubs := h.Hubs()
	if len(hubs) == 0 {
		return next
	}
	l := &linker{next: next, hubs: hubs, topics: h.topics, links: map[string][]string{}}
	for _, b := range append(h.topics.reg.Slugs(), feeds.AllSlug) {
		for _, t := range boardTopics(b) {
			l.links["/feeds/"+b+"."+string(t.Format)] = []string{l.value(h.topics.URL(t))}
		}
	}
	return l
}

type linker struct {
	next   http.Handler
	hubs   []string
	topics topics
	links  map[string][]string // request path → Link value
}

func (l *linker) value(self string) string {
	v := ""
	for _, hub := range l.hubs {
		v += "<" + hub + `>; rel="hub", `
	}
	return v + "<" + self + `>; rel="self"`
}

func (l *linker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v, ok := l.links[r.URL.Path]; ok {
		if r.URL.RawQuery == "" {
			// One element and no spare capacity: a handler appending to
			// the field copies instead of writing into the shared slice.
			w.Header()["Link"] = v
		} else if t, ok := l.topics.Parse(l.topics.baseText + r.URL.Path + "?" + r.URL.RawQuery); ok {
			w.Header()["Link"] = []string{l.value(l.topics.URL(t))}
		}
	}
	l.next.ServeHTTP(w, r)
}
