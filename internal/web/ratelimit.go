package web

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit configures a token bucket per key (a client address, a
// subscriber address): Burst requests at once, then one more every Every.
// Only the MaxKeys most recently seen keys are remembered; a key forgotten
// starts again with a full bucket, so MaxKeys bounds memory, not abuse.
type RateLimit struct {
	Every   time.Duration
	Burst   int
	MaxKeys int
}

// withDefaults fills the zero fields of l from def.
func (l RateLimit) withDefaults(def RateLimit) RateLimit {
	if l.Every <= 0 {
		l.Every = def.Every
	}
	if l.Burst <= 0 {
		l.Burst = def.Burst
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = def.MaxKeys
	}
	return l
}

// limiter holds the token buckets of RateLimit, least recently seen key
// evicted first when full.
type limiter struct {
	cfg RateLimit
	now func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *bucket
	order *list.List               // most recently seen at the front
}

type bucket struct {
	key string
	lim *rate.Limiter
}

func newLimiter(cfg RateLimit) *limiter {
	return &limiter{cfg: cfg, now: time.Now, keys: map[string]*list.Element{}, order: list.New()}
}

// allow takes a token from key's bucket and reports whether there was one.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if el, ok := l.keys[key]; ok {
		l.order.MoveToFront(el)
		return el.Value.(*bucket).lim.AllowN(now, 1)
	}
	for l.order.Len() >= l.cfg.MaxKeys {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.keys, oldest.Value.(*bucket).key)
	}
	b := &bucket{key: key, lim: rate.NewLimiter(rate.Every(l.cfg.Every), l.cfg.Burst)}
	l.keys[key] = l.order.PushFront(b)
	return b.lim.AllowN(now, 1)
}

// len is the number of keys remembered.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// clientKey returns the rate-limit key of r's client: its IPv4 address, or
// the /64 of its IPv6 address, since one host commonly holds a whole /64.
// The address comes from ClientIPHeader when that is set and parses.
func (s *Server) clientKey(r *http.Request) string {
	addr, ok := netip.Addr{}, false
	if s.ClientIPHeader != "" {
		addr, ok = headerAddr(r.Header.Get(s.ClientIPHeader))
	}
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, ok = parseAddr(host)
	}
	if !ok {
		return r.RemoteAddr
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// headerAddr reads a proxy's client-address header. In a list
// (X-Forwarded-For) only the rightmost entry was written by our proxy; the
// others came from the client and may be forged.
func headerAddr(v string) (netip.Addr, bool) {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return parseAddr(strings.TrimSpace(v))
}

func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}
