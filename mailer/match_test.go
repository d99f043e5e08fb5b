package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// setMatch gives the subscriber with id a keyword filter, as the CLI and
// the preferences page store it.
func (e *digestEnv) setMatch(id int64, match string) {
	e.t.Helper()
	if _, err := e.db.Exec(`UPDATE subscribers SET match_pattern = $1 WHERE id = $2`, match, id); err != nil {
		e.t.Fatal(err)
	}
}

// addPost stores a post with its own summary, first seen at seen.
func (e *digestEnv) addPost(board, title, summary string, seen time.Time) {
	e.t.Helper()
	e.nextID++
	it := feeds.Item{Board: board, ID: e.nextID, Title: title, Summary: summary,
		URL:       fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", e.nextID),
		Published: time.Date(seen.Year(), seen.Month(), seen.Day(), 0, 0, 0, 0, feeds.KST)}
	e.store.Now = func() time.Time { return seen }
	if _, err := e.store.Save(context.Background(), it, ""); err != nil {
		e.t.Fatal(err)
	}
}

// digestTitles returns, per recipient, the post titles its digest's text
// part lists among titles.
func digestTitles(t *testing.T, srv *smtptest.Server, titles []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, msg := range srv.Messages() {
		pm := parseMail(t, msg.Data)
		var got []string
		for _, title := range titles {
			if strings.Contains(pm.Parts[0].Body, title) {
				got = append(got, title)
			}
		}
		out[msg.To[0]] = got
	}
	return out
}

// matchPosts are the posts of the keyword tests: "ai" in lower case only
// in "Rain forecast", "QUANTUM" only in a summary.
var matchPosts = []struct{ board, title, summary string }{
	{"press", "AI strategy announced", "The ministry sets out its plans."},
	{"press", "6G trial begins", "Operators start a trial."},
	{"press", "Rain forecast for the expo", "Outdoor events may move."},
	{"notice", "Quantum computing call", "Proposals are invited."},
	{"notice", "Research centres open", "Three QUANTUM labs join."},
}

func matchTitles() []string {
	var ts []string
	for _, p := range matchPosts {
		ts = append(ts, p.title)
	}
	return ts
}

// Subscribers of the same boards with different keyword filters each get
// only the posts their filter keeps (title or summary, case-sensitive
// unless (?i)), and one whose filter keeps nothing gets no mail.
func TestSendDigest_KeywordFilters(t *testing.T) {
	dbtest.Each(t, sendDigestKeywordFilters)
}

func sendDigestKeywordFilters(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	joined := e.now.Add(-30 * 24 * time.Hour)
	subs := map[string]string{ // address → match
		"ai@example.org":      "AI|6G",
		"quantum@example.org": "(?i)quantum",
		"budget@example.org":  "Budget|budget",
		"all@example.org":     "",
	}
	for addr, match := range subs {
		e.setMatch(e.addSubscriber(addr, "", "notice,press", mailer.StatusActive, joined), match)
	}
	seen := e.now.Add(-2 * time.Hour)
	for i, p := range matchPosts {
		e.addPost(p.board, p.title, p.summary, seen.Add(time.Duration(i)*time.Minute))
	}

	m := e.mailer()
	plan, err := m.Plan(context.Background())
	if err != nil || plan.Recipients != 3 || plan.Items != 5 {
		t.Fatalf("plan %+v (%v), want 5 posts to 3 recipients", plan, err)
	}
	res := e.mustSend(m)
	if len(res.Digests) != 1 || res.Digests[0].Sent != 3 || res.Digests[0].Failed != 0 {
		t.Fatalf("result %+v, want one digest sent to 3", res)
	}
	got := digestTitles(t, e.smtp, matchTitles())
	want := map[string][]string{
		"ai@example.org":      {"AI strategy announced", "6G trial begins"},
		"quantum@example.org": {"Quantum computing call", "Research centres open"},
		"all@example.org":     matchTitles(),
	}
	if len(got) != len(want) {
		t.Errorf("recipients %v, want %v (budget@ gets nothing)", keys(got), keys(want))
	}
	for addr, titles := range want {
		slices.Sort(titles)
		g := got[addr]
		slices.Sort(g)
		if !slices.Equal(g, titles) {
			t.Errorf("%s got %q, want %q", addr, g, titles)
		}
	}
	var stored string
	if err := e.db.QueryRow(`SELECT d.match_pattern FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
		WHERE s.email = 'quantum@example.org'`).Scan(&stored); err != nil || stored != "(?i)quantum" {
		t.Errorf("the delivery keeps match %q (%v)", stored, err)
	}

	// Preview shows a subscriber what their filter keeps.
	pv, err := m.Preview(context.Background(), "ai@example.org")
	if !errors.Is(err, mailer.ErrNothingNew) {
		t.Errorf("preview after the digest: %v, want nothing new", err)
	}
	e.now = e.now.Add(time.Hour)
	e.addPost("press", "AI chips export", "", e.now.Add(-time.Minute))
	e.addPost("press", "Budget 2026", "", e.now.Add(-time.Minute))
	if pv, err = m.Preview(context.Background(), "ai@example.org"); err != nil || pv.Items != 1 || !strings.Contains(pv.Text, "AI chips export") {
		t.Errorf("preview for ai@: %d posts (%v)", pv.Items, err)
	}
	if pv, err = m.Preview(context.Background(), "quantum@example.org"); !errors.Is(err, mailer.ErrNothingNew) {
		t.Errorf("preview for quantum@: %d posts (%v), want nothing new", pv.Items, err)
	}
}

// A digest that cannot be sent at once is finished later with the posts
// each filter kept when it was made, whatever the subscriber changed since.
func TestSendDigest_ResumedDeliveryKeepsItsFilter(t *testing.T) {
	dbtest.Each(t, sendDigestResumedDeliveryKeepsItsFilter)
}

func sendDigestResumedDeliveryKeepsItsFilter(t *testing.T, engine db.Engine) {
	e := newDigestEnvOn(t, engine, smtptest.Faults{DownConns: 1 << 20})
	e.cfg.SMTP.Retries = 0
	id := e.addSubscriber("ai@example.org", "", "", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	e.setMatch(id, "AI")
	for i, p := range matchPosts {
		e.addPost(p.board, p.title, p.summary, e.now.Add(-time.Hour+time.Duration(i)*time.Minute))
	}
	m := e.mailer()
	if _, err := e.send(m); err == nil {
		t.Fatal("the send to a server that is down succeeded")
	}
	e.setMatch(id, "Quantum")
	e.smtp.SetFaults(smtptest.Faults{})
	e.now = e.now.Add(time.Minute)
	e.mustSend(m)
	got := digestTitles(t, e.smtp, matchTitles())
	if !slices.Equal(got["ai@example.org"], []string{"AI strategy announced"}) {
		t.Errorf("resumed digest lists %q, want the posts of the filter it was made with", got["ai@example.org"])
	}
}

// When the filters keep nothing, no digest is made and the reason says so.
func TestSendDigest_NothingForAnyFilter(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.setMatch(e.addSubscriber("x@example.org", "", "", mailer.StatusActive, e.now.Add(-30*24*time.Hour)), "nothing like this")
	e.addPost("press", "AI strategy announced", "", e.now.Add(-time.Hour))
	res := e.mustSend(e.mailer())
	if len(res.Digests) != 0 || e.smtp.Count() != 0 ||
		res.Nothing != "nothing sent: 1 new post, but no active subscriber wants them (their boards and keyword filters)" {
		t.Errorf("result %+v, %d messages", res, e.smtp.Count())
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
