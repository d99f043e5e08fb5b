package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
)

// The pages behind the links in mails: /confirm, /preferences and
// /unsubscribe, each with a signed token naming the subscriber.
//
// A GET never changes anything: mail scanners and link previews fetch the
// links in a mail before (or without) its reader, and must not confirm or
// unsubscribe anyone. Each GET shows a page with a button that POSTs to the
// same URL. The one exception to "a button on our page" is RFC 8058: a mail
// provider POSTs List-Unsubscribe=One-Click to /unsubscribe/{token} from its
// own servers, without cookies, a form token or an Origin of ours, and that
// unsubscribes at once.
//
// Every token failure — forged, truncated, expired, for another purpose, or
// naming a subscriber since erased — gets the same plain page and changes
// nothing. Using a link twice is harmless: the second confirm or
// unsubscribe finds the work done.

// maxTokenLen is far above any token we sign; longer ones are not verified.
const maxTokenLen = 512

// linkPage is the data of the link pages.
type linkPage struct {
	layout
	Token          string // the token of this page's own URL, for its form
	Email          string
	Status         mailer.Status
	Boards         []boardChoice
	Match          string // the keyword filter, as stored or as typed
	PreferencesURL string
	Saved          bool
	Already        bool // the action had been done before this request
	Error          string
}

// linkSubscriber verifies the token of r's URL for purpose and returns its
// subscriber. On failure it has answered r.
func (s *Server) linkSubscriber(w http.ResponseWriter, r *http.Request, p mailer.Purpose) (mailer.Subscriber, bool) {
	w.Header().Set("Cache-Control", "no-store")
	tok := r.PathValue("token")
	var uid string
	err := mailer.ErrBadToken
	if len(tok) <= maxTokenLen {
		uid, err = s.Mailer.Tokens().Verify(p, tok)
	}
	if err != nil {
		s.invalidLink(w, r, http.StatusBadRequest)
		return mailer.Subscriber{}, false
	}
	sub, err := s.Subscribers.GetByUID(r.Context(), uid)
	if errors.Is(err, mailer.ErrNoSubscriber) {
		s.invalidLink(w, r, http.StatusNotFound)
		return mailer.Subscriber{}, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return mailer.Subscriber{}, false
	}
	return sub, true
}

// invalidLink answers a link whose token does not hold.
func (s *Server) invalidLink(w http.ResponseWriter, r *http.Request, status int) {
	s.message(w, r, status, "Invalid link", "This link is invalid or has expired.")
}

// ended answers a confirm or preferences link of an address that has
// unsubscribed or bounced: the link must not bring it back.
func (s *Server) ended(w http.ResponseWriter, r *http.Request, sub mailer.Subscriber) {
	s.render(w, r, http.StatusGone, "unsubscribed.html", s.linkPage(r, sub, true))
}

func (s *Server) linkPage(r *http.Request, sub mailer.Subscriber, already bool) linkPage {
	return linkPage{layout: s.layout(), Token: r.PathValue("token"), Email: sub.Email, Status: sub.Status,
		Boards: s.boardChoices(sub.Boards), Match: sub.Match, Already: already}
}

// preferencesURL is the path of sub's preferences page.
func (s *Server) preferencesURL(sub mailer.Subscriber) string {
	return "/preferences/" + s.Mailer.Tokens().Sign(mailer.PurposePreferences, sub.UID, 0)
}

// suppressed reports whether sub has left the list, by unsubscribing or
// by bouncing.
func suppressed(sub mailer.Subscriber) bool {
	return sub.Status == mailer.StatusUnsubscribed || sub.Status == mailer.StatusBounced
}

// handleConfirmPage shows the confirm button (see the comment at the top
// of this file for why GET does not confirm).
func (s *Server) handleConfirmPage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposeConfirm)
	if !ok {
		return
	}
	switch {
	case suppressed(sub):
		s.ended(w, r, sub)
	case sub.Status == mailer.StatusActive:
		page := s.linkPage(r, sub, true)
		page.PreferencesURL = s.preferencesURL(sub)
		s.render(w, r, http.StatusOK, "confirmed.html", page)
	default:
		s.render(w, r, http.StatusOK, "confirm.html", s.linkPage(r, sub, false))
	}
}

// handleConfirm makes a pending subscriber active.
func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposeConfirm)
	if !ok {
		return
	}
	if suppressed(sub) {
		s.ended(w, r, sub)
		return
	}
	already := sub.Status == mailer.StatusActive
	sub, err := s.Subscribers.Confirm(r.Context(), sub.UID)
	if errors.Is(err, mailer.ErrSuppressed) {
		s.ended(w, r, sub) // unsubscribed since the page was read
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !already {
		s.Logger.Info("subscriber confirmed", "subscriber", sub.UID)
	}
	page := s.linkPage(r, sub, already)
	page.PreferencesURL = s.preferencesURL(sub)
	s.render(w, r, http.StatusOK, "confirmed.html", page)
}

// handlePreferencesPage shows the board checkboxes and the unsubscribe
// button.
func (s *Server) handlePreferencesPage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposePreferences)
	if !ok {
		return
	}
	if suppressed(sub) {
		s.ended(w, r, sub)
		return
	}
	s.render(w, r, http.StatusOK, "preferences.html", s.linkPage(r, sub, false))
}

// handlePreferences saves the boards and the keyword filter (action=save)
// or unsubscribes (action=unsubscribe).
func (s *Server) handlePreferences(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposePreferences)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back, reload the page and try again.")
		return
	}
	if r.PostForm.Get("action") == "unsubscribe" {
		s.unsubscribe(w, r, sub)
		return
	}
	if suppressed(sub) {
		s.ended(w, r, sub)
		return
	}
	chosen := r.PostForm["board"]
	typed := r.PostForm.Get("match")
	if _, ok := r.PostForm["match"]; !ok {
		typed = sub.Match // a form from before the field existed keeps the filter
	}
	boards, problem := s.parseBoardChoice(chosen)
	match, err := mailer.CheckMatch(typed)
	if problem == "" && err != nil {
		problem = matchProblem(typed, err)
	}
	if problem != "" {
		page := s.linkPage(r, sub, false)
		for i := range page.Boards {
			page.Boards[i].Checked = slices.Contains(chosen, page.Boards[i].Slug)
		}
		page.Match = typed
		page.Error = problem
		s.render(w, r, http.StatusUnprocessableEntity, "preferences.html", page)
		return
	}
	sub, err = s.Subscribers.SetPreferences(r.Context(), sub.UID, boards, match)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Logger.Info("subscriber boards changed", "subscriber", sub.UID, "boards", boards, "match", match != "")
	page := s.linkPage(r, sub, false)
	page.Saved = true
	s.render(w, r, http.StatusOK, "preferences.html", page)
}

// matchProblem says in one line of the form what is wrong with the
// keyword filter typed, which the mailer refused with err: the matcher's
// reason.
func matchProblem(typed string, err error) string {
	reason := err.Error()
	var fe *feeds.FilterError
	if _, ferr := feeds.NewKeywordFilter(strings.TrimSpace(typed)); errors.As(ferr, &fe) {
		reason = fe.Reason
	}
	return "The keyword filter cannot be used: " + reason + ". Write a regular expression such as AI|6G, or leave it empty for every post."
}

// handleUnsubscribePage shows the one unsubscribe button.
func (s *Server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposeUnsubscribe)
	if !ok {
		return
	}
	if suppressed(sub) {
		s.render(w, r, http.StatusOK, "unsubscribed.html", s.linkPage(r, sub, true))
		return
	}
	s.render(w, r, http.StatusOK, "unsubscribe.html", s.linkPage(r, sub, false))
}

// handleUnsubscribe unsubscribes at once: both the RFC 8058 one-click POST
// (body List-Unsubscribe=One-Click, from a mail provider's server) and the
// button of the unsubscribe page land here. The token is the whole
// authority; there is deliberately no cross-origin or form-token check.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.linkSubscriber(w, r, mailer.PurposeUnsubscribe)
	if !ok {
		return
	}
	// The body is read only to log which kind of request this was; any
	// POST with the token unsubscribes.
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s.unsubscribe(w, r, sub)
}

// unsubscribe makes sub unsubscribed and says so.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request, sub mailer.Subscriber) {
	already := suppressed(sub)
	sub, err := s.Subscribers.Unsubscribe(r.Context(), sub.UID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !already {
		s.Logger.Info("subscriber unsubscribed", "subscriber", sub.UID, "one_click", r.PostFormValue("List-Unsubscribe") == "One-Click")
	}
	s.render(w, r, http.StatusOK, "unsubscribed.html", s.linkPage(r, sub, already))
}
