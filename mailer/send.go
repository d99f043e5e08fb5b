package mailer

import (
	"bufio"
	"bytes"
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
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
	"golang.org/x/time/rate"

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

// job is one pending delivery on its way through the workers.
type job struct {
	p     pendingDelivery
	ed    *edition
	tries int // attempts in this run
	at    time.Time
}

// jobQueue hands jobs to workers: ready ones first, retries once their
// backoff has passed. It takes jobs from its source a batch at a time, when
// few are left ready, so a large digest is never held whole. It ends when
// the source is exhausted and every job is sent, failed or left pending,
// or when a fatal error aborts the run.
type jobQueue struct {
	mu          sync.Mutex
	ready       []*job
	delayed     []*job
	outstanding int // jobs taken from the source and not yet done
	peak        int // the most outstanding at once
	aborted     bool
	err         error // the source's error, which aborted the run
	source      func(context.Context) ([]*job, error)
	fetching    bool          // a worker is reading the next batch
	exhausted   bool          // the source has nothing more
	lowWater    int           // read the next batch when no more than this is ready
	limit       int           // and no more than this is outstanding
	changed     chan struct{} // closed and replaced on every change
	now         func() time.Time
}

func newJobQueue(source func(context.Context) ([]*job, error), lowWater, limit int, now func() time.Time) *jobQueue {
	return &jobQueue{source: source, lowWater: lowWater, limit: limit, changed: make(chan struct{}), now: now}
}

func (q *jobQueue) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// fill reads the next batch from the source, with q.mu held on entry and
// on return (it is let go during the read). One worker reads at a time;
// the others go on with what is ready.
func (q *jobQueue) fill(ctx context.Context) {
	q.fetching = true
	q.mu.Unlock()
	jobs, err := q.source(ctx)
	q.mu.Lock()
	q.fetching = false
	switch {
	case err != nil:
		if ctx.Err() == nil {
			q.err, q.aborted = err, true
		}
		q.exhausted = true
	case len(jobs) == 0:
		q.exhausted = true
	}
	q.ready = append(q.ready, jobs...)
	q.outstanding += len(jobs)
	q.peak = max(q.peak, q.outstanding)
	q.signal()
}

// next returns the next job, waiting for a retry's time if need be; false
// when nothing is left or ctx ends.
func (q *jobQueue) next(ctx context.Context) (*job, bool) {
	for {
		if ctx.Err() != nil {
			// Stopping: what is not yet sent stays pending for the next run.
			return nil, false
		}
		q.mu.Lock()
		// Retries waiting out their backoff count towards the limit, so
		// a server refusing many for a while holds up new batches rather
		// than letting them pile up.
		if !q.aborted && !q.exhausted && !q.fetching && len(q.ready) <= q.lowWater && q.outstanding <= q.limit {
			q.fill(ctx)
		}
		if q.aborted || q.exhausted && !q.fetching && q.outstanding == 0 {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.ready) > 0 {
			j := q.ready[0]
			q.ready[0] = nil
			q.ready = q.ready[1:]
			q.mu.Unlock()
			return j, true
		}
		wait := time.Duration(-1)
		if len(q.delayed) > 0 {
			now := q.now()
			first := 0
			for i, j := range q.delayed {
				if j.at.Before(q.delayed[first].at) {
					first = i
				}
			}
			j := q.delayed[first]
			if !j.at.After(now) {
				q.delayed = append(q.delayed[:first], q.delayed[first+1:]...)
				q.mu.Unlock()
				return j, true
			}
			wait = j.at.Sub(now)
		}
		changed := q.changed
		q.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, false
		}
	}
}

// done ends a job (sent, failed, or left pending for the next run).
func (q *jobQueue) done() {
	q.mu.Lock()
	q.outstanding--
	q.signal()
	q.mu.Unlock()
}

// retry puts j back to be tried again at j.at.
func (q *jobQueue) retry(j *job) {
	q.mu.Lock()
	q.delayed = append(q.delayed, j)
	q.signal()
	q.mu.Unlock()
}

// abort stops the run; what is left stays pending.
func (q *jobQueue) abort() {
	q.mu.Lock()
	q.aborted = true
	q.signal()
	q.mu.Unlock()
}

// recorder writes outcomes to the ledger for all workers, committing every
// outcome that arrived while the previous commit ran in one transaction.
// A worker waits for its outcome to be committed before it sends again, so
// a crash loses at most the answer to the message each worker has in flight.
type recorder struct {
	w  *ledgerWriter
	in chan recordReq
}

type recordReq struct {
	o    outcome
	done chan error
}

// run commits until in is closed. It uses its own context: an answer the
// server gave must be recorded even while the run is being cancelled.
func (r *recorder) run() {
	ctx := context.Background()
	for req := range r.in {
		batch := []recordReq{req}
	drain:
		for len(batch) < 256 {
			select {
			case more, ok := <-r.in:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		outs := make([]outcome, len(batch))
		for i, b := range batch {
			outs[i] = b.o
		}
		err := r.w.record(ctx, outs)
		for _, b := range batch {
			b.done <- err
		}
	}
}

// record commits o and returns when it is durable.
func (r *recorder) record(o outcome) error {
	done := make(chan error, 1)
	r.in <- recordReq{o: o, done: done}
	return <-done
}

// runStats counts what one delivery run did.
type runStats struct {
	mu      sync.Mutex
	sent    int
	failed  int
	lastErr error // the latest error that left a delivery pending or stopped the run
	fatal   error
	observe func(outcome string)
}

func (s *runStats) add(sent, failed int, pendingErr, fatal error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent += sent
	s.failed += failed
	if s.observe != nil {
		for range sent {
			s.observe("sent")
		}
		for range failed {
			s.observe("failed")
		}
		if pendingErr != nil && fatal == nil {
			s.observe("retried")
		}
	}
	if pendingErr != nil {
		s.lastErr = pendingErr
	}
	if fatal != nil && s.fatal == nil {
		s.fatal = fatal
	}
}

// backoff is the wait before retry n (1, 2, …): Backoff doubled each time,
// at most ten minutes.
func (m *Mailer) backoff(n int) time.Duration {
	d := m.Backoff
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// deliver sends the jobs of digest d that source gives, a batch at a time,
// with cfg.SMTP.Concurrency workers, each with its own reused connection,
// at most cfg.SMTP.Rate messages a second.
func (m *Mailer) deliver(ctx context.Context, digestID int64, source func(context.Context) ([]*job, error)) *runStats {
	stats := &runStats{observe: m.OnDelivery}
	first, err := source(ctx)
	if err != nil || len(first) == 0 {
		stats.fatal = err
		return stats
	}
	workers := max(1, min(m.cfg.SMTP.Concurrency, len(first)))
	rest := func(ctx context.Context) ([]*job, error) {
		if first != nil {
			jobs := first
			first = nil
			return jobs, nil
		}
		return source(ctx)
	}
	// The next batch is read while each worker still has a few to send,
	// so at most two batches are held at once.
	q := newJobQueue(rest, 2*workers, pendingBatch, time.Now) // backoff runs on real time, whatever m.Now says
	defer func() { m.peakJobs.Store(int64(q.peak)) }()
	w, err := newLedgerWriter(ctx, m.db)
	if err != nil {
		stats.fatal = err
		return stats
	}
	defer w.close()
	rec := &recorder{w: w, in: make(chan recordReq)}
	recDone := make(chan struct{})
	go func() { rec.run(); close(recDone) }()
	var lim *rate.Limiter
	if m.cfg.SMTP.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(m.cfg.SMTP.Rate), 1)
	}
	tpls := &templateCache{m: m, byEdition: map[*edition]*msgTemplate{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.worker(ctx, digestID, q, rec, lim, stats, tpls)
		}()
	}
	wg.Wait()
	close(rec.in)
	<-recDone
	if q.err != nil && stats.fatal == nil {
		stats.fatal = q.err
	}
	return stats
}

// worker sends jobs over one session until the queue ends. Temporary
// failures are retried after a backoff up to cfg.SMTP.Retries times in this
// run and then left pending; a connection that cannot be made makes the
// worker back off, and after cfg.SMTP.Retries failures in a row give up.
func (m *Mailer) worker(ctx context.Context, digestID int64, q *jobQueue, rec *recorder, lim *rate.Limiter, stats *runStats, tpls *templateCache) {
	var buf bytes.Buffer // each message is built here, and sent before the next
	sess := m.tr.open()
	defer sess.close()
	retries := m.cfg.SMTP.Retries
	connFails := 0
	for {
		j, ok := q.next(ctx)
		if !ok {
			return
		}
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				q.done()
				return
			}
		}
		o := outcome{DigestID: digestID, SubscriberID: j.p.SubscriberID, Status: deliveryPending, HadBounces: j.p.Bounces > 0}
		buildErr, err := sendMsg(ctx, sess, func(eightBit bool) (*wireMsg, error) { return m.digestMsg(j, eightBit, tpls, &buf) })
		if buildErr != nil {
			o.Status, o.Error, o.At = deliveryFailed, buildErr.Error(), m.Now()
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 1, nil, nil)
			q.done()
			continue
		}
		o.At = m.Now()
		if err == nil {
			o.Status, o.Attempted = deliverySent, true
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			connFails = 0
			stats.add(1, 0, nil, nil)
			q.done()
			continue
		}
		if ctx.Err() != nil {
			// Stopped mid-send: what the server did is unknown, so the
			// delivery stays pending and is resent with its Message-ID.
			q.done()
			return
		}
		var de *deliveryError
		if !errors.As(err, &de) {
			de = &deliveryError{Temporary: true, Err: err}
		}
		o.Error = de.Error()
		switch {
		case de.Fatal:
			o.Attempted = true
			rerr := rec.record(o)
			stats.add(0, 0, de, errors.Join(de, rerr))
			q.abort()
			return
		case de.Conn:
			connFails++
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 0, de, nil)
			j.at = time.Now()
			q.retry(j)
			if connFails > retries {
				m.Log.Warn("digest send: giving up on the connection", "digest", digestID, "error", de, "tries", connFails)
				return
			}
			if !sleepCtx(ctx, m.backoff(connFails)) {
				return
			}
		case de.Temporary:
			o.Attempted = true
			j.tries++
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 0, de, nil)
			if j.tries > retries {
				q.done() // stays pending for the next run
				continue
			}
			j.at = time.Now().Add(m.backoff(j.tries))
			q.retry(j)
		default:
			o.Status, o.Attempted, o.Bounce = deliveryFailed, true, de.Bounce
			if err := rec.record(o); err != nil {
				stats.add(0, 0, nil, err)
				q.abort()
				return
			}
			stats.add(0, 1, nil, nil)
			q.done()
		}
	}
}

// digestMsg builds the message of one job into buf: from its edition's
// template when the session takes 8bit and the recipient's values allow it,
// else with go-mail from the personalised bodies.
func (m *Mailer) digestMsg(j *job, eightBit bool, tpls *templateCache, buf *bytes.Buffer) (*wireMsg, error) {
	p := m.personalFor(j.p.UID, j.p.Email, j.p.Name)
	o := outgoing{
		To:                j.p.Email,
		Name:              j.p.Name,
		MessageID:         j.p.MessageID,
		Date:              m.Now(),
		UnsubscribeURL:    p.UnsubscribeURL,
		UnsubscribeMailto: m.mailto,
		ListID:            m.listID,
	}
	if eightBit {
		t, err := tpls.get(j.ed)
		if err != nil {
			return nil, err
		}
		if t != nil {
			if w, ok, err := t.fill(m, o, p, buf); err != nil || ok {
				return w, err
			}
		}
	}
	o.Subject, o.Text, o.HTML = m.personalise(j.ed, p)
	return m.render(o, eightBit, buf)
}

// templateCache holds the message template of each edition of a run,
// made on first use; nil for an edition that cannot be templated.
type templateCache struct {
	m         *Mailer
	mu        sync.Mutex
	byEdition map[*edition]*msgTemplate
}

func (c *templateCache) get(ed *edition) (*msgTemplate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.byEdition[ed]; ok {
		return t, nil
	}
	t, err := c.m.newMsgTemplate(ed)
	if err != nil {
		return nil, err
	}
	c.byEdition[ed] = t
	return t, nil
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
