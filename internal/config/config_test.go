package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.BaseURL != "http://127.0.0.1:8080" {
		t.Errorf("base_url default = %q, want http://<listen>", c.BaseURL)
	}
	if c.Source.Rate != 1 || c.Source.Pages != 3 || c.Feeds.Limit != 50 {
		t.Errorf("defaults: rate %v pages %d limit %d", c.Source.Rate, c.Source.Pages, c.Feeds.Limit)
	}
}

func TestFileThenEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "msitfeed.toml")
	err := os.WriteFile(path, []byte(`
database = "/var/lib/msitfeed/m.db"
listen = "0.0.0.0:9000"
[source]
rate = 0.5
timeout = "10s"
[boards.notice]
mid = "3"
mpid = "2"
[smtp]
host = "mail.example.org"
port = 587
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"MSITFEED_SMTP_HOST=relay.example.org", "MSITFEED_SOURCE_PAGES=7",
		"MSITFEED_BOARDS_TRENDS_MID=9", "MSITFEED_BOARDS_TRENDS_MPID=2", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "/var/lib/msitfeed/m.db" || c.Listen != "0.0.0.0:9000" || c.BaseURL != "http://0.0.0.0:9000" {
		t.Errorf("file values not applied: %+v", c)
	}
	if c.Source.Rate != 0.5 || c.Source.Timeout != 10*time.Second || c.Source.Pages != 7 {
		t.Errorf("source = %+v", c.Source)
	}
	if c.SMTP.Host != "relay.example.org" || c.SMTP.Port != 587 {
		t.Errorf("smtp = %s:%d, want environment to win over file", c.SMTP.Host, c.SMTP.Port)
	}
	if c.Boards["notice"].MID != "3" || c.Boards["trends"].MID != "9" {
		t.Errorf("boards = %+v", c.Boards)
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		env     []string
		wantKey string
	}{
		{"rate zero", "", []string{"MSITFEED_SOURCE_RATE=0"}, "source.rate"},
		{"rate not a number", "", []string{"MSITFEED_SOURCE_RATE=fast"}, "MSITFEED_SOURCE_RATE"},
		{"tls mode", "", []string{"MSITFEED_SMTP_TLS=maybe"}, "smtp.tls"},
		{"limit too big", "", []string{"MSITFEED_FEEDS_LIMIT=501"}, "feeds.limit"},
		{"unknown board", "[boards.sports]\nmid = \"1\"\n", nil, "boards.sports"},
		{"unknown key", "databse = \"x.db\"\n", nil, "databse"},
		{"bad from", "", []string{"MSITFEED_MAIL_FROM=not an address"}, "mail.from"},
		{"bad base url", "", []string{"MSITFEED_BASE_URL=ftp://x"}, "base_url"},
		{"broken toml", "listen = \n", nil, "msitfeed.toml"},
		{"negative pool", "", []string{"MSITFEED_DATABASE_MAX_CONNS=-1"}, "database_max_conns"},
		{"no connect timeout", "database_connect_timeout = \"0s\"\n", nil, "database_connect_timeout"},
		{"lease too short", "", []string{"MSITFEED_SCHEDULE_LEASE=100ms"}, "schedule.lease"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "msitfeed.toml")
				os.WriteFile(path, []byte(tc.file), 0o600)
			}
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}

func TestPoolLeaseAndInstance(t *testing.T) {
	path := writeConfig(t, `
instance = "web-1"
database_max_conns = 8
database_conn_max_lifetime = "5m"
[schedule]
lease = "20s"
`)
	c, err := Load(path, []string{"MSITFEED_DATABASE_CONNECT_TIMEOUT=3s", "MSITFEED_SCHEDULE_LEASE=30s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Instance != "web-1" || c.DatabaseMaxConns != 8 || c.DatabaseConnMaxLifetime != 5*time.Minute ||
		c.DatabaseConnectTimeout != 3*time.Second || c.DatabaseMaxIdleConns != 4 || c.Schedule.Lease != 30*time.Second {
		t.Fatalf("got instance %q, pool %d/%d/%v/%v, lease %v", c.Instance, c.DatabaseMaxConns, c.DatabaseMaxIdleConns,
			c.DatabaseConnMaxLifetime, c.DatabaseConnectTimeout, c.Schedule.Lease)
	}
	d := Default()
	if d.DatabaseMaxConns != 0 || d.DatabaseConnectTimeout != 5*time.Second || d.Schedule.Lease != 15*time.Second {
		t.Fatalf("defaults: max conns %d, connect timeout %v, lease %v", d.DatabaseMaxConns, d.DatabaseConnectTimeout, d.Schedule.Lease)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../../msitfeed.example.toml", nil)
	if err != nil {
		t.Fatalf("the shipped example config does not load: %v", err)
	}
	if c.Mail.From == "" || c.BaseURL != "https://feeds.example.org" {
		t.Fatalf("example values not read: from %q base %q", c.Mail.From, c.BaseURL)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "msitfeed.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfiguredBoards(t *testing.T) {
	path := writeConfig(t, `
[boards.press]
bbsseqno = "42"
[boards.bodo]
name = "보도자료"
list_url = "https://WWW.msit.go.kr:443/bbs/list.do;jsessionid=X?sCode=user&mPid=208&mId=307&pageIndex=3"
lang = "ko"
[boards.eng-events]
name = "Events"
list_url = "/eng/bbs/list.do?scode=eng&MPID=2&mid=9&bbsSeqNo=50"
gallery = true
[boards.ko_photo]
name = "포토뉴스"
list_url = "/bbs/list.do?mPid=208&mId=309"
`)
	c, err := Load(path, []string{"MSITFEED_BOARDS_KO_PHOTO_LANG=ko", "MSITFEED_BOARDS_KO_PHOTO_GALLERY=true",
		"MSITFEED_BOARDS_BODO_NAME=MSIT press (Korean)", "MSITFEED_BOARDS_PRESS_MID=4"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		slug       string
		want       Board
		wantAddr   ListAddress
		configured bool
	}{
		{"press", Board{MID: "4", BBSSeqNo: "42"}, ListAddress{}, false},
		{"bodo", Board{Name: "MSIT press (Korean)", Lang: "ko",
			ListURL: "https://WWW.msit.go.kr:443/bbs/list.do;jsessionid=X?sCode=user&mPid=208&mId=307&pageIndex=3"},
			ListAddress{Dir: "/bbs", SCode: "user", MID: "307", MPID: "208"}, true},
		{"eng-events", Board{Name: "Events", Lang: "en", Gallery: true, ListURL: "/eng/bbs/list.do?scode=eng&MPID=2&mid=9&bbsSeqNo=50"},
			ListAddress{Dir: "/eng/bbs", SCode: "eng", MID: "9", MPID: "2", BBSSeqNo: "50"}, true},
		{"ko_photo", Board{Name: "포토뉴스", Lang: "ko", Gallery: true, ListURL: "/bbs/list.do?mPid=208&mId=309"},
			ListAddress{Dir: "/bbs", SCode: "user", MID: "309", MPID: "208"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.slug+" is read with its defaults and environment", func(t *testing.T) {
			if got := c.Boards[tt.slug]; got != tt.want {
				t.Errorf("boards.%s = %+v, want %+v", tt.slug, got, tt.want)
			}
			if IsBuiltinBoard(tt.slug) == tt.configured {
				t.Errorf("IsBuiltinBoard(%s) = %v", tt.slug, !tt.configured)
			}
			if !tt.configured {
				return
			}
			a, err := ParseListURL(c.Boards[tt.slug].ListURL, c.Source.URL)
			if err != nil || a != tt.wantAddr {
				t.Errorf("ParseListURL = %+v, %v; want %+v", a, err, tt.wantAddr)
			}
		})
	}
}

func TestBadBoardsNameTheKey(t *testing.T) {
	const kr = "\nname = \"보도자료\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=307\"\n"
	cases := []struct {
		name    string
		file    string
		env     []string
		wantKey string
	}{
		{"a slug that is not a path segment", "[boards.\"../x\"]" + kr, nil, "boards.../x"},
		{"a slug in capitals", "[boards.Bodo]" + kr, nil, "boards.Bodo"},
		{"a slug too long", "[boards.a123456789012345678901234567890123]" + kr, nil, "boards.a1234"},
		{"the slug all", "[boards.all]" + kr, nil, "boards.all"},
		{"a list_url on another host", "[boards.bodo]\nname = \"x\"\nlist_url = \"https://evil.example/bbs/list.do?sCode=user&mPid=208&mId=307\"\n", nil, "boards.bodo.list_url"},
		{"a list_url of another scheme", "[boards.bodo]\nname = \"x\"\nlist_url = \"ftp://www.msit.go.kr/bbs/list.do?sCode=user&mPid=208&mId=307\"\n", nil, "boards.bodo.list_url"},
		{"a view.do address", "[boards.bodo]\nname = \"x\"\nlist_url = \"/bbs/view.do?sCode=user&mPid=208&mId=307&nttSeqNo=1\"\n", nil, "boards.bodo.list_url"},
		{"a list.do outside a bbs directory", "[boards.bodo]\nname = \"x\"\nlist_url = \"/../list.do?sCode=user&mPid=208&mId=307\"\n", nil, "boards.bodo.list_url"},
		{"a list_url without mId", "[boards.bodo]\nname = \"x\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208\"\n", nil, "boards.bodo.list_url"},
		{"a list_url without mPid", "[boards.bodo]\nname = \"x\"\nlist_url = \"/bbs/list.do?sCode=user&mId=307\"\n", nil, "boards.bodo.list_url"},
		{"an id that is not one", "[boards.bodo]\nname = \"x\"\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=3%2707\"\n", nil, "boards.bodo.list_url"},
		{"a configured board without name", "[boards.bodo]\nlist_url = \"/bbs/list.do?sCode=user&mPid=208&mId=307\"\n", nil, "boards.bodo.name"},
		{"a configured board without list_url", "[boards.bodo]\nname = \"x\"\n", nil, "boards.bodo.list_url"},
		{"a configured board given mid", "[boards.bodo]" + kr + "mid = \"1\"\n", nil, "boards.bodo.mid"},
		{"two boards reading one list", "[boards.bodo]" + kr + "[boards.bodo2]" + kr, nil, "boards.bodo2.list_url"},
		{"a board reading press's known list", "[boards.press2]\nname = \"x\"\nlist_url = \"/eng/bbs/list.do?sCode=eng&mPid=2&mId=4\"\n", nil, "boards.press2.list_url"},
		{"a board reading a built-in's overridden list", "[boards.notice]\nmid = \"3\"\nmpid = \"2\"\n[boards.news]\nname = \"x\"\nlist_url = \"/eng/bbs/list.do?mPid=2&mId=3\"\n", nil, "boards.news.list_url"},
		{"a built-in slug given a list_url", "[boards.press]\nlist_url = \"/eng/bbs/list.do?sCode=eng&mPid=2&mId=4\"\n", nil, "boards.press.list_url"},
		{"a built-in slug given a name", "[boards.press]\nname = \"Press\"\n", nil, "boards.press"},
		{"a lang that is not a tag", "[boards.bodo]" + kr + "lang = \"korean language\"\n", nil, "boards.bodo.lang"},
		{"a lang from the environment", "[boards.bodo]" + kr, []string{"MSITFEED_BOARDS_BODO_LANG=ko_KR!"}, "boards.bodo.lang"},
		{"an environment board not in the file", "", []string{"MSITFEED_BOARDS_BODO_NAME=x"}, "MSITFEED_BOARDS_BODO_NAME"},
		{"an environment name for a built-in", "", []string{"MSITFEED_BOARDS_PRESS_NAME=x"}, "MSITFEED_BOARDS_PRESS_NAME"},
		{"an environment mid for a configured board", "[boards.bodo]" + kr, []string{"MSITFEED_BOARDS_BODO_MID=1"}, "MSITFEED_BOARDS_BODO_MID"},
		{"an environment gallery not a bool", "[boards.bodo]" + kr, []string{"MSITFEED_BOARDS_BODO_GALLERY=often"}, "MSITFEED_BOARDS_BODO_GALLERY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeConfig(t, tc.file)
			}
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %q does not name %s", err, tc.wantKey)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

func TestBuiltinBoardsMatchFeeds(t *testing.T) {
	for _, b := range feeds.DefaultBoards() {
		ids, ok := builtinBoards[b.Slug]
		if !ok || ids != [2]string{b.MID, b.MPID} {
			t.Errorf("config knows %s as %v (%v); feeds as mId %q mPid %q", b.Slug, ids, ok, b.MID, b.MPID)
		}
	}
	if len(builtinBoards) != len(feeds.DefaultBoards()) {
		t.Errorf("config has %d built-in boards, feeds %d", len(builtinBoards), len(feeds.DefaultBoards()))
	}
}
