package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// checkRun is one run of `msitfeed check` against a fake site.
type checkRun struct {
	site           *msittest.Site
	siteURL        string
	dbPath         string
	stdout, stderr string
	code           int
}

// checkSetup says how a check test's site and configuration look.
type checkSetup struct {
	posts  []msittest.Post // nil: the sample posts of the English and Korean boards
	opts   []msittest.Option
	wrap   func(http.Handler) http.Handler // may change what the site answers
	config string                          // TOML written to a file given with --config
	env    []string                        // more MSITFEED_* variables
}

// runCheckCmd serves the sample posts of the English and Korean boards,
// runs `msitfeed check args...` against them as main would (exit code from
// ExitCode) and fails if it created the database it was pointed at.
func runCheckCmd(t *testing.T, setup checkSetup, args ...string) checkRun {
	t.Helper()
	posts := setup.posts
	if posts == nil {
		posts = append(msittest.SamplePosts(), msittest.KoreanSamplePosts()...)
	}
	site := msittest.NewSite(posts, setup.opts...)
	var h http.Handler = site
	if setup.wrap != nil {
		h = setup.wrap(site)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "never.db")
	env := append([]string{
		"MSITFEED_DATABASE=" + dbPath,
		"MSITFEED_SOURCE_URL=" + srv.URL,
		"MSITFEED_SOURCE_RATE=1000",
		"MSITFEED_SOURCE_BACKOFF=1ms",
		"MSITFEED_SOURCE_RETRIES=1",
	}, setup.env...)
	argv := []string{"check"}
	if setup.config != "" {
		path := filepath.Join(dir, "msitfeed.toml")
		if err := os.WriteFile(path, []byte(setup.config), 0o644); err != nil {
			t.Fatal(err)
		}
		argv = []string{"--config", path, "check"}
	}
	var out, errb bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errb, env)
	code := ExitCode(m.Run(context.Background(), append(argv, args...)), &errb)
	if _, err := os.Stat(dbPath); !os.IsNotExist(err) {
		t.Errorf("check created or touched the database %s (stat: %v)", dbPath, err)
	}
	return checkRun{site: site, siteURL: srv.URL, dbPath: dbPath, stdout: out.String(), stderr: errb.String(), code: code}
}

// boardReport returns the part of check's report about one board.
func (r checkRun) boardReport(t *testing.T, slug string) string {
	t.Helper()
	var block []string
	in := false
	for _, l := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(l, slug+"  "):
			in = true
		case in && l == "":
			return strings.Join(block, "\n")
		}
		if in {
			block = append(block, l)
		}
	}
	if !in {
		t.Fatalf("no report of board %s in:\n%s", slug, r.stdout)
	}
	return strings.Join(block, "\n")
}

// wantNewest checks that the report of board b shows its page 1 and the
// newest post the site serves, as the site wrote it.
func (r checkRun) wantNewest(t *testing.T, b feeds.Board) {
	t.Helper()
	rep := r.boardReport(t, b.Slug)
	posts := r.site.Posts(b.Slug)
	p := posts[0]
	n := min(len(posts), 10)
	files := make([]string, len(p.Attachments))
	for i, a := range p.Attachments {
		files[i] = a.Name
	}
	attachments := "attachments  0"
	if len(files) > 0 {
		attachments = fmt.Sprintf("attachments  %d: %s", len(files), strings.Join(files, ", "))
	}
	want := []string{
		b.Slug + "  " + b.Name,
		fmt.Sprintf("mId=%s mPid=%s", b.MID, b.MPID),
		fmt.Sprintf("bbsSeqNo=%s", b.BBSSeqNo),
		fmt.Sprintf("%d on page 1", n),
		fmt.Sprintf("with a title %d, a date %d", n, n),
		fmt.Sprintf("post %d: %s%s/view.do?sCode=%s&mId=%s&mPid=%s&bbsSeqNo=%s&nttSeqNo=%d", p.ID,
			r.siteURL, b.Directory(), b.Section(), b.MID, b.MPID, b.BBSSeqNo, p.ID),
		"title        " + p.Title,
		"date         " + p.Date + " (post page)",
		"department   " + p.Department,
		attachments,
		"result         ok",
	}
	if b.Gallery {
		want = append(want, fmt.Sprintf("a thumbnail %d", n))
	}
	for _, w := range want {
		if !strings.Contains(rep, w) {
			t.Errorf("the report of %s lacks %q:\n%s", b.Slug, w, rep)
		}
	}
	if m := regexp.MustCompile(`body +(\d+) characters`).FindStringSubmatch(rep); m == nil || m[1] == "0" {
		t.Errorf("the report of %s gives no body length:\n%s", b.Slug, rep)
	}
}

func koreanBoard(slug string) feeds.Board {
	for _, b := range msittest.KoreanBoards() {
		if b.Slug == slug {
			return b
		}
	}
	panic("no Korean board " + slug)
}

// koreanConfig adds msittest's Korean press board as a configured board.
const koreanConfig = `
[boards.ko-press]
name = "보도자료"
lang = "ko"
list_url = "/bbs/list.do?sCode=user&mPid=208&mId=307"
`

func TestCheckReadsEveryShapeOfTheSite(t *testing.T) {
	tests := []struct {
		name  string
		setup checkSetup
		extra []feeds.Board // configured boards expected besides the built-in five
		from  map[string]string
	}{
		{"the classic shape reads fully", checkSetup{opts: []msittest.Option{msittest.WithShape(msittest.ShapeClassic)}}, nil, nil},
		{"the English shape of 2026 reads fully", checkSetup{opts: []msittest.Option{msittest.WithShape(msittest.ShapeEnglish2026)}}, nil, nil},
		{"the Korean site's shape on the English boards reads fully", checkSetup{opts: []msittest.Option{msittest.WithShape(msittest.ShapeKorean)}}, nil, nil},
		{"a list without a department column is no problem", checkSetup{opts: []msittest.Option{msittest.WithoutDepartment(true)}}, nil, nil},
		{"a Korean board added in the configuration file reads fully", checkSetup{config: koreanConfig},
			[]feeds.Board{koreanBoard("ko-press")}, map[string]string{"ko-press": "(list_url)"}},
		{"ids set in the environment are used and said to be configured",
			checkSetup{env: []string{"MSITFEED_BOARDS_NOTICE_MID=3", "MSITFEED_BOARDS_NOTICE_MPID=2", "MSITFEED_BOARDS_NOTICE_BBSSEQNO=41"}},
			nil, map[string]string{"notice": "mId=3 mPid=2 (configured), bbsSeqNo=41 (configured)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheckCmd(t, tt.setup)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
			}
			boards := append(msittest.Boards(), tt.extra...)
			for _, b := range boards {
				r.wantNewest(t, b)
			}
			from := map[string]string{
				"notice": "mId=3 mPid=2 (discovered), bbsSeqNo=41 (list page)",
				"press":  "mId=4 mPid=2 (built-in), bbsSeqNo=42 (built-in)",
			}
			maps.Copy(from, tt.from)
			for slug, want := range from {
				if rep := r.boardReport(t, slug); !strings.Contains(rep, want) {
					t.Errorf("the ids of %s do not say %q:\n%s", slug, want, rep)
				}
			}
			if want := fmt.Sprintf("%d boards: all %d read fully", len(boards), len(boards)); !strings.Contains(r.stdout, want) {
				t.Errorf("report does not end with %q:\n%s", want, r.stdout)
			}
		})
	}
}

// emptyHome serves a home page without the boards' menu, so no board can
// be discovered.
func emptyHome(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eng/index.do" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html><html><head><title>MSIT</title></head><body><p>Welcome.</p></body></html>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rewrite changes the pages whose path ends in suffix: every match of
// pattern becomes repl (regexp.ReplaceAll's $1 expansion).
func rewrite(suffix, pattern, repl string) func(http.Handler) http.Handler {
	re := regexp.MustCompile(pattern)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, suffix) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			w.WriteHeader(rec.Code)
			w.Write(re.ReplaceAll(rec.Body.Bytes(), []byte(repl)))
		})
	}
}

// Changes to the classic shape's pages: post pages without their date,
// list rows without their date, list rows whose department cell stays
// empty.
var (
	undatedPosts  = rewrite("/view.do", `<span class="date">[^<]*</span>`, "")
	undatedRows   = rewrite("/list.do", `'\d{4}-\d\d-\d\d'`, "''")
	emptyDeptRows = rewrite("/list.do", `(CHRG_DEPT_NM'\+'_\d+'\)\.html\()unescape\('[^']*'\)`, "$1''")
)

func both(a, b func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return a(b(next)) }
}

// missingPosts answers 404 for every post page.
func missingPosts(r *http.Request) (int, bool) {
	return http.StatusNotFound, strings.HasSuffix(r.URL.Path, "/view.do")
}

func TestCheckNamesEachProblem(t *testing.T) {
	press := msittest.Boards()[1]
	tests := []struct {
		name  string
		setup checkSetup
		args  []string
		code  int
		// stderr holds exactly these lines (matched as regular
		// expressions), then the summary line.
		stderr []string
		// the report (stdout) holds these.
		stdout []string
	}{
		{
			name:  "a redesign no parser knows names what was looked for on every board",
			setup: checkSetup{opts: []msittest.Option{msittest.WithShape(msittest.ShapeBroken)}},
			code:  1,
			stderr: []string{
				`^check: notice: list page 1 \(http://[^ ]+/eng/bbs/list\.do\?sCode=eng&mPid=2&mId=3&pageIndex=1\): no recognisable rows: looked for links calling fn_detail\(N\) or to view\.do\?nttSeqNo=N, and for a "no posts" message; the site's markup may have changed: run 'msitfeed check --save DIR' and report the page$`,
				`^check: press: list page 1 \(.*mId=4&pageIndex=1\): no recognisable rows: looked for links calling fn_detail\(N\)`,
				`^check: photo: list page 1 \(.*mId=5&pageIndex=1\): no recognisable rows: looked for links calling fn_detail\(N\)`,
				`^check: trends: list page 1 \(.*mId=6&pageIndex=1\): no recognisable rows: looked for links calling fn_detail\(N\)`,
				`^check: newsletter: list page 1 \(.*mId=7&pageIndex=1\): no recognisable rows: looked for links calling fn_detail\(N\)`,
			},
			stdout: []string{"5 boards: 0 read fully, 5 with problems"},
		},
		{
			name:  "a configured board whose list is gone names its list_url, and the others are still read",
			setup: checkSetup{config: koreanConfig + "\n[boards.ko-gone]\nname = \"없는 게시판\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=999\"\n"},
			code:  1,
			stderr: []string{
				`^check: ko-gone: list page 404 \(http://[^ ]+/bbs/list\.do\?sCode=user&mPid=208&mId=999&pageIndex=1\); check boards\.ko-gone\.list_url$`,
			},
			stdout: []string{"ko-gone  없는 게시판", "7 boards: 6 read fully, 1 with problems"},
		},
		{
			name:  "boards missing from the home page menu name the menu text and the keys to set",
			setup: checkSetup{wrap: emptyHome},
			code:  1,
			stderr: []string{
				`^check: notice: board ids unknown \(looked for "Notice" in the home page menu\); set boards\.notice\.mid and boards\.notice\.mpid$`,
				`^check: photo: board ids unknown \(looked for "Photo News" in the home page menu\); set boards\.photo\.mid and boards\.photo\.mpid$`,
				`^check: trends: board ids unknown \(looked for "Science & ICT Trends" in the home page menu\); set boards\.trends\.mid and boards\.trends\.mpid$`,
				`^check: newsletter: board ids unknown \(looked for "Newsletter" in the home page menu\); set boards\.newsletter\.mid and boards\.newsletter\.mpid$`,
			},
			stdout: []string{"5 boards: 1 read fully, 4 with problems"},
		},
		{
			name:   "a post page without a date is a note when the list has it",
			setup:  checkSetup{wrap: undatedPosts},
			args:   []string{"--board", "press"},
			code:   0,
			stdout: []string{" (list only)\n", "note           newest post", "no date on its page (looked for span.date or a dt/dd date (dl.tit_con)); the crawl uses the list's", "1 board: all 1 read fully"},
		},
		{
			name:   "an empty board is a note, not a problem",
			setup:  checkSetup{posts: slices.DeleteFunc(msittest.SamplePosts(), func(p msittest.Post) bool { return p.Board == "press" })},
			args:   []string{"--board", "press"},
			code:   0,
			stdout: []string{"rows           0 on page 1", "note           no posts on page 1: the board is empty", "1 board: all 1 read fully"},
		},
		{
			name:  "list rows without dates name the cells looked for",
			setup: checkSetup{wrap: undatedRows},
			args:  []string{"--board", "press"},
			code:  1,
			stderr: []string{
				`^check: press: date missing on 10 of 10 list rows \(looked for td_PSTG_YMD_n and td_REG_DT_n cells and a date in the row's text\); the site's markup may have changed: run 'msitfeed check --save DIR' and report the page$`,
			},
			stdout: []string{"with a title 10, a date 0, a department 10", "(post page)"},
		},
		{
			name:  "a date on neither the newest post's page nor its row is a problem too",
			setup: checkSetup{wrap: both(undatedRows, undatedPosts)},
			args:  []string{"--board", "press"},
			code:  1,
			stderr: []string{
				`^check: press: date missing on 10 of 10 list rows`,
				`^check: press: newest post \d+: date missing on its page and its list row \(looked for span\.date or a dt/dd date \(dl\.tit_con\); looked for td_PSTG_YMD_n and td_REG_DT_n cells and a date in the row's text\); the site's markup may have changed`,
			},
		},
		{
			name:  "empty department cells are a problem, a page without the column is not",
			setup: checkSetup{wrap: emptyDeptRows},
			args:  []string{"--board", "press,trends"},
			code:  1,
			stderr: []string{
				`^check: press: department missing on 10 of 10 list rows \(looked for td_CHRG_DEPT_NM_n cells and a \.dept element\); the site's markup may have changed`,
				`^check: trends: department missing on 10 of 10 list rows`,
			},
			stdout: []string{"department   Science & Technology Policy Division\n"},
		},
		{
			name:  "a newest post that cannot be read names the board, the post and the keys",
			setup: checkSetup{opts: []msittest.Option{msittest.WithFault(missingPosts)}},
			args:  []string{"--board", "press,trends"},
			code:  1,
			stderr: []string{
				`^check: press: newest post \d+: page 404 \(http://[^ ]+/eng/bbs/view\.do\?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=\d+\); check boards\.press\.mid, boards\.press\.mpid and boards\.press\.bbsseqno$`,
				`^check: trends: newest post \d+: page 404 .*boards\.trends\.bbsseqno$`,
			},
			stdout: []string{"2 boards: 0 read fully, 2 with problems"},
		},
		{
			name:   "--board given twice checks those boards only",
			args:   []string{"--board", "photo", "--board", "press"},
			code:   0,
			stdout: []string{"press  Press Releases", "photo  Photo News", "2 boards: all 2 read fully"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheckCmd(t, tt.setup, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", r.code, tt.code, r.stderr, r.stdout)
			}
			var lines []string
			if r.stderr != "" {
				lines = strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			}
			if tt.code != 0 {
				want := fmt.Sprintf("msitfeed: check: %d problem", len(tt.stderr))
				if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], want) {
					t.Errorf("stderr does not end with %q:\n%s", want, r.stderr)
				} else {
					lines = lines[:len(lines)-1]
				}
			}
			if len(lines) != len(tt.stderr) {
				t.Errorf("stderr has %d problem lines, want %d:\n%s", len(lines), len(tt.stderr), r.stderr)
			}
			for i, re := range tt.stderr {
				if i < len(lines) && !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("stderr line %d:\n %s\ndoes not match\n %s", i+1, lines[i], re)
				}
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("the report lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	t.Run("boards that read fully beside a failing one are still reported in full", func(t *testing.T) {
		r := runCheckCmd(t, checkSetup{config: koreanConfig + "\n[boards.ko-gone]\nname = \"없는 게시판\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=999\"\n"})
		r.wantNewest(t, press)
		r.wantNewest(t, koreanBoard("ko-press"))
	})
}

func TestCheckSavesEveryPage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pages", "2026-10-02") // created by check
	r := runCheckCmd(t, checkSetup{config: koreanConfig + "\n[boards.ko-gone]\nname = \"없는 게시판\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=999\"\n"},
		"--save", dir, "--board", "notice,press,ko-press,ko-gone")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (ko-gone's list is 404); stderr:\n%s", r.code, r.stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// robots.txt and the home page (discovering notice) first, then each
	// board's list page and newest post in the order checked.
	pages := []struct {
		stem, ext, path string
		status          int
	}{
		{"001-robots-site", ".txt", "/robots.txt", 200},
		{"002-home-site", ".html", "/eng/index.do", 200},
		{"003-list-notice", ".html", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=3&pageIndex=1", 200},
		{"004-post-notice", ".html", fmt.Sprintf("/eng/bbs/view.do?sCode=eng&mId=3&mPid=2&bbsSeqNo=41&nttSeqNo=%d", r.site.Posts("notice")[0].ID), 200},
		{"005-list-press", ".html", "/eng/bbs/list.do?sCode=eng&mPid=2&mId=4&pageIndex=1", 200},
		{"006-post-press", ".html", fmt.Sprintf("/eng/bbs/view.do?sCode=eng&mId=4&mPid=2&bbsSeqNo=42&nttSeqNo=%d", r.site.Posts("press")[0].ID), 200},
		{"007-list-ko-gone", ".html", "/bbs/list.do?sCode=user&mPid=208&mId=999&pageIndex=1", 404},
		{"008-list-ko-press", ".html", "/bbs/list.do?sCode=user&mPid=208&mId=307&pageIndex=1", 200},
		{"009-post-ko-press", ".html", fmt.Sprintf("/bbs/view.do?sCode=user&mId=307&mPid=208&bbsSeqNo=94&nttSeqNo=%d", r.site.Posts("ko-press")[0].ID), 200},
	}
	var want []string
	for _, p := range pages {
		want = append(want, p.stem+p.ext, p.stem+".json")
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("saved files\n%v\nwant\n%v", names, want)
	}
	for _, p := range pages {
		t.Run(p.stem+" has its body and its sidecar", func(t *testing.T) {
			js, err := os.ReadFile(filepath.Join(dir, p.stem+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				URL     string              `json:"url"`
				Status  int                 `json:"status"`
				Header  map[string][]string `json:"header"`
				Fetched string              `json:"fetched"`
				Body    string              `json:"body"`
			}
			if err := json.Unmarshal(js, &meta); err != nil {
				t.Fatalf("%s: %v", js, err)
			}
			if strings.Contains(p.path, "&") && !strings.Contains(string(js), p.path) {
				t.Errorf("the sidecar does not show the URL as it is (%s):\n%s", p.path, js)
			}
			if meta.URL != r.siteURL+p.path || meta.Status != p.status || meta.Body != p.stem+p.ext || meta.Fetched == "" {
				t.Errorf("sidecar says url %s status %d body %s fetched %q; want %s, %d, %s and a time", meta.URL, meta.Status, meta.Body, meta.Fetched,
					r.siteURL+p.path, p.status, p.stem+p.ext)
			}
			if len(meta.Header["Content-Type"]) == 0 {
				t.Errorf("sidecar has no Content-Type header: %s", js)
			}
			body, err := os.ReadFile(filepath.Join(dir, p.stem+p.ext))
			if err != nil {
				t.Fatal(err)
			}
			// The saved body is the page as served, byte for byte.
			resp, err := http.Get(r.siteURL + p.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var served bytes.Buffer
			served.ReadFrom(resp.Body)
			if !bytes.Equal(body, served.Bytes()) {
				t.Errorf("saved body (%d bytes) differs from the page served (%d bytes)", len(body), served.Len())
			}
		})
	}
	if !strings.Contains(r.stdout, "saved 9 pages in "+dir) {
		t.Errorf("the report does not say where the pages went:\n%s", r.stdout)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown board", []string{"--board", "press,pres"}, `check: unknown board "pres"`},
		{"a --save directory that cannot be made", []string{"--save", filepath.Join(file, "pages")}, "check: --save " + filepath.Join(file, "pages")},
		{"an argument", []string{"press"}, `check: unexpected argument "press"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheckCmd(t, checkSetup{}, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q", r.code, r.stderr, tt.want)
			}
			if n := r.site.Requests(); n != 0 {
				t.Errorf("a usage error sent %d requests to the site", n)
			}
		})
	}
}
