// The transports that carry a message: an SMTP connection reused for many
// messages (smtpSession) or a directory of .eml files (fileTransport), and
// how a failed attempt is classified (temporary, bounce, fatal).

package mailer

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/msitfeed/msitfeed/internal/config"
)

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
	send(ctx context.Context, msg *wireMsg) error
	// eightBit reports whether the session may be handed 8bit messages:
	// false once its server has refused one.
	eightBit() bool
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

// newTransport returns the transport cfg.SMTP names. The CA file, if set,
// is read here, so a bad one is an error at start.
func newTransport(cfg config.Config) (transport, error) {
	if cfg.SMTP.Transport == "file" {
		dir := cfg.SMTP.Dir
		if dir == "" {
			dir = "mail-out"
		}
		return &fileTransport{dir: dir}, nil
	}
	t := &smtpTransport{cfg: cfg.SMTP}
	if cfg.SMTP.CAFile != "" {
		pem, err := os.ReadFile(cfg.SMTP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("config smtp.ca_file: %w", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config smtp.ca_file: no PEM certificate in %s", cfg.SMTP.CAFile)
		}
	}
	return t, nil
}

// smtpTransport delivers with go-mail, one client (one connection) per
// session.
type smtpTransport struct {
	cfg   config.SMTP
	roots *x509.CertPool // nil: the system's
}

// String names the server: "smtp host:port".
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
		mail.WithTLSConfig(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12, RootCAs: t.roots}),
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

// smtpSession holds one connection, made by go-mail (greeting, STARTTLS or
// TLS, AUTH), on first use and again after any failure that may have left
// it unusable. It runs each transaction on go-mail's SMTP client itself:
// MAIL and RCPT through the client, and DATA with dotWriter, which writes
// the message a line at a time where go-mail's path goes through
// net/textproto a byte at a time (a quarter of the CPU a digest cost).
type smtpSession struct {
	t      *smtpTransport
	client *mail.Client
	smtp   *smtp.Client
	no8bit bool // the server did not announce 8BITMIME
	out    *bufio.Writer
}

func (s *smtpSession) eightBit() bool { return !s.no8bit }

// The steps of a transaction, for classifying a failure.
const (
	stepMail = "MAIL FROM"
	stepRcpt = "RCPT TO"
	stepData = "DATA"
	stepBody = "message"
	stepEnd  = "end of DATA"
)

// send delivers msg in one SMTP transaction, connecting first if need be.
// An 8bit message to a server without 8BITMIME gets errNo8BitMIME and
// nothing is sent; any other failure is a classified *deliveryError.
func (s *smtpSession) send(ctx context.Context, msg *wireMsg) error {
	if s.smtp == nil {
		if s.client == nil {
			c, err := mail.NewClient(s.t.cfg.Host, s.t.clientOptions()...)
			if err != nil {
				return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", s.t, err)}
			}
			s.client = c
		}
		c, err := s.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			return classifyDialError(s.t, err)
		}
		s.smtp = c
	}
	if msg.eightBit {
		if ok, _ := s.smtp.Extension("8BITMIME"); !ok {
			s.no8bit = true
			return errNo8BitMIME // nothing was sent: the connection is clean
		}
	}
	step, err := s.transaction(msg, msg.from, msg.to)
	if err == nil {
		return nil
	}
	de := classifyStepError(s.t, step, err)
	if de.Code != 0 && (step == stepMail || step == stepRcpt) && s.smtp.Reset() == nil {
		return de // refused before DATA, and RSET cleared the transaction
	}
	// The server may be mid-transaction or gone: start afresh.
	s.drop()
	return de
}

// transaction sends msg; on failure it names the step that failed. With a
// server that announces PIPELINING (RFC 2920), MAIL, RCPT and DATA go out
// together and their replies are read together: two round trips a message
// instead of four, which is most of what a digest's time is spent waiting
// for.
func (s *smtpSession) transaction(msg *wireMsg, from string, rcpts []string) (string, error) {
	c := s.smtp
	if err := c.UpdateDeadline(s.t.cfg.Timeout); err != nil {
		return stepMail, err
	}
	if ok, _ := c.Extension("PIPELINING"); ok {
		if step, err := s.pipelinedEnvelope(from, rcpts); err != nil {
			return step, err
		}
	} else {
		if err := c.Mail(from); err != nil {
			return stepMail, err
		}
		for _, r := range rcpts {
			if err := c.Rcpt(r); err != nil {
				return stepRcpt, err
			}
		}
		id, err := c.Text.Cmd("DATA")
		if err != nil {
			return stepData, err
		}
		c.Text.StartResponse(id)
		_, _, err = c.Text.ReadResponse(354)
		c.Text.EndResponse(id)
		if err != nil {
			return stepData, err
		}
	}
	// The message goes through a buffer of its own size, so that it
	// reaches the socket in one or two writes rather than one per 4 KiB
	// of the client's buffer.
	if s.out == nil {
		s.out = bufio.NewWriterSize(c.Text.W, 64<<10)
	}
	s.out.Reset(c.Text.W)
	dw := newDotWriter(s.out)
	if err := msg.writeTo(dw); err != nil {
		return stepBody, err
	}
	if err := dw.close(); err != nil {
		return stepBody, err
	}
	if err := s.out.Flush(); err != nil {
		return stepBody, err
	}
	if err := c.Text.W.Flush(); err != nil {
		return stepBody, err
	}
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		return stepEnd, err
	}
	return "", nil
}

// pipelinedEnvelope sends MAIL FROM, every RCPT TO and DATA in one write
// and reads their replies. The first refusal is the one reported. A server
// that answers 354 to DATA after refusing the envelope (RFC 2920 says it
// must not) is left mid-transaction: the caller drops the connection, so
// no empty message goes out.
func (s *smtpSession) pipelinedEnvelope(from string, rcpts []string) (string, error) {
	c := s.smtp
	for _, a := range append([]string{from}, rcpts...) {
		if strings.ContainsAny(a, "\r\n") {
			return stepMail, fmt.Errorf("%w: %q holds a line break", errBadRecipient, a)
		}
	}
	params := ""
	if ok, _ := c.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}
	w := c.Text.W
	w.WriteString("MAIL FROM:" + from + params + "\r\n")
	for _, r := range rcpts {
		w.WriteString("RCPT TO:" + r + "\r\n")
	}
	w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil {
		return stepMail, err
	}
	step, first := "", error(nil)
	fail := func(st string, err error) {
		if first == nil {
			step, first = st, err
		}
	}
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		if _, ok := err.(*textproto.Error); !ok {
			return stepMail, err // the connection failed: nothing more to read
		}
		fail(stepMail, err)
	}
	for range rcpts {
		if _, _, err := c.Text.ReadResponse(25); err != nil {
			if _, ok := err.(*textproto.Error); !ok {
				return stepRcpt, err
			}
			fail(stepRcpt, err)
		}
	}
	_, _, err := c.Text.ReadResponse(354)
	if first != nil {
		if err == nil {
			return stepData, fmt.Errorf("%s refused, yet DATA was accepted: %w", step, first)
		}
		return step, first
	}
	if err != nil {
		return stepData, err
	}
	return "", nil
}

// drop closes the connection without QUIT; the next send reconnects.
func (s *smtpSession) drop() {
	if s.smtp != nil {
		_ = s.smtp.Close()
		s.smtp = nil
	}
}

// close ends a session politely: QUIT, then the connection.
func (s *smtpSession) close() {
	if s.smtp != nil {
		_ = s.smtp.Quit()
	}
	s.drop()
}

// classifyDialError turns a failure to connect, greet, STARTTLS or
// authenticate into a deliveryError.
func classifyDialError(t transport, err error) *deliveryError {
	de := &deliveryError{Temporary: true, Conn: true, Err: fmt.Errorf("%s: %w", t, err)}
	var certErr *tls.CertificateVerificationError
	switch code := smtpCode(err); {
	case code == 535:
		de.Temporary, de.Fatal, de.Code = false, true, code
		de.Err = fmt.Errorf("%s: the server refused smtp.username and smtp.password: %w", t, err)
	case code >= 500:
		// 5xx during the greeting or AUTH: retrying will not help.
		de.Temporary, de.Fatal, de.Code = false, true, code
	case errors.As(err, &certErr):
		de.Temporary, de.Fatal = false, true
		de.Err = fmt.Errorf("%s: the server's certificate is not trusted (set smtp.ca_file for a private CA): %w", t, err)
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		// Sending in plain text instead is what smtp.tls = "starttls" rules out.
		de.Temporary, de.Fatal = false, true
		de.Err = fmt.Errorf("%s: the server offers no STARTTLS (smtp.tls = \"none\" would send in plain text): %w", t, err)
	}
	return de
}

// classifyStepError sorts the failure of one step of a transaction into
// temporary (4xx, a dropped connection, a timeout), bounce (5xx to RCPT or
// to the end of DATA: the recipient is refused) or fatal (any other 5xx:
// every message would be refused the same way).
func classifyStepError(t transport, step string, err error) *deliveryError {
	de := &deliveryError{Temporary: true, Err: fmt.Errorf("%s: %s: %w", t, step, err)}
	var te *textproto.Error
	if errors.As(err, &te) {
		de.Code = te.Code
	} else if step != stepBody {
		de.Code = smtpCode(err)
	}
	switch {
	case de.Code >= 500 && (step == stepRcpt || step == stepEnd):
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
func (t *fileTransport) eightBit() bool { return true }

// send writes msg to a temporary file and renames it into place, so a
// reader of the directory never sees half a message.
func (t *fileTransport) send(ctx context.Context, msg *wireMsg) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", t, err)}
	}
	name := emlName(msg.messageID)
	tmp, err := os.CreateTemp(t.dir, ".tmp-*.eml")
	if err != nil {
		return &deliveryError{Fatal: true, Err: fmt.Errorf("%s: %w", t, err)}
	}
	defer os.Remove(tmp.Name())
	if err := msg.writeTo(tmp); err != nil {
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
