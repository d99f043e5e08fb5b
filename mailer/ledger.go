package mailer

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	dbpkg "github.com/msitfeed/msitfeed/internal/db" // "db" names the *sql.DB here
)

// The ledger is the digests and deliveries tables. Its rules:
//
//   - A digest and one pending delivery per recipient, each with its
//     Message-ID, are written in one transaction; a digest nobody would
//     receive is never written.
//   - A delivery moves to sent in the statement that records the server's
//     acceptance (the 250 after DATA), and to failed on a permanent refusal
//     or when its subscriber left before it was sent. Temporary failures
//     only count an attempt and keep the last error; the delivery stays
//     pending for the next run.
//   - A digest is finished when none of its deliveries is pending.
//
// A process killed between the server's 250 and the update leaves that one
// delivery pending; the next run sends it again with the same Message-ID.

// Delivery states.
const (
	deliveryPending = "pending"
	deliverySent    = "sent"
	deliveryFailed  = "failed"
)

// bounceLimit is how many permanent failures in a row make a subscriber
// bounced.
const bounceLimit = 3

// ledgerTimeLayout is UTC with a fixed width, so stored times sort as text.
const ledgerTimeLayout = "2006-01-02T15:04:05.000000Z"

func ledgerTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(ledgerTimeLayout)
}

// parseStoredTime reads a time written by this package or by the
// subscriber store, whichever layout it used; "" and junk give zero.
func parseStoredTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{ledgerTimeLayout, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// digestRow is one row of digests.
type digestRow struct {
	ID       int64
	Start    time.Time
	End      time.Time
	SeqStart int64 // posts stored with a sequence number in (SeqStart, SeqEnd]
	SeqEnd   int64
	Items    []string // "board/nttSeqNo"
	Created  time.Time
	Finished time.Time
}

// pendingDelivery is a delivery still to send, with what is needed to
// render and address it.
type pendingDelivery struct {
	SubscriberID int64
	MessageID    string
	Boards       []string
	Since        time.Time
	Match        string
	Attempts     int
	UID          string
	Email        string
	Name         string
	Status       Status // "" if the subscriber row is gone
	Bounces      int
}

const digestColumns = `id, period_start, period_end, items, created, finished, seq_start, seq_end`

func scanDigest(sc interface{ Scan(...any) error }) (digestRow, error) {
	var d digestRow
	var start, end, items, created, finished string
	if err := sc.Scan(&d.ID, &start, &end, &items, &created, &finished, &d.SeqStart, &d.SeqEnd); err != nil {
		return d, err
	}
	d.Start, d.End = parseStoredTime(start), parseStoredTime(end)
	d.Created, d.Finished = parseStoredTime(created), parseStoredTime(finished)
	if err := json.Unmarshal([]byte(items), &d.Items); err != nil {
		return d, fmt.Errorf("digest %d items: %w", d.ID, err)
	}
	return d, nil
}

// ledgerLastDigest returns the most recent digest, if any.
func ledgerLastDigest(ctx context.Context, db *sql.DB) (digestRow, bool, error) {
	d, err := scanDigest(db.QueryRowContext(ctx, `SELECT `+digestColumns+` FROM digests ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("read last digest: %w", err)
	}
	return d, true, nil
}

// ledgerUnfinished returns the digests that still have pending deliveries
// (or were never marked finished), oldest first.
func ledgerUnfinished(ctx context.Context, db *sql.DB) ([]digestRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+digestColumns+` FROM digests WHERE finished = '' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read unfinished digests: %w", err)
	}
	defer rows.Close()
	var out []digestRow
	for rows.Next() {
		d, err := scanDigest(rows)
		if err != nil {
			return nil, fmt.Errorf("read unfinished digests: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unfinished digests: %w", err)
	}
	return out, nil
}

// pendingBatch is how many pending deliveries a send claims and reads at a
// time: a digest to a million subscribers is never held in memory whole.
var pendingBatch = 1000

// ledgerClaimed returns the pending deliveries of a digest claimed as
// token between subscriber ids lo and hi (at most limit, the size of the
// claim), in subscriber order, with their subscribers as they are now.
func ledgerClaimed(ctx context.Context, db *sql.DB, digestID, lo, hi int64, token string, limit int) ([]pendingDelivery, error) {
	rows, err := db.QueryContext(ctx, `SELECT d.subscriber_id, d.message_id, d.boards, d.since, d.match_pattern, d.attempts,
			COALESCE(s.uid, ''), COALESCE(s.email, ''), COALESCE(s.name, ''), COALESCE(s.status, ''), COALESCE(s.bounces, 0)
		FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.digest_id = $1 AND d.subscriber_id BETWEEN $2 AND $3 AND d.claimed_by = $4 AND d.status = 'pending'
		ORDER BY d.subscriber_id`, digestID, lo, hi, token)
	if err != nil {
		return nil, fmt.Errorf("read pending deliveries of digest %d: %w", digestID, err)
	}
	defer rows.Close()
	out := make([]pendingDelivery, 0, limit)
	for rows.Next() {
		var p pendingDelivery
		var boards, since, status string
		if err := rows.Scan(&p.SubscriberID, &p.MessageID, &boards, &since, &p.Match, &p.Attempts, &p.UID, &p.Email, &p.Name, &status, &p.Bounces); err != nil {
			return nil, fmt.Errorf("read pending deliveries of digest %d: %w", digestID, err)
		}
		p.Boards = ledgerBoards(boards)
		p.Since = parseStoredTime(since)
		p.Status = Status(status)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending deliveries of digest %d: %w", digestID, err)
	}
	return out, nil
}

// outcome is what one attempt (or a decision not to attempt) did to a
// delivery.
type outcome struct {
	DigestID     int64
	SubscriberID int64
	Status       string // deliverySent, deliveryFailed, or deliveryPending for a retryable failure
	Attempted    bool   // an attempt was made (counts in attempts)
	Bounce       bool   // a permanent refusal of the address
	HadBounces   bool   // the subscriber had bounces to reset on success
	Error        string
	At           time.Time
}

// The statements that record outcomes. Only pending deliveries change, so
// recording twice is harmless.
const (
	recordDeliverySQL = `UPDATE deliveries SET status = $1, attempts = attempts + $2, last_error = $3, sent = $4
		WHERE digest_id = $5 AND subscriber_id = $6 AND status = 'pending'`
	resetBouncesSQL = `UPDATE subscribers SET bounces = 0 WHERE id = $1 AND bounces <> 0`
	addBounceSQL    = `UPDATE subscribers SET bounces = bounces + 1,
		status = CASE WHEN bounces + 1 >= $1 AND status = 'active' THEN 'bounced' ELSE status END
		WHERE id = $2`
)

// ledgerWriter records outcomes with statements prepared once, since a
// large digest records thousands.
//
// It holds one connection of its own and runs its transactions on it with
// prepared BEGIN IMMEDIATE, COMMIT and ROLLBACK statements. database/sql's
// Tx would prepare every statement again in each transaction (Tx.Stmt
// re-prepares a statement prepared on a Conn), and its Begin and Commit
// parse their SQL each time: together a fifth of the CPU a digest cost.
// Nothing else uses the connection, so no statement can run inside a
// transaction it did not start.
//
// Where each statement is a round trip to a server (PostgreSQL), a group
// of outcomes that touches no bounce counter is written by one statement
// instead, which commits on its own: one round trip for the group rather
// than one per outcome and two for the transaction.
type ledgerWriter struct {
	conn                             *sql.Conn
	begin, commit, rollback          *sql.Stmt
	delivery, resetBounce, addBounce *sql.Stmt
	remote                           bool
	groupSQL                         map[int]string // the one-statement form, by group size
}

func newLedgerWriter(ctx context.Context, db *sql.DB) (*ledgerWriter, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger connection: %w", err)
	}
	w := &ledgerWriter{conn: conn, remote: dbpkg.EngineOf(db).Remote(), groupSQL: map[int]string{}}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		// IMMEDIATE, as the pool's transactions (_txlock=immediate): the
		// write lock is taken, or waited for, at the start.
		{&w.begin, dbpkg.EngineOf(db).BeginWrite()}, {&w.commit, `COMMIT`}, {&w.rollback, `ROLLBACK`},
		{&w.delivery, recordDeliverySQL}, {&w.resetBounce, resetBouncesSQL}, {&w.addBounce, addBounceSQL},
	} {
		if *p.dst, err = conn.PrepareContext(ctx, p.sql); err != nil {
			w.close()
			return nil, fmt.Errorf("prepare ledger statements: %w", err)
		}
	}
	return w, nil
}

func (w *ledgerWriter) close() {
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.delivery, w.resetBounce, w.addBounce} {
		if st != nil {
			st.Close()
		}
	}
	w.conn.Close()
}

// record applies outcomes in one transaction: the delivery row and, for a
// success or a bounce, the subscriber's bounce counter (3 bounces in a row
// and an active subscriber becomes bounced; a success resets it).
func (w *ledgerWriter) record(ctx context.Context, outs []outcome) error {
	if len(outs) == 0 {
		return nil
	}
	if w.remote && !touchesBounces(outs) {
		return w.recordGroup(ctx, outs)
	}
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("record deliveries: begin: %w", err)
	}
	for _, o := range outs {
		if err := w.recordOne(ctx, o); err != nil {
			w.abandon()
			return fmt.Errorf("record delivery of digest %d to subscriber %d: %w", o.DigestID, o.SubscriberID, err)
		}
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		w.abandon()
		return fmt.Errorf("record deliveries: commit: %w", err)
	}
	return nil
}

// abandon rolls back the open transaction. If even that fails, the
// connection is closed rather than handed back to the pool mid-transaction;
// the writer's statements fail from then on.
func (w *ledgerWriter) abandon() {
	if _, err := w.rollback.ExecContext(context.Background()); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// touchesBounces reports whether recording outs may change a subscriber's
// bounce counter.
func touchesBounces(outs []outcome) bool {
	for _, o := range outs {
		if o.Bounce || o.Status == deliverySent && o.HadBounces {
			return true
		}
	}
	return false
}

// recordGroup writes outs, none of which touches a bounce counter, in one
// statement: the same update as recordOne's, joined to a list of values.
func (w *ledgerWriter) recordGroup(ctx context.Context, outs []outcome) error {
	q, ok := w.groupSQL[len(outs)]
	if !ok {
		var b strings.Builder
		b.WriteString(`UPDATE deliveries SET status = v.status, attempts = deliveries.attempts + v.attempted, last_error = v.last_error, sent = v.sent
		FROM (VALUES `)
		for i := range outs {
			if i > 0 {
				b.WriteString(", ")
			}
			n := 6 * i
			fmt.Fprintf(&b, "(CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS INTEGER), CAST($%d AS TEXT), CAST($%d AS TEXT))",
				n+1, n+2, n+3, n+4, n+5, n+6)
		}
		b.WriteString(`) AS v (digest_id, subscriber_id, status, attempted, last_error, sent)
		WHERE deliveries.digest_id = v.digest_id AND deliveries.subscriber_id = v.subscriber_id AND deliveries.status = 'pending'`)
		q = b.String()
		w.groupSQL[len(outs)] = q
	}
	args := make([]any, 0, 6*len(outs))
	for _, o := range outs {
		attempted, sent := 0, ""
		if o.Attempted {
			attempted = 1
		}
		if o.Status == deliverySent {
			sent = ledgerTime(o.At)
		}
		args = append(args, o.DigestID, o.SubscriberID, o.Status, attempted, truncateText(o.Error, 500), sent)
	}
	if _, err := w.conn.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("record %d deliveries of digest %d: %w", len(outs), outs[0].DigestID, err)
	}
	return nil
}

func (w *ledgerWriter) recordOne(ctx context.Context, o outcome) error {
	attempted := 0
	if o.Attempted {
		attempted = 1
	}
	sent := ""
	if o.Status == deliverySent {
		sent = ledgerTime(o.At)
	}
	res, err := w.delivery.ExecContext(ctx, o.Status, attempted, truncateText(o.Error, 500), sent, o.DigestID, o.SubscriberID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	switch {
	case o.Status == deliverySent && o.HadBounces:
		_, err = w.resetBounce.ExecContext(ctx, o.SubscriberID)
	case o.Bounce:
		_, err = w.addBounce.ExecContext(ctx, bounceLimit, o.SubscriberID)
	}
	return err
}

// ledgerRecord records outcomes once, without keeping statements.
func ledgerRecord(ctx context.Context, db *sql.DB, outs []outcome) error {
	if len(outs) == 0 {
		return nil
	}
	w, err := newLedgerWriter(ctx, db)
	if err != nil {
		return err
	}
	defer w.close()
	return w.record(ctx, outs)
}

// ledgerFinish marks the digest finished if nothing in it is pending and
// returns how many deliveries are still pending.
func ledgerFinish(ctx context.Context, db *sql.DB, digestID int64, now time.Time) (int, error) {
	var pending int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE digest_id = $1 AND status = 'pending'`, digestID).Scan(&pending); err != nil {
		return 0, fmt.Errorf("finish digest %d: %w", digestID, err)
	}
	if pending > 0 {
		return pending, nil
	}
	if _, err := db.ExecContext(ctx, `UPDATE digests SET finished = $1 WHERE id = $2 AND finished = ''`, ledgerTime(now), digestID); err != nil {
		return 0, fmt.Errorf("finish digest %d: %w", digestID, err)
	}
	return 0, nil
}

// DigestStatus is what the ledger says of one digest.
type DigestStatus struct {
	ID       int64
	Start    time.Time // items first seen after Start ...
	End      time.Time // ... up to End
	Items    int
	Sent     int
	Failed   int
	Pending  int
	Created  time.Time
	Finished time.Time // zero while deliveries are pending
}

// Recipients is the number of deliveries in the digest.
func (s DigestStatus) Recipients() int { return s.Sent + s.Failed + s.Pending }

// Status returns the latest limit digests, newest first, with their
// delivery counts.
func (m *Mailer) Status(ctx context.Context, limit int) ([]DigestStatus, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT g.id, g.period_start, g.period_end, g.items, g.created, g.finished,
			COALESCE(SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN d.status = 'pending' THEN 1 ELSE 0 END), 0)
		FROM digests g LEFT JOIN deliveries d ON d.digest_id = g.id
		GROUP BY g.id ORDER BY g.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read digest status: %w", err)
	}
	defer rows.Close()
	var out []DigestStatus
	for rows.Next() {
		var s DigestStatus
		var start, end, items, created, finished string
		if err := rows.Scan(&s.ID, &start, &end, &items, &created, &finished, &s.Sent, &s.Failed, &s.Pending); err != nil {
			return nil, fmt.Errorf("read digest status: %w", err)
		}
		var keys []string
		_ = json.Unmarshal([]byte(items), &keys)
		s.Items = len(keys)
		s.Start, s.End = parseStoredTime(start), parseStoredTime(end)
		s.Created, s.Finished = parseStoredTime(created), parseStoredTime(finished)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read digest status: %w", err)
	}
	return out, nil
}

// recipientColumns are the subscriber columns the digest reads.
const recipientColumns = `id, uid, email, name, status, boards, match_pattern, created, confirmed, bounces`

func scanRecipient(sc interface{ Scan(...any) error }) (Subscriber, error) {
	var s Subscriber
	var status, boards, created, confirmed string
	if err := sc.Scan(&s.ID, &s.UID, &s.Email, &s.Name, &status, &boards, &s.Match, &created, &confirmed, &s.Bounces); err != nil {
		return s, err
	}
	s.Status = Status(status)
	s.Boards = ledgerBoards(boards)
	s.Created, s.Confirmed = parseStoredTime(created), parseStoredTime(confirmed)
	return s, nil
}

// errNoRecipient is returned by recipientByEmail for an unknown address.
var errNoRecipient = errors.New("no such subscriber")

// recipientByEmail finds a subscriber by address, case-insensitively.
func recipientByEmail(ctx context.Context, db *sql.DB, email string) (Subscriber, error) {
	s, err := scanRecipient(db.QueryRowContext(ctx, `SELECT `+recipientColumns+` FROM subscribers
		WHERE email_key = $1 OR lower(email) = $2 LIMIT 1`, strings.ToLower(strings.TrimSpace(email)), strings.ToLower(strings.TrimSpace(email))))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("subscriber %s: %w", email, errNoRecipient)
	}
	if err != nil {
		return s, fmt.Errorf("subscriber %s: %w", email, err)
	}
	return s, nil
}

// ledgerBoards reads the comma-separated boards column; "" means all.
func ledgerBoards(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// clearDeadHolder removes the named lock if its holder ran on this host
// and its process no longer exists, as after a SIGKILL, and reports whether
// it did. A holder on another host, or one whose liveness cannot be told,
// is left to expire.
func clearDeadHolder(ctx context.Context, db *sql.DB, name string) bool {
	var owner string
	if err := db.QueryRowContext(ctx, `SELECT owner FROM locks WHERE name = $1`, name).Scan(&owner); err != nil {
		return false
	}
	if !holderGone(owner) {
		return false
	}
	res, err := db.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
	if err != nil {
		return false
	}
	n, _ := res.RowsAffected()
	return n == 1
}

// holderGone reports whether owner, a lock owner or claimant named by
// lockOwner, ran on this host in a process that no longer exists. Another
// host's, or one whose liveness cannot be told, is not gone.
func holderGone(owner string) bool {
	parts := strings.Split(owner, ":")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	return err == nil && parts[0] == host && pid != os.Getpid() && processGone(pid)
}

// processGone reports whether no process with pid exists. Where that
// cannot be told, it says false.
func processGone(pid int) bool {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH)
}
