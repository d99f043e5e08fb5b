package websub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Subscription is one verified subscription: a callback that gets a feed
// (its topic) until its lease expires.
type Subscription struct {
	ID       int64
	Topic    string       // the feed's canonical URL
	Board    string       // a board slug or feeds.AllSlug
	Format   feeds.Format // the feed's format
	Limit    int          // the feed's ?limit=, 0 for the default
	Callback string
	Host     string // the callback's host name, lower case
	Secret   string // hub.secret; empty signs nothing
	Lease    time.Duration
	Created  time.Time
	Verified time.Time // the lease runs from here
	Expires  time.Time

	LastDelivery time.Time // the last content distribution attempt; zero if none yet
	LastStatus   int       // its HTTP status, 0 when no response came
	LastError    string    // why it failed; empty when it did not
	Deliveries   int64     // successful content distributions
	Failures     int64     // failed attempts
}

// timeLayout writes times as UTC whole seconds, which sort as text.
const timeLayout = "2006-01-02T15:04:05Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

const subscriptionColumns = `id, topic, callback, callback_host, board, format, feed_limit, secret, lease_seconds,
	created, verified, expires, last_delivery, last_status, last_error, deliveries, failures`

func scanSubscriptions(rows *sql.Rows) ([]Subscription, error) {
	defer rows.Close()
	var subs []Subscription
	for rows.Next() {
		var s Subscription
		var format, created, verified, expires, last string
		var lease int64
		if err := rows.Scan(&s.ID, &s.Topic, &s.Callback, &s.Host, &s.Board, &format, &s.Limit, &s.Secret, &lease,
			&created, &verified, &expires, &last, &s.LastStatus, &s.LastError, &s.Deliveries, &s.Failures); err != nil {
			return nil, err
		}
		s.Format = feeds.Format(format)
		s.Lease = time.Duration(lease) * time.Second
		s.Created, s.Verified, s.Expires, s.LastDelivery = parseTime(created), parseTime(verified), parseTime(expires), parseTime(last)
		subs = append(subs, s)
	}
	return subs, rows.Err()
}

// List returns every stored subscription, expired ones included (the hub
// deletes those at its next sweep), by topic and callback.
func List(ctx context.Context, d *sql.DB) ([]Subscription, error) {
	rows, err := d.QueryContext(ctx, `SELECT `+subscriptionColumns+` FROM websub_subscriptions ORDER BY topic, callback`)
	if err != nil {
		return nil, fmt.Errorf("list websub subscriptions: %w", err)
	}
	subs, err := scanSubscriptions(rows)
	if err != nil {
		return nil, fmt.Errorf("list websub subscriptions: %w", err)
	}
	return subs, nil
}

// errFull is returned by saveSubscription when a cap would be passed.
var errFull = errors.New("subscription cap reached")

// store is the hub's SQL over the tables of migration 0007.
type store struct {
	db *sql.DB
}

// active returns the subscriptions to the feeds of boards (slugs, AllSlug
// among them if the all feeds are affected) whose lease has not expired.
func (s store) active(ctx context.Context, boards []string, now time.Time) ([]Subscription, error) {
	if len(boards) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(boards)+1)
	args = append(args, formatTime(now))
	in := make([]string, len(boards))
	for i, b := range boards {
		in[i] = "$" + strconv.Itoa(i+2)
		args = append(args, b)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+subscriptionColumns+` FROM websub_subscriptions
		WHERE expires > $1 AND board IN (`+strings.Join(in, ", ")+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read websub subscriptions: %w", err)
	}
	subs, err := scanSubscriptions(rows)
	if err != nil {
		return nil, fmt.Errorf("read websub subscriptions: %w", err)
	}
	return subs, nil
}

// room says why a new subscription of callback host would pass a cap, or
// "" when it fits (a subscription that exists, being renewed, always fits).
func (s store) room(ctx context.Context, topic, callback, host string, now time.Time, maxTotal, maxPerHost int) (string, error) {
	var exists, total, perHost int
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM websub_subscriptions WHERE topic = $1 AND callback = $2 AND expires > $3),
		(SELECT count(*) FROM websub_subscriptions WHERE expires > $4),
		(SELECT count(*) FROM websub_subscriptions WHERE callback_host = $5 AND expires > $6)`,
		topic, callback, formatTime(now), formatTime(now), host, formatTime(now)).Scan(&exists, &total, &perHost)
	if err != nil {
		return "", fmt.Errorf("count websub subscriptions: %w", err)
	}
	switch {
	case exists > 0:
		return "", nil
	case total >= maxTotal:
		return fmt.Sprintf("this hub holds its maximum of %d subscriptions", maxTotal), nil
	case perHost >= maxPerHost:
		return fmt.Sprintf("callback host %s holds its maximum of %d subscriptions", host, maxPerHost), nil
	}
	return "", nil
}

// save stores a verified subscription, replacing the one of the same
// topic and callback (a renewal: new lease, new secret, counters kept).
// A new one must fit under the caps, checked in the same transaction.
func (s store) save(ctx context.Context, sub Subscription, now time.Time, maxTotal, maxPerHost int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save websub subscription: %w", err)
	}
	defer tx.Rollback()
	// Savers take turns, so that two at once cannot both fit under a cap.
	if err := db.EngineOf(s.db).LockTx(ctx, tx, "websub_subscriptions"); err != nil {
		return fmt.Errorf("save websub subscription: %w", err)
	}
	var exists, total, perHost int
	if err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM websub_subscriptions WHERE topic = $1 AND callback = $2),
		(SELECT count(*) FROM websub_subscriptions WHERE expires > $3),
		(SELECT count(*) FROM websub_subscriptions WHERE callback_host = $4 AND expires > $5)`,
		sub.Topic, sub.Callback, formatTime(now), sub.Host, formatTime(now)).Scan(&exists, &total, &perHost); err != nil {
		return fmt.Errorf("save websub subscription: %w", err)
	}
	if exists == 0 && total >= maxTotal {
		return fmt.Errorf("%w: this hub holds its maximum of %d subscriptions", errFull, maxTotal)
	}
	if exists == 0 && perHost >= maxPerHost {
		return fmt.Errorf("%w: callback host %s holds its maximum of %d subscriptions", errFull, sub.Host, maxPerHost)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO websub_subscriptions (topic, callback, callback_host, board, format,
		feed_limit, secret, lease_seconds, created, verified, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (topic, callback) DO UPDATE SET secret = excluded.secret, lease_seconds = excluded.lease_seconds,
		verified = excluded.verified, expires = excluded.expires`,
		sub.Topic, sub.Callback, sub.Host, sub.Board, string(sub.Format), sub.Limit, sub.Secret, int64(sub.Lease/time.Second),
		formatTime(now), formatTime(sub.Verified), formatTime(sub.Expires))
	if err != nil {
		return fmt.Errorf("save websub subscription: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save websub subscription: %w", err)
	}
	return nil
}

// remove deletes the subscription of topic and callback, if any.
func (s store) remove(ctx context.Context, topic, callback string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE topic = $1 AND callback = $2`, topic, callback); err != nil {
		return fmt.Errorf("remove websub subscription: %w", err)
	}
	return nil
}

// removeID deletes a subscription by id (its callback answered 410 Gone).
func (s store) removeID(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove websub subscription: %w", err)
	}
	return nil
}

// sweep deletes the subscriptions whose lease has expired.
func (s store) sweep(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE expires <= $1`, formatTime(now))
	if err != nil {
		return 0, fmt.Errorf("sweep websub subscriptions: %w", err)
	}
	return res.RowsAffected()
}

// count is the number of subscriptions whose lease has not expired.
func (s store) count(ctx context.Context, now time.Time) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM websub_subscriptions WHERE expires > $1`, formatTime(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count websub subscriptions: %w", err)
	}
	return n, nil
}

// outcome is the result of one content distribution attempt, to record.
type outcome struct {
	id     int64
	at     time.Time
	status int    // HTTP status, 0 if none
	err    string // empty on success
	ok     bool
}

// record writes a batch of outcomes in one transaction.
func (s store) record(ctx context.Context, batch []outcome) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record websub deliveries: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE websub_subscriptions SET last_delivery = $1, last_status = $2, last_error = $3,
		deliveries = deliveries + $4, failures = failures + $5 WHERE id = $6`)
	if err != nil {
		return fmt.Errorf("record websub deliveries: %w", err)
	}
	defer stmt.Close()
	for _, o := range batch {
		ok, failed := 0, 1
		if o.ok {
			ok, failed = 1, 0
		}
		if _, err := stmt.ExecContext(ctx, formatTime(o.at), o.status, o.err, ok, failed, o.id); err != nil {
			return fmt.Errorf("record websub deliveries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record websub deliveries: %w", err)
	}
	return nil
}

// published reads the board versions last published.
func (s store) published(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT board, version FROM websub_published`)
	if err != nil {
		return nil, fmt.Errorf("read websub published versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var b string
		var v int64
		if err := rows.Scan(&b, &v); err != nil {
			return nil, fmt.Errorf("read websub published versions: %w", err)
		}
		out[b] = v
	}
	return out, rows.Err()
}

// setPublished records the versions of boards as published.
func (s store) setPublished(ctx context.Context, versions map[string]int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write websub published versions: %w", err)
	}
	defer tx.Rollback()
	for b, v := range versions {
		if _, err := tx.ExecContext(ctx, `INSERT INTO websub_published (board, version) VALUES ($1, $2)
			ON CONFLICT (board) DO UPDATE SET version = excluded.version`, b, v); err != nil {
			return fmt.Errorf("write websub published versions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write websub published versions: %w", err)
	}
	return nil
}
