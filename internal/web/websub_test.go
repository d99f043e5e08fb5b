package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebSubRequestsAreRateLimitedPerClient(t *testing.T) {
	var reached int
	hub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusAccepted)
	})
	srv, err := New(Server{WebSub: hub, WebSubLimit: RateLimit{Every: time.Hour, Burst: 2}, ClientIPHeader: "X-Real-IP"})
	if err != nil {
		t.Fatal(err)
	}
	post := func(client string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/websub", strings.NewReader("hub.mode=subscribe"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Real-IP", client)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		return rec
	}
	for i, want := range []int{202, 202, 429} {
		if rec := post("203.0.113.9"); rec.Code != want {
			t.Errorf("request %d: %d, want %d", i+1, rec.Code, want)
		} else if want == 429 && (rec.Header().Get("Retry-After") == "" || strings.Count(rec.Body.String(), "\n") != 1) {
			t.Errorf("429 without Retry-After or a one-line reason: %q", rec.Body.String())
		}
	}
	if rec := post("198.51.100.4"); rec.Code != http.StatusAccepted {
		t.Errorf("another client: %d, want 202", rec.Code)
	}
	if reached != 3 {
		t.Errorf("the hub saw %d requests, want 3", reached)
	}
	r := httptest.NewRequest(http.MethodGet, "/websub", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /websub: %d, want 405", rec.Code)
	}
}

func TestNoWebSubRouteWithoutAHub(t *testing.T) {
	srv, err := New(Server{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/websub", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("POST /websub without a hub: %d, want 404", rec.Code)
	}
}
