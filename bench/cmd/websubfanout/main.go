// Command websubfanout measures how long msitfeed's WebSub hub takes to
// deliver a changed feed to many subscribers, against the time of the crawl
// that changed it.
//
//	go run ./bench/cmd/websubfanout [-subscribers 1000] [-rounds 5] [-rate 1] [-workers 32]
//
// It serves the fake MSIT site (msittest) and -subscribers WebSub
// subscribers on loopback, each an httptest server of its own that echoes
// its challenge and checks the X-Hub-Signature of what it gets. They
// subscribe through the hub's HTTP endpoint to press.rss, press.atom and
// press.json in turn, each with a secret. In every round a new post appears
// on the site and the press board is crawled with the crawler serve runs,
// at -rate requests per second (1, the default of source.rate, is what
// serve does); the crawler's OnRun pokes the hub as in serve. The fan-out
// is the time from the end of the board's crawl run (the poke) to the last
// subscriber's receipt, and every subscriber must get the new post with a
// valid signature. It prints each round and the medians.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/feeds/msit"
	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/websub"
)

func main() {
	n := flag.Int("subscribers", 1000, "WebSub subscribers, each with its own httptest server")
	rounds := flag.Int("rounds", 5, "crawls with a new post, each delivered to every subscriber")
	rate := flag.Float64("rate", 1, "requests per second of the crawl (source.rate; 1 is serve's default)")
	workers := flag.Int("workers", 0, "the hub's delivery workers (0: its default)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the rounds to this file")
	flag.Parse()
	profile = *cpuProfile
	if err := run(*n, *rounds, *rate, *workers); err != nil {
		log.Fatalf("websubfanout: %v", err)
	}
}

// subscriber is one callback: it answers the verification of intent for
// its topic and counts deliveries that carry the round's post with a valid
// signature.
type subscriber struct {
	topic, secret string
	want          atomic.Pointer[string] // the title the current round waits for
	got           func(at time.Time)     // called once per round
	bad           *atomic.Int64
}

func (s *subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)+512))
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
	at := time.Now()
	w.WriteHeader(http.StatusNoContent)
	if err != nil {
		s.bad.Add(1)
		return
	}
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write(body)
	if r.Header.Get("X-Hub-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		s.bad.Add(1)
		return
	}
	if want := s.want.Load(); want != nil && bytes.Contains(body, []byte(*want)) {
		s.got(at)
	}
}

// profile, if set, is where the rounds' CPU profile goes.
var profile string

func run(n, rounds int, rate float64, workers int) error {
	ctx := context.Background()
	site := msittest.NewSite(msittest.SamplePosts())
	siteSrv := httptest.NewServer(site)
	defer siteSrv.Close()
	dir, err := os.MkdirTemp("", "websubfanout")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := db.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	defer d.Close()
	store := feeds.NewStore(d)
	base, _ := url.Parse(siteSrv.URL)
	fast := &feeds.Crawler{Store: store, BackfillPages: 5,
		Source: msit.NewSource(msit.NewClient(msit.Options{BaseURL: siteSrv.URL, Rate: 1000, Retries: -1}), base)}
	if _, err := fast.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"press"}}); err != nil {
		return fmt.Errorf("first crawl: %w", err)
	}

	var verified atomic.Int64
	hub, err := websub.New(store, websub.Options{
		Feeds:            feeds.Options{BaseURL: "https://feeds.example.org", SourceURL: siteSrv.URL},
		Local:            true,
		AllowPrivate:     true,
		MaxSubscriptions: n + 1,
		MaxPerHost:       n + 1,
		Workers:          workers,
		PollInterval:     time.Hour, // only the crawl's poke publishes
		Observe: func(event, outcome string) {
			if event == websub.EventVerification && outcome == "verified" {
				verified.Add(1)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := hub.Start(ctx); err != nil {
		return err
	}
	defer hub.Close(ctx)
	hubSrv := httptest.NewServer(hub)
	defer hubSrv.Close()

	var (
		mu      sync.Mutex
		arrived []time.Time
		all     = make(chan struct{}, 1)
		bad     atomic.Int64
	)
	subs := make([]*subscriber, n)
	for i := range subs {
		format := feeds.Formats()[i%3]
		s := &subscriber{topic: "https://feeds.example.org/feeds/press." + string(format), secret: fmt.Sprintf("secret-%d", i), bad: &bad}
		s.got = func(at time.Time) {
			mu.Lock()
			arrived = append(arrived, at)
			if len(arrived) == n {
				all <- struct{}{}
			}
			mu.Unlock()
		}
		srv := httptest.NewServer(s)
		defer srv.Close()
		subs[i] = s
		form := url.Values{"hub.mode": {"subscribe"}, "hub.topic": {s.topic}, "hub.callback": {srv.URL + "/cb"}, "hub.secret": {s.secret}}
		resp, err := http.PostForm(hubSrv.URL+websub.Path, form)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("subscribe %d: %s", i, resp.Status)
		}
	}
	for deadline := time.Now().Add(time.Minute); verified.Load() < int64(n); {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscriptions verified after a minute", verified.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	crawler := &feeds.Crawler{Store: store, BackfillPages: 5,
		Source: msit.NewSource(msit.NewClient(msit.Options{BaseURL: siteSrv.URL, Rate: rate, Retries: -1}), base)}
	var poked time.Time
	crawler.OnRun = func(r feeds.CrawlRun) {
		poked = time.Now()
		hub.CrawlRun(r)
	}
	feedBytes := map[feeds.Format]int{}
	for _, f := range feeds.Formats() {
		e, err := feeds.BuildEntry(ctx, store, feeds.Options{BaseURL: "https://feeds.example.org", Hubs: hub.Hubs()}, "press", f, 50)
		if err != nil {
			return err
		}
		feedBytes[f] = len(e.Body)
	}
	fmt.Printf("msitfeed WebSub fan-out: %d subscribers (press.rss/.atom/.json in turn, each with a secret, each its own loopback server), "+
		"crawl at %g req/s, %d CPUs, %s\n", n, rate, runtime.NumCPU(), runtime.Version())
	fmt.Printf("feed sizes: rss %d B, atom %d B, json %d B (50 items)\n\n", feedBytes[feeds.FormatRSS], feedBytes[feeds.FormatAtom], feedBytes[feeds.FormatJSON])
	fmt.Println("| round | crawl | fan-out (poke → last receipt) | p50 receipt | p99 receipt | fan-out / crawl |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	var crawls, fanouts []time.Duration
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for round := 1; round <= rounds; round++ {
		title := fmt.Sprintf("Fan-out round %d: MSIT announces a new programme", round)
		for _, s := range subs {
			s.want.Store(&title)
		}
		mu.Lock()
		arrived = arrived[:0]
		mu.Unlock()
		site.AddPost(msittest.Post{Board: "press", ID: int64(5000 + round), Title: title, Date: "2024-11-29",
			Department: "Press Office", BodyHTML: "<p>" + title + ".</p>"})
		start := time.Now()
		runs, err := crawler.Crawl(ctx, feeds.CrawlOptions{Boards: []string{"press"}})
		crawled := time.Since(start)
		if err != nil || len(runs) != 1 || runs[0].New != 1 {
			return fmt.Errorf("round %d crawl: %v %+v", round, err, runs)
		}
		select {
		case <-all:
		case <-time.After(2 * time.Minute):
			mu.Lock()
			got := len(arrived)
			mu.Unlock()
			return fmt.Errorf("round %d: %d of %d subscribers served after 2 minutes", round, got, n)
		}
		mu.Lock()
		ts := slices.Clone(arrived)
		mu.Unlock()
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		fanout := ts[len(ts)-1].Sub(poked)
		p50, p99 := ts[len(ts)/2].Sub(poked), ts[len(ts)*99/100].Sub(poked)
		crawls, fanouts = append(crawls, crawled), append(fanouts, fanout)
		fmt.Printf("| %d | %s | %s | %s | %s | %.2f |\n", round, crawled.Round(time.Millisecond), fanout.Round(time.Millisecond),
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), float64(fanout)/float64(crawled))
	}
	if bad.Load() > 0 {
		return fmt.Errorf("%d deliveries had a wrong signature or could not be read", bad.Load())
	}
	mc, mf := median(crawls), median(fanouts)
	verdict := "met"
	if mf >= mc {
		verdict = "NOT met"
	}
	fmt.Printf("\nmedian crawl %s, median fan-out %s (%.2f of the crawl): goal \"fan-out under the crawl's time\" %s\n",
		mc.Round(time.Millisecond), mf.Round(time.Millisecond), float64(mf)/float64(mc), verdict)
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
