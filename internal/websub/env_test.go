package websub_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/internal/websub"
)

// baseURL is the public URL the feeds under test name; the hub is reached
// at its httptest address, as behind a proxy.
const baseURL = "https://feeds.test"

// env is the real pipeline around a hub: the fake MSIT site, a crawler
// storing into a temp-dir SQLite database, and the hub started over it and
// served by an httptest server.
type env struct {
	t       *testing.T
	site    *msittest.Site
	dbPath  string
	store   *feeds.Store
	crawler *feeds.Crawler
	hub     *websub.Hub
	hubURL  string // where to POST subscription requests
	events  *events
	clock   *clock
	nextID  int64
}

// newEnv crawls the sample site, then starts a hub with opts changed by
// change (tests' defaults: private callbacks allowed, short timeouts and
// backoff, and no polling, so that only CrawlRun starts a delivery).
func newEnv(t *testing.T, change func(*websub.Options)) *env {
	t.Helper()
	return newEnvOn(t, db.SQLite, change)
}

func TestMain(m *testing.M) { dbtest.Main(m) }

// newEnvOn is newEnv on a fresh database of engine; e.dbPath is its
// database setting, for opening it again as another process.
func newEnvOn(t *testing.T, engine db.Engine, change func(*websub.Options)) *env {
	t.Helper()
	site := msittest.NewSite(msittest.SamplePosts())
	siteSrv := httptest.NewServer(site)
	t.Cleanup(siteSrv.Close)
	dbPath := dbtest.DSN(t, engine)
	d, err := db.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	store := feeds.NewStore(d)
	e := &env{t: t, site: site, dbPath: dbPath, store: store, events: newEvents(), clock: newClock(), nextID: 9000}
	e.crawler = newCrawler(t, store, siteSrv.URL)
	if _, err := e.crawler.Crawl(context.Background(), feeds.CrawlOptions{Boards: []string{"press", "notice"}}); err != nil {
		t.Fatal(err)
	}
	opts := websub.Options{
		Feeds:        feeds.Options{BaseURL: baseURL, SourceURL: siteSrv.URL},
		Local:        true,
		AllowPrivate: true,
		Timeout:      2 * time.Second,
		Backoff:      20 * time.Millisecond,
		PollInterval: time.Hour,
		Now:          e.clock.Now,
		Observe:      e.events.observe,
	}
	if change != nil {
		change(&opts)
	}
	e.hub = e.startHub(store, opts)
	e.crawler.OnRun = e.hub.CrawlRun
	return e
}

// startHub starts a hub over store and serves it; both stop when the test
// ends.
func (e *env) startHub(store *feeds.Store, opts websub.Options) *websub.Hub {
	e.t.Helper()
	hub, err := websub.New(store, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := hub.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	e.t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			e.t.Error(err)
		}
	})
	e.hubURL = srv.URL
	return hub
}

func newCrawler(t *testing.T, store *feeds.Store, siteURL string) *feeds.Crawler {
	t.Helper()
	base, err := url.Parse(siteURL)
	if err != nil {
		t.Fatal(err)
	}
	client := msit.NewClient(msit.Options{BaseURL: siteURL, Rate: 1000, Retries: -1})
	return &feeds.Crawler{Store: store, Source: msit.NewSource(client, base), BackfillPages: 5}
}

// topic is the URL of a feed under test.
func topic(board string, format feeds.Format) string {
	return baseURL + "/feeds/" + board + "." + string(format)
}

// publish adds a new post to the site's press board, crawls that board
// and returns the post's title; the crawl has ended when it returns.
func (e *env) publish() string {
	e.t.Helper()
	e.nextID++
	title := fmt.Sprintf("MSIT post %d for WebSub", e.nextID)
	e.site.AddPost(msittest.Post{Board: "press", ID: e.nextID, Title: title, Date: "2024-11-29",
		Department: "Press Office", BodyHTML: "<p>" + title + "</p>"})
	runs, err := e.crawler.Crawl(context.Background(), feeds.CrawlOptions{Boards: []string{"press"}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].New != 1 {
		e.t.Fatalf("crawl runs %+v, want one new press post", runs)
	}
	return title
}

// request POSTs a subscription request to the hub and returns its status
// and body.
func (e *env) request(form url.Values) (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.hubURL+"/websub", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// subscribe has s ask for topic with a lease and a secret (either may be
// empty) and waits until the hub has verified it.
func (e *env) subscribe(s *subscriber, topic, lease, secret string) {
	e.t.Helper()
	verified := e.events.count(websub.EventVerification, "verified")
	s.want("subscribe", topic, secret)
	form := url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic}, "hub.callback": {s.callback}}
	if lease != "" {
		form.Set("hub.lease_seconds", lease)
	}
	if secret != "" {
		form.Set("hub.secret", secret)
	}
	if code, body := e.request(form); code != http.StatusAccepted {
		e.t.Fatalf("subscribe %s: %d %s", topic, code, body)
	}
	e.events.wait(e.t, websub.EventVerification, "verified", verified+1)
}

// events counts what the hub reports to Observe, and lets a test wait for
// a count.
type events struct {
	mu      sync.Mutex
	counts  map[string]int
	changed chan struct{} // closed and replaced at every event
}

func newEvents() *events { return &events{counts: map[string]int{}, changed: make(chan struct{})} }

func (ev *events) observe(event, outcome string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.counts[event+" "+outcome]++
	close(ev.changed)
	ev.changed = make(chan struct{})
}

func (ev *events) count(event, outcome string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.counts[event+" "+outcome]
}

// wait returns once event has had outcome n times, failing after 5s.
func (ev *events) wait(t *testing.T, event, outcome string, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ev.mu.Lock()
		got, changed := ev.counts[event+" "+outcome], ev.changed
		ev.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited 5s for %d %s %s events; have %d (all: %v)", n, event, outcome, got, ev.snapshot())
		}
	}
}

func (ev *events) snapshot() map[string]int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := map[string]int{}
	for k, v := range ev.counts {
		out[k] = v
	}
	return out
}

// clock is a settable clock for leases.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// subscriber is a WebSub subscriber written from the Recommendation: it
// answers a verification of intent for a request it made with the
// challenge (2xx, a safe media type, nosniff) and any other with 404,
// records denials, and takes content distributions, checking
// X-Hub-Signature against its secret.
type subscriber struct {
	t        *testing.T
	callback string

	mu      sync.Mutex
	pending map[string]string // "mode topic" → secret, requests awaiting verification
	secret  string            // of the verified subscription
	// echo, if set, answers the challenge instead of echoing it.
	echo func(challenge string) string
	// status, if set, says what to answer the nth content distribution.
	status func(n int) int
	posts  int

	verifications chan url.Values // every verification GET's query, denials included
	deliveries    chan delivery
	hang          chan struct{} // if not nil, content distributions wait for it
}

type delivery struct {
	header   http.Header
	body     []byte
	signedOK bool // X-Hub-Signature present and right for the secret (false if none was given)
	at       time.Time
}

func newSubscriber(t *testing.T) *subscriber {
	s := &subscriber{t: t, pending: map[string]string{}, verifications: make(chan url.Values, 16), deliveries: make(chan delivery, 64)}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		if s.hang != nil {
			close(s.hang)
		}
		srv.Close()
	})
	// An unguessable capability URL with a parameter of its own, which the
	// hub must keep.
	s.callback = srv.URL + "/callback/" + fmt.Sprint(time.Now().UnixNano()) + "?sub=1"
	return s
}

func (s *subscriber) want(mode, topic, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[mode+" "+topic] = secret
}

func (s *subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("sub") != "1" {
		s.t.Errorf("%s %s: the callback's own parameter was dropped", r.Method, r.URL)
	}
	switch r.Method {
	case http.MethodGet:
		s.verify(w, r)
	case http.MethodPost:
		s.receive(w, r)
	default:
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}
}

func (s *subscriber) verify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.verifications <- q
	mode, topic := q.Get("hub.mode"), q.Get("hub.topic")
	if mode == "denied" {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.mu.Lock()
	secret, ok := s.pending[mode+" "+topic]
	delete(s.pending, mode+" "+topic)
	if ok && mode == "subscribe" {
		s.secret = secret
	}
	echo := s.echo
	s.mu.Unlock()
	challenge := q.Get("hub.challenge")
	if !ok || challenge == "" || (mode == "subscribe" && q.Get("hub.lease_seconds") == "") {
		http.NotFound(w, r)
		return
	}
	if echo != nil {
		challenge = echo(challenge)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, challenge)
}

func (s *subscriber) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("read a content distribution: %v", err)
		return
	}
	d := delivery{header: r.Header.Clone(), body: body, at: time.Now()}
	s.mu.Lock()
	secret := s.secret
	s.posts++
	n := s.posts
	status := s.status
	hang := s.hang
	s.mu.Unlock()
	if sig := r.Header.Get("X-Hub-Signature"); secret != "" && sig != "" {
		method, hexSig, _ := strings.Cut(sig, "=")
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		got, err := hex.DecodeString(hexSig)
		d.signedOK = method == "sha256" && err == nil && hmac.Equal(got, mac.Sum(nil))
	}
	if hang != nil {
		<-hang
		return
	}
	code := http.StatusNoContent
	if status != nil {
		code = status(n)
	}
	w.WriteHeader(code)
	if code >= 200 && code < 300 {
		s.deliveries <- d
	}
}

// next waits for the next content distribution it answered with a 2xx,
// at most within, and fails otherwise.
func (s *subscriber) next(within time.Duration) delivery {
	s.t.Helper()
	select {
	case d := <-s.deliveries:
		return d
	case <-time.After(within):
		s.t.Fatalf("%s: no content distribution within %s", s.callback, within)
	}
	return delivery{}
}

// none fails if a content distribution has arrived.
func (s *subscriber) none() {
	s.t.Helper()
	select {
	case d := <-s.deliveries:
		s.t.Errorf("%s: unexpected content distribution (%s, %d bytes)", s.callback, d.header.Get("Content-Type"), len(d.body))
	default:
	}
}

// verification waits for the next verification or denial GET.
func (s *subscriber) verification() url.Values {
	s.t.Helper()
	select {
	case q := <-s.verifications:
		return q
	case <-time.After(5 * time.Second):
		s.t.Fatalf("%s: no verification request within 5s", s.callback)
	}
	return nil
}

// contains reports whether a document holds s.
func contains(doc []byte, s string) bool { return bytes.Contains(doc, []byte(s)) }

// newPingHub is an external hub that takes publish pings (forms) into
// pings, answering 204; it returns its URL.
func newPingHub(t *testing.T, pings chan<- url.Values) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("ping: %s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		pings <- r.PostForm
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hub"
}
