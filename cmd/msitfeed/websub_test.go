package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

// hubSubscriber is the smallest WebSub subscriber: it echoes the challenge
// of the subscription it asked for and passes on each content
// distribution, with whether its signature held.
type hubSubscriber struct {
	topic, secret string
	deliveries    chan []byte
	signed        chan bool
}

func (s *hubSubscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		if q.Get("hub.mode") != "subscribe" || q.Get("hub.topic") != s.topic {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, q.Get("hub.challenge"))
		return
	}
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write(body)
	s.signed <- r.Header.Get("X-Hub-Signature") == "sha256="+hex.EncodeToString(mac.Sum(nil))
	s.deliveries <- body
	w.WriteHeader(http.StatusNoContent)
}

// TestServe_WebSub runs serve with its hub, subscribes to a feed through
// POST /websub, and crawls a new post with `msitfeed crawl`, a process of
// its own as far as serve can tell: serve's hub notices the board's new
// version and delivers the feed, signed. websub list then shows the
// subscription and its delivery.
func TestServe_WebSub(t *testing.T) {
	p := newPipeline(t, msittest.SamplePosts())
	p.env = append(p.env, "MSITFEED_WEB_WEBSUB_ALLOW_PRIVATE=true")
	p.run("crawl")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var serveLog bytes.Buffer
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s", serveLog.String())
		}
	}()
	m := NewMain(strings.NewReader(""), io.Discard, &serveLog, append(slices.Clone(p.env), "MSITFEED_LISTEN=127.0.0.1:0"))
	m.ready = ready
	go func() { done <- m.Run(ctx, []string{"serve", "--no-scheduler"}) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}

	const topic = "http://feeds.test/feeds/press.atom"
	resp, err := http.Get(base + "/feeds/press.atom")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if link := resp.Header.Get("Link"); link != `<http://feeds.test/websub>; rel="hub", <`+topic+`>; rel="self"` {
		t.Errorf("Link = %q", link)
	}
	if !bytes.Contains(doc, []byte(`href="http://feeds.test/websub" rel="hub"`)) {
		t.Errorf("the Atom feed has no hub link:\n%.600s", doc)
	}
	var jf struct{ Hubs []struct{ Type, URL string } }
	if err := json.Unmarshal(get(t, base+"/feeds/all.json"), &jf); err != nil || len(jf.Hubs) != 1 || jf.Hubs[0].URL != "http://feeds.test/websub" {
		t.Errorf("JSON Feed hubs = %+v (%v)", jf.Hubs, err)
	}

	sub := &hubSubscriber{topic: topic, secret: "e2e", deliveries: make(chan []byte, 4), signed: make(chan bool, 4)}
	subSrv := httptest.NewServer(sub)
	defer subSrv.Close()
	resp, err = http.PostForm(base+"/websub", url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic},
		"hub.callback": {subSrv.URL + "/cb"}, "hub.secret": {sub.secret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /websub: %s", resp.Status)
	}
	// Verification is asynchronous: the subscription is stored once the
	// callback answered, which the metrics show.
	waitMetric(t, base, "msitfeed_websub_subscriptions 1")

	p.site.AddPost(msittest.Post{Board: "press", ID: 1999, Title: "A post for the WebSub subscribers", Date: "2024-11-29",
		Department: "Press Office", BodyHTML: "<p>News.</p>"})
	p.run("crawl", "--board", "press")
	select {
	case body := <-sub.deliveries:
		if !<-sub.signed {
			t.Error("the delivery's X-Hub-Signature does not hold")
		}
		if !bytes.Contains(body, []byte("A post for the WebSub subscribers")) {
			t.Error("the delivered feed lacks the new post")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s of a crawl by another process (serve polls board versions every 2s)")
	}

	// The outcome is recorded once the hub has read the answer.
	waitMetric(t, base, `msitfeed_websub_deliveries_total{outcome="delivered"} 1`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	list := p.run("websub", "list")
	for _, want := range []string{topic, subSrv.URL + "/cb", "ok 204"} {
		if !strings.Contains(list, want) {
			t.Errorf("websub list lacks %q:\n%s", want, list)
		}
	}
}

// waitMetric waits until serve's /metrics shows line, for at most 5s.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(string(get(t, base+"/metrics")), line) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics did not show %q within 5s", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
