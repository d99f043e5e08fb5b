package websub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/internal/websub"
)

func TestSubscribeThenACrawlDeliversTheFeedSigned(t *testing.T) {
	dbtest.Each(t, subscribeThenACrawlDeliversTheFeedSigned)
}

func subscribeThenACrawlDeliversTheFeedSigned(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	press := newSubscriber(t)
	all := newSubscriber(t)
	notice := newSubscriber(t)
	e.subscribe(press, topic("press", feeds.FormatAtom), "86400", "press secret")
	e.subscribe(all, topic("all", feeds.FormatJSON), "", "")
	e.subscribe(notice, topic("notice", feeds.FormatRSS), "", "notice secret")

	q := press.verification()
	if q.Get("hub.mode") != "subscribe" || q.Get("hub.topic") != topic("press", feeds.FormatAtom) ||
		q.Get("hub.lease_seconds") != "86400" || len(q.Get("hub.challenge")) < 16 {
		t.Errorf("verification of intent = %v", q)
	}
	if q := all.verification(); q.Get("hub.lease_seconds") != "864000" {
		t.Errorf("a request without a lease got %s seconds, want the default 864000 (10 days)", q.Get("hub.lease_seconds"))
	}

	title := e.publish()
	crawled := time.Now()
	d := press.next(time.Second)
	t.Logf("delivered %s after the crawl", d.at.Sub(crawled))
	if ct := d.header.Get("Content-Type"); ct != "application/atom+xml; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !d.signedOK {
		t.Errorf("X-Hub-Signature %q does not match the body and secret", d.header.Get("X-Hub-Signature"))
	}
	link := d.header.Get("Link")
	if !strings.Contains(link, `<`+baseURL+`/websub>; rel="hub"`) || !strings.Contains(link, `<`+topic("press", feeds.FormatAtom)+`>; rel="self"`) {
		t.Errorf("Link = %q, want the hub and the topic as self", link)
	}
	feed, err := gofeed.NewParser().ParseString(string(d.body))
	if err != nil {
		t.Fatalf("the delivered document is not a feed: %v", err)
	}
	if len(feed.Items) == 0 || feed.Items[0].Title != title {
		t.Errorf("the delivered feed does not start with the new post %q", title)
	}

	d = all.next(time.Second)
	if d.header.Get("Content-Type") != "application/feed+json; charset=utf-8" || !contains(d.body, title) {
		t.Errorf("all.json: %s, %d bytes, new post in it: %v", d.header.Get("Content-Type"), len(d.body), contains(d.body, title))
	}
	if sig := d.header.Get("X-Hub-Signature"); sig != "" {
		t.Errorf("a subscription without a secret got X-Hub-Signature %q", sig)
	}
	e.events.wait(t, websub.EventDelivery, "delivered", 2)
	notice.none()
}

func TestAWrongChallengeEchoSubscribesNothing(t *testing.T) {
	e := newEnv(t, nil)
	s := newSubscriber(t)
	s.echo = func(challenge string) string { return challenge + "x" }
	s.want("subscribe", topic("press", feeds.FormatRSS), "")
	code, body := e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("press", feeds.FormatRSS)}, "hub.callback": {s.callback}})
	if code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	e.events.wait(t, websub.EventVerification, "refused", 1)
	if n, err := e.hub.Count(context.Background()); err != nil || n != 0 {
		t.Fatalf("%d subscriptions (%v) after a wrong echo, want none", n, err)
	}

	// A subscriber that answers 2xx with the challenge is delivered to;
	// the one that echoed wrong is not.
	ok := newSubscriber(t)
	e.subscribe(ok, topic("press", feeds.FormatRSS), "", "")
	e.publish()
	ok.next(time.Second)
	s.none()
}

func TestAnExpiredLeaseGetsNothing(t *testing.T) {
	dbtest.Each(t, anExpiredLeaseGetsNothing)
}

func anExpiredLeaseGetsNothing(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	short := newSubscriber(t)
	long := newSubscriber(t)
	e.subscribe(short, topic("press", feeds.FormatRSS), "60", "") // raised to the 1 hour minimum
	if q := short.verification(); q.Get("hub.lease_seconds") != "3600" {
		t.Errorf("a 60 s lease was granted as %s s, want the 3600 s minimum", q.Get("hub.lease_seconds"))
	}
	e.subscribe(long, topic("press", feeds.FormatRSS), "99999999", "") // cut to the 30 day maximum
	if q := long.verification(); q.Get("hub.lease_seconds") != "2592000" {
		t.Errorf("a long lease was granted as %s s, want the 2592000 s maximum", q.Get("hub.lease_seconds"))
	}

	e.clock.Advance(time.Hour + time.Second)
	if n, _ := e.hub.Count(context.Background()); n != 1 {
		t.Errorf("%d subscriptions after the short lease ended, want 1", n)
	}
	e.publish()
	long.next(time.Second)
	e.events.wait(t, websub.EventDelivery, "delivered", 1)
	short.none()

	subs, err := websub.List(context.Background(), e.store.DB())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.Callback == long.callback && !s.Expires.Equal(newClock().Now().Add(30*24*time.Hour)) {
			t.Errorf("the long lease expires %s, want 30 days after its verification", s.Expires)
		}
	}
}

func TestUnsubscribe(t *testing.T) {
	dbtest.Each(t, unsubscribe)
}

func unsubscribe(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	leaving := newSubscriber(t)
	staying := newSubscriber(t)
	e.subscribe(leaving, topic("press", feeds.FormatRSS), "", "")
	e.subscribe(staying, topic("press", feeds.FormatRSS), "", "")
	leaving.verification()

	leaving.want("unsubscribe", topic("press", feeds.FormatRSS), "")
	code, body := e.request(url.Values{"hub.mode": {"unsubscribe"}, "hub.topic": {topic("press", feeds.FormatRSS)}, "hub.callback": {leaving.callback}})
	if code != http.StatusAccepted {
		t.Fatalf("unsubscribe: %d %s", code, body)
	}
	if q := leaving.verification(); q.Get("hub.mode") != "unsubscribe" || q.Get("hub.challenge") == "" {
		t.Errorf("verification of the unsubscription = %v", q)
	}
	e.events.wait(t, websub.EventVerification, "unsubscribed", 1)

	e.publish()
	staying.next(time.Second)
	e.events.wait(t, websub.EventDelivery, "delivered", 1)
	leaving.none()
}

func TestAFailingCallbackIsRetriedUntilItRecovers(t *testing.T) {
	e := newEnv(t, nil)
	s := newSubscriber(t)
	s.status = func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	e.subscribe(s, topic("press", feeds.FormatRSS), "", "s3cret")
	title := e.publish()
	d := s.next(time.Second) // two failures, 20 ms and about 40 ms of backoff
	if !contains(d.body, title) || !d.signedOK {
		t.Errorf("the retried delivery lacks the post or a valid signature")
	}
	e.events.wait(t, websub.EventDelivery, "delivered", 1)
	if n := e.events.count(websub.EventDelivery, "retried"); n != 2 {
		t.Errorf("%d retries, want 2", n)
	}
	e.closeHub()
	subs, err := websub.List(context.Background(), e.store.DB())
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions %+v, %v", subs, err)
	}
	if got := subs[0]; got.LastStatus != http.StatusOK || got.LastError != "" || got.Deliveries != 1 || got.Failures != 2 {
		t.Errorf("recorded: last status %d %q, %d deliveries, %d failures; want 200, 1, 2", got.LastStatus, got.LastError, got.Deliveries, got.Failures)
	}
}

func TestAFailingCallbackKeepsItsSubscriptionAfterTheLastTry(t *testing.T) {
	e := newEnv(t, func(o *websub.Options) { o.Tries = 2 })
	s := newSubscriber(t)
	s.status = func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	e.subscribe(s, topic("press", feeds.FormatRSS), "", "")
	e.publish()
	e.events.wait(t, websub.EventDelivery, "failed", 1)
	s.none()
	// The subscription stays until its lease ends: the next change is
	// delivered.
	title := e.publish()
	if d := s.next(time.Second); !contains(d.body, title) {
		t.Error("the next change did not reach the callback that had failed")
	}
}

func TestA410EndsTheSubscription(t *testing.T) {
	dbtest.Each(t, a410EndsTheSubscription)
}

func a410EndsTheSubscription(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	s := newSubscriber(t)
	s.status = func(int) int { return http.StatusGone }
	e.subscribe(s, topic("press", feeds.FormatRSS), "", "")
	e.publish()
	e.events.wait(t, websub.EventDelivery, "gone", 1)
	if n, _ := e.hub.Count(context.Background()); n != 0 {
		t.Errorf("%d subscriptions after 410 Gone, want 0", n)
	}
}

func TestACallbackThatNeverAnswersDelaysNoOther(t *testing.T) {
	e := newEnv(t, func(o *websub.Options) {
		o.Workers = 4
		o.Timeout = 3 * time.Second
	})
	dead := newSubscriber(t)
	dead.hang = make(chan struct{})
	e.subscribe(dead, topic("press", feeds.FormatRSS), "", "")
	var others []*subscriber
	for range 12 {
		s := newSubscriber(t)
		e.subscribe(s, topic("press", feeds.FormatRSS), "", "")
		others = append(others, s)
	}
	start := time.Now()
	e.publish()
	for _, s := range others {
		s.next(time.Second)
	}
	t.Logf("12 subscribers delivered %s after the crawl began, beside a callback that never answers", time.Since(start))
	if n := e.events.count(websub.EventDelivery, "retried"); n != 0 {
		t.Errorf("%d retries before the dead callback's timeout", n)
	}
}

func TestATopicThatIsNotOursIsDenied(t *testing.T) {
	e := newEnv(t, nil)
	for _, tp := range []string{baseURL + "/feeds/sports.atom", "https://example.com/feed.xml", baseURL + "/feeds/press.html"} {
		s := newSubscriber(t)
		s.want("subscribe", tp, "")
		code, body := e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {tp}, "hub.callback": {s.callback}})
		if code != http.StatusAccepted {
			t.Errorf("%s: %d %s; the answer must not depend on validation", tp, code, body)
		}
		q := s.verification()
		if q.Get("hub.mode") != "denied" || q.Get("hub.topic") != tp || !strings.Contains(q.Get("hub.reason"), "not a feed") {
			t.Errorf("%s: denial = %v", tp, q)
		}
		if q.Has("hub.challenge") {
			t.Errorf("%s: a denial carries a challenge", tp)
		}
	}
	e.events.wait(t, websub.EventVerification, "denied", 3)
	if n, _ := e.hub.Count(context.Background()); n != 0 {
		t.Errorf("%d subscriptions, want none", n)
	}
}

func TestSubscriptionsSurviveARestart(t *testing.T) {
	dbtest.Each(t, subscriptionsSurviveARestart)
}

func subscriptionsSurviveARestart(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	s := newSubscriber(t)
	e.subscribe(s, topic("press", feeds.FormatRSS), "", "k")
	e.closeHub()
	// A new hub on the same database, as serve started again.
	hub := e.startHub(e.store, websub.Options{
		Feeds: feeds.Options{BaseURL: baseURL}, Local: true, AllowPrivate: true,
		PollInterval: time.Hour, Now: e.clock.Now, Observe: e.events.observe,
	})
	e.crawler.OnRun = hub.CrawlRun
	title := e.publish()
	if d := s.next(time.Second); !contains(d.body, title) || !d.signedOK {
		t.Error("the subscription made before the restart did not get a signed feed")
	}
}

// TestACrawlByAnotherProcessIsPublished crawls through a second database
// handle, as msitfeed crawl beside msitfeed serve does: no CrawlRun comes,
// and the hub's poll of the board versions finds the change.
func TestACrawlByAnotherProcessIsPublished(t *testing.T) {
	dbtest.Each(t, aCrawlByAnotherProcessIsPublished)
}

func aCrawlByAnotherProcessIsPublished(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, func(o *websub.Options) { o.PollInterval = 20 * time.Millisecond })
	s := newSubscriber(t)
	e.subscribe(s, topic("all", feeds.FormatRSS), "", "")
	other, err := db.Open(context.Background(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e.crawler.Store = feeds.NewStore(other)
	e.crawler.OnRun = nil
	title := e.publish()
	if d := s.next(2 * time.Second); !contains(d.body, title) {
		t.Error("the feed delivered after another process's crawl lacks its post")
	}
}

// TestAChangeWhileNoHubRanIsPublishedAtStart: a crawl while serve was down
// is published when the hub starts.
func TestAChangeWhileNoHubRanIsPublishedAtStart(t *testing.T) {
	dbtest.Each(t, aChangeWhileNoHubRanIsPublishedAtStart)
}

func aChangeWhileNoHubRanIsPublishedAtStart(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, nil)
	s := newSubscriber(t)
	e.subscribe(s, topic("press", feeds.FormatJSON), "", "")
	e.closeHub()
	e.crawler.OnRun = nil
	title := e.publish()
	e.startHub(e.store, websub.Options{Feeds: feeds.Options{BaseURL: baseURL}, Local: true, AllowPrivate: true,
		PollInterval: time.Hour, Now: e.clock.Now})
	if d := s.next(2 * time.Second); !contains(d.body, title) {
		t.Error("the change made while no hub ran was not delivered at start")
	}
}

func TestExternalHubsArePinged(t *testing.T) {
	pings := make(chan url.Values, 16)
	ext := newPingHub(t, pings)
	e := newEnv(t, func(o *websub.Options) {
		o.Local = false
		o.External = []string{ext}
	})
	if got := e.hub.Hubs(); len(got) != 1 || got[0] != ext {
		t.Errorf("Hubs() = %q, want only the external hub", got)
	}
	e.publish()
	want := map[string]bool{}
	for _, b := range []string{"press", "all"} {
		for _, f := range feeds.Formats() {
			want[topic(b, f)] = true
		}
	}
	for range want {
		select {
		case q := <-pings:
			if q.Get("hub.mode") != "publish" || !want[q.Get("hub.url")] {
				t.Errorf("ping %v", q)
			}
			delete(want, q.Get("hub.url"))
		case <-time.After(2 * time.Second):
			t.Fatalf("no ping for %v", want)
		}
	}
	// The hub runs no endpoint of its own.
	code, _ := e.request(url.Values{"hub.mode": {"subscribe"}})
	if code != http.StatusNotFound {
		t.Errorf("a subscription request to a hub that is not Local: %d, want 404", code)
	}
}

func TestFeedResponsesCarryDiscoveryLinks(t *testing.T) {
	e := newEnv(t, func(o *websub.Options) { o.External = []string{"https://hub.example/"} })
	feed := e.hub.FeedLinks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	cases := map[string]string{
		"/feeds/press.rss":           `<https://feeds.test/websub>; rel="hub", <https://hub.example/>; rel="hub", <https://feeds.test/feeds/press.rss>; rel="self"`,
		"/feeds/all.json":            `<https://feeds.test/websub>; rel="hub", <https://hub.example/>; rel="hub", <https://feeds.test/feeds/all.json>; rel="self"`,
		"/feeds/notice.atom?limit=5": `<https://feeds.test/websub>; rel="hub", <https://hub.example/>; rel="hub", <https://feeds.test/feeds/notice.atom?limit=5>; rel="self"`,
		"/feeds/notice.atom?limit=x": ``,
		"/feeds/sports.atom":         ``,
		"/":                          ``,
	}
	for path, want := range cases {
		rec := httptest.NewRecorder()
		feed.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Header().Get("Link"); got != want {
			t.Errorf("%s: Link %q, want %q", path, got, want)
		}
	}
}

// closeHub stops the env's hub now (its cleanup then finds it stopped).
func (e *env) closeHub() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hub.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// TestTwoHubsOnOneDatabaseDeliverOnce runs a second hub on its own handle
// of the database, as a second serve --no-scheduler would: both take
// subscriptions, one publishes, and when it stops the other takes over.
func TestTwoHubsOnOneDatabaseDeliverOnce(t *testing.T) {
	dbtest.Each(t, twoHubsOnOneDatabaseDeliverOnce)
}

func twoHubsOnOneDatabaseDeliverOnce(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, func(o *websub.Options) { o.PollInterval = 20 * time.Millisecond })
	first := e.hub
	other, err := db.Open(context.Background(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	second := e.startHub(feeds.NewStore(other), websub.Options{
		Feeds: feeds.Options{BaseURL: baseURL}, Local: true, AllowPrivate: true,
		PollInterval: 20 * time.Millisecond, Now: e.clock.Now, Observe: e.events.observe,
	})
	s := newSubscriber(t)
	e.subscribe(s, topic("press", feeds.FormatRSS), "", "") // through the second hub's endpoint

	e.crawler.OnRun = func(r feeds.CrawlRun) {
		first.CrawlRun(r)
		second.CrawlRun(r)
	}
	title := e.publish()
	if d := s.next(2 * time.Second); !contains(d.body, title) {
		t.Error("the delivery lacks the new post")
	}
	e.events.wait(t, websub.EventDelivery, "delivered", 1)

	// The first hub published; once it stops, the second takes over and
	// publishes the next change, once.
	e.hub = first
	e.closeHub()
	title = e.publish()
	if d := s.next(2 * time.Second); !contains(d.body, title) {
		t.Error("the second hub did not publish after the first stopped")
	}
	e.events.wait(t, websub.EventDelivery, "delivered", 2)
	// Both hubs poll every 20 ms: a second delivery of either change
	// would have come by now.
	second.Close(context.Background())
	s.none()
	if n := e.events.count(websub.EventDelivery, "delivered"); n != 2 {
		t.Errorf("%d deliveries of two changes to one subscriber, want 2", n)
	}
}
