package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../../msitfeed.example.toml", nil)
	if err != nil {
		t.Fatalf("the shipped example config does not load: %v", err)
	}
	if c.Mail.From == "" || c.BaseURL != "https://feeds.example.org" {
		t.Fatalf("example values not read: from %q base %q", c.Mail.From, c.BaseURL)
	}
}
