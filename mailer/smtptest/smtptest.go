// Package smtptest runs an in-process SMTP server (emersion/go-smtp) for
// tests and benchmarks: it records every message it accepts and can be told
// to misbehave the ways real servers do — 451 to some recipients, a
// connection dropped during DATA, refusing connections for a while, 550 to
// some recipients, slow answers — and be set up with STARTTLS or implicit
// TLS and required AUTH PLAIN. It is test support only.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"
)

// Faults says how the server misbehaves. The zero value is a well-behaved
// server.
type Faults struct {
	// TempFailShare is the share (0..1) of recipient addresses whose first
	// TempFailTimes RCPTs are answered 451. Which addresses is decided by a
	// hash of the address, so a run is repeatable.
	TempFailShare float64
	// TempFailTimes is how often each chosen address gets 451 (default 1).
	TempFailTimes int
	// DropDataEvery drops the connection in the middle of DATA for every
	// n-th message (counting all messages that reach DATA), without
	// accepting it.
	DropDataEvery int
	// DownConns closes the first n connections before the greeting, as a
	// server that is down (or restarting) would.
	DownConns int
	// Reject answers 550 to RCPT for the addresses it returns true for.
	Reject func(rcpt string) bool
	// Delay is waited after a message's data is read, before the 250.
	Delay time.Duration
	// DiscardData keeps only each message's headers and size, not its
	// bytes (benchmarks).
	DiscardData bool
	// No8BitMIME makes the server an old one that does not announce
	// 8BITMIME (RFC 6152) and refuses, with 554, a message holding any byte
	// above 127.
	No8BitMIME bool
}

// Message is one message the server accepted.
type Message struct {
	From      string
	Body      string // the MAIL FROM BODY= parameter: "8BITMIME", or ""
	To        []string
	MessageID string
	Header    mail.Header
	Data      []byte // the whole message; nil with DiscardData
	Size      int
	Accepted  time.Time
	TLS       bool   // the message came over TLS (STARTTLS or implicit)
	AuthUser  string // who authenticated, or ""
}

// Setup is how the server is configured, as opposed to how it misbehaves.
// The zero value is a plain server without TLS or authentication.
type Setup struct {
	// TLS, if set, is offered with STARTTLS, or with ImplicitTLS spoken from
	// the first byte (as on port 465).
	TLS         *tls.Config
	ImplicitTLS bool
	// Users, if set, makes AUTH PLAIN (user → password) required before
	// MAIL FROM.
	Users map[string]string
}

// Server is a running in-process SMTP server.
type Server struct {
	Addr string // host:port to dial

	srv *smtp.Server
	ln  net.Listener

	setup Setup

	mu       sync.Mutex
	faults   Faults
	msgs     []Message
	conns    int            // connections accepted
	refused  int            // connections closed as "down"
	rcptSeen map[string]int // RCPT count per address, for TempFail
	dataSeen int            // messages that reached DATA
	notify   []waiter
}

type waiter struct {
	n  int
	ch chan struct{}
}

// Start starts a server on a free loopback port with faults f and stops it
// when the test ends.
func Start(tb testing.TB, f Faults) *Server {
	tb.Helper()
	return StartWith(tb, Setup{}, f)
}

// StartWith is Start for a server set up with TLS or authentication.
func StartWith(tb testing.TB, setup Setup, f Faults) *Server {
	tb.Helper()
	s, err := ListenWith("127.0.0.1:0", setup, f)
	if err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Listen starts a server on addr with faults f; Close stops it.
func Listen(addr string, f Faults) (*Server, error) {
	return ListenWith(addr, Setup{}, f)
}

// ListenWith is Listen for a server set up with TLS or authentication.
func ListenWith(addr string, setup Setup, f Faults) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), setup: setup, faults: f, rcptSeen: map[string]int{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.local"
	s.srv.AllowInsecureAuth = setup.TLS == nil
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.MaxRecipients = 100
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.ln = &downListener{Listener: ln, s: s}
	if setup.TLS != nil {
		if setup.ImplicitTLS {
			s.ln = tls.NewListener(s.ln, setup.TLS)
		} else {
			s.srv.TLSConfig = setup.TLS
		}
	}
	go s.srv.Serve(s.ln) //nolint:errcheck // ends with Close
	return s, nil
}

// Close stops the server and closes its connections. It closes the
// listener itself too, in case Serve has not started using it yet.
func (s *Server) Close() error {
	s.ln.Close()
	return s.srv.Close()
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// SetFaults changes the faults from now on; counters are kept.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Messages returns a copy of the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count is the number of accepted messages.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// ByRecipient counts accepted messages per recipient address.
func (s *Server) ByRecipient() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.msgs {
		for _, to := range m.To {
			out[strings.ToLower(to)]++
		}
	}
	return out
}

// Connections returns how many connections were accepted and how many of
// them were closed as "down".
func (s *Server) Connections() (accepted, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.refused
}

// WaitFor returns a channel closed once n messages have been accepted.
func (s *Server) WaitFor(n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if len(s.msgs) >= n {
		close(ch)
		return ch
	}
	s.notify = append(s.notify, waiter{n: n, ch: ch})
	return ch
}

// downListener closes the first Faults.DownConns connections at once.
type downListener struct {
	net.Listener
	s *Server
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		l.s.conns++
		down := l.s.refused < l.s.faults.DownConns
		if down {
			l.s.refused++
		}
		l.s.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		if l.s.faults.No8BitMIME {
			return no8bitConn{c}, nil
		}
		return c, nil
	}
}

// no8bitConn hides the 8BITMIME line of the EHLO reply, which go-smtp
// always announces and writes as a line of its own.
type no8bitConn struct{ net.Conn }

func (c no8bitConn) Write(b []byte) (int, error) {
	if string(b) == "250-8BITMIME\r\n" {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &session{s: s, conn: c}
	if s.setup.Users != nil {
		return &authSession{ss}, nil
	}
	return ss, nil
}

type session struct {
	s    *Server
	conn *smtp.Conn
	from string
	body string
	to   []string
	user string // authenticated as
}

// authSession is a session that requires AUTH PLAIN.
type authSession struct{ *session }

func (as *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (as *authSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := as.s.setup.Users[username]; !ok || password != want || (identity != "" && identity != username) {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		as.user = username
		return nil
	}), nil
}

func (as *authSession) Mail(from string, opts *smtp.MailOptions) error {
	if as.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	return as.session.Mail(from, opts)
}

func (ss *session) Reset()        { ss.from, ss.body, ss.to = "", "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.from, ss.body = from, ""
	if opts != nil {
		ss.body = string(opts.Body)
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	f := s.faults
	key := strings.ToLower(to)
	s.rcptSeen[key]++
	seen := s.rcptSeen[key]
	s.mu.Unlock()
	if f.Reject != nil && f.Reject(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	if f.TempFailShare > 0 && chosen(key, f.TempFailShare) {
		times := f.TempFailTimes
		if times <= 0 {
			times = 1
		}
		if seen <= times {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

// errDropped is returned after the connection was dropped on purpose.
var errDropped = errors.New("smtptest: connection dropped during DATA")

func (ss *session) Data(r io.Reader) error {
	s := ss.s
	s.mu.Lock()
	f := s.faults
	s.dataSeen++
	drop := f.DropDataEvery > 0 && s.dataSeen%f.DropDataEvery == 0
	s.mu.Unlock()
	if drop {
		// Read a little, then vanish: the client sees the connection die
		// before the final reply.
		io.CopyN(io.Discard, r, 64) //nolint:errcheck
		ss.conn.Conn().Close()
		io.Copy(io.Discard, r) //nolint:errcheck
		return errDropped
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	if f.No8BitMIME && bytes.IndexFunc(buf.Bytes(), func(r rune) bool { return r > 127 }) >= 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "8-bit content not accepted here"}
	}
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := Message{From: ss.from, Body: ss.body, TLS: isTLS, AuthUser: ss.user, To: append([]string(nil), ss.to...), Size: buf.Len(), Accepted: time.Now()}
	if parsed, err := mail.ReadMessage(bytes.NewReader(buf.Bytes())); err == nil {
		m.Header = parsed.Header
		m.MessageID = parsed.Header.Get("Message-Id")
	}
	if !f.DiscardData {
		m.Data = buf.Bytes()
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	n := len(s.msgs)
	kept := s.notify[:0]
	for _, w := range s.notify {
		if n >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.notify = kept
	s.mu.Unlock()
	return nil
}

// chosen decides by hash whether addr falls in share.
func chosen(addr string, share float64) bool {
	h := fnv.New32a()
	h.Write([]byte(addr))
	return float64(h.Sum32()%10000) < share*10000
}

// SelfSigned makes a certificate for 127.0.0.1 and localhost, valid for a
// day, and returns a server TLS config with it and the certificate in PEM,
// for the client to trust.
func SelfSigned() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, nil, fmt.Errorf("smtptest: key pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certPEM, nil
}
