package websub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxResponseBytes is as much of a callback's response as the hub reads:
// enough for any challenge echo, nothing a hostile callback could use to
// tie up the hub's memory.
const maxResponseBytes = 4 << 10

// verification is an accepted request waiting for its GET to the callback.
type verification struct {
	req    request
	denied string // the reason, when the request is denied instead
}

func (h *Hub) verifyLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case v := <-h.verifications:
			h.verify(h.ctx, v)
		}
	}
}

// verify sends the verification of intent (or the denial) and, when the
// callback echoes the challenge with a 2xx, carries out the request.
func (h *Hub) verify(ctx context.Context, v verification) {
	log := h.opts.Logger.With("topic", v.req.rawTopic, "callback", v.req.callback)
	if v.denied != "" {
		q := url.Values{"hub.mode": {"denied"}, "hub.topic": {v.req.rawTopic}, "hub.reason": {v.denied}}
		if _, _, err := h.get(ctx, withQuery(v.req.callback, q)); err != nil {
			log.Info("websub: denial not received", "err", err)
		}
		h.opts.Observe(EventVerification, "denied")
		return
	}
	challenge := newChallenge()
	q := url.Values{"hub.mode": {v.req.mode}, "hub.topic": {v.req.rawTopic}, "hub.challenge": {challenge}}
	if v.req.mode == "subscribe" {
		q.Set("hub.lease_seconds", strconv.FormatInt(int64(v.req.lease/time.Second), 10))
	}
	// The lease is measured from the moment the hub asks.
	at := h.opts.Now()
	status, body, err := h.get(ctx, withQuery(v.req.callback, q))
	switch {
	case err != nil:
		log.Info("websub: verification failed", "mode", v.req.mode, "err", err)
		h.opts.Observe(EventVerification, "refused")
		return
	case status < 200 || status > 299:
		log.Info("websub: verification refused", "mode", v.req.mode, "status", status)
		h.opts.Observe(EventVerification, "refused")
		return
	case string(body) != challenge:
		log.Info("websub: verification answered without the challenge", "mode", v.req.mode, "status", status)
		h.opts.Observe(EventVerification, "refused")
		return
	}
	topic := h.topics.URL(v.req.topic)
	if v.req.mode == "unsubscribe" {
		if err := h.db.remove(ctx, topic, v.req.callback); err != nil {
			log.Error("websub: unsubscribe", "err", err)
			h.opts.Observe(EventVerification, "error")
			return
		}
		log.Info("websub: unsubscribed")
		h.opts.Observe(EventVerification, "unsubscribed")
		return
	}
	sub := Subscription{
		Topic: topic, Board: v.req.topic.Board, Format: v.req.topic.Format, Limit: v.req.topic.Limit,
		Callback: v.req.callback, Host: v.req.host, Secret: v.req.secret, Lease: v.req.lease,
		Verified: at, Expires: at.Add(v.req.lease),
	}
	if err := h.db.save(ctx, sub, at, h.opts.MaxSubscriptions, h.opts.MaxPerHost); err != nil {
		log.Warn("websub: subscription not stored", "err", err)
		h.opts.Observe(EventVerification, "error")
		if errors.Is(err, errFull) {
			// Verified meanwhile by others: tell this one it is not on.
			q := url.Values{"hub.mode": {"denied"}, "hub.topic": {v.req.rawTopic}, "hub.reason": {err.Error()}}
			h.get(ctx, withQuery(v.req.callback, q))
		}
		return
	}
	log.Info("websub: subscribed", "lease", v.req.lease, "expires", sub.Expires)
	h.opts.Observe(EventVerification, "verified")
}

// get sends a GET to a callback and returns its status and at most
// maxResponseBytes of its body.
func (h *Hub) get(ctx context.Context, u string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", h.opts.UserAgent)
	resp, err := h.callbacks.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, body, nil
}

// newChallenge is a random, single-use hub.challenge.
func newChallenge() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
