// Package websub makes msitfeed a WebSub publisher (W3C Recommendation,
// 23 January 2018): it runs its own hub, at <base_url>/websub, which takes
// subscriptions to msitfeed's feeds, verifies them with the subscriber,
// keeps them in the database with their leases, and POSTs each changed feed
// to its subscribers, signed with their secret; and it pings external hubs
// (hub.mode=publish) when a feed they carry changes.
//
// A change is a board whose version (boards.version, bumped by every save
// that changes what a reader sees) moved. The hub notices it by polling the
// versions every PollInterval, which also catches a msitfeed crawl run by
// another process, and at once when this process's crawler reports a run
// that stored or updated posts (CrawlRun). Publishing never runs on the
// crawler's goroutine: the crawl only pokes the watcher, which renders each
// affected feed once and queues one delivery per subscriber for a bounded
// pool of workers, each request with its own timeout.
package websub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Path is where the hub is served, under the base URL.
const Path = "/websub"

// Kinds of event Options.Observe is told of, each with its outcome.
const (
	// EventRequest is a subscription request answered; the outcome is
	// the status code ("202", "400", ...).
	EventRequest = "request"
	// EventVerification is a verification of intent or a denial sent:
	// "verified", "unsubscribed", "refused" (no 2xx with the challenge),
	// "denied" (a topic that is not ours), "error" (not stored).
	EventVerification = "verification"
	// EventDelivery is one content distribution attempt: "delivered",
	// "retried" (failed, tried again later), "failed" (failed its last
	// try), "gone" (410: the subscription is deleted), "superseded" (a
	// newer document was queued for the same subscriber).
	EventDelivery = "delivery"
	// EventPing is one publish ping to an external hub: "ok", "retried",
	// "failed".
	EventPing = "ping"
)

// Options configures a Hub. Zero values take the defaults in brackets.
type Options struct {
	// Feeds renders the delivered documents, as the feed handler does:
	// its BaseURL is msitfeed's public URL, under which Path and the
	// topics (/feeds/...) are; its Hubs field is ignored (Hubs says what
	// to put there).
	Feeds feeds.Options
	// Local runs msitfeed's own hub at <base_url>/websub (web.websub).
	Local bool
	// External are other hubs to ping when a feed changes
	// (web.websub_hubs).
	External []string

	// A lease is what the subscriber asks for within LeaseMin..LeaseMax,
	// or LeaseDefault [10 days, within 1 hour..30 days].
	LeaseDefault, LeaseMin, LeaseMax time.Duration
	// AllowPrivate lets callbacks be at loopback, private and link-local
	// addresses (web.websub_allow_private).
	AllowPrivate bool
	// MaxSubscriptions and MaxPerHost cap the subscriptions kept, in total
	// and per callback host [10000, 100].
	MaxSubscriptions, MaxPerHost int

	// Workers is how many content distributions and pings run at once
	// [32]; Verifiers how many verifications of intent [4].
	Workers, Verifiers int
	// Timeout bounds each request to a callback or a hub [10s].
	Timeout time.Duration
	// Tries is how often a content distribution or ping is attempted
	// before it is given up [5]; Backoff the wait before the second, which
	// doubles each time [10s, so 10s, 20s, 40s, 80s].
	Tries   int
	Backoff time.Duration
	// PollInterval is how often the board versions are read [2s].
	PollInterval time.Duration
	// QueueSize bounds the deliveries and pings waiting for a worker
	// [4096]; the watcher waits when it is full. (At most 256 requests
	// wait for their verification; past them the endpoint answers 503.)
	QueueSize int

	// UserAgent is sent with every request ["msitfeed WebSub hub"].
	UserAgent string
	// Resolver looks up callback hosts [net.DefaultResolver].
	Resolver Resolver
	// Now is the clock of leases [time.Now].
	Now func() time.Time
	// Logger receives failures [discarded].
	Logger *slog.Logger
	// Observe, if set, is told of every event (EventRequest, ...) and its
	// outcome, for metrics. It must not block.
	Observe func(event, outcome string)
	// OnChange, if set, is called with the boards whose change is about to
	// be published, before any document is rendered (serve drops them from
	// the feed cache so external hubs fetching the feed get the new one).
	OnChange func(boards []string)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LeaseDefault, 10*24*time.Hour)
	def(&o.LeaseMin, time.Hour)
	def(&o.LeaseMax, 30*24*time.Hour)
	def(&o.Timeout, 10*time.Second)
	def(&o.Backoff, 10*time.Second)
	def(&o.PollInterval, 2*time.Second)
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&o.MaxSubscriptions, 10000)
	defInt(&o.MaxPerHost, 100)
	defInt(&o.Workers, 32)
	defInt(&o.Verifiers, 4)
	defInt(&o.Tries, 5)
	defInt(&o.QueueSize, 4096)
	if o.UserAgent == "" {
		o.UserAgent = "msitfeed WebSub hub"
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(string, string) {}
	}
	return o
}

// Hub is msitfeed's WebSub side: the hub's HTTP endpoint (ServeHTTP), its
// verification and delivery workers, and the watcher that publishes
// changed feeds. Create it with New, run it with Start, stop it with Close.
type Hub struct {
	opts   Options
	feeds  *feeds.Store
	db     store
	topics topics
	url    string // the hub's own URL, "" if not Local

	callbacks *http.Client // to subscribers: non-public addresses refused unless AllowPrivate
	hubs      *http.Client // to the configured external hubs

	verifications chan verification
	jobs          chan *job
	results       chan outcome
	poke          chan struct{}

	mu      sync.Mutex
	poked   map[string]bool  // boards a crawl run of this process changed
	latest  map[int64]uint64 // subscription id → the newest document queued for it
	seq     uint64           // numbers the fan-outs, for latest
	seen    map[string]int64 // board versions read at the previous check
	pubd    map[string]int64 // board versions published
	started bool

	// Used by the watcher alone.
	owner     string // of the publisher lock: host:pid:random
	publisher bool   // this hub held the publisher lock at its last check

	ctx     context.Context
	cancel  context.CancelFunc
	closing sync.Once
	closed  chan struct{}  // closed when Close has stopped everything
	wg      sync.WaitGroup // workers, verifiers, watcher
	rec     sync.WaitGroup // the recorder, stopped after the workers
	timers  sync.WaitGroup // retries waiting to be queued again
}

// New returns a hub over the item store fs (whose Registry says which
// feeds exist), keeping its subscriptions in the same database.
// It does nothing until Start.
func New(fs *feeds.Store, opts Options) (*Hub, error) {
	opts = opts.withDefaults()
	if opts.LeaseMin > opts.LeaseMax || opts.LeaseDefault < opts.LeaseMin || opts.LeaseDefault > opts.LeaseMax {
		return nil, fmt.Errorf("websub: lease default %s not within %s..%s", opts.LeaseDefault, opts.LeaseMin, opts.LeaseMax)
	}
	ts, err := newTopics(opts.Feeds.BaseURL, fs.Registry, opts.Feeds.Limit)
	if err != nil || (ts.base.Scheme != "http" && ts.base.Scheme != "https") || ts.base.Host == "" {
		return nil, fmt.Errorf("websub: base URL %q is not an http(s) URL", opts.Feeds.BaseURL)
	}
	h := &Hub{
		opts:          opts,
		feeds:         fs,
		db:            store{db: fs.DB()},
		topics:        ts,
		verifications: make(chan verification, 256),
		jobs:          make(chan *job, opts.QueueSize),
		results:       make(chan outcome, 1024),
		poke:          make(chan struct{}, 1),
		poked:         map[string]bool{},
		latest:        map[int64]uint64{},
	}
	if opts.Local {
		h.url = ts.baseText + Path
	}
	host, _ := os.Hostname()
	h.owner = fmt.Sprintf("%s:%d:%x", host, os.Getpid(), rand.Uint32())
	h.callbacks = newClient(opts.Timeout, !opts.AllowPrivate)
	h.hubs = newClient(opts.Timeout, false)
	return h, nil
}

// newClient is an HTTP client that follows no redirect (a subscriber must
// not move a subscription with one), uses no proxy, and with guard refuses
// to connect to non-public addresses.
func newClient(timeout time.Duration, guard bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if guard {
		dialer.Control = guardDial
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ForceAttemptHTTP2:     true,
			// A feed (50 items, ~50 KB) goes out in a few writes rather
			// than a dozen of the default 4 KiB.
			WriteBufferSize: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// URL is the hub's own URL, <base_url>/websub, or "" when it runs none.
func (h *Hub) URL() string { return h.url }

// Hubs are the hubs every feed names with rel="hub": this one (if Local),
// then the external ones.
func (h *Hub) Hubs() []string {
	var out []string
	if h.url != "" {
		out = append(out, h.url)
	}
	return append(out, h.opts.External...)
}

// Start reads which board versions were published, publishes the changes
// made since (by a crawl while no hub ran), and starts the workers and the
// watcher until Close.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errors.New("websub: hub already started")
	}
	pubd, err := h.db.published(ctx)
	if err != nil {
		return fmt.Errorf("websub: start: %w", err)
	}
	vs, err := h.feeds.Versions(ctx)
	if err != nil {
		return fmt.Errorf("websub: start: %w", err)
	}
	// A board never published before (a new database, or websub just
	// turned on) starts at its current version: the posts it has are not
	// news.
	fresh := map[string]int64{}
	for slug, v := range vs {
		if _, ok := pubd[slug]; !ok {
			pubd[slug] = v.Version
			fresh[slug] = v.Version
		}
	}
	if len(fresh) > 0 {
		if err := h.db.setPublished(ctx, fresh); err != nil {
			return fmt.Errorf("websub: start: %w", err)
		}
	}
	h.pubd = pubd
	h.seen = map[string]int64{}
	for slug, v := range vs {
		h.seen[slug] = v.Version
	}
	h.started = true
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for range h.opts.Workers {
		h.wg.Add(1)
		go h.work()
	}
	if h.opts.Local {
		for range h.opts.Verifiers {
			h.wg.Add(1)
			go h.verifyLoop()
		}
	}
	h.wg.Add(1)
	go h.watch()
	h.rec.Add(1)
	go h.recordLoop()
	// Changes published before the first tick: those made while no hub ran.
	h.pokeWatcher()
	return nil
}

// Close stops the hub: no new work is taken, requests in flight are
// cancelled, and delivery outcomes already known are written. Deliveries
// still waiting for a retry are dropped; the next change of their feed
// delivers the whole feed again. It waits until ctx is done at most.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if !started {
		return nil
	}
	h.closing.Do(func() {
		h.cancel()
		h.closed = make(chan struct{})
		go func() {
			h.wg.Wait()
			h.timers.Wait()
			close(h.results)
			h.rec.Wait()
			if h.publisher {
				// Another process may take over at once.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := db.Release(ctx, h.db.db, lockName, h.owner); err != nil {
					h.opts.Logger.Warn("websub: release the publisher lock", "err", err)
				}
				cancel()
			}
			close(h.closed)
		}()
	})
	select {
	case <-h.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("websub: close: %w", ctx.Err())
	}
}

// CrawlRun is a feeds.Crawler OnRun hook: a run that stored or updated
// posts makes the watcher publish its board at once rather than at its
// next poll. It never blocks the crawl.
func (h *Hub) CrawlRun(r feeds.CrawlRun) {
	if r.New+r.Updated == 0 {
		return
	}
	h.mu.Lock()
	h.poked[r.Board] = true
	h.mu.Unlock()
	h.pokeWatcher()
}

func (h *Hub) pokeWatcher() {
	select {
	case h.poke <- struct{}{}:
	default: // a check is already due
	}
}

// Count is the number of subscriptions whose lease has not expired.
func (h *Hub) Count(ctx context.Context) (int, error) {
	return h.db.count(ctx, h.opts.Now())
}
