package mailer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
	"github.com/msitfeed/msitfeed/internal/db"
)

// ErrNoFrom is returned when mail would be sent but mail.from is not set.
// Callers treat it as a configuration error.
var ErrNoFrom = errors.New("set mail.from in the config or MSITFEED_MAIL_FROM")

// ConfirmTTL is how long a confirmation link stays valid.
const ConfirmTTL = 7 * 24 * time.Hour

// ItemReader is what the mailer reads of the item store; feeds.Store
// implements it. The mailer never writes items.
type ItemReader interface {
	// LastSeq returns the highest storage sequence number given to a post;
	// every post numbered up to it is committed.
	LastSeq(ctx context.Context) (int64, error)
	// ItemsInSeq returns the items numbered in (after, upto], first seen
	// after firstSeenAfter and published on or after publishedSince
	// (either zero for any), with their attachments.
	ItemsInSeq(ctx context.Context, after, upto int64, firstSeenAfter, publishedSince time.Time) ([]feeds.Item, error)
}

// Mailer builds digests, renders mail and delivers it, recording every
// delivery in the ledger (the digests and deliveries tables). One Mailer
// may serve many sends; several processes may send one digest together,
// each claiming its own deliveries.
type Mailer struct {
	cfg    config.Config
	db     *sql.DB
	items  ItemReader
	tokens *Tokens
	tpl    *mailTemplates
	host   string // base_url host, the domain of Message-IDs and List-Id
	tr     transport
	marker string // prefix of the placeholders for personal parts

	// Parsed once: the sender, Reply-To, and the list headers.
	from    *netmail.Address
	replyTo *netmail.Address
	mailto  string
	listID  string
	// dkim signs every message when mail.dkim_* is set; nil otherwise.
	dkim *dkimSigner

	// Now is the clock; tests set it.
	Now func() time.Time
	// Log receives one line per event worth knowing.
	Log *slog.Logger
	// LockTTL is how long the "digest" lock row and a sender's claims on
	// deliveries last without being kept; a sender killed on another host
	// holds up the others at most this long.
	LockTTL time.Duration
	// LockRefresh is how often a running send keeps its lock and claims.
	LockRefresh time.Duration
	// CreateWait is how long a send waits for another sender making a new
	// digest, to help send it, before it gives ErrSendRunning.
	CreateWait time.Duration
	// Backoff is the first wait before retrying a temporary failure; each
	// further retry of the same delivery or connection waits twice as long.
	Backoff time.Duration
	// OnDelivery, if set, is told each delivery outcome: "sent", "failed"
	// (refused for good) or "retried" (a temporary failure); for metrics.
	OnDelivery func(outcome string)
	// Boards orders a digest's posts by board and names the boards; nil
	// means the built-in boards. Set it before first use.
	Boards *feeds.Registry

	// peakJobs is the most deliveries the last send held at once (tests).
	peakJobs atomic.Int64
}

// New returns a Mailer for cfg over an opened, migrated database. It loads
// (or creates) the token secret and parses the mail templates, embedded or
// from cfg.Mail.Templates; a broken template is an error here, and so is a
// DKIM key (mail.dkim_*) that cannot sign.
func New(ctx context.Context, cfg config.Config, d *sql.DB) (*Mailer, error) {
	secret, err := LoadSecret(ctx, d, cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	tpl, err := loadTemplates(cfg.Mail.Templates)
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mailer: base_url %q is not a URL", cfg.BaseURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "ipv6.invalid" // an IPv6 literal is not a valid Message-ID domain
	}
	backoff := cfg.SMTP.Backoff
	if backoff <= 0 {
		backoff = 5 * time.Second
	}
	m := &Mailer{
		cfg:         cfg,
		db:          d,
		items:       feeds.NewStore(d),
		tokens:      NewTokens(secret),
		tpl:         tpl,
		host:        host,
		Now:         time.Now,
		Log:         slog.Default(),
		LockTTL:     2 * time.Minute,
		LockRefresh: 30 * time.Second,
		CreateWait:  2 * time.Minute,
		Backoff:     backoff,
		marker:      "msitfeedpersonal" + NewUID()[:16],
	}
	if m.tr, err = newTransport(cfg); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	if cfg.Mail.From != "" {
		if m.from, err = netmail.ParseAddress(cfg.Mail.From); err != nil {
			return nil, fmt.Errorf("mailer: mail.from %q: %w", cfg.Mail.From, err)
		}
	}
	if cfg.Mail.ReplyTo != "" {
		if m.replyTo, err = netmail.ParseAddress(cfg.Mail.ReplyTo); err != nil {
			return nil, fmt.Errorf("mailer: mail.reply_to %q: %w", cfg.Mail.ReplyTo, err)
		}
	}
	if m.dkim, err = loadDKIM(cfg.Mail); errors.Is(err, ErrNoDKIM) {
		m.dkim = nil
	} else if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	m.mailto = unsubscribeMailto(cfg.Mail.Unsubscribe, m.from)
	m.listID = "MSIT digest <digest." + host + ">"
	return m, nil
}

// Tokens returns the signer of link tokens, shared with the web pages that
// verify them.
func (m *Mailer) Tokens() *Tokens { return m.tokens }

// SendConfirmation mails s a link {base_url}/confirm/{token}, valid for
// ConfirmTTL, that confirms the subscription. It makes one attempt; the
// caller reports a failure.
func (m *Mailer) SendConfirmation(ctx context.Context, s Subscriber) error {
	if m.cfg.Mail.From == "" {
		return ErrNoFrom
	}
	token := m.tokens.Sign(PurposeConfirm, s.UID, ConfirmTTL)
	subject, text, html, err := m.tpl.renderConfirm(confirmView{
		Name:       flattenText(s.Name),
		Email:      s.Email,
		ConfirmURL: m.cfg.BaseURL + "/confirm/" + token,
		BaseURL:    m.cfg.BaseURL,
	})
	if err != nil {
		return fmt.Errorf("confirmation to %s: %w", s.Email, err)
	}
	now := m.Now()
	o := outgoing{
		To:        s.Email,
		Name:      s.Name,
		Subject:   subject,
		Text:      crlf(text),
		HTML:      crlf(html),
		MessageID: fmt.Sprintf("confirm-%d-%s@%s", now.UnixNano(), uidHash(s.UID), m.host),
		Date:      now,
	}
	sess := m.tr.open()
	defer sess.close()
	var buf bytes.Buffer
	buildErr, err := sendMsg(ctx, sess, func(eightBit bool) (*wireMsg, error) { return m.render(o, eightBit, &buf) })
	if err = errors.Join(buildErr, err); err != nil {
		return fmt.Errorf("confirmation to %s: %w", s.Email, err)
	}
	return nil
}

// uidHash is a short stable stand-in for a subscriber UID in Message-IDs
// and file names: it identifies the subscriber to us without showing the
// UID that tokens carry.
func uidHash(uid string) string {
	h := sha256.Sum256([]byte("msitfeed message-id\x00" + uid))
	return hex.EncodeToString(h[:8])
}

// LockName is the lock row that keeps two senders from making a new
// digest at once.
const LockName = "digest"

// ErrSendRunning is returned by SendDigest when another process held the
// digest lock, making a new digest, for longer than CreateWait; this send
// made no new digest.
var ErrSendRunning = errors.New("another digest send is running")

// PendingError is returned when a send ends with deliveries still pending
// after its retries (the SMTP server was down or kept answering 4xx). The
// next send resumes them; nothing is sent twice.
type PendingError struct {
	Pending int
	Err     error // the last failure
}

// Error says what failed last and what to do.
func (e *PendingError) Error() string {
	msg := fmt.Sprintf("%d deliveries left pending, run digest send again", e.Pending)
	if e.Err != nil {
		return e.Err.Error() + "; " + msg
	}
	return msg
}

// Unwrap returns the last failure.
func (e *PendingError) Unwrap() error { return e.Err }

// DigestRun is what one send did to one digest.
type DigestRun struct {
	ID      int64
	Period  DigestPeriod
	Created bool // made by this send; false for a digest resumed
	Items   int
	Sent    int
	Failed  int // refused for good, or the subscriber left
	Pending int // left for the next send
}

// Result is what SendDigest did: the unfinished digests it resumed, then
// the new digest it made, if there was anything new.
type Result struct {
	Digests []DigestRun
	// Nothing says, when no new digest was made, why: no posts since the
	// last digest, or posts that no active subscriber wants.
	Nothing string
}

// Sent is the number of messages accepted in this send.
func (r Result) Sent() int {
	n := 0
	for _, d := range r.Digests {
		n += d.Sent
	}
	return n
}

// SendDigest sends what is due: first the pending deliveries of any
// unfinished digest (a send that was interrupted or met a down server, or
// one another sender is running now), then, if all of those are done, a
// new digest of the posts first seen since the last one, to every active
// subscriber with something new on their boards.
//
// Several senders (processes, or instances on one PostgreSQL) may run at
// once: they share a digest's deliveries by claiming them a batch at a
// time (see claimer), and a send ends when nothing of its digests is
// pending outside its own claims. Claims last LockTTL, kept every
// LockRefresh; those of a sender that died are taken over at once if it
// ran on this host (its pid is gone), otherwise when they expire.
//
// Making a new digest is one sender's work: it holds the "digest" lock row
// while it does (kept and expiring like claims). A sender that finds it
// held waits up to CreateWait for the digest being made and then helps
// send it; still held after that, it gives ErrSendRunning. Deliveries still
// pending after their retries give a *PendingError; the next call resumes
// them.
func (m *Mailer) SendDigest(ctx context.Context) (Result, error) {
	var res Result
	if m.cfg.Mail.From == "" {
		return res, ErrNoFrom
	}
	owner := lockOwner()
	waitUntil := time.Now().Add(m.CreateWait)
	for {
		unfinished, err := ledgerUnfinished(ctx, m.db)
		if err != nil {
			return res, err
		}
		for _, d := range unfinished {
			run, err := m.sendStored(ctx, d, false, owner)
			res.Digests = append(res.Digests, run)
			if err != nil {
				return res, err
			}
		}
		lctx, unlock, err := m.lockCreation(ctx, owner)
		if errors.Is(err, db.ErrLocked) {
			if time.Now().Before(waitUntil) && sleepCtx(ctx, min(m.LockRefresh, 100*time.Millisecond)) {
				continue // another sender is making a digest: send it with them
			}
			what := "nothing sent"
			if res.Sent() > 0 {
				what = "no new digest made"
			}
			return res, fmt.Errorf("%w (%v); %s", ErrSendRunning, err, what)
		}
		if err != nil {
			return res, err
		}
		// Made by another sender while this one waited or sent: send it
		// first, as above.
		if unfinished, err = ledgerUnfinished(lctx, m.db); err != nil || len(unfinished) > 0 {
			unlock()
			if err != nil {
				return res, err
			}
			continue
		}
		d, plan, ok, err := m.createDigest(lctx)
		err = m.stopCause(lctx, err)
		unlock()
		if err != nil || !ok {
			if err == nil {
				res.Nothing = plan.nothing()
			}
			return res, err
		}
		run, err := m.sendStored(ctx, d, true, owner)
		res.Digests = append(res.Digests, run)
		return res, err
	}
}

// lockCreation takes the "digest" lock row for owner and keeps it until
// the returned function is called; the returned context ends if the lock
// is lost meanwhile. A holder on this host whose process is gone is
// replaced at once.
func (m *Mailer) lockCreation(ctx context.Context, owner string) (context.Context, func(), error) {
	err := db.Acquire(ctx, m.db, LockName, owner, m.LockTTL)
	if errors.Is(err, db.ErrLocked) && clearDeadHolder(ctx, m.db, LockName) {
		err = db.Acquire(ctx, m.db, LockName, owner, m.LockTTL)
	}
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		t := time.NewTicker(m.LockRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := db.Refresh(ctx, m.db, LockName, owner, m.LockTTL); err != nil && ctx.Err() == nil {
					// Going on without the lock could make the digest twice.
					cancel(fmt.Errorf("lost the digest lock: %w", err))
					return
				}
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-refreshDone
		_ = db.Release(context.WithoutCancel(ctx), m.db, LockName, owner)
	}, nil
}

// stopCause prefers the reason the run was cancelled (a lost lock) to the
// error it caused.
func (m *Mailer) stopCause(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return c
		}
	}
	return err
}

// sendStored delivers the pending deliveries of stored digest d, claimed
// for owner a batch at a time as the workers need them, and marks it
// finished when none is left.
func (m *Mailer) sendStored(ctx context.Context, d digestRow, created bool, owner string) (DigestRun, error) {
	run := DigestRun{ID: d.ID, Period: DigestPeriod{Start: d.Start, End: d.End}, Created: created, Items: len(d.Items)}
	items, err := m.digestItems(ctx, d)
	if err != nil {
		return run, err
	}
	cl := &claimer{db: m.db, eng: db.EngineOf(m.db), digestID: d.ID, owner: owner, ttl: m.LockTTL,
		poll: min(m.LockRefresh, 250*time.Millisecond), batch: pendingBatch}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	keepDone := make(chan struct{})
	stopKeep := make(chan struct{})
	go func() {
		defer close(keepDone)
		t := time.NewTicker(m.LockRefresh)
		defer t.Stop()
		for {
			select {
			case <-stopKeep:
				return
			case <-t.C:
				if err := cl.keep(ctx); err != nil && ctx.Err() == nil {
					// Sending on after the claims expire could double mail.
					cancel(fmt.Errorf("could not keep the claims on digest %d: %w", d.ID, err))
					return
				}
			}
		}
	}()
	eds := m.newEditions(run.Period)
	bySelection := map[string]*edition{}
	var queued, skippedTotal int
	// next returns the jobs of the next batch of pending deliveries, after
	// recording those nobody is to get as failed; nil when none is left.
	// The queue calls it from one worker at a time.
	next := func(ctx context.Context) ([]*job, error) {
		for {
			pending, err := cl.next(ctx)
			if err != nil || len(pending) == 0 {
				return nil, err
			}
			var jobs []*job
			var skipped []outcome
			now := m.Now()
			for _, p := range pending {
				var ed *edition
				if p.Status == StatusActive {
					key := selectionKey(p.Boards, p.Since, p.Match)
					var seen bool
					if ed, seen = bySelection[key]; !seen {
						if sel := selectItems(items, p.Boards, p.Since, p.Match); len(sel) > 0 {
							if ed, err = eds.get(sel); err != nil {
								return nil, err
							}
						}
						bySelection[key] = ed
					}
				}
				if ed == nil {
					reason := "subscriber removed"
					switch {
					case p.Status == StatusActive:
						reason = "nothing left to send" // its posts are gone from the store
					case p.Status != "":
						reason = string(p.Status) // unsubscribed, bounced, pending again
					}
					skipped = append(skipped, outcome{DigestID: d.ID, SubscriberID: p.SubscriberID, Status: deliveryFailed, Error: reason, At: now})
					continue
				}
				jobs = append(jobs, &job{p: p, ed: ed})
			}
			if err := ledgerRecord(ctx, m.db, skipped); err != nil {
				return nil, err
			}
			queued += len(jobs)
			skippedTotal += len(skipped)
			if len(jobs) > 0 {
				return jobs, nil
			}
		}
	}
	m.Log.Info("digest send", "digest", d.ID, "batch", pendingBatch)
	stats := m.deliver(ctx, d.ID, next)
	close(stopKeep)
	<-keepDone
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && stats.fatal == nil {
		stats.fatal = c
	}
	// What this sender leaves pending, any sender may take at once.
	if err := cl.release(context.WithoutCancel(ctx)); err != nil {
		m.Log.Warn("digest send: giving back claims", "digest", d.ID, "error", err)
	}
	run.Sent += stats.sent
	run.Failed += stats.failed + skippedTotal
	left, err := ledgerFinish(context.WithoutCancel(ctx), m.db, d.ID, m.Now())
	if err != nil {
		// Most likely the database went away: say what stopped the send,
		// and that the next run finishes the digest.
		if stats.fatal != nil {
			err = fmt.Errorf("%w; then %v", stats.fatal, err)
		}
		return run, fmt.Errorf("digest %d unfinished, run digest send again once the database answers: %w", d.ID, err)
	}
	run.Pending = left
	m.Log.Info("digest sent", "digest", d.ID, "sent", run.Sent, "failed", run.Failed, "pending", run.Pending,
		"queued", queued, "skipped", skippedTotal, "editions", len(eds.byKey))
	switch {
	case stats.fatal != nil:
		return run, &PendingError{Pending: left, Err: stats.fatal}
	case left > 0:
		if stats.lastErr == nil {
			stats.lastErr = ctx.Err()
		}
		return run, &PendingError{Pending: left, Err: stats.lastErr}
	}
	return run, nil
}

// lockOwner names this process in the lock row: host, pid and a random
// part, so two Mailers in one process are told apart too.
func lockOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), NewUID()[:8])
}
