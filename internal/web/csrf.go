package web

import (
	"net/http"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
)

// The subscribe form is protected against cross-site request forgery in
// two ways, neither needing a session, a cookie or JavaScript:
//
//   - http.CrossOriginProtection rejects a POST that a browser marks as
//     cross-site (Sec-Fetch-Site), or whose Origin is neither the request's
//     host nor base_url. Every browser in use sends one of the two on a
//     form POST.
//   - A hidden field carries a form token: an HMAC (mailer.Tokens, keyed by
//     the secret) of a purpose no link token has and an expiry. A POST
//     without one, or with a forged or expired one, is refused, so a form
//     must have been fetched from this server recently.
//
// The link pages (/confirm, /preferences) need no form token: the token in
// their URL is the capability, and no other site knows it. They still get
// the cross-origin check. /unsubscribe gets neither, because mail
// providers POST the RFC 8058 one-click request from their own servers.

// formPurpose is the purpose signed into form tokens; Verify refuses a form
// token as a link token and the reverse.
const formPurpose mailer.Purpose = "form"

// formTokenTTL is how long a subscribe form may be left open in a tab.
const formTokenTTL = 6 * time.Hour

// formToken returns a fresh token for the hidden field of the subscribe form.
func (s *Server) formToken() string {
	return s.Mailer.Tokens().Sign(formPurpose, "subscribe", formTokenTTL)
}

// validFormToken reports whether tok is a form token of ours, unexpired.
func (s *Server) validFormToken(tok string) bool {
	uid, err := s.Mailer.Tokens().Verify(formPurpose, tok)
	return err == nil && uid == "subscribe"
}

// sameOrigin wraps a POST handler with the cross-origin check.
func (s *Server) sameOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.xorigin.Check(r); err != nil {
			s.handleCrossOrigin(w, r)
			return
		}
		h(w, r)
	}
}

// handleCrossOrigin answers a refused cross-site POST.
func (s *Server) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	s.Logger.Info("cross-origin form post refused", "path", redactPath(r.URL.Path),
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	s.message(w, r, http.StatusForbidden, "Form refused",
		"This form was sent from another site, or it has expired. Go back, reload the page and try again.")
}
