package websub_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/internal/websub"
)

// fakeResolver answers from a table; a name not in it does not resolve.
type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range r[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

func TestCallbacksAtNonPublicAddressesAreRefused(t *testing.T) {
	e := newEnv(t, func(o *websub.Options) {
		o.AllowPrivate = false
		o.Resolver = fakeResolver{
			"localhost":          {"127.0.0.1", "::1"},
			"intranet.example":   {"10.0.0.7"},
			"rebind.example":     {"93.184.216.34", "192.168.1.20"},
			"metadata.example":   {"169.254.169.254"},
			"subscriber.example": {"93.184.216.34"},
		}
	})
	s := newSubscriber(t) // on 127.0.0.1: refused by default
	cases := []struct {
		callback string
		code     int
		says     string
	}{
		{s.callback, http.StatusForbidden, "loopback, private or link-local"},
		{"http://localhost:8080/cb", http.StatusForbidden, "127.0.0.1"},
		{"https://[::1]/cb", http.StatusForbidden, "::1"},
		{"https://intranet.example/cb", http.StatusForbidden, "10.0.0.7"},
		{"https://rebind.example/cb", http.StatusForbidden, "192.168.1.20"},
		{"http://metadata.example/latest", http.StatusForbidden, "169.254.169.254"},
		{"https://nowhere.example/cb", http.StatusUnprocessableEntity, "does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.callback, func(t *testing.T) {
			code, body := e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("press", feeds.FormatRSS)}, "hub.callback": {tc.callback}})
			if code != tc.code || !strings.Contains(body, tc.says) || strings.Count(body, "\n") != 1 {
				t.Errorf("%d %q, want %d and one line saying %q", code, body, tc.code, tc.says)
			}
		})
	}
	// A public one is accepted (its verification then fails: nothing
	// listens there, and the dialer refuses nothing public).
	if code, body := e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("press", feeds.FormatRSS)},
		"hub.callback": {"https://subscriber.example/cb"}}); code != http.StatusAccepted {
		t.Errorf("a public callback: %d %s", code, body)
	}
	select {
	case q := <-s.verifications:
		t.Errorf("the loopback callback was called: %v", q)
	default:
	}
}

func TestBadRequestsAreRefusedWithAReason(t *testing.T) {
	e := newEnv(t, nil)
	s := newSubscriber(t)
	good := func() url.Values {
		return url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("press", feeds.FormatRSS)}, "hub.callback": {s.callback}}
	}
	with := func(key, value string) url.Values {
		v := good()
		v.Set(key, value)
		return v
	}
	without := func(key string) url.Values {
		v := good()
		v.Del(key)
		return v
	}
	cases := []struct {
		name string
		form url.Values
		code int
		says string
	}{
		{"no mode", without("hub.mode"), 400, "hub.mode is missing"},
		{"an unknown mode", with("hub.mode", "subscribe-all"), 400, "subscribe or unsubscribe"},
		{"a publish ping", with("hub.mode", "publish"), 400, "publish"},
		{"no topic", without("hub.topic"), 400, "hub.topic is missing"},
		{"no callback", without("hub.callback"), 400, "hub.callback is missing"},
		{"an ftp callback", with("hub.callback", "ftp://subscriber.example/cb"), 400, "http or https"},
		{"a relative callback", with("hub.callback", "/cb"), 400, "http or https"},
		{"a callback with a fragment", with("hub.callback", s.callback+"#x"), 400, "fragment"},
		{"a callback with a password", with("hub.callback", "https://u:p@subscriber.example/cb"), 400, "password"},
		{"a callback too long", with("hub.callback", "https://subscriber.example/"+strings.Repeat("a", 2100)), 400, "longer than"},
		{"a lease that is not a number", with("hub.lease_seconds", "ten days"), 400, "positive decimal integer"},
		{"a negative lease", with("hub.lease_seconds", "-5"), 400, "positive decimal integer"},
		{"a zero lease", with("hub.lease_seconds", "0"), 400, "positive decimal integer"},
		{"a secret of 200 bytes", with("hub.secret", strings.Repeat("s", 200)), 400, "less than 200 bytes"},
		{"a topic given twice", func() url.Values { v := good(); v.Add("hub.topic", topic("notice", feeds.FormatRSS)); return v }(), 400, "more than once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.request(tc.form)
			if code != tc.code || !strings.Contains(body, tc.says) || strings.Count(body, "\n") != 1 {
				t.Errorf("%d %q, want %d and one line saying %q", code, body, tc.code, tc.says)
			}
		})
	}
	t.Run("a secret of 199 bytes is taken", func(t *testing.T) {
		if code, body := e.request(with("hub.secret", strings.Repeat("s", 199))); code != http.StatusAccepted {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("a body that is not a form", func(t *testing.T) {
		resp, err := http.Post(e.hubURL, "application/json", strings.NewReader(`{"hub.mode":"subscribe"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%d, want 415", resp.StatusCode)
		}
	})
	t.Run("a body too large", func(t *testing.T) {
		body := good().Encode() + "&pad=" + strings.Repeat("x", 20000)
		resp, err := http.Post(e.hubURL, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%d, want 413", resp.StatusCode)
		}
	})
	t.Run("a GET", func(t *testing.T) {
		resp, err := http.Get(e.hubURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%d, Allow %q; want 405, POST", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestSubscriptionCaps(t *testing.T) {
	dbtest.Each(t, subscriptionCaps)
}

func subscriptionCaps(t *testing.T, engine db.Engine) {
	e := newEnvOn(t, engine, func(o *websub.Options) {
		o.MaxPerHost = 2
		o.MaxSubscriptions = 3
	})
	a := newSubscriber(t)
	e.subscribe(a, topic("press", feeds.FormatRSS), "", "")
	e.subscribe(a, topic("press", feeds.FormatAtom), "", "")
	code, body := e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("press", feeds.FormatJSON)}, "hub.callback": {a.callback}})
	if code != http.StatusForbidden || !strings.Contains(body, "callback host 127.0.0.1 holds its maximum of 2") {
		t.Errorf("a third subscription of one host: %d %q", code, body)
	}
	// A renewal is not a new subscription.
	e.subscribe(a, topic("press", feeds.FormatRSS), "", "new secret")

	// Another host (a name for the same loopback address) fills the
	// total.
	b := newSubscriber(t)
	b.callback = strings.Replace(b.callback, "127.0.0.1", "localhost", 1)
	e.subscribe(b, topic("notice", feeds.FormatRSS), "", "")
	code, body = e.request(url.Values{"hub.mode": {"subscribe"}, "hub.topic": {topic("notice", feeds.FormatAtom)}, "hub.callback": {b.callback}})
	if code != http.StatusForbidden || !strings.Contains(body, "maximum of 3 subscriptions") {
		t.Errorf("a fourth subscription: %d %q", code, body)
	}
}
