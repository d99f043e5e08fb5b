package config

import (
	"net/url"
	"time"
)

// The outer bounds of the configured WebSub leases. The defaults keep
// leases within 1 hour and 30 days; shorter ones only make subscribers
// renew more often, and the W3C Recommendation forbids perpetual leases
// (it suggests 10 days).
const (
	MinWebSubLease = time.Minute
	MaxWebSubLease = 365 * 24 * time.Hour
)

// defaultWeb is the [web] section's defaults: the WebSub hub on, leases
// of 10 days asked for by default, between 1 hour and 30 days.
func defaultWeb() Web {
	return Web{
		WebSub:                 true,
		WebSubLeaseDefault:     10 * 24 * time.Hour,
		WebSubLeaseMin:         time.Hour,
		WebSubLeaseMax:         30 * 24 * time.Hour,
		WebSubMaxSubscriptions: 10000,
		WebSubMaxPerHost:       100,
	}
}

// validateWebSub checks the web.websub_* keys: leases ordered within
// MinWebSubLease..MaxWebSubLease, positive caps, and every external hub an
// http(s) URL.
func (w Web) validateWebSub(bad func(key, format string, a ...any)) {
	for _, l := range []struct {
		key string
		d   time.Duration
	}{
		{"web.websub_lease_min", w.WebSubLeaseMin},
		{"web.websub_lease_default", w.WebSubLeaseDefault},
		{"web.websub_lease_max", w.WebSubLeaseMax},
	} {
		if l.d < MinWebSubLease || l.d > MaxWebSubLease {
			bad(l.key, "must be between %s and %s (like 240h for 10 days), got %s", MinWebSubLease, MaxWebSubLease, l.d)
		}
	}
	if w.WebSubLeaseMin > w.WebSubLeaseMax {
		bad("web.websub_lease_min", "%s is longer than web.websub_lease_max %s", w.WebSubLeaseMin, w.WebSubLeaseMax)
	} else if w.WebSubLeaseDefault < w.WebSubLeaseMin || w.WebSubLeaseDefault > w.WebSubLeaseMax {
		bad("web.websub_lease_default", "%s is not between web.websub_lease_min %s and web.websub_lease_max %s",
			w.WebSubLeaseDefault, w.WebSubLeaseMin, w.WebSubLeaseMax)
	}
	if w.WebSubMaxSubscriptions < 1 {
		bad("web.websub_max_subscriptions", "must be at least 1, got %d", w.WebSubMaxSubscriptions)
	}
	if w.WebSubMaxPerHost < 1 {
		bad("web.websub_max_per_host", "must be at least 1, got %d", w.WebSubMaxPerHost)
	}
	for _, h := range w.WebSubHubs {
		u, err := url.Parse(h)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			bad("web.websub_hubs", "%q is not an http(s) URL of a hub", h)
		}
	}
}
