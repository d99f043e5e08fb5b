package mailer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Errors a caller decides on. They are wrapped with the address concerned.
var (
	// ErrNoSubscriber means no subscriber has that address or UID.
	ErrNoSubscriber = errors.New("no such subscriber")
	// ErrExists means the address is already pending or active.
	ErrExists = errors.New("already subscribed")
	// ErrSuppressed means the address unsubscribed or bounced: it is kept so
	// that it is not mailed again, and adding it back needs Force.
	ErrSuppressed = errors.New("address is suppressed (unsubscribed or bounced)")
	// ErrBadBoard means a board preference names no board.
	ErrBadBoard = errors.New("unknown board")
	// ErrBadMatch means a keyword filter is not a pattern the feeds'
	// matcher takes.
	ErrBadMatch = errors.New("bad match")
)

// Subscribers is the subscriber store: the subscribers table and the rules
// around it (normalised unique addresses, suppression records, board
// preferences). Times are taken from Now, which tests may replace.
type Subscribers struct {
	db  *sql.DB
	Now func() time.Time
	// Boards is the set of boards a subscriber can choose; nil means the
	// built-in boards. Set it before first use.
	Boards *feeds.Registry
}

// NewSubscribers returns the store over an opened, migrated database.
func NewSubscribers(db *sql.DB) *Subscribers {
	return &Subscribers{db: db, Now: time.Now}
}

// NewSubscriber is what Add needs to know of a new subscriber.
type NewSubscriber struct {
	Address string   // as typed; may carry a display name ("Jane <j@x.org>")
	Name    string   // overrides the display name when not empty
	Boards  []string // board slugs; empty means all boards
	Match   string   // keyword filter (see Subscriber.Match); empty means none
	Status  Status   // StatusPending (default) or StatusActive
	Origin  Origin   // OriginCLI by default
	// Force re-adds an unsubscribed or bounced address. Use it only when the
	// person asked for it again: the record exists so that they are not
	// mailed against their wish.
	Force bool
}

// Add adds a subscriber. An address that is already pending or active gives
// ErrExists; one that unsubscribed or bounced gives ErrSuppressed unless
// Force is set, in which case the same record (same UID) is reused with the
// new name, boards and status and its unsubscribe time and bounce count
// cleared. Both errors come with the existing subscriber as the first result.
func (s *Subscribers) Add(ctx context.Context, n NewSubscriber) (Subscriber, error) {
	a, err := ParseAddress(n.Address)
	if err != nil {
		return Subscriber{}, err
	}
	boards, err := NormaliseBoardsFor(s.Boards, n.Boards)
	if err != nil {
		return Subscriber{}, err
	}
	match, err := CheckMatch(n.Match)
	if err != nil {
		return Subscriber{}, err
	}
	if n.Status == "" {
		n.Status = StatusPending
	}
	if n.Status != StatusPending && n.Status != StatusActive {
		return Subscriber{}, fmt.Errorf("add %s: status must be pending or active, not %q", a.Email, n.Status)
	}
	if n.Origin == "" {
		n.Origin = OriginCLI
	}
	if !validSubscriberOrigin(n.Origin) {
		return Subscriber{}, fmt.Errorf("add %s: unknown origin %q", a.Email, n.Origin)
	}
	name := n.Name
	if strings.TrimSpace(name) == "" {
		name = a.Name
	}
	if name, err = cleanName(name); err != nil {
		return Subscriber{}, fmt.Errorf("add %s: %w", a.Email, err)
	}
	now := s.Now()
	sub := Subscriber{
		UID:     NewUID(),
		Email:   a.Email,
		Name:    name,
		Status:  n.Status,
		Boards:  boards,
		Match:   match,
		Origin:  n.Origin,
		Created: now,
	}
	if sub.Status == StatusActive {
		sub.Confirmed = now
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Subscriber{}, fmt.Errorf("add %s: %w", a.Email, err)
	}
	defer tx.Rollback()
	old, err := getSubscriber(ctx, tx, `email_key = $1`, a.Key)
	switch {
	case errors.Is(err, ErrNoSubscriber):
		err := tx.QueryRowContext(ctx, insertSubscriberSQL+db.EngineOf(s.db).ValuesRows(1, subscriberFields, "")+` RETURNING id`, subscriberArgs(sub, a.Key)...).Scan(&sub.ID)
		if err != nil {
			return Subscriber{}, fmt.Errorf("add %s: %w", a.Email, err)
		}
	case err != nil:
		return Subscriber{}, fmt.Errorf("add %s: %w", a.Email, err)
	case old.Status == StatusPending || old.Status == StatusActive:
		return old, fmt.Errorf("add %s: %w (%s)", a.Email, ErrExists, old.Status)
	case !n.Force:
		return old, fmt.Errorf("add %s: %w: %s", a.Email, ErrSuppressed, describeSuppression(old))
	default:
		sub.ID, sub.UID = old.ID, old.UID
		if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET email = $1, name = $2, status = $3, boards = $4, match_pattern = $5, origin = $6,
			created = $7, confirmed = $8, unsubscribed = '', bounces = 0 WHERE id = $9`,
			sub.Email, sub.Name, sub.Status, joinBoards(sub.Boards), sub.Match, sub.Origin,
			formatSubTime(sub.Created), formatSubTime(sub.Confirmed), sub.ID); err != nil {
			return Subscriber{}, fmt.Errorf("add %s again: %w", a.Email, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Subscriber{}, fmt.Errorf("add %s: %w", a.Email, err)
	}
	return s.normalised(sub), nil
}

// normalised returns sub as it reads back from the database, so that Add
// returns the same value a later Get does.
func (s *Subscribers) normalised(sub Subscriber) Subscriber {
	sub.Created = parseSubTime(formatSubTime(sub.Created))
	sub.Confirmed = parseSubTime(formatSubTime(sub.Confirmed))
	sub.Unsubscribed = parseSubTime(formatSubTime(sub.Unsubscribed))
	return sub
}

// Get returns the subscriber with address email (any case, any display
// name), or an error wrapping ErrNoSubscriber.
func (s *Subscribers) Get(ctx context.Context, email string) (Subscriber, error) {
	a, err := ParseAddress(email)
	if err != nil {
		return Subscriber{}, err
	}
	sub, err := getSubscriber(ctx, s.db, `email_key = $1`, a.Key)
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %s: %w", a.Email, err)
	}
	return sub, nil
}

// GetByUID returns the subscriber whose public id (the one in tokens) is
// uid, or an error wrapping ErrNoSubscriber.
func (s *Subscribers) GetByUID(ctx context.Context, uid string) (Subscriber, error) {
	sub, err := getSubscriber(ctx, s.db, `uid = $1`, uid)
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %s: %w", uid, err)
	}
	return sub, nil
}

// SetBoards replaces the board preferences of the subscriber with uid;
// empty means all boards. Board slugs are validated and put in the boards'
// display order.
func (s *Subscribers) SetBoards(ctx context.Context, uid string, boards []string) (Subscriber, error) {
	bs, err := NormaliseBoardsFor(s.Boards, boards)
	if err != nil {
		return Subscriber{}, err
	}
	return s.update(ctx, uid, "set boards", func(sub *Subscriber) (bool, error) {
		sub.Boards = bs
		return true, nil
	})
}

// SetMatch replaces the keyword filter of the subscriber with uid; empty
// clears it. A pattern the feeds' matcher refuses gives an error wrapping
// ErrBadMatch.
func (s *Subscribers) SetMatch(ctx context.Context, uid, match string) (Subscriber, error) {
	m, err := CheckMatch(match)
	if err != nil {
		return Subscriber{}, err
	}
	return s.update(ctx, uid, "set match", func(sub *Subscriber) (bool, error) {
		changed := sub.Match != m
		sub.Match = m
		return changed, nil
	})
}

// SetPreferences replaces the boards and the keyword filter of the
// subscriber with uid in one change (the preferences page's form).
func (s *Subscribers) SetPreferences(ctx context.Context, uid string, boards []string, match string) (Subscriber, error) {
	bs, err := NormaliseBoardsFor(s.Boards, boards)
	if err != nil {
		return Subscriber{}, err
	}
	m, err := CheckMatch(match)
	if err != nil {
		return Subscriber{}, err
	}
	return s.update(ctx, uid, "set preferences", func(sub *Subscriber) (bool, error) {
		sub.Boards, sub.Match = bs, m
		return true, nil
	})
}

// CheckMatch validates a keyword filter as typed (surrounding white space
// is dropped) and returns it as stored. A pattern the feeds' matcher
// refuses (not a regular expression, or longer than
// feeds.MaxPatternBytes) gives a one-line error wrapping ErrBadMatch.
func CheckMatch(match string) (string, error) {
	m := strings.TrimSpace(match)
	if _, err := feeds.NewKeywordFilter(m); err != nil {
		var fe *feeds.FilterError
		if errors.As(err, &fe) {
			return "", fmt.Errorf("%w %q: %s", ErrBadMatch, truncateMatch(m), fe.Reason)
		}
		return "", fmt.Errorf("%w: %v", ErrBadMatch, err)
	}
	return m, nil
}

// truncateMatch shortens a long pattern for an error message.
func truncateMatch(m string) string {
	if len(m) <= 64 {
		return m
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "…"
}

// Confirm moves the subscriber with uid from pending to active and records
// when. Confirming an active subscriber changes nothing; an unsubscribed or
// bounced one gives ErrSuppressed, because an old confirmation link must not
// undo an unsubscribe.
func (s *Subscribers) Confirm(ctx context.Context, uid string) (Subscriber, error) {
	return s.update(ctx, uid, "confirm", func(sub *Subscriber) (bool, error) {
		switch sub.Status {
		case StatusActive:
			return false, nil
		case StatusPending:
			sub.Status = StatusActive
			sub.Confirmed = s.Now()
			return true, nil
		}
		return false, fmt.Errorf("%w: %s", ErrSuppressed, sub.Status)
	})
}

// Unsubscribe marks the subscriber with uid unsubscribed and records when;
// the row stays as a suppression record. Unsubscribing again, or
// unsubscribing a bounced address, changes nothing.
func (s *Subscribers) Unsubscribe(ctx context.Context, uid string) (Subscriber, error) {
	return s.update(ctx, uid, "unsubscribe", func(sub *Subscriber) (bool, error) {
		if sub.Status == StatusUnsubscribed || sub.Status == StatusBounced {
			return false, nil
		}
		sub.Status = StatusUnsubscribed
		sub.Unsubscribed = s.Now()
		return true, nil
	})
}

// Remove unsubscribes the subscriber with address email (see Unsubscribe):
// the address is kept as a suppression record. Purge erases it.
func (s *Subscribers) Remove(ctx context.Context, email string) (Subscriber, error) {
	sub, err := s.Get(ctx, email)
	if err != nil {
		return Subscriber{}, err
	}
	return s.Unsubscribe(ctx, sub.UID)
}

// Purge erases the personal data of the subscriber with address email: the
// subscriber row and its delivery rows (whose last error may quote the
// address) are deleted in one transaction, so the address is stored nowhere
// afterwards: the database zeroes deleted content (secure_delete), and the
// write-ahead log, which still holds the pages as they were, is
// checkpointed and truncated. Deleting rather than anonymising means a purged address is no
// longer suppressed: adding it again later needs no Force. Digests keep
// their own rows; their delivery counts no longer include this subscriber.
// An error after the rows are gone wraps ErrNotErased.
func (s *Subscribers) Purge(ctx context.Context, email string) error {
	a, err := ParseAddress(email)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("purge %s: %w", a.Email, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM subscribers WHERE email_key = $1`, a.Key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("purge %s: %w", a.Email, ErrNoSubscriber)
	}
	if err != nil {
		return fmt.Errorf("purge %s: %w", a.Email, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE subscriber_id = $1`, id); err != nil {
		return fmt.Errorf("purge %s: deliveries: %w", a.Email, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscribers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("purge %s: %w", a.Email, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("purge %s: %w", a.Email, err)
	}
	if err := db.Checkpoint(ctx, s.db); err != nil {
		return fmt.Errorf("purge %s: %w: %w", a.Email, ErrNotErased, err)
	}
	return nil
}

// ErrNotErased reports a purge whose rows are deleted but whose old pages
// may still sit in the write-ahead log until its next checkpoint.
var ErrNotErased = errors.New("deleted, but not yet erased from the write-ahead log")

// ListFilter narrows List. Zero fields match everything.
type ListFilter struct {
	Status Status // only this status
	Board  string // only subscribers who receive this board (all-boards subscribers included)
}

// List returns the subscribers matching f, ordered by address.
func (s *Subscribers) List(ctx context.Context, f ListFilter) ([]Subscriber, error) {
	var where []string
	var args []any
	if f.Status != "" {
		if !validSubscriberStatus(f.Status) {
			return nil, fmt.Errorf("list subscribers: unknown status %q (use pending, active, unsubscribed or bounced)", f.Status)
		}
		where = append(where, `status = $`+strconv.Itoa(len(args)+1))
		args = append(args, string(f.Status))
	}
	if f.Board != "" {
		if !s.Boards.Has(f.Board) {
			return nil, fmt.Errorf("list subscribers: %w %q (use %s)", ErrBadBoard, f.Board, strings.Join(s.Boards.Slugs(), ", "))
		}
		where = append(where, `(boards = '' OR ',' || boards || ',' LIKE '%,' || $`+strconv.Itoa(len(args)+1)+` || ',%')`)
		args = append(args, f.Board)
	}
	q := `SELECT ` + subscriberColumns + ` FROM subscribers`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY email_key`
	subs, err := querySubscribers(ctx, s.db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	return subs, nil
}

// Active returns the active subscribers, in id order: those a digest goes to.
func (s *Subscribers) Active(ctx context.Context) ([]Subscriber, error) {
	subs, err := querySubscribers(ctx, s.db, `SELECT `+subscriberColumns+` FROM subscribers WHERE status = 'active' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("active subscribers: %w", err)
	}
	return subs, nil
}

// update applies change to the subscriber with uid inside one transaction
// and writes it back if change reports a difference.
func (s *Subscribers) update(ctx context.Context, uid, what string, change func(*Subscriber) (bool, error)) (Subscriber, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Subscriber{}, fmt.Errorf("%s %s: %w", what, uid, err)
	}
	defer tx.Rollback()
	sub, err := getSubscriber(ctx, tx, `uid = $1`, uid)
	if err != nil {
		return Subscriber{}, fmt.Errorf("%s %s: %w", what, uid, err)
	}
	changed, err := change(&sub)
	if err != nil {
		return sub, fmt.Errorf("%s %s: %w", what, sub.Email, err)
	}
	if !changed {
		return sub, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET status = $1, boards = $2, match_pattern = $3, confirmed = $4, unsubscribed = $5 WHERE id = $6`,
		sub.Status, joinBoards(sub.Boards), sub.Match, formatSubTime(sub.Confirmed), formatSubTime(sub.Unsubscribed), sub.ID); err != nil {
		return Subscriber{}, fmt.Errorf("%s %s: %w", what, sub.Email, err)
	}
	if err := tx.Commit(); err != nil {
		return Subscriber{}, fmt.Errorf("%s %s: %w", what, sub.Email, err)
	}
	return s.normalised(sub), nil
}

const subscriberColumns = `id, uid, email, name, status, boards, match_pattern, origin, created, confirmed, unsubscribed, bounces`

const insertSubscriberSQL = `INSERT INTO subscribers (uid, email, email_key, name, status, boards, match_pattern, origin, created, confirmed, unsubscribed) VALUES `

// subscriberFields is the number of values in one row of
// insertSubscriberSQL (and of subscriberArgs).
const subscriberFields = 11

// subscriberArgs returns the arguments of one row of insertSubscriberSQL.
func subscriberArgs(sub Subscriber, key string) []any {
	return []any{sub.UID, sub.Email, key, sub.Name, string(sub.Status), joinBoards(sub.Boards), sub.Match, string(sub.Origin),
		formatSubTime(sub.Created), formatSubTime(sub.Confirmed), formatSubTime(sub.Unsubscribed)}
}

// subQuerier is what *sql.DB and *sql.Tx share.
type subQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getSubscriber(ctx context.Context, q subQuerier, where string, arg any) (Subscriber, error) {
	subs, err := querySubscribers(ctx, q, `SELECT `+subscriberColumns+` FROM subscribers WHERE `+where, arg)
	if err != nil {
		return Subscriber{}, err
	}
	if len(subs) == 0 {
		return Subscriber{}, ErrNoSubscriber
	}
	return subs[0], nil
}

func querySubscribers(ctx context.Context, q subQuerier, query string, args ...any) ([]Subscriber, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var subs []Subscriber
	for rows.Next() {
		sub, err := scanSubscriber(rows)
		if err != nil {
			return nil, err
		}
		subs = append(subs, sub)
	}
	return subs, rows.Err()
}

// scanSubscriber reads one row of subscriberColumns.
func scanSubscriber(rows *sql.Rows) (Subscriber, error) {
	var sub Subscriber
	var status, boards, origin, created, confirmed, unsubscribed string
	if err := rows.Scan(&sub.ID, &sub.UID, &sub.Email, &sub.Name, &status, &boards, &sub.Match, &origin,
		&created, &confirmed, &unsubscribed, &sub.Bounces); err != nil {
		return sub, err
	}
	sub.Status, sub.Origin = Status(status), Origin(origin)
	sub.Boards = splitBoards(boards)
	sub.Created, sub.Confirmed, sub.Unsubscribed = parseSubTime(created), parseSubTime(confirmed), parseSubTime(unsubscribed)
	return sub, nil
}

// ParseBoards is ParseBoardsFor over the built-in boards.
func ParseBoards(s string) ([]string, error) { return ParseBoardsFor(nil, s) }

// ParseBoardsFor parses a comma-separated list of board slugs of reg (nil:
// the built-in boards) as typed on the command line or in a CSV cell: ""
// and "all" mean all boards (nil).
func ParseBoardsFor(reg *feeds.Registry, s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, feeds.AllSlug) {
		return nil, nil
	}
	return NormaliseBoardsFor(reg, strings.Split(s, ","))
}

// NormaliseBoards is NormaliseBoardsFor over the built-in boards.
func NormaliseBoards(boards []string) ([]string, error) { return NormaliseBoardsFor(nil, boards) }

// NormaliseBoardsFor validates board slugs against reg (nil: the built-in
// boards) and returns them trimmed, lower-cased, without repeats and in the
// boards' display order. Empty input, or a list containing "all", means all
// boards (nil). An unknown slug gives an error wrapping ErrBadBoard that
// lists the valid ones.
func NormaliseBoardsFor(reg *feeds.Registry, boards []string) ([]string, error) {
	want := map[string]bool{}
	for _, b := range boards {
		b = strings.ToLower(strings.TrimSpace(b))
		switch {
		case b == "":
		case b == feeds.AllSlug:
			return nil, nil
		case reg.Has(b):
			want[b] = true
		default:
			return nil, fmt.Errorf("%w %q (use %s or all)", ErrBadBoard, b, strings.Join(reg.Slugs(), ", "))
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	var out []string
	for _, slug := range reg.Slugs() {
		if want[slug] {
			out = append(out, slug)
		}
	}
	return out, nil
}

func joinBoards(boards []string) string { return strings.Join(boards, ",") }

func splitBoards(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func validSubscriberStatus(s Status) bool {
	switch s {
	case StatusPending, StatusActive, StatusUnsubscribed, StatusBounced:
		return true
	}
	return false
}

func validSubscriberOrigin(o Origin) bool {
	switch o {
	case OriginCLI, OriginImport, OriginWeb:
		return true
	}
	return false
}

// subTimeLayout has a fixed width so stored times sort as strings; it is the
// layout feeds uses for items, in the same zone, so the two compare.
const subTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// subscriberZone is the zone stored times are written in: Seoul, like the
// item times they are compared with.
var subscriberZone = feeds.KST

func formatSubTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(subscriberZone).Format(subTimeLayout)
}

func parseSubTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(subTimeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t.In(subscriberZone)
}

// describeSuppression says why and since when sub is not mailed.
func describeSuppression(sub Subscriber) string {
	if sub.Unsubscribed.IsZero() {
		return string(sub.Status)
	}
	return string(sub.Status) + " since " + sub.Unsubscribed.Format(time.DateOnly)
}

// maxNameLen bounds a display name, in characters.
const maxNameLen = 200

// cleanName trims a display name and rejects control characters, which have
// no place in a name and would be a header-injection risk downstream.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", errors.New("name is not UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", errors.New("name contains a line break or control character")
		}
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		return "", fmt.Errorf("name longer than %d characters", maxNameLen)
	}
	return name, nil
}
