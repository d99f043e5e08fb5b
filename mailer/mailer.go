package mailer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/config"
)

// ErrNoFrom is returned when mail would be sent but mail.from is not set.
// Callers treat it as a configuration error.
var ErrNoFrom = errors.New("set mail.from in the config or MSITFEED_MAIL_FROM")

// ConfirmTTL is how long a confirmation link stays valid.
const ConfirmTTL = 7 * 24 * time.Hour

// ItemReader is what the mailer reads of the item store; feeds.Store
// implements it. The mailer never writes items.
type ItemReader interface {
	// ItemsFirstSeen returns the items first seen in (after, until] and
	// published on or after publishedSince, with their attachments.
	ItemsFirstSeen(ctx context.Context, after, until, publishedSince time.Time) ([]feeds.Item, error)
}

// Mailer builds digests, renders mail and delivers it, recording every
// delivery in the ledger (the digests and deliveries tables). One Mailer
// may serve many sends; the lock row keeps two processes from sending the
// same digest at once.
type Mailer struct {
	cfg    config.Config
	db     *sql.DB
	items  ItemReader
	tokens *Tokens
	tpl    *mailTemplates
	host   string // base_url host, the domain of Message-IDs and List-Id
	tr     transport

	// Now is the clock; tests set it.
	Now func() time.Time
	// Log receives one line per event worth knowing.
	Log *slog.Logger
	// Settle keeps items first seen within this margin of now out of a new
	// digest: a crawl stamps first_seen before its transaction commits, so an
	// item stamped just before the digest's period end could become visible
	// only after the digest was built and would otherwise be missed by both
	// this digest and the next.
	Settle time.Duration
	// LockTTL is how long the "digest" lock row is held without a refresh;
	// a process killed while holding it blocks others at most this long.
	LockTTL time.Duration
	// LockRefresh is how often a running send extends the lock.
	LockRefresh time.Duration
	// Backoff is the first wait before retrying a temporary failure; each
	// further retry of the same delivery or connection waits twice as long.
	Backoff time.Duration
}

// New returns a Mailer for cfg over an opened, migrated database. It loads
// (or creates) the token secret and parses the mail templates, embedded or
// from cfg.Mail.Templates; a broken template is an error here.
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
		Settle:      time.Minute,
		LockTTL:     2 * time.Minute,
		LockRefresh: 30 * time.Second,
		Backoff:     backoff,
	}
	m.tr = newTransport(cfg)
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
	msg, err := m.buildMsg(outgoing{
		To:        s.Email,
		Name:      s.Name,
		Subject:   subject,
		Text:      text,
		HTML:      html,
		MessageID: fmt.Sprintf("confirm-%d-%s@%s", now.UnixNano(), uidHash(s.UID), m.host),
		Date:      now,
	})
	if err != nil {
		return fmt.Errorf("confirmation to %s: %w", s.Email, err)
	}
	sess := m.tr.open()
	defer sess.close()
	if err := sess.send(ctx, msg); err != nil {
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
