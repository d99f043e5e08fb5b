package websub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxRequestBytes bounds a subscription request's body: two URLs of
// maxURLBytes, a secret under 200 bytes and a lease fit many times over.
const maxRequestBytes = 16 << 10

// maxSecretBytes is the Recommendation's limit: hub.secret MUST be less
// than 200 bytes.
const maxSecretBytes = 200

// ServeHTTP answers a subscription request (POST /websub, a form with
// hub.mode, hub.topic, hub.callback and optionally hub.lease_seconds and
// hub.secret): 202 Accepted when the hub will verify it with a GET to the
// callback, else the error status with a one-line reason. What verification
// finds never changes the answer: a topic that is not one of our feeds is
// accepted here and denied to the callback (hub.mode=denied). Refused at
// once: a callback that is not an http(s) URL or (unless AllowPrivate) not
// at a public address (403), or that does not resolve (422), and a new
// subscription past a cap (403).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, msg := h.handle(w, r)
	h.opts.Observe(EventRequest, strconv.Itoa(code))
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintf(w, "websub: %s\n", msg)
}

// request is a subscription request, checked.
type request struct {
	mode     string // subscribe or unsubscribe
	rawTopic string // as given, echoed to the callback
	topic    Topic
	ours     bool
	callback string // normalised
	host     string
	lease    time.Duration // granted
	secret   string
}

func (h *Hub) handle(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, "subscription requests are POSTed"
	}
	if !h.opts.Local {
		return http.StatusNotFound, "this msitfeed runs no hub"
	}
	req, ref := h.parse(w, r)
	if ref != nil {
		return ref.code, ref.reason
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if !h.opts.AllowPrivate {
		if ref := checkAddresses(ctx, h.opts.Resolver, req.host); ref != nil {
			return ref.code, ref.reason
		}
	}
	v := verification{req: req}
	switch {
	case !req.ours:
		v.denied = "hub.topic " + strconv.Quote(req.rawTopic) + " is not a feed of this msitfeed; topics are " +
			h.topics.baseText + "/feeds/{board}.{rss|atom|json}"
	case req.mode == "subscribe":
		full, err := h.db.room(ctx, h.topics.URL(req.topic), req.callback, req.host, h.opts.Now(), h.opts.MaxSubscriptions, h.opts.MaxPerHost)
		if err != nil {
			h.opts.Logger.Error("websub: subscription request", "err", err)
			return http.StatusInternalServerError, "the hub cannot take requests right now; try again later"
		}
		if full != "" {
			return http.StatusForbidden, full
		}
	}
	select {
	case h.verifications <- v:
	default:
		w.Header().Set("Retry-After", "60")
		return http.StatusServiceUnavailable, "too many requests waiting for verification; try again in a minute"
	}
	if v.denied != "" {
		return http.StatusAccepted, "accepted; the hub will tell the callback why it is denied"
	}
	return http.StatusAccepted, "accepted; the hub will verify the " + req.mode + " request with a GET to the callback"
}

// parse reads and checks the form.
func (h *Hub) parse(w http.ResponseWriter, r *http.Request) (request, *refusal) {
	var req request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return req, refuse(http.StatusUnsupportedMediaType, "the request must be a form (Content-Type: application/x-www-form-urlencoded)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, refuse(http.StatusRequestEntityTooLarge, "the request is larger than %d bytes", maxRequestBytes)
		}
		return req, refuse(http.StatusBadRequest, "the request body cannot be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, refuse(http.StatusBadRequest, "the request body is not a form: %v", err)
	}
	one := func(name string) (string, *refusal) {
		switch vs := form[name]; len(vs) {
		case 0:
			return "", nil
		case 1:
			return vs[0], nil
		}
		return "", refuse(http.StatusBadRequest, "%s is given more than once", name)
	}
	var ref *refusal
	if req.mode, ref = one("hub.mode"); ref != nil {
		return req, ref
	}
	switch req.mode {
	case "subscribe", "unsubscribe":
	case "":
		return req, refuse(http.StatusBadRequest, "hub.mode is missing: subscribe or unsubscribe")
	case "publish":
		return req, refuse(http.StatusBadRequest, "hub.mode publish is not taken: this hub publishes msitfeed's own feeds when they change")
	default:
		return req, refuse(http.StatusBadRequest, "hub.mode must be subscribe or unsubscribe, not %q", req.mode)
	}
	if req.rawTopic, ref = one("hub.topic"); ref != nil {
		return req, ref
	}
	if req.rawTopic == "" {
		return req, refuse(http.StatusBadRequest, "hub.topic is missing")
	}
	if len(req.rawTopic) > maxURLBytes {
		return req, refuse(http.StatusBadRequest, "hub.topic is longer than %d bytes", maxURLBytes)
	}
	req.topic, req.ours = h.topics.Parse(req.rawTopic)
	rawCallback, ref := one("hub.callback")
	if ref != nil {
		return req, ref
	}
	if req.callback, req.host, ref = parseCallback(rawCallback); ref != nil {
		return req, ref
	}
	lease, ref := one("hub.lease_seconds")
	if ref != nil {
		return req, ref
	}
	req.lease = h.opts.LeaseDefault
	if lease != "" && req.mode == "subscribe" {
		n, err := strconv.ParseUint(lease, 10, 63)
		if err != nil || n == 0 || lease[0] == '+' {
			return req, refuse(http.StatusBadRequest, "hub.lease_seconds must be a positive decimal integer, not %q", lease)
		}
		req.lease = min(max(leaseOf(n), h.opts.LeaseMin), h.opts.LeaseMax)
	}
	if req.secret, ref = one("hub.secret"); ref != nil {
		return req, ref
	}
	if len(req.secret) >= maxSecretBytes {
		return req, refuse(http.StatusBadRequest, "hub.secret must be less than %d bytes", maxSecretBytes)
	}
	return req, nil
}

// leaseOf converts seconds to a duration without overflowing.
func leaseOf(seconds uint64) time.Duration {
	if seconds > uint64(1<<62)/uint64(time.Second) {
		return 1 << 62
	}
	return time.Duration(seconds) * time.Second
}
