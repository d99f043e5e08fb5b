package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
)

func TestSubscribe(t *testing.T) {
	t.Run("a new address becomes pending from the web and gets one confirmation mail", func(t *testing.T) {
		e := newEnv(t, nil)
		body := e.subscribe("Reader@Example.org", "press", "notice")
		if !strings.Contains(body, "Check your inbox") {
			t.Errorf("answer page:\n%s", body)
		}
		s := e.sub("reader@example.org")
		if s.Status != mailer.StatusPending || s.Origin != mailer.OriginWeb {
			t.Errorf("status %s origin %s, want pending web", s.Status, s.Origin)
		}
		if got := strings.Join(s.Boards, ","); got != "notice,press" {
			t.Errorf("boards %q, want notice,press", got)
		}
		link := e.confirmURL(1)
		if !strings.HasPrefix(link, e.base+"/confirm/") {
			t.Errorf("confirmation link %s is not on %s", link, e.base)
		}
		if uid, err := e.mailer.Tokens().Verify(mailer.PurposeConfirm, tokenOf(t, link)); err != nil || uid != s.UID {
			t.Errorf("link token names %q (%v), want %q", uid, err, s.UID)
		}
		if n := len(e.mails()); n != 1 {
			t.Errorf("%d mails, want 1", n)
		}
	})

	t.Run("every board checked means all boards, including boards added later", func(t *testing.T) {
		e := newEnv(t, nil)
		e.subscribe("all@example.org")
		if s := e.sub("all@example.org"); s.Boards != nil {
			t.Errorf("boards %v, want nil (all)", s.Boards)
		}
	})

	t.Run("new, pending and active addresses get the same answer", func(t *testing.T) {
		e := newEnv(t, nil)
		newBody := e.subscribe("same@example.org")
		pendingBody := e.subscribe("same@example.org")
		if _, err := e.subs.Confirm(context.Background(), e.sub("same@example.org").UID); err != nil {
			t.Fatal(err)
		}
		activeBody := e.subscribe("same@example.org")
		if newBody != pendingBody || newBody != activeBody {
			t.Errorf("answers differ:\nnew:\n%s\npending:\n%s\nactive:\n%s", newBody, pendingBody, activeBody)
		}
		// A pending address gets a new link; an active one gets nothing.
		if n := len(e.mails()); n != 2 {
			t.Errorf("%d mails, want 2 (new, pending again)", n)
		}
		if s := e.sub("same@example.org"); s.Status != mailer.StatusActive {
			t.Errorf("status %s, want active", s.Status)
		}
	})

	t.Run("asking again while pending keeps the latest boards", func(t *testing.T) {
		e := newEnv(t, nil)
		e.subscribe("choosy@example.org", "press")
		e.subscribe("choosy@example.org", "photo", "trends")
		if got := strings.Join(e.sub("choosy@example.org").Boards, ","); got != "photo,trends" {
			t.Errorf("boards %q, want photo,trends", got)
		}
	})

	t.Run("an unsubscribed address becomes pending again and gets a link, a bounced one nothing", func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		for _, a := range []string{"left@example.org", "bounced@example.org"} {
			if _, err := e.subs.Add(ctx, mailer.NewSubscriber{Address: a, Status: mailer.StatusActive}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.subs.Remove(ctx, "left@example.org"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`UPDATE subscribers SET status = 'bounced' WHERE email = 'bounced@example.org'`); err != nil {
			t.Fatal(err)
		}
		leftBody := e.subscribe("left@example.org")
		bouncedBody := e.subscribe("bounced@example.org")
		if strings.ReplaceAll(leftBody, "left@", "X@") != strings.ReplaceAll(bouncedBody, "bounced@", "X@") {
			t.Errorf("answers differ:\n%s\n---\n%s", leftBody, bouncedBody)
		}
		if s := e.sub("left@example.org"); s.Status != mailer.StatusPending {
			t.Errorf("unsubscribed address is %s, want pending", s.Status)
		}
		if s := e.sub("bounced@example.org"); s.Status != mailer.StatusBounced {
			t.Errorf("bounced address is %s, want still bounced", s.Status)
		}
		mails := e.mails()
		if len(mails) != 1 || mails[0].To[0] != "left@example.org" {
			t.Errorf("mails %+v, want one to left@example.org", mails)
		}
	})

	t.Run("one address gets at most two confirmation mails however often it is entered", func(t *testing.T) {
		e := newEnv(t, nil)
		for i := range 5 {
			r := e.formRequest("/subscribe", e.subscribeForm("target@example.org"), "same-origin")
			r.RemoteAddr = "198.51.100." + string(rune('1'+i)) + ":1234"
			if code, _, body := e.do(r); code != http.StatusOK {
				t.Fatalf("request %d: %d\n%s", i, code, body)
			}
		}
		if n := len(e.mails()); n != 2 {
			t.Errorf("%d mails, want 2", n)
		}
	})
}

func TestSubscribe_Invalid(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"an address without a domain is refused", url.Values{"email": {"reader@"}, "board": {"press"}}, "does not look like an email address"},
		{"an empty address is refused", url.Values{"email": {" "}, "board": {"press"}}, "Enter your email address"},
		{"no board is refused", url.Values{"email": {"reader@example.org"}}, "Choose at least one board"},
		{"an unknown board is refused", url.Values{"email": {"reader@example.org"}, "board": {"press", "secret"}}, "Choose boards from the list"},
		{"a name with a line break is refused", url.Values{"email": {"reader@example.org"}, "name": {"A\r\nBcc: x@example.org"}, "board": {"press"}}, "cannot be used"},
		{"a very long name is refused", url.Values{"email": {"reader@example.org"}, "name": {strings.Repeat("n", 201)}, "board": {"press"}}, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("token", e.formToken())
			code, _, body := e.post("/subscribe", tt.form)
			if code != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422", code)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("page does not say %q:\n%s", tt.want, body)
			}
			if !strings.Contains(body, `name="token"`) {
				t.Error("the form is not shown again")
			}
			if snap := e.snapshot(); snap != "" {
				t.Errorf("subscribers stored:\n%s", snap)
			}
		})
	}
	t.Run("the form comes back as it was filled in", func(t *testing.T) {
		form := url.Values{"token": {e.formToken()}, "email": {"reader@"}, "name": {"Jane <b>"}, "board": {"photo"}}
		_, _, body := e.post("/subscribe", form)
		for _, want := range []string{`value="reader@"`, `value="Jane &lt;b&gt;"`, `value="photo" checked`, `value="press">`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
	})
	if n := len(e.mails()); n != 0 {
		t.Errorf("%d mails sent for invalid forms", n)
	}
}

func TestSubscribe_CSRF(t *testing.T) {
	e := newEnv(t, nil)
	past := mailer.NewTokens([]byte(testSecret))
	past.Now = func() time.Time { return time.Now().Add(-formTokenTTL - time.Minute) }
	other := mailer.NewTokens([]byte("another secret"))

	refused := []struct {
		name      string
		token     string
		fetchSite string
		origin    string
	}{
		{"a cross-site POST is refused", e.formToken(), "cross-site", ""},
		{"a same-site POST from another origin is refused", e.formToken(), "same-site", ""},
		{"an Origin of another site without Sec-Fetch-Site is refused", e.formToken(), "", "https://attacker.example"},
		{"a POST without a form token is refused", "", "same-origin", ""},
		{"a forged form token is refused", other.Sign(formPurpose, "subscribe", time.Hour), "same-origin", ""},
		{"a truncated form token is refused", e.formToken()[:20], "same-origin", ""},
		{"an expired form token is refused", past.Sign(formPurpose, "subscribe", formTokenTTL), "same-origin", ""},
		{"a link token is no form token", e.sign(mailer.PurposeConfirm, "subscribe"), "same-origin", ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"email": {"victim@example.org"}, "board": {"press"}}
			if tt.token != "" {
				form.Set("token", tt.token)
			}
			r := e.formRequest("/subscribe", form, tt.fetchSite)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			code, _, body := e.do(r)
			if code != http.StatusForbidden {
				t.Errorf("status %d, want 403", code)
			}
			if !strings.Contains(body, "Form refused") {
				t.Errorf("page:\n%s", body)
			}
			if snap := e.snapshot(); snap != "" {
				t.Errorf("subscriber stored:\n%s", snap)
			}
		})
	}

	accepted := []struct {
		name      string
		fetchSite string
		origin    string
	}{
		{"a same-origin browser POST is accepted", "same-origin", ""},
		{"an Origin equal to base_url is accepted behind a proxy that rewrites Host", "", "BASE"},
		{"a client that sends neither header (not a browser) is accepted", "", ""},
	}
	for i, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			r := e.formRequest("/subscribe", e.subscribeForm("ok"+string(rune('a'+i))+"@example.org"), tt.fetchSite)
			if tt.origin == "BASE" {
				r.Host = "internal:8080"
				r.Header.Set("Origin", e.base)
			}
			if code, _, body := e.do(r); code != http.StatusOK {
				t.Errorf("status %d, want 200\n%s", code, body)
			}
		})
	}
	if n := len(e.mails()); n != len(accepted) {
		t.Errorf("%d mails, want %d", n, len(accepted))
	}
}

func TestSubscribe_RateLimit(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.SubscribeLimit = RateLimit{Every: time.Hour, Burst: 5} })
	post := func(remote, email string, hdr ...string) int {
		r := e.formRequest("/subscribe", e.subscribeForm(email), "same-origin")
		r.RemoteAddr = remote
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		code, h, body := e.do(r)
		if code == http.StatusTooManyRequests && (h.Get("Retry-After") == "" || !strings.Contains(body, "Too many requests")) {
			t.Errorf("429 without Retry-After or page:\n%s", body)
		}
		return code
	}

	t.Run("a flood from one address is cut off after the burst", func(t *testing.T) {
		var ok, limited int
		for i := range 30 {
			switch code := post("192.0.2.1:5000", "flood"+strings.Repeat("x", i)+"@example.org"); code {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("request %d: status %d", i, code)
			}
		}
		if ok != 5 || limited != 25 {
			t.Errorf("%d accepted and %d limited, want 5 and 25", ok, limited)
		}
		var n int
		if err := e.db.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&n); err != nil || n != 5 {
			t.Errorf("%d subscribers stored (%v), want 5", n, err)
		}
	})

	t.Run("another address is still served", func(t *testing.T) {
		if code := post("192.0.2.2:5000", "neighbour@example.org"); code != http.StatusOK {
			t.Errorf("status %d, want 200", code)
		}
	})

	t.Run("the addresses of one IPv6 /64 share a bucket", func(t *testing.T) {
		for i := range 5 {
			post("[2001:db8:1:2::"+string(rune('a'+i))+"]:5000", "v6"+string(rune('a'+i))+"@example.org")
		}
		if code := post("[2001:db8:1:2:ffff::1]:5000", "v6z@example.org"); code != http.StatusTooManyRequests {
			t.Errorf("sixth request from the same /64: status %d, want 429", code)
		}
		if code := post("[2001:db8:1:3::1]:5000", "v6other@example.org"); code != http.StatusOK {
			t.Errorf("another /64: status %d, want 200", code)
		}
	})
}

func TestSubscribe_RateLimitBehindProxy(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.SubscribeLimit = RateLimit{Every: time.Hour, Burst: 1}
		s.ClientIPHeader = "X-Forwarded-For"
	})
	post := func(xff, email string) int {
		r := e.formRequest("/subscribe", e.subscribeForm(email), "same-origin")
		r.RemoteAddr = "10.0.0.1:40000" // the proxy
		r.Header.Set("X-Forwarded-For", xff)
		code, _, _ := e.do(r)
		return code
	}
	if code := post("203.0.113.7", "a@example.org"); code != http.StatusOK {
		t.Fatalf("first: %d", code)
	}
	if code := post("203.0.113.8", "b@example.org"); code != http.StatusOK {
		t.Errorf("another client behind the same proxy: %d, want 200", code)
	}
	if code := post("1.2.3.4, 203.0.113.7", "c@example.org"); code != http.StatusTooManyRequests {
		t.Errorf("a forged leftmost entry escaped the limit: %d, want 429", code)
	}
}

func TestSignupClosed(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.SignupClosed = true })
	_, _, body := e.get("/")
	if strings.Contains(body, `action="/subscribe`) {
		t.Error("index shows the subscribe form while sign-up is closed")
	}
	form := url.Values{"email": {"a@example.org"}, "board": {"press"}}
	if code, _, _ := e.post("/subscribe", form); code != http.StatusNotFound {
		t.Errorf("POST /subscribe: %d, want 404", code)
	}
	// Links in mails already sent keep working.
	s, err := e.subs.Add(context.Background(), mailer.NewSubscriber{Address: "old@example.org", Status: mailer.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := e.post("/unsubscribe/"+e.sign(mailer.PurposeUnsubscribe, s.UID), url.Values{"List-Unsubscribe": {"One-Click"}}); code != http.StatusOK {
		t.Errorf("unsubscribe: %d, want 200", code)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t, nil)
	e.subscribe("before@example.org")
	if err := e.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.smtp.Count(); n != 1 {
		t.Errorf("Close returned with %d mails delivered, want 1", n)
	}
	e.subscribe("after@example.org")
	if n := len(e.mails()); n != 1 {
		t.Errorf("%d mails after Close, want still 1", n)
	}
}
