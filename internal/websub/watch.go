package websub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// sweepEvery is how often expired subscriptions are deleted.
const sweepEvery = time.Hour

// lockName is the lock (internal/db) of the one process that publishes:
// two serve processes on one database (one with --no-scheduler) both take
// subscriptions, but only the holder delivers, so no subscriber gets a
// change twice.
const lockName = "websub-publisher"

// lockTTL is how long the publisher lock outlives its holder's last check.
func (h *Hub) lockTTL() time.Duration { return max(30*time.Second, 3*h.opts.PollInterval) }

// holdLock takes or extends the publisher lock and reports whether this
// hub holds it. A hub that takes it over from another process reads the
// versions that one published, and goes on from there.
func (h *Hub) holdLock(ctx context.Context) (bool, error) {
	err := db.Acquire(ctx, h.db.db, lockName, h.owner, h.lockTTL())
	if errors.Is(err, db.ErrLocked) {
		if h.publisher {
			h.opts.Logger.Warn("websub: another process publishes now", "err", err)
		}
		h.publisher = false
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !h.publisher {
		pubd, err := h.db.published(ctx)
		if err != nil {
			return false, err
		}
		h.mu.Lock()
		for slug, v := range pubd {
			h.pubd[slug] = v
		}
		h.mu.Unlock()
		h.publisher = true
	}
	return true, nil
}

// watch publishes the boards whose version moved: at every PollInterval,
// and at once when poked (by CrawlRun, or by Start).
func (h *Hub) watch() {
	defer h.wg.Done()
	tick := time.NewTicker(h.opts.PollInterval)
	defer tick.Stop()
	var lastSweep time.Time
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.poke:
		case <-tick.C:
		}
		if err := h.check(h.ctx); err != nil && h.ctx.Err() == nil {
			h.opts.Logger.Error("websub: publish changes", "err", err)
		}
		if now := h.opts.Now(); now.Sub(lastSweep) >= sweepEvery && h.opts.Local {
			if n, err := h.db.sweep(h.ctx, now); err != nil {
				h.opts.Logger.Error("websub: sweep", "err", err)
			} else if n > 0 {
				h.opts.Logger.Info("websub: expired subscriptions removed", "n", n)
			}
			lastSweep = now
		}
	}
}

// check reads the board versions and publishes the boards that moved.
//
// A board's version moves with every post a crawl saves, so a crawl of
// many posts moves it many times. A board is published when this process's
// crawler has finished its run (CrawlRun poked it), or, for a change made
// by another process, once its version has held still between two reads,
// which mostly spares subscribers a document per post of one crawl.
func (h *Hub) check(ctx context.Context) error {
	if publisher, err := h.holdLock(ctx); err != nil || !publisher {
		return err
	}
	vs, err := h.feeds.Versions(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	poked := h.poked
	h.poked = map[string]bool{}
	var moved []string
	next := map[string]int64{}
	for slug, v := range vs {
		if v.Version != h.pubd[slug] && (poked[slug] || h.seen[slug] == v.Version) {
			moved = append(moved, slug)
			next[slug] = v.Version
		}
		h.seen[slug] = v.Version
	}
	h.mu.Unlock()
	if len(moved) == 0 {
		return nil
	}
	slices.Sort(moved)
	if err := h.publish(ctx, moved); err != nil {
		// Published in part at most: the next check tries these boards
		// again, and a subscriber may get a document twice, never none.
		h.mu.Lock()
		for _, slug := range moved {
			h.poked[slug] = true
		}
		h.mu.Unlock()
		return err
	}
	// Recorded even when the hub is stopping: the deliveries are queued,
	// and a hub taking over must not queue them again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.db.setPublished(wctx, next); err != nil {
		return err
	}
	h.mu.Lock()
	for slug, v := range next {
		h.pubd[slug] = v
	}
	h.mu.Unlock()
	return nil
}

// publish sends the feeds of boards and the all feeds: a ping to every
// external hub for each feed, and the feed to every subscriber of it.
func (h *Hub) publish(ctx context.Context, boards []string) error {
	if h.opts.OnChange != nil {
		h.opts.OnChange(boards)
	}
	affected := append(slices.Clone(boards), feeds.AllSlug)
	h.opts.Logger.Info("websub: publishing", "boards", boards)
	for _, hub := range h.opts.External {
		for _, b := range affected {
			for _, t := range boardTopics(b) {
				if !h.enqueue(&job{hub: hub, topic: h.topics.URL(t)}) {
					return ctx.Err()
				}
			}
		}
	}
	if !h.opts.Local {
		return nil
	}
	subs, err := h.db.active(ctx, affected, h.opts.Now())
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		return nil
	}
	docs := map[Topic]*document{}
	h.mu.Lock()
	h.seq++
	seq := h.seq
	for i := range subs {
		h.latest[subs[i].ID] = seq
	}
	h.mu.Unlock()
	for i := range subs {
		s := &subs[i]
		t := Topic{Board: s.Board, Format: s.Format, Limit: s.Limit}
		doc := docs[t]
		if doc == nil {
			if doc, err = h.render(ctx, t, s.Topic); err != nil {
				return err
			}
			docs[t] = doc
		}
		if !h.enqueue(&job{sub: s, doc: doc, seq: seq}) {
			return ctx.Err()
		}
	}
	return nil
}

// render builds the document of topic t (whose canonical URL is self) as
// the feed handler would serve it.
func (h *Hub) render(ctx context.Context, t Topic, self string) (*document, error) {
	limit := t.Limit
	if limit == 0 {
		limit = h.topics.limit
	}
	opts := h.opts.Feeds
	opts.Hubs = h.Hubs()
	e, err := feeds.BuildEntry(ctx, h.feeds, opts, t.Board, t.Format, limit)
	if err != nil {
		return nil, fmt.Errorf("websub: render %s: %w", self, err)
	}
	return &document{
		body:        e.Body,
		contentType: t.Format.ContentType(),
		link:        "<" + h.url + `>; rel="hub", <` + self + `>; rel="self"`,
	}, nil
}
