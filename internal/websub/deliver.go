package websub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// document is a feed rendered once for every subscriber of its topic.
type document struct {
	body        []byte
	contentType string
	link        string // Link: the hub and the topic's self URL
}

// job is one content distribution to a subscriber, or one publish ping
// to an external hub.
type job struct {
	// A content distribution.
	sub *Subscription
	doc *document
	seq uint64 // its fan-out, to notice a newer document for sub

	// A ping.
	hub, topic string

	tries int // attempts made
}

func (h *Hub) work() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case j := <-h.jobs:
			if j.sub != nil {
				h.deliver(h.ctx, j)
			} else {
				h.ping(h.ctx, j)
			}
		}
	}
}

// enqueue queues j for a worker, waiting for room unless the hub stops.
func (h *Hub) enqueue(j *job) bool {
	select {
	case h.jobs <- j:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// retry queues j again after its backoff: Backoff doubled for each
// attempt after the first, half of it fixed and half random so that many
// failures at once do not come back at once. No worker waits meanwhile.
func (h *Hub) retry(j *job) {
	d := h.opts.Backoff << (j.tries - 1)
	d = d/2 + rand.N(d/2+1)
	h.timers.Add(1)
	go func() {
		defer h.timers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			h.enqueue(j)
		case <-h.ctx.Done(): // Close must not wait for a long backoff
		}
	}()
}

// superseded reports whether a newer document was queued for j's
// subscriber since j was; if not and final, j's is the last word.
func (h *Hub) superseded(j *job, final bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.latest[j.sub.ID] != j.seq {
		return true
	}
	if final {
		delete(h.latest, j.sub.ID)
	}
	return false
}

// deliver POSTs the document to the subscriber's callback.
func (h *Hub) deliver(ctx context.Context, j *job) {
	if h.superseded(j, false) {
		h.opts.Observe(EventDelivery, "superseded")
		return
	}
	j.tries++
	status, err := h.post(ctx, j)
	if ctx.Err() != nil {
		return // stopping: the outcome is not the subscriber's
	}
	out := outcome{id: j.sub.ID, at: h.opts.Now(), status: status, ok: err == nil}
	if err != nil {
		out.err = oneLine(err.Error())
	}
	h.results <- out
	log := h.opts.Logger.With("topic", j.sub.Topic, "callback", j.sub.Callback)
	switch {
	case err == nil:
		h.superseded(j, true)
		h.opts.Observe(EventDelivery, "delivered")
	case status == http.StatusGone:
		// The subscriber deleted the subscription; the Recommendation lets
		// the hub end it.
		h.superseded(j, true)
		if err := h.db.removeID(ctx, j.sub.ID); err != nil {
			log.Error("websub: remove a gone subscription", "err", err)
		}
		log.Info("websub: callback answered 410 Gone; subscription removed")
		h.opts.Observe(EventDelivery, "gone")
	case j.tries < h.opts.Tries:
		log.Info("websub: delivery failed; will retry", "try", j.tries, "err", err)
		h.opts.Observe(EventDelivery, "retried")
		h.retry(j)
	default:
		h.superseded(j, true)
		log.Warn("websub: delivery failed; given up until the feed changes again", "tries", j.tries, "err", err)
		h.opts.Observe(EventDelivery, "failed")
	}
}

// post makes one content distribution request: the feed with its
// Content-Type, a Link header naming the hub and the topic, and
// X-Hub-Signature when the subscriber gave a secret. Only a 2xx is
// success; the response body is read no further than maxResponseBytes.
func (h *Hub) post(ctx context.Context, j *job) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.sub.Callback, bytes.NewReader(j.doc.body))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = []string{j.doc.contentType}
	req.Header["Link"] = []string{j.doc.link}
	req.Header["User-Agent"] = []string{h.opts.UserAgent}
	if j.sub.Secret != "" {
		req.Header["X-Hub-Signature"] = []string{Signature(j.sub.Secret, j.doc.body)}
	}
	return h.send(h.callbacks, req)
}

// send does req and reads at most maxResponseBytes of the response.
func (h *Hub) send(c *http.Client, req *http.Request) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged beside it already
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", h.opts.Timeout)
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Signature is the X-Hub-Signature of body for a subscriber's secret:
// sha256= and the hex HMAC-SHA256 of the body keyed with the secret.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ping tells an external hub that a topic changed.
func (h *Hub) ping(ctx context.Context, j *job) {
	j.tries++
	ctx2, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	form := url.Values{"hub.mode": {"publish"}, "hub.url": {j.topic}}
	req, err := http.NewRequestWithContext(ctx2, http.MethodPost, j.hub, strings.NewReader(form.Encode()))
	if err != nil {
		h.opts.Logger.Error("websub: ping", "hub", j.hub, "err", err)
		h.opts.Observe(EventPing, "failed")
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", h.opts.UserAgent)
	_, err = h.send(h.hubs, req)
	switch {
	case ctx.Err() != nil:
	case err == nil:
		h.opts.Observe(EventPing, "ok")
	case j.tries < h.opts.Tries:
		h.opts.Logger.Info("websub: ping failed; will retry", "hub", j.hub, "topic", j.topic, "try", j.tries, "err", err)
		h.opts.Observe(EventPing, "retried")
		h.retry(j)
	default:
		h.opts.Logger.Warn("websub: ping failed; given up", "hub", j.hub, "topic", j.topic, "tries", j.tries, "err", err)
		h.opts.Observe(EventPing, "failed")
	}
}

// recordLoop writes delivery outcomes in batches: one transaction for
// whatever arrived while the previous one was written, so a fan-out to
// thousands costs a few commits, not one each.
func (h *Hub) recordLoop() {
	defer h.rec.Done()
	ctx := context.WithoutCancel(h.ctx)
	for first := range h.results {
		batch := []outcome{first}
	more:
		for len(batch) < 1024 {
			select {
			case o, ok := <-h.results:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := h.db.record(wctx, batch); err != nil {
			h.opts.Logger.Error("websub: record deliveries", "n", len(batch), "err", err)
		}
		cancel()
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
