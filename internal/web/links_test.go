package web

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
)

// addSub adds an address with status directly through the store.
func (e *env) addSub(email string, status mailer.Status, boards ...string) mailer.Subscriber {
	e.t.Helper()
	s, err := e.subs.Add(context.Background(), mailer.NewSubscriber{Address: email, Status: status, Boards: boards})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestLinks_BadTokens(t *testing.T) {
	e := newEnv(t, nil)
	pending := e.addSub("pending@example.org", mailer.StatusPending)
	active := e.addSub("active@example.org", mailer.StatusActive, "press")
	before := e.snapshot()

	expired := mailer.NewTokens([]byte(testSecret))
	expired.Now = func() time.Time { return time.Now().Add(-mailer.ConfirmTTL - time.Hour) }
	forger := mailer.NewTokens([]byte("not our secret"))

	routes := []struct {
		path    string
		purpose mailer.Purpose
		uid     string
		form    url.Values
	}{
		{"/confirm/", mailer.PurposeConfirm, pending.UID, url.Values{}},
		{"/preferences/", mailer.PurposePreferences, active.UID, url.Values{"action": {"unsubscribe"}}},
		{"/preferences/", mailer.PurposePreferences, active.UID, url.Values{"action": {"save"}, "board": {"photo"}}},
		{"/unsubscribe/", mailer.PurposeUnsubscribe, active.UID, url.Values{"List-Unsubscribe": {"One-Click"}}},
	}
	for _, rt := range routes {
		wrongPurpose := mailer.PurposeUnsubscribe
		if rt.purpose == mailer.PurposeUnsubscribe {
			wrongPurpose = mailer.PurposeConfirm
		}
		valid := e.sign(rt.purpose, rt.uid)
		// A token of the same purpose for the other subscriber lends its
		// signature to a payload naming this one.
		otherUID := active.UID
		if rt.uid == active.UID {
			otherUID = pending.UID
		}
		other := e.sign(rt.purpose, otherUID)
		tokens := []struct {
			name   string
			token  string
			status int
		}{
			{"forged", forger.Sign(rt.purpose, rt.uid, 0), http.StatusBadRequest},
			{"truncated", valid[:len(valid)-4], http.StatusBadRequest},
			{"cut at the dot", valid[:strings.IndexByte(valid, '.')], http.StatusBadRequest},
			{"expired", expired.Sign(rt.purpose, rt.uid, mailer.ConfirmTTL), http.StatusBadRequest},
			{"for another purpose", e.sign(wrongPurpose, rt.uid), http.StatusBadRequest},
			{"a form token", e.formToken(), http.StatusBadRequest},
			{"with its signature swapped from another token", valid[:strings.IndexByte(valid, '.')] + other[strings.IndexByte(other, '.'):], http.StatusBadRequest},
			{"garbage", "%00%ff..", http.StatusBadRequest},
			{"huge", strings.Repeat("A", 5000) + "." + strings.Repeat("B", 43), http.StatusBadRequest},
			{"for a subscriber that was erased", e.sign(rt.purpose, "0123456789abcdef0123456789abcdef"), http.StatusNotFound},
		}
		for _, tok := range tokens {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				name := method + " " + rt.path + " with a " + tok.name + " token"
				if method == http.MethodPost {
					name += " " + rt.form.Encode()
				}
				t.Run(name, func(t *testing.T) {
					var r *http.Request
					if method == http.MethodGet {
						r = httptest.NewRequest(method, e.base+rt.path+tok.token, nil)
					} else {
						r = e.formRequest(rt.path+tok.token, rt.form, "same-origin")
					}
					code, hdr, body := e.do(r)
					if code != tok.status {
						t.Errorf("status %d, want %d", code, tok.status)
					}
					if !strings.Contains(body, "This link is invalid or has expired.") {
						t.Errorf("page:\n%s", body)
					}
					if hdr.Get("Cache-Control") != "no-store" {
						t.Errorf("Cache-Control %q, want no-store", hdr.Get("Cache-Control"))
					}
					if after := e.snapshot(); after != before {
						t.Errorf("subscribers changed:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				})
			}
		}
	}
	if n := len(e.mails()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

func TestConfirm(t *testing.T) {
	t.Run("GET shows a button and changes nothing, POST confirms", func(t *testing.T) {
		e := newEnv(t, nil)
		e.subscribe("reader@example.org", "press")
		link := e.confirmURL(1)
		path := strings.TrimPrefix(link, e.base)
		before := e.snapshot()

		code, _, body := e.get(path)
		if code != http.StatusOK || !strings.Contains(body, `<form method="post" action="`+path+`"`) || !strings.Contains(body, ">Confirm</button>") {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		if e.snapshot() != before {
			t.Fatal("GET changed the subscriber")
		}

		code, _, body = e.post(path, nil)
		if code != http.StatusOK || !strings.Contains(body, "Subscription confirmed") {
			t.Fatalf("POST: %d\n%s", code, body)
		}
		s := e.sub("reader@example.org")
		if s.Status != mailer.StatusActive || s.Confirmed.IsZero() {
			t.Fatalf("after confirming: %s confirmed %v", s.Status, s.Confirmed)
		}
		if !strings.Contains(body, `href="/preferences/`) {
			t.Error("no link to the preferences page")
		}

		t.Run("confirming again is harmless", func(t *testing.T) {
			after := e.snapshot()
			code, _, body := e.post(path, nil)
			if code != http.StatusOK || !strings.Contains(body, "Already confirmed") {
				t.Errorf("second POST: %d\n%s", code, body)
			}
			code, _, body = e.get(path)
			if code != http.StatusOK || !strings.Contains(body, "Already confirmed") {
				t.Errorf("GET after confirming: %d\n%s", code, body)
			}
			if e.snapshot() != after {
				t.Error("confirming twice changed the subscriber")
			}
		})
	})

	t.Run("an old confirmation link does not undo an unsubscribe", func(t *testing.T) {
		e := newEnv(t, nil)
		e.subscribe("reader@example.org")
		path := strings.TrimPrefix(e.confirmURL(1), e.base)
		if _, err := e.subs.Unsubscribe(context.Background(), e.sub("reader@example.org").UID); err != nil {
			t.Fatal(err)
		}
		before := e.snapshot()
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := e.formRequest(path, nil, "same-origin")
			r.Method = method
			code, _, body := e.do(r)
			if code != http.StatusGone || !strings.Contains(body, "You are unsubscribed") {
				t.Errorf("%s: %d\n%s", method, code, body)
			}
		}
		if e.snapshot() != before {
			t.Error("the subscriber changed")
		}
	})

	t.Run("a cross-site POST does not confirm", func(t *testing.T) {
		e := newEnv(t, nil)
		s := e.addSub("reader@example.org", mailer.StatusPending)
		code, _, _ := e.do(e.formRequest("/confirm/"+e.sign(mailer.PurposeConfirm, s.UID), nil, "cross-site"))
		if code != http.StatusForbidden {
			t.Errorf("status %d, want 403", code)
		}
		if e.sub("reader@example.org").Status != mailer.StatusPending {
			t.Error("confirmed by a cross-site POST")
		}
	})
}

func TestPreferences(t *testing.T) {
	e := newEnv(t, nil)
	s := e.addSub("reader@example.org", mailer.StatusActive, "press", "photo")
	path := "/preferences/" + e.sign(mailer.PurposePreferences, s.UID)

	t.Run("GET shows the boards as chosen", func(t *testing.T) {
		code, _, body := e.get(path)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for _, want := range []string{`value="press" checked`, `value="photo" checked`, `value="notice">`, `value="unsubscribe"`, "reader@example.org"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
	})

	tests := []struct {
		name   string
		boards []string
		status int
		want   string // boards stored afterwards
	}{
		{"saving some boards stores them in display order", []string{"trends", "notice"}, http.StatusOK, "notice,trends"},
		{"saving every board stores all boards", []string{"notice", "press", "photo", "trends", "newsletter"}, http.StatusOK, ""},
		{"saving no board is refused and changes nothing", nil, http.StatusUnprocessableEntity, ""},
		{"an unknown board is refused and changes nothing", []string{"press", "bogus"}, http.StatusUnprocessableEntity, ""},
		{"saving one board again", []string{"press"}, http.StatusOK, "press"},
		{"saving the same board twice is the same", []string{"press"}, http.StatusOK, "press"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := e.post(path, url.Values{"action": {"save"}, "board": tt.boards})
			if code != tt.status {
				t.Errorf("status %d, want %d\n%s", code, tt.status, body)
			}
			if code == http.StatusOK && !strings.Contains(body, "Your boards are saved") {
				t.Error("page does not say the boards are saved")
			}
			if got := strings.Join(e.sub("reader@example.org").Boards, ","); got != tt.want {
				t.Errorf("boards %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("the unsubscribe button unsubscribes, and the page then says so", func(t *testing.T) {
		code, _, body := e.post(path, url.Values{"action": {"unsubscribe"}})
		if code != http.StatusOK || !strings.Contains(body, "Unsubscribed") {
			t.Fatalf("status %d\n%s", code, body)
		}
		if st := e.sub("reader@example.org").Status; st != mailer.StatusUnsubscribed {
			t.Fatalf("status %s, want unsubscribed", st)
		}
		before := e.snapshot()
		if code, _, body := e.get(path); code != http.StatusGone || !strings.Contains(body, "You are unsubscribed") {
			t.Errorf("GET afterwards: %d\n%s", code, body)
		}
		if code, _, _ := e.post(path, url.Values{"action": {"save"}, "board": {"press"}}); code != http.StatusGone {
			t.Errorf("saving boards afterwards: %d, want 410", code)
		}
		if e.snapshot() != before {
			t.Error("the suppression record changed")
		}
	})

	t.Run("a cross-site POST changes nothing", func(t *testing.T) {
		s := e.addSub("other@example.org", mailer.StatusActive)
		p := "/preferences/" + e.sign(mailer.PurposePreferences, s.UID)
		if code, _, _ := e.do(e.formRequest(p, url.Values{"action": {"unsubscribe"}}, "cross-site")); code != http.StatusForbidden {
			t.Errorf("status %d, want 403", code)
		}
		if e.sub("other@example.org").Status != mailer.StatusActive {
			t.Error("unsubscribed by a cross-site POST")
		}
	})
}

func TestUnsubscribe(t *testing.T) {
	e := newEnv(t, nil)

	t.Run("GET shows a button and changes nothing", func(t *testing.T) {
		s := e.addSub("get@example.org", mailer.StatusActive)
		path := "/unsubscribe/" + e.sign(mailer.PurposeUnsubscribe, s.UID)
		before := e.snapshot()
		code, _, body := e.get(path)
		if code != http.StatusOK || !strings.Contains(body, `<form method="post" action="`+path+`"`) {
			t.Errorf("status %d\n%s", code, body)
		}
		if e.snapshot() != before {
			t.Error("GET changed the subscriber")
		}
	})

	oneClick := []struct {
		name string
		req  func(path string) *http.Request
	}{
		{"a one-click POST (RFC 8058) from a mail provider, urlencoded, without cookies or Origin", func(path string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("List-Unsubscribe=One-Click"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"a one-click POST as multipart/form-data", func(path string) *http.Request {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("List-Unsubscribe", "One-Click")
			mw.Close()
			r := httptest.NewRequest(http.MethodPost, path, &buf)
			r.Header.Set("Content-Type", mw.FormDataContentType())
			return r
		}},
		{"a one-click POST relayed by a webmail with a foreign Origin", func(path string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("List-Unsubscribe=One-Click"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "https://mail.example.com")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}},
		{"the button of the unsubscribe page", func(path string) *http.Request {
			return e.formRequest(path, url.Values{}, "same-origin")
		}},
	}
	for i, tt := range oneClick {
		t.Run(tt.name+" unsubscribes at once, and again is harmless", func(t *testing.T) {
			email := "click" + string(rune('a'+i)) + "@example.org"
			s := e.addSub(email, mailer.StatusActive)
			path := "/unsubscribe/" + e.sign(mailer.PurposeUnsubscribe, s.UID)
			code, _, body := e.do(tt.req(path))
			if code != http.StatusOK || !strings.Contains(body, "Unsubscribed") {
				t.Fatalf("status %d\n%s", code, body)
			}
			got := e.sub(email)
			if got.Status != mailer.StatusUnsubscribed || got.Unsubscribed.IsZero() {
				t.Fatalf("status %s at %v", got.Status, got.Unsubscribed)
			}
			before := e.snapshot()
			code, _, body = e.do(tt.req(path))
			if code != http.StatusOK || !strings.Contains(body, "You are unsubscribed") {
				t.Errorf("second POST: %d\n%s", code, body)
			}
			if e.snapshot() != before {
				t.Error("unsubscribing twice changed the record")
			}
		})
	}
}
