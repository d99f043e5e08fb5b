package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/internal/storecopy"
	"github.com/msitfeed/msitfeed/internal/web"
	"github.com/msitfeed/msitfeed/mailer"
)

// keepMoveSource, when set, is where TestMigrateStore also writes its
// seeded source store, for timing the command on it by hand (README).
var keepMoveSource = flag.String("migrate-store.keep", "", "copy TestMigrateStore's seeded SQLite store to this file")

const (
	movePosts       = 1000
	moveSubscribers = 10000
)

// moveSource is a seeded SQLite store and a link from a mail sent from it.
type moveSource struct {
	path     string
	unsubURL string // List-Unsubscribe of one digest mail
	email    string // its recipient
}

// seedMoveSource makes an SQLite store through msitfeed's own store code:
// movePosts posts (some with attachments), moveSubscribers subscribers
// imported from a CSV, a digest sent through the file transport (so every
// delivery is in the ledger and every mail on disk), the token secret in
// settings, and two WebSub subscriptions.
func seedMoveSource(t *testing.T) moveSource {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	src := moveSource{path: filepath.Join(dir, "msitfeed.db")}
	d, err := db.Open(ctx, src.path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	boards := []string{"press", "notice", "trends"}
	store := feeds.NewStore(d)
	for i := range movePosts {
		it := feeds.Item{
			Board: boards[i%len(boards)], ID: int64(100000 + i),
			Title:     fmt.Sprintf("MSIT post %d on 6G & AI", i),
			URL:       fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?sCode=eng&nttSeqNo=%d", 100000+i),
			Published: time.Date(2026, 11, 1+i%28, 0, 0, 0, 0, feeds.KST),
			Body:      fmt.Sprintf("<p>Body of post %d — 과학기술정보통신부.</p>", i),
			Summary:   fmt.Sprintf("Summary %d", i), Department: "Policy Division",
		}
		if i%4 == 0 {
			it.Attachments = []feeds.Attachment{{Name: fmt.Sprintf("report-%d.pdf", i), URL: fmt.Sprintf("https://www.msit.go.kr/file/%d", i), Type: "application/pdf"}}
		}
		if _, err := store.Save(ctx, it, fmt.Sprintf("list-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	var csv bytes.Buffer
	csv.WriteString("email,name,boards,status,created,confirmed,match\n")
	joined := time.Now().AddDate(0, -1, 0).Format(time.DateOnly)
	for i := range moveSubscribers {
		b, status, confirmed, match := "", "active", joined, ""
		switch i % 10 {
		case 1:
			b = "press"
		case 2:
			b = "notice,trends"
		case 3:
			match = "(?i)6G"
		}
		if i%50 == 7 {
			status, confirmed = "pending", ""
		}
		fmt.Fprintf(&csv, "reader%05d@example.org,Reader %d,%q,%s,%s,%s,%s\n", i, i, b, status, joined, confirmed, match)
	}
	if _, err := mailer.NewSubscribers(d).Import(ctx, &csv, mailer.ImportOptions{}); err != nil {
		t.Fatal(err)
	}

	for i, cb := range []string{"https://reader.example/a", "https://reader.example/b"} {
		now := time.Now().UTC().Format("2006-01-02T15:04:05Z")
		if _, err := d.Exec(`INSERT INTO websub_subscriptions (topic, callback, callback_host, board, format, secret, lease_seconds, created, verified, expires)
			VALUES ($1, $2, 'reader.example', 'press', 'atom', $3, 86400, $4, $4, $4)`,
			"https://msitfeed.example/feeds/press.atom", cb, fmt.Sprintf("secret-%d", i), now); err != nil {
			t.Fatal(err)
		}
	}

	cfg := config.Default()
	cfg.BaseURL = "https://msitfeed.example"
	cfg.Mail.From = "MSIT digest <digest@msitfeed.example>"
	cfg.SMTP.Transport = "file"
	cfg.SMTP.Dir = filepath.Join(dir, "mail")
	if err := os.Mkdir(cfg.SMTP.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := mailer.New(ctx, cfg, d) // stores a new token secret
	if err != nil {
		t.Fatal(err)
	}
	m.Log = slog.New(slog.DiscardHandler)
	if _, err := m.SendDigest(ctx); err != nil {
		t.Fatalf("send the digest before the move: %v", err)
	}
	mails, err := filepath.Glob(filepath.Join(cfg.SMTP.Dir, "*.eml"))
	if err != nil || len(mails) == 0 {
		t.Fatalf("no mail sent before the move (%v)", err)
	}
	src.unsubURL, src.email = unsubscribeLink(t, mails[len(mails)/2])
	if *keepMoveSource != "" {
		if err := db.Checkpoint(ctx, d); err != nil {
			t.Fatal(err)
		}
		copyFile(t, src.path, *keepMoveSource)
	}
	return src
}

// unsubscribeLink returns the List-Unsubscribe URL and the recipient of
// the mail in file.
func unsubscribeLink(t *testing.T, file string) (link, to string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() && sc.Text() != "" {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "List-Unsubscribe: "); ok {
			link = strings.Trim(strings.Fields(v)[0], "<>,")
		}
		if v, ok := strings.CutPrefix(line, "To: "); ok {
			to = regexp.MustCompile(`[a-z0-9.]+@example\.org`).FindString(v)
		}
	}
	if link == "" || to == "" {
		t.Fatalf("mail %s has no List-Unsubscribe or To header", file)
	}
	return link, to
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runMove runs msitfeed with args and returns its exit code, stdout and
// stderr.
func runMove(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := NewMain(strings.NewReader(""), &stdout, &stderr, nil)
	code := ExitCode(m.Run(context.Background(), args), &stderr)
	return code, stdout.String(), stderr.String()
}

// tableHashes returns storecopy.Hash of the store dsn by table name.
func tableHashes(t *testing.T, dsn string) map[string]storecopy.Table {
	t.Helper()
	d, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ts, err := storecopy.Hash(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storecopy.Table{}
	for _, x := range ts {
		out[x.Name] = x
	}
	return out
}

// TestMigrateStore moves a store of 1,000 posts and 10,000 subscribers
// with a sent digest into an empty store of each engine; the counts and
// hashes are equal, an unsubscribe link from a mail sent before the move
// works against the new store, new rows get new ids, and a second move
// into the now full store is refused without a change.
func TestMigrateStore(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 subscribers and sends them a digest")
	}
	ctx := context.Background()
	src := seedMoveSource(t)
	want := tableHashes(t, src.path)
	for name, n := range map[string]int64{"items": movePosts, "attachments": movePosts / 4, "subscribers": moveSubscribers, "digests": 1, "websub_subscriptions": 2, "settings": 1} {
		if want[name].Rows != n {
			t.Fatalf("seeded %s has %d rows, want %d", name, want[name].Rows, n)
		}
	}
	if want["deliveries"].Rows < moveSubscribers/2 {
		t.Fatalf("the digest has %d deliveries", want["deliveries"].Rows)
	}

	dbtest.Each(t, func(t *testing.T, e db.Engine) {
		to := dbtest.DSN(t, e)
		code, out, errOut := runMove(t, "migrate-store", "--from", src.path, "--to", to)
		if code != 0 {
			t.Fatalf("migrate-store exited %d: %s", code, errOut)
		}
		got := tableHashes(t, to)
		if len(got) != len(want) {
			t.Errorf("target has %d tables, source %d", len(got), len(want))
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("table %s: target %d rows %.16s, source %d rows %.16s", name, got[name].Rows, got[name].Hash, w.Rows, w.Hash)
			}
			if !regexp.MustCompile(`(?m)^` + name + ` +` + fmt.Sprint(w.Rows) + ` +` + w.Hash + `$`).MatchString(out) {
				t.Errorf("output has no line for %s with %d rows and hash %s:\n%s", name, w.Rows, w.Hash, out)
			}
		}

		dst, err := db.Open(ctx, to)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		followUnsubscribe(t, dst, src)

		// New rows after the move do not collide with the copied ids.
		s, err := mailer.NewSubscribers(dst).Add(ctx, mailer.NewSubscriber{Address: "after-the-move@example.org", Status: mailer.StatusActive})
		if err != nil {
			t.Fatalf("add a subscriber after the move: %v", err)
		}
		if s.ID != moveSubscribers+1 {
			t.Errorf("new subscriber has id %d, want %d", s.ID, moveSubscribers+1)
		}
		if _, err := feeds.NewStore(dst).Save(ctx, feeds.Item{Board: "press", ID: 1, Title: "after the move", URL: "https://www.msit.go.kr/x", Published: time.Now()}, "l"); err != nil {
			t.Errorf("save a post after the move: %v", err)
		}

		// The target now has rows: a second move is refused, unchanged.
		before := tableHashes(t, to)
		code, _, errOut = runMove(t, "migrate-store", "--from", src.path, "--to", to)
		if code != 1 || !strings.Contains(errOut, "--to ") || !strings.Contains(errOut, "not empty: table ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("move into a full store: exit %d, %q; want 1 and one line naming --to and a table", code, errOut)
		}
		if after := tableHashes(t, to); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the refused target changed")
		}
	})

	// The source is as it was: the link was followed on the copies only.
	if after := tableHashes(t, src.path); fmt.Sprint(after) != fmt.Sprint(want) {
		t.Errorf("the source changed")
	}
}

// followUnsubscribe serves the web pages from d, with the secret stored
// there, and follows the unsubscribe link of a mail sent from the source;
// it checks that a link signed with another secret is refused.
func followUnsubscribe(t *testing.T, d *sql.DB, src moveSource) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.BaseURL = "https://msitfeed.example"
	cfg.Mail.From = "MSIT digest <digest@msitfeed.example>"
	m, err := mailer.New(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	subs := mailer.NewSubscribers(d)
	srv, err := web.New(web.Server{Store: feeds.NewStore(d), BaseURL: cfg.BaseURL, SiteURL: "https://www.msit.go.kr", Subscribers: subs, Mailer: m})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	u, err := url.Parse(src.unsubURL)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string) int {
		resp, err := http.PostForm(hs.URL+path, url.Values{"List-Unsubscribe": {"One-Click"}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	s, err := subs.Get(ctx, src.email)
	if err != nil {
		t.Fatal(err)
	}
	forged := "/unsubscribe/" + mailer.NewTokens([]byte("another secret")).Sign(mailer.PurposeUnsubscribe, s.UID, 0)
	if code := post(forged); code == http.StatusOK {
		t.Errorf("a link signed with another secret: %d, want a refusal", code)
	}
	if code := post(u.Path); code != http.StatusOK {
		t.Fatalf("unsubscribe link from before the move: %d, want 200", code)
	}
	if s, err = subs.Get(ctx, src.email); err != nil || s.Status != mailer.StatusUnsubscribed {
		t.Errorf("after following the link %s is %s (%v), want unsubscribed", src.email, s.Status, err)
	}
}

// TestMigrateStoreRefuses: what is wrong with the command line is named,
// and nothing is created.
func TestMigrateStoreRefuses(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "from.db")
	d, err := db.Open(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --to", []string{"--from", from}, 2, "--to is required"},
		{"no --from", []string{"--to", filepath.Join(dir, "x.db")}, 2, "--from is required"},
		{"same store", []string{"--from", from, "--to", dir + "/./from.db"}, 2, "--from and --to name the same store"},
		{"missing source", []string{"--from", filepath.Join(dir, "nope.db"), "--to", filepath.Join(dir, "x.db")}, 1, "--from " + filepath.Join(dir, "nope.db") + ": no such database file"},
		{"no such directory", []string{"--from", from, "--to", "/no/such/dir/x.db"}, 1, "--to /no/such/dir/x.db: directory /no/such/dir does not exist"},
		{"not a URL we know", []string{"--from", from, "--to", "mysql://u:pw@db/msitfeed"}, 1, "--to mysql://u:pw@db/msitfeed: not a postgres:// URL nor a file path"},
		{"unreachable server, password hidden", []string{"--from", from, "--to", "postgres://u:hunter2@/msitfeed?host=/no/such/dir&connect_timeout=2"}, 1, "--to postgres://u:xxxxx@/msitfeed?host=/no/such/dir&connect_timeout=2: cannot connect"},
		{"an argument", []string{"--from", from, "--to", filepath.Join(dir, "x.db"), "extra"}, 2, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runMove(t, append([]string{"migrate-store"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, %q; want %d and one line with %q", code, errOut, tc.code, tc.want)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("the password is in the message: %s", errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.db")); err == nil {
				t.Errorf("a refused move created the target")
			}
		})
	}
}
