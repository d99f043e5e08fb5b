package feeds_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
)

func init() {
	// Another test file of this binary may already define -update.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func kst(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, feeds.KST)
}

// renderFixture is a fixed set of posts covering what the renderers must
// handle: several attachments, none, a gallery thumbnail, a hostile title,
// Korean and emoji.
func renderFixture() []feeds.Item {
	return []feeds.Item{
		{
			Board: "press", ID: 1001,
			Title:      "MSIT announces 6G strategy",
			URL:        "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=1001",
			Published:  kst(2024, 5, 2, 0, 0),
			FirstSeen:  kst(2024, 5, 2, 10, 30),
			Updated:    kst(2024, 5, 3, 9, 15),
			Department: "Radio Policy Division",
			Body:       `<p>The Ministry announced its <strong>6G</strong> strategy.</p>`,
			Summary:    "The Ministry announced its 6G strategy.",
			Attachments: []feeds.Attachment{
				{Name: "6G strategy.hwp", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=1&fileOrdr=1", Type: "application/x-hwp"},
				{Name: "6G strategy.pdf", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=1&fileOrdr=2", Type: "application/pdf"},
			},
		},
		{
			Board: "notice", ID: 2002,
			Title:      "Call for <script>alert(1)</script> R&D\x00 proposals\r\nsecond line",
			URL:        "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=2002",
			Published:  kst(2024, 5, 1, 0, 0),
			FirstSeen:  kst(2024, 5, 1, 11, 0),
			Updated:    kst(2024, 5, 1, 11, 0),
			Department: "",
			Body:       "<p>Proposals are invited &amp; welcome.\x01</p>",
			Summary:    "Proposals are invited & welcome.",
		},
		{
			Board: "photo", ID: 3003,
			Title:      "과학기술정보통신부 장관 방문 📷",
			URL:        "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=3003",
			Published:  kst(2024, 4, 30, 0, 0),
			FirstSeen:  kst(2024, 4, 30, 12, 0),
			Updated:    kst(2024, 4, 30, 12, 0),
			Department: "Spokesperson's Office",
			Body:       "<p>The Minister visited a research centre 🚀.</p>",
			Summary:    "The Minister visited a research centre 🚀.",
			Thumbnail:  "https://www.msit.go.kr/images/photo/3003_thumb.jpg",
		},
		{
			Board: "trends", ID: 4004,
			Title:      "ICT trends, April",
			URL:        "https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=4004",
			Published:  kst(2024, 4, 29, 0, 0),
			FirstSeen:  kst(2024, 4, 29, 8, 0),
			Updated:    kst(2024, 4, 29, 8, 0),
			Department: "ICT Policy Division",
			Body:       `<p>Monthly trends.</p><p><img src="https://www.msit.go.kr/images/chart.png" alt="chart"></p>`,
			Summary:    "Monthly trends.",
			Thumbnail:  "https://www.msit.go.kr/images/trends_thumb.jpg",
			Attachments: []feeds.Attachment{
				{Name: "trends-april.hwp", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=4&fileOrdr=1", Type: "application/x-hwp"},
				{Name: "data.xlsx", URL: "https://www.msit.go.kr/ssm/file/fileDown.do?atchFileNo=4&fileOrdr=2"},
			},
		},
	}
}

// wantTitles are the fixture's titles as every reader must see them: one
// line, NUL gone, markup kept as text.
var wantTitles = []string{
	"MSIT announces 6G strategy",
	"Call for <script>alert(1)</script> R&D proposals second line",
	"과학기술정보통신부 장관 방문 📷",
	"ICT trends, April",
}

var wantIDs = []string{
	"tag:msit.go.kr,2024:eng/press/1001",
	"tag:msit.go.kr,2024:eng/notice/2002",
	"tag:msit.go.kr,2024:eng/photo/3003",
	"tag:msit.go.kr,2024:eng/trends/4004",
}

// wantEnclosures are the attachment URLs each format carries: RSS one (the
// first PDF, else the first file), Atom and JSON all of them.
func wantEnclosures(format feeds.Format) [][]string {
	items := renderFixture()
	out := make([][]string, len(items))
	for i, it := range items {
		for _, a := range it.Attachments {
			out[i] = append(out[i], a.URL)
		}
	}
	if format == feeds.FormatRSS {
		out[0] = out[0][1:2] // the PDF, though second
		out[3] = out[3][:1]  // no PDF: the first file
	}
	return out
}

func renderFixtureMeta(format feeds.Format) feeds.FeedMeta {
	opts := feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: "https://www.msit.go.kr"}
	return opts.Meta(feeds.DefaultBoards(), feeds.AllSlug, format, 50, feeds.NewestUpdate(renderFixture(), time.Time{}))
}

func renderFixtureFeed(t testing.TB, format feeds.Format) []byte {
	t.Helper()
	b, err := feeds.Render(renderFixtureMeta(format), renderFixture(), format)
	if err != nil {
		t.Fatalf("render %s: %v", format, err)
	}
	return b
}

func TestRender_MatchesGoldenFiles(t *testing.T) {
	for _, format := range feeds.Formats() {
		t.Run(string(format), func(t *testing.T) {
			got := renderFixtureFeed(t, format)
			path := filepath.Join("testdata", "render_all."+string(format))
			if updateGolden() {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test ./feeds -run TestRender -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s; run with -update if the change is intended\n%s", format, path, got)
			}
		})
	}
}

func TestRender_IsDeterministic(t *testing.T) {
	for _, format := range feeds.Formats() {
		if !bytes.Equal(renderFixtureFeed(t, format), renderFixtureFeed(t, format)) {
			t.Errorf("%s: two renderings of the same input differ", format)
		}
	}
}

func TestRender_EmptyFeedIsValid(t *testing.T) {
	opts := feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: "https://www.msit.go.kr"}
	for _, format := range feeds.Formats() {
		b, err := feeds.Render(opts.Meta(nil, "notice", format, 50, time.Time{}), nil, format)
		if err != nil {
			t.Fatal(err)
		}
		f, err := gofeed.NewParser().ParseString(string(b))
		if err != nil {
			t.Fatalf("%s: gofeed cannot read an empty feed: %v\n%s", format, err, b)
		}
		if f.Title != "MSIT — Notice" || len(f.Items) != 0 {
			t.Errorf("%s: title %q, %d items", format, f.Title, len(f.Items))
		}
		if format == feeds.FormatJSON && !bytes.Contains(b, []byte(`"items": []`)) {
			t.Errorf("JSON Feed without items must still have an items array:\n%s", b)
		}
	}
}

func TestRender_ReadBackWithGofeed(t *testing.T) {
	items := renderFixture()
	for _, format := range feeds.Formats() {
		t.Run(string(format), func(t *testing.T) {
			f, err := gofeed.NewParser().ParseString(string(renderFixtureFeed(t, format)))
			if err != nil {
				t.Fatalf("gofeed: %v", err)
			}
			if f.Title != "MSIT — All boards" {
				t.Errorf("feed title %q", f.Title)
			}
			if f.Language != "en" {
				t.Errorf("feed language %q", f.Language)
			}
			wantSelf := "https://feeds.example.org/feeds/all." + string(format)
			if f.FeedLink != wantSelf {
				t.Errorf("self link %q, want %q", f.FeedLink, wantSelf)
			}
			if f.Link != "https://www.msit.go.kr/eng/index.do" {
				t.Errorf("alternate link %q", f.Link)
			}
			if len(f.Items) != len(items) {
				t.Fatalf("%d items, want %d", len(f.Items), len(items))
			}
			encs := wantEnclosures(format)
			for i, got := range f.Items {
				if got.Title != wantTitles[i] {
					t.Errorf("item %d title %q, want %q", i, got.Title, wantTitles[i])
				}
				if got.GUID != wantIDs[i] {
					t.Errorf("item %d id %q, want %q", i, got.GUID, wantIDs[i])
				}
				if got.Link != items[i].URL {
					t.Errorf("item %d link %q, want %q", i, got.Link, items[i].URL)
				}
				checkKST(t, "published", got.Published, got.PublishedParsed, items[i].Published)
				// "updated" is when msitfeed stored the post or its last edit.
				wantUpdated := items[i].Updated
				checkKST(t, "updated", got.Updated, got.UpdatedParsed, wantUpdated)
				var urls []string
				for _, e := range got.Enclosures {
					urls = append(urls, e.URL)
				}
				if strings.Join(urls, " ") != strings.Join(encs[i], " ") {
					t.Errorf("item %d enclosures %q, want %q", i, urls, encs[i])
				}
				for _, a := range items[i].Attachments {
					if !strings.Contains(got.Content, strings.ReplaceAll(a.URL, "&", "&amp;")) {
						t.Errorf("item %d content lacks a link to %s", i, a.URL)
					}
				}
				if dept := items[i].Department; dept != "" {
					if got.Author == nil || got.Author.Name != dept {
						t.Errorf("item %d author %+v, want %q", i, got.Author, dept)
					}
					if len(got.Categories) == 0 || got.Categories[0] != dept {
						t.Errorf("item %d categories %q, want %q", i, got.Categories, dept)
					}
				}
			}
			// The gallery post shows its thumbnail: as image in JSON, in the content everywhere.
			photo := f.Items[2]
			if !strings.Contains(photo.Content, `<img src="https://www.msit.go.kr/images/photo/3003_thumb.jpg"`) {
				t.Errorf("gallery content lacks the thumbnail: %s", photo.Content)
			}
			if format == feeds.FormatJSON && (photo.Image == nil || photo.Image.URL != items[2].Thumbnail) {
				t.Errorf("JSON image %+v", photo.Image)
			}
			// A body that has an image gets no second one.
			if strings.Contains(f.Items[3].Content, "trends_thumb.jpg") {
				t.Errorf("thumbnail added to a body that has an image")
			}
		})
	}
}

// checkKST checks a date as written (raw) and as parsed: the instant must
// be want and the text must carry the +09:00 offset.
func checkKST(t *testing.T, what, raw string, parsed *time.Time, want time.Time) {
	t.Helper()
	if parsed == nil {
		t.Errorf("%s missing", what)
		return
	}
	if !parsed.Equal(want) {
		t.Errorf("%s %s, want %s", what, parsed, want)
	}
	if !strings.HasSuffix(raw, "+09:00") && !strings.HasSuffix(raw, "+0900") {
		t.Errorf("%s %q is not written with +09:00", what, raw)
	}
}

// feedparserScript reads a feed on stdin and prints what Python's
// feedparser made of it.
const feedparserScript = `
import json, sys
import feedparser
d = feedparser.parse(sys.stdin.buffer.read())
out = {"bozo": int(d.bozo), "bozo_exception": str(d.get("bozo_exception", "")), "title": d.feed.get("title", ""), "entries": []}
for e in d.entries:
    out["entries"].append({
        "title": e.get("title", ""),
        "id": e.get("id", ""),
        "link": e.get("link", ""),
        "published": e.get("published", ""),
        "updated": e.get("updated", ""),
        "enclosures": [x.get("href", "") for x in e.get("enclosures", [])],
    })
print(json.dumps(out))
`

type feedparserResult struct {
	Bozo          int    `json:"bozo"`
	BozoException string `json:"bozo_exception"`
	Title         string `json:"title"`
	Entries       []struct {
		Title, ID, Link, Published, Updated string
		Enclosures                          []string
	} `json:"entries"`
}

// runFeedparser parses doc with Debian's python3-feedparser, an independent
// reader; format json is read with Python's json module instead, since
// feedparser does not read JSON Feed.
func runFeedparser(t *testing.T, doc []byte) feedparserResult {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import feedparser").Run(); err != nil {
		t.Fatalf("%s cannot import feedparser (%v): install it with apt-get install -y python3-feedparser", python, err)
	}
	cmd := exec.Command(python, "-c", feedparserScript)
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("feedparser: %v\n%s", err, stderr.String())
	}
	var res feedparserResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("feedparser output %q: %v", out, err)
	}
	return res
}

func TestRender_ReadBackWithPythonFeedparser(t *testing.T) {
	items := renderFixture()
	for _, format := range []feeds.Format{feeds.FormatRSS, feeds.FormatAtom} {
		t.Run(string(format), func(t *testing.T) {
			res := runFeedparser(t, renderFixtureFeed(t, format))
			if res.Bozo != 0 {
				t.Fatalf("feedparser found the feed ill-formed: %s", res.BozoException)
			}
			if res.Title != "MSIT — All boards" {
				t.Errorf("title %q", res.Title)
			}
			if len(res.Entries) != len(items) {
				t.Fatalf("%d entries, want %d", len(res.Entries), len(items))
			}
			encs := wantEnclosures(format)
			for i, e := range res.Entries {
				if e.Title != wantTitles[i] {
					t.Errorf("entry %d title %q, want %q", i, e.Title, wantTitles[i])
				}
				if e.ID != wantIDs[i] {
					t.Errorf("entry %d id %q, want %q", i, e.ID, wantIDs[i])
				}
				if e.Link != items[i].URL {
					t.Errorf("entry %d link %q, want %q", i, e.Link, items[i].URL)
				}
				if !strings.Contains(e.Published, "+09") && !strings.Contains(e.Published, "+0900") {
					t.Errorf("entry %d published %q lacks +09:00", i, e.Published)
				}
				if !strings.HasSuffix(e.Updated, "+09:00") {
					t.Errorf("entry %d updated %q lacks +09:00", i, e.Updated)
				}
				if strings.Join(e.Enclosures, " ") != strings.Join(encs[i], " ") {
					t.Errorf("entry %d enclosures %q, want %q", i, e.Enclosures, encs[i])
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		// feedparser 6 does not read JSON Feed; check the document with
		// Python's own JSON parser and the fields JSON Feed 1.1 requires.
		const script = `
import json, sys
d = json.load(sys.stdin)
assert d["version"] == "https://jsonfeed.org/version/1.1", d["version"]
print(json.dumps({"bozo": 0, "title": d["title"], "entries": [
    {"title": i["title"], "id": i["id"], "link": i["url"], "published": i["date_published"],
     "updated": i["date_modified"], "enclosures": [a["url"] for a in i.get("attachments", [])]}
    for i in d["items"]]}))
`
		cmd := exec.Command("/usr/bin/python3", "-c", script)
		cmd.Stdin = bytes.NewReader(renderFixtureFeed(t, feeds.FormatJSON))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python json: %v\n%s", err, out)
		}
		var res feedparserResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		encs := wantEnclosures(feeds.FormatJSON)
		for i, e := range res.Entries {
			if e.Title != wantTitles[i] || e.ID != wantIDs[i] || e.Link != items[i].URL {
				t.Errorf("entry %d: %q %q %q", i, e.Title, e.ID, e.Link)
			}
			if !strings.HasSuffix(e.Published, "+09:00") || !strings.HasSuffix(e.Updated, "+09:00") {
				t.Errorf("entry %d dates %q %q lack +09:00", i, e.Published, e.Updated)
			}
			if strings.Join(e.Enclosures, " ") != strings.Join(encs[i], " ") {
				t.Errorf("entry %d attachments %q, want %q", i, e.Enclosures, encs[i])
			}
		}
	})
}

// RSS and Atom name no XSL stylesheet: browsers are removing XSLT, and a
// browser tab gets the feed's HTML page instead (FeedPage).
func TestRender_NoStylesheet(t *testing.T) {
	for _, format := range []feeds.Format{feeds.FormatRSS, feeds.FormatAtom} {
		b := renderFixtureFeed(t, format)
		root := "<rss "
		if format == feeds.FormatAtom {
			root = "<feed "
		}
		if want := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + root; !bytes.HasPrefix(b, []byte(want)) {
			t.Errorf("%s does not start with the declaration and its root:\n%.200s", format, b)
		}
		if bytes.Contains(b, []byte("xml-stylesheet")) {
			t.Errorf("%s names a stylesheet", format)
		}
	}
}

func TestOptionsMeta_LinksToTheBoardListPage(t *testing.T) {
	opts := feeds.Options{BaseURL: "https://feeds.example.org/", SourceURL: "https://www.msit.go.kr"}
	m := opts.Meta(feeds.DefaultBoards(), "press", feeds.FormatAtom, 50, time.Time{})
	if m.Title != "MSIT — Press Releases" {
		t.Errorf("title %q", m.Title)
	}
	if m.SiteURL != "https://www.msit.go.kr/eng/bbs/list.do?sCode=eng&mPid=2&mId=4" {
		t.Errorf("site URL %q", m.SiteURL)
	}
	if m.SelfURL != "https://feeds.example.org/feeds/press.atom" {
		t.Errorf("self URL %q", m.SelfURL)
	}
	if m := opts.Meta(nil, "press", feeds.FormatRSS, 10, time.Time{}); m.SelfURL != "https://feeds.example.org/feeds/press.rss?limit=10" {
		t.Errorf("self URL with a limit %q", m.SelfURL)
	}
	// A board whose ids are not discovered yet links to the English home page.
	if m := opts.Meta(feeds.DefaultBoards(), "notice", feeds.FormatRSS, 50, time.Time{}); m.SiteURL != "https://www.msit.go.kr/eng/index.do" {
		t.Errorf("undiscovered board site URL %q", m.SiteURL)
	}
}

func BenchmarkRenderRSS(b *testing.B)  { benchmarkRender(b, feeds.FormatRSS) }
func BenchmarkRenderAtom(b *testing.B) { benchmarkRender(b, feeds.FormatAtom) }
func BenchmarkRenderJSON(b *testing.B) { benchmarkRender(b, feeds.FormatJSON) }

// benchItems returns 50 posts with full-length bodies (about 8 KB each).
func benchItems() []feeds.Item {
	base := renderFixture()
	para := "<p>" + strings.Repeat("The Ministry of Science and ICT announced measures to support research. ", 12) + "</p>\n"
	body := strings.Repeat(para, 9)
	items := make([]feeds.Item, 50)
	for i := range items {
		it := base[i%len(base)]
		it.ID = int64(10000 + i)
		it.Body = body
		items[i] = it
	}
	return items
}

func benchmarkRender(b *testing.B, format feeds.Format) {
	items := benchItems()
	meta := renderFixtureMeta(format)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := feeds.Render(meta, items, format)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

func TestRender_DropsCharactersXMLCannotCarry(t *testing.T) {
	for _, tc := range []struct{ name, title, want string }{
		{"NUL", "a\x00b", "ab"},
		{"C0 controls", "a\x01\x08\x0b\x0c\x1fb", "ab"},
		{"tab, CR and LF become one space", "a\t\r\n b", "a b"},
		{"U+FFFE and U+FFFF", "a\uFFFE\uFFFFb", "ab"},
		{"bytes that are not UTF-8", "a\xff\xfeb", "ab"},
		{"CDATA end inside content", "a]]>b", "a]]>b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := renderFixture()[0]
			it.Title, it.Body, it.Summary, it.Department = tc.title, "<p>"+tc.title+"</p>", tc.title, tc.title
			for _, format := range feeds.Formats() {
				b, err := feeds.Render(renderFixtureMeta(format), []feeds.Item{it}, format)
				if err != nil {
					t.Fatal(err)
				}
				if format != feeds.FormatJSON {
					dec := xml.NewDecoder(bytes.NewReader(b))
					for {
						if _, err := dec.Token(); err == io.EOF {
							break
						} else if err != nil {
							t.Fatalf("%s is not well-formed XML: %v", format, err)
						}
					}
				}
				f, err := gofeed.NewParser().ParseString(string(b))
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				if f.Items[0].Title != tc.want {
					t.Errorf("%s title %q, want %q", format, f.Items[0].Title, tc.want)
				}
			}
		})
	}
}

func TestItemID_SurvivesEdits(t *testing.T) {
	it := renderFixture()[0]
	edited := it
	edited.Title, edited.URL = "Edited title", "https://www.msit.go.kr/eng/bbs/view.do?mId=99&nttSeqNo=1001"
	edited.Published, edited.Updated = it.Published.AddDate(0, 0, 1), it.Updated.AddDate(0, 1, 0)
	for _, format := range feeds.Formats() {
		var ids []string
		for _, x := range []feeds.Item{it, edited} {
			f, err := gofeed.NewParser().ParseString(string(mustRender(t, x, format)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, f.Items[0].GUID)
		}
		if ids[0] != ids[1] || ids[0] != feeds.ItemID("press", 1001) {
			t.Errorf("%s: id %q became %q after an edit", format, ids[0], ids[1])
		}
	}
}

func mustRender(t *testing.T, it feeds.Item, format feeds.Format) []byte {
	t.Helper()
	b, err := feeds.Render(renderFixtureMeta(format), []feeds.Item{it}, format)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
