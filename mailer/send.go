package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/msitfeed/msitfeed/internal/config"
)

// outgoing is one message to one recipient, before it becomes a go-mail Msg.
type outgoing struct {
	To        string
	Name      string
	Subject   string // already sanitised to one line
	Text      string
	HTML      string
	MessageID string // without angle brackets
	Date      time.Time
	// Digest-only headers; empty for a confirmation.
	UnsubscribeURL    string
	UnsubscribeMailto string
	ListID            string
}

// buildMsg turns o into a multipart/alternative UTF-8 message with the
// plain text first and the HTML second, as RFC 2046 orders them from
// plainest to richest.
func (m *Mailer) buildMsg(o outgoing) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent(), mail.WithCharset(mail.CharsetUTF8), mail.WithEncoding(mail.EncodingQP))
	if err := msg.From(m.cfg.Mail.From); err != nil {
		return nil, fmt.Errorf("mail.from %q: %w", m.cfg.Mail.From, err)
	}
	if m.cfg.Mail.ReplyTo != "" {
		if err := msg.ReplyTo(m.cfg.Mail.ReplyTo); err != nil {
			return nil, fmt.Errorf("mail.reply_to %q: %w", m.cfg.Mail.ReplyTo, err)
		}
	}
	if err := msg.AddToFormat(flattenText(o.Name), o.To); err != nil {
		return nil, fmt.Errorf("%w: recipient %q: %v", errBadRecipient, o.To, err)
	}
	msg.Subject(SanitizeSubject(o.Subject))
	msg.SetDateWithValue(o.Date)
	msg.SetMessageIDWithValue(o.MessageID)
	msg.SetUserAgent("msitfeed")
	if o.UnsubscribeURL != "" {
		uris := []string{o.UnsubscribeURL}
		if o.UnsubscribeMailto != "" {
			uris = append(uris, o.UnsubscribeMailto)
		}
		msg.SetListUnsubscribe(uris...)
		msg.SetListUnsubscribePost()
	}
	if o.ListID != "" {
		msg.SetGenHeaderPreformatted("List-Id", o.ListID)
		msg.SetBulk()
	}
	msg.SetBodyString(mail.TypeTextPlain, o.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, o.HTML)
	return msg, nil
}

// errBadRecipient marks an address go-mail will not accept; such a delivery
// fails for good without counting as a bounce.
var errBadRecipient = errors.New("bad recipient address")

// transport opens sessions that deliver messages: an SMTP connection that
// is reused for many messages, or a directory of .eml files.
type transport interface {
	open() session
	String() string // names the transport in errors: "smtp localhost:25"
}

// session delivers messages one at a time. send returns nil only when the
// message was accepted (SMTP: the 250 after DATA); otherwise a
// *deliveryError that says whether to retry.
type session interface {
	send(ctx context.Context, msg *mail.Msg) error
	close()
}

// deliveryError is a failed attempt, classified.
type deliveryError struct {
	// Temporary failures (4xx, dropped connection, timeout, refused
	// connection) are retried; the others are final for this digest.
	Temporary bool
	// Bounce is set for a permanent rejection of the recipient (5xx to
	// RCPT or to the end of DATA); it counts towards bouncing the subscriber.
	Bounce bool
	// Conn is set when no connection could be made at all; the worker backs
	// off instead of charging the delivery an attempt.
	Conn bool
	// Fatal is set for a permanent refusal that is not about the recipient
	// (5xx to MAIL FROM or DATA, failed authentication): every other
	// delivery would fail the same way, so the run stops.
	Fatal bool
	Code  int
	Err   error
}

func (e *deliveryError) Error() string { return e.Err.Error() }
func (e *deliveryError) Unwrap() error { return e.Err }

// newTransport returns the transport cfg.SMTP names.
func newTransport(cfg config.Config) transport {
	if cfg.SMTP.Transport == "file" {
		dir := cfg.SMTP.Dir
		if dir == "" {
			dir = "mail-out"
		}
		return &fileTransport{dir: dir}
	}
	return &smtpTransport{cfg: cfg.SMTP}
}

// smtpTransport delivers with go-mail, one client (one connection) per
// session.
type smtpTransport struct {
	cfg config.SMTP
}

func (t *smtpTransport) String() string {
	return "smtp " + net.JoinHostPort(t.cfg.Host, strconv.Itoa(t.cfg.Port))
}

func (t *smtpTransport) open() session { return &smtpSession{t: t} }

// clientOptions maps the configuration onto go-mail. NOOP before and RSET
// after each message are skipped: a finished DATA ends the transaction, and
// a dead connection shows itself on the next command anyway.
func (t *smtpTransport) clientOptions() []mail.Option {
	c := t.cfg
	opts := []mail.Option{
		mail.WithPort(c.Port),
		mail.WithTimeout(c.Timeout),
		mail.WithoutNoop(),
		mail.WithoutRset(),
		mail.WithTLSConfig(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}),
	}
	switch c.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "tls":
		opts = append(opts, mail.WithSSL(), mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(c.Username), mail.WithPassword(c.Password))
	}
	return opts
}

// smtpSession holds one go-mail client and dials it on first use and again
// after any failure that may have left the connection unusable.
type smtpSession struct {
	t      *smtpTransport
	client *mail.Client
	up     bool
}

func (s *smtpSession) send(ctx context.Context, msg *mail.Msg) error {
	if !s.up {
		if s.client == nil {
			c, err := mail.NewClient(s.t.cfg.Host, s.t.clientOptions()...)
			if err != nil {
				return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", s.t, err)}
			}
			s.client = c
		}
		if err := s.client.DialWithContext(ctx); err != nil {
			return classifyDialError(s.t, err)
		}
		s.up = true
	}
	err := s.client.Send(msg)
	if err == nil || msg.IsDelivered() {
		return nil
	}
	de := classifySendError(s.t, err)
	var se *mail.SendError
	keep := errors.As(err, &se) && se.ErrorCode() != 0 &&
		(se.Reason == mail.ErrSMTPRcptTo || se.Reason == mail.ErrSMTPMailFrom)
	if !keep {
		// The server may be mid-transaction or gone: start afresh.
		s.drop()
	}
	return de
}

func (s *smtpSession) drop() {
	if s.client != nil && s.up {
		_ = s.client.Close()
	}
	s.up = false
}

func (s *smtpSession) close() { s.drop() }

// classifyDialError turns a failure to connect, greet, STARTTLS or
// authenticate into a deliveryError.
func classifyDialError(t transport, err error) *deliveryError {
	de := &deliveryError{Temporary: true, Conn: true, Err: fmt.Errorf("%s: %w", t, err)}
	if code := smtpCode(err); code >= 500 {
		// 5xx during the greeting or AUTH: retrying will not help.
		de.Temporary, de.Fatal, de.Code = false, true, code
	}
	return de
}

// classifySendError sorts a go-mail send error into temporary, bounce or
// fatal.
func classifySendError(t transport, err error) *deliveryError {
	de := &deliveryError{Temporary: true, Err: fmt.Errorf("%s: %w", t, err)}
	var se *mail.SendError
	if !errors.As(err, &se) {
		return de
	}
	de.Code = se.ErrorCode()
	switch {
	case se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts:
		de.Temporary = false
		de.Err = fmt.Errorf("%w: %v", errBadRecipient, err)
	case de.Code >= 500 && (se.Reason == mail.ErrSMTPRcptTo || se.Reason == mail.ErrSMTPDataClose):
		de.Temporary, de.Bounce = false, true
	case de.Code >= 500:
		de.Temporary, de.Fatal = false, true
	}
	return de
}

// smtpCode returns the reply code an error starts with, or 0.
func smtpCode(err error) int {
	for e := err; e != nil; e = errors.Unwrap(e) {
		s := e.Error()
		if len(s) >= 3 && (s[0] == '4' || s[0] == '5') {
			if n, cerr := strconv.Atoi(s[:3]); cerr == nil {
				return n
			}
		}
	}
	return 0
}

// fileTransport writes each message as an .eml file named after its
// Message-ID, so a resend overwrites rather than doubles it.
type fileTransport struct {
	dir string
}

func (t *fileTransport) String() string { return "file " + t.dir }
func (t *fileTransport) open() session  { return t }
func (t *fileTransport) close()         {}

func (t *fileTransport) send(ctx context.Context, msg *mail.Msg) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", t, err)}
	}
	name := emlName(msg.GetMessageID())
	tmp, err := os.CreateTemp(t.dir, ".tmp-*.eml")
	if err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", t, err)}
	}
	defer os.Remove(tmp.Name())
	if _, err := msg.WriteTo(tmp); err != nil {
		tmp.Close()
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: write %s: %w", t, name, err)}
	}
	if err := tmp.Close(); err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: write %s: %w", t, name, err)}
	}
	if err := os.Rename(tmp.Name(), filepath.Join(t.dir, name)); err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: write %s: %w", t, name, err)}
	}
	return nil
}

// emlName makes a file name from a Message-ID.
func emlName(messageID string) string {
	id := strings.Trim(messageID, "<>")
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		case r == '@':
			b.WriteString("_at_")
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("message")
	}
	return b.String() + ".eml"
}
