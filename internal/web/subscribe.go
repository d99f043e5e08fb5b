package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/mailer"
)

// maxFormBytes bounds a form body; the largest form is a few hundred bytes.
const maxFormBytes = 16 << 10

// confirmSendTimeout bounds one confirmation mail, connection included.
const confirmSendTimeout = 2 * time.Minute

// routeSubscriptions adds the subscribe form and the link pages to mux.
func (s *Server) routeSubscriptions(mux *http.ServeMux) {
	mux.Handle("POST /subscribe", s.page(s.sameOrigin(s.handleSubscribe)))
	mux.Handle("GET /confirm/{token}", s.page(s.handleConfirmPage))
	mux.Handle("POST /confirm/{token}", s.page(s.sameOrigin(s.handleConfirm)))
	mux.Handle("GET /preferences/{token}", s.page(s.handlePreferencesPage))
	mux.Handle("POST /preferences/{token}", s.page(s.sameOrigin(s.handlePreferences)))
	mux.Handle("GET /unsubscribe/{token}", s.page(s.handleUnsubscribePage))
	mux.Handle("POST /unsubscribe/{token}", s.page(s.handleUnsubscribe))
}

// signupOpen reports whether the subscribe form is shown and accepted.
func (s *Server) signupOpen() bool { return s.subscriptions() && !s.SignupClosed }

// newSubscribeForm returns the form with a fresh token, every board checked
// unless chosen says otherwise.
func (s *Server) newSubscribeForm(chosen []string) *subscribeForm {
	return &subscribeForm{Boards: s.boardChoices(chosen), Token: s.formToken()}
}

// sentPage is the answer to every accepted subscribe request.
type sentPage struct {
	layout
	Email string
}

// handleSubscribe adds the address as pending and mails it a confirmation
// link. The answer is the same page whether the address was new, pending
// (a new link is sent), active (nothing is sent: they are subscribed) or
// unsubscribed (it becomes pending and a link is sent), so the form tells
// nobody who is on the list. The mail goes out after the answer, which
// keeps the time taken from telling either.
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	if !s.signupOpen() {
		s.message(w, r, http.StatusNotFound, "Sign-up is closed", "This service is not taking new subscribers at the moment. The feeds remain open to everyone.")
		return
	}
	if !s.clients.allow(s.clientKey(r)) {
		w.Header().Set("Retry-After", "60")
		s.message(w, r, http.StatusTooManyRequests, "Too many requests",
			"Too many sign-ups came from your network in a short time. Please wait a few minutes and try again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back, reload the page and try again.")
		return
	}
	if !s.validFormToken(r.PostForm.Get("token")) {
		s.handleCrossOrigin(w, r)
		return
	}

	email := strings.TrimSpace(r.PostForm.Get("email"))
	name := strings.TrimSpace(r.PostForm.Get("name"))
	chosen := r.PostForm["board"]
	boards, problem := s.parseBoardChoice(chosen)
	if problem == "" {
		problem = checkName(name)
	}
	if problem == "" && email == "" {
		problem = "Enter your email address."
	}
	var sub mailer.Subscriber
	if problem == "" {
		var err error
		sub, err = s.addSubscriber(r.Context(), email, name, boards)
		switch {
		case errors.Is(err, mailer.ErrInvalidAddress):
			problem = "That does not look like an email address. Check it and try again."
		case err != nil:
			s.serverError(w, r, err)
			return
		}
	}
	if problem != "" {
		form := s.newSubscribeForm(nil)
		for i := range form.Boards {
			form.Boards[i].Checked = slices.Contains(chosen, form.Boards[i].Slug)
		}
		form.Email, form.Name, form.Error = email, name, problem
		page, err := s.indexPage(r.Context(), form)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, r, http.StatusUnprocessableEntity, "index.html", page)
		return
	}
	if sub.Status == mailer.StatusPending {
		s.sendConfirmation(sub)
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "sent.html", sentPage{layout: s.layout(), Email: email})
}

// addSubscriber records a sign-up and returns the subscriber as it now
// stands; a confirmation is due when its status is pending.
func (s *Server) addSubscriber(ctx context.Context, email, name string, boards []string) (mailer.Subscriber, error) {
	n := mailer.NewSubscriber{Address: email, Name: name, Boards: boards, Status: mailer.StatusPending, Origin: mailer.OriginWeb}
	sub, err := s.Subscribers.Add(ctx, n)
	switch {
	case err == nil:
		return sub, nil
	case errors.Is(err, mailer.ErrExists) && sub.Status == mailer.StatusPending:
		// Asked again before confirming: the latest choice of boards is
		// the one they will confirm.
		return s.Subscribers.SetBoards(ctx, sub.UID, boards)
	case errors.Is(err, mailer.ErrExists):
		return sub, nil // active: nothing to do, and nothing to say
	case errors.Is(err, mailer.ErrSuppressed) && sub.Status == mailer.StatusUnsubscribed:
		// Someone asks for an address that left. Making it pending again
		// mails nothing but a confirmation link; only the owner can act on it.
		n.Force = true
		return s.Subscribers.Add(ctx, n)
	case errors.Is(err, mailer.ErrSuppressed):
		return sub, nil // bounced: mailing it again would only bounce
	}
	return sub, err
}

// sendConfirmation mails sub a confirmation link in the background, at
// most AddressLimit times per address. Failures are logged: the visitor
// has already been told to look in their inbox, and can ask again.
func (s *Server) sendConfirmation(sub mailer.Subscriber) {
	if !s.inboxes.allow(strings.ToLower(sub.Email)) {
		s.Logger.Info("confirmation not sent: too many for this address", "subscriber", sub.UID)
		return
	}
	started := s.outbox.run(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, confirmSendTimeout)
		defer cancel()
		if err := s.Mailer.SendConfirmation(ctx, sub); err != nil {
			s.Logger.Error("send confirmation", "subscriber", sub.UID, "err", err)
			return
		}
		s.Logger.Info("confirmation sent", "subscriber", sub.UID)
	})
	if !started {
		s.Logger.Warn("confirmation not sent: server closing", "subscriber", sub.UID)
	}
}

// parseBoardChoice turns the checked boards of a form into preferences
// (nil = all boards, also for every board checked, so that a board added
// later is included), or says what is wrong.
func (s *Server) parseBoardChoice(chosen []string) ([]string, string) {
	if len(chosen) == 0 {
		return nil, "Choose at least one board."
	}
	boards, err := mailer.NormaliseBoardsFor(s.Boards, chosen)
	if err != nil || boards == nil {
		return nil, "Choose boards from the list."
	}
	if len(boards) == len(s.Boards.Slugs()) {
		return nil, ""
	}
	return boards, ""
}

// maxNameChars is the longest display name the form takes.
const maxNameChars = 200

// checkName says what is wrong with a display name, or "".
func checkName(name string) string {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameChars {
		return "Your name is too long."
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "Your name contains characters that cannot be used."
		}
	}
	return ""
}
