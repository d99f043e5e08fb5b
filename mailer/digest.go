package mailer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// firstPeriod is how far back the first digest reaches, and how much older
// than a digest's period a post may be published and still be included:
// a backfill of old posts never floods a digest.
const firstPeriod = 7 * 24 * time.Hour

// DigestPeriod is what a digest covers: the posts stored with a sequence
// number in (SeqStart, SeqEnd]. The numbers are given in commit order, so a
// post a finished crawl stored is in the next digest however soon after,
// and a crawl committing while a digest is made puts each post in exactly
// one digest. Start and End are when the previous digest and this one were
// made; the first digest (First) takes only posts first seen after Start,
// seven days before it.
type DigestPeriod struct {
	Start    time.Time
	End      time.Time
	SeqStart int64
	SeqEnd   int64
	First    bool
}

// PublishedSince is the earliest publication date a post in the period may
// carry: the day (in KST) seven days before the period began.
func (p DigestPeriod) PublishedSince() time.Time {
	d := p.Start.In(feeds.KST).Add(-firstPeriod)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, feeds.KST)
}

// String formats the period as "2024-05-01 – 2024-05-08" in KST.
func (p DigestPeriod) String() string { return kstDay(p.Start) + " – " + kstDay(p.End) }

// digestPlan is a digest about to be created: its period, its posts and
// how many deliveries it would make.
type digestPlan struct {
	Period     DigestPeriod
	Items      []feeds.Item
	Active     int  // active subscribers
	Recipients int  // active subscribers who would get a digest
	Matching   bool // some active subscriber has a keyword filter
}

// nothing says in one line why plan makes no digest.
func (plan digestPlan) nothing() string {
	switch {
	case len(plan.Items) == 0 && plan.Period.First:
		return "nothing new to send: no posts first seen in the last 7 days"
	case len(plan.Items) == 0:
		return "nothing new to send: no posts since the last digest at " + plan.Period.Start.In(feeds.KST).Format("2006-01-02 15:04 KST")
	case plan.Active == 0:
		return fmt.Sprintf("nothing sent: %s, but there is no active subscriber", newPosts(len(plan.Items)))
	case plan.Matching:
		return fmt.Sprintf("nothing sent: %s, but no active subscriber wants them (their boards and keyword filters)", newPosts(len(plan.Items)))
	default:
		return fmt.Sprintf("nothing sent: %s, but no active subscriber wants those boards", newPosts(len(plan.Items)))
	}
}

func newPosts(n int) string {
	if n == 1 {
		return "1 new post"
	}
	return fmt.Sprintf("%d new posts", n)
}

// nextPeriod is the period of the next digest: the posts stored since the
// last digest (or, for the first, first seen in the last seven days), up to
// the last one committed now.
func (m *Mailer) nextPeriod(ctx context.Context) (DigestPeriod, error) {
	end := m.Now().UTC().Truncate(time.Millisecond)
	p := DigestPeriod{Start: end.Add(-firstPeriod), End: end, First: true}
	last, ok, err := ledgerLastDigest(ctx, m.db)
	if err != nil {
		return p, err
	}
	if ok {
		p.Start, p.SeqStart, p.First = last.End, last.SeqEnd, false
	}
	if p.SeqEnd, err = m.items.LastSeq(ctx); err != nil {
		return p, fmt.Errorf("digest period: %w", err)
	}
	return p, nil
}

// periodItems returns the posts of p grouped by board in the fixed board
// order, newest first within a board.
func (m *Mailer) periodItems(ctx context.Context, p DigestPeriod) ([]feeds.Item, error) {
	if p.SeqEnd <= p.SeqStart {
		return nil, nil
	}
	var firstSeenAfter time.Time
	if p.First {
		firstSeenAfter = p.Start
	}
	items, err := m.items.ItemsInSeq(ctx, p.SeqStart, p.SeqEnd, firstSeenAfter, p.PublishedSince())
	if err != nil {
		return nil, fmt.Errorf("digest items: %w", err)
	}
	return orderItems(m.Boards, items), nil
}

// orderItems groups items by board in the order of boards (nil: the
// built-in boards; boards it does not have last), keeping the store's
// newest-first order inside a board.
func orderItems(boards *feeds.Registry, items []feeds.Item) []feeds.Item {
	out := make([]feeds.Item, 0, len(items))
	seen := map[string]bool{}
	for _, slug := range boards.Slugs() {
		seen[slug] = true
		for _, it := range items {
			if it.Board == slug {
				out = append(out, it)
			}
		}
	}
	for _, it := range items {
		if !seen[it.Board] {
			out = append(out, it)
		}
	}
	return out
}

// itemKey names an item in the digests table.
func itemKey(it feeds.Item) string { return it.Board + "/" + strconv.FormatInt(it.ID, 10) }

// joinedAt is when a subscriber started receiving digests.
func joinedAt(s Subscriber) time.Time {
	if !s.Confirmed.IsZero() {
		return s.Confirmed
	}
	return s.Created
}

// recipientSince is the cut-off for a subscriber who joined during the
// period: they get only posts first seen after they joined. Zero for
// everyone else.
func recipientSince(s Subscriber, p DigestPeriod) time.Time {
	if j := joinedAt(s); j.After(p.Start) {
		return j
	}
	return time.Time{}
}

// selectItems returns the items on boards (all if empty) first seen after
// since (any if zero) whose title or summary match keeps (all if empty):
// the feeds' matcher, as ?filter=match would, case-sensitive unless the
// pattern says (?i). A stored match the matcher refuses (input refuses
// them, so only one written into the database by hand) keeps nothing: the
// subscriber asked for a filter, not for every post.
func selectItems(items []feeds.Item, boards []string, since time.Time, match string) []feeds.Item {
	f, err := feeds.NewKeywordFilter(match)
	if err != nil {
		return nil
	}
	who := Subscriber{Boards: boards}
	var out []feeds.Item
	for _, it := range items {
		if who.WantsBoard(it.Board) && (since.IsZero() || it.FirstSeen.After(since)) && f.Match(it, time.Time{}) {
			out = append(out, it)
		}
	}
	return out
}

// selectionKey names the selection selectItems makes for boards, since and
// match. The pattern comes last: nothing before it holds a '|'.
func selectionKey(boards []string, since time.Time, match string) string {
	return strings.Join(boards, ",") + "|" + ledgerTime(since) + "|" + match
}

// recipientPage is how many active subscribers digest creation reads,
// and how many deliveries it writes, at a time: a million subscribers are
// never all in memory.
var recipientPage = 500 // a variable so tests can cross many pages

// recipientPlanner decides, subscriber by subscriber, who gets a digest of
// plan's posts, counting them in plan.
type recipientPlanner struct {
	plan *digestPlan
	// Subscribers share a handful of board sets and filters: each
	// selection is decided once.
	nonEmpty map[string]bool
}

func newRecipientPlanner(plan *digestPlan) *recipientPlanner {
	return &recipientPlanner{plan: plan, nonEmpty: map[string]bool{}}
}

// wants reports whether active subscriber s gets a digest, and from when
// (zero: the whole period).
func (rp *recipientPlanner) wants(s Subscriber) (since time.Time, ok bool) {
	plan := rp.plan
	plan.Active++
	plan.Matching = plan.Matching || s.Match != ""
	since = recipientSince(s, plan.Period)
	key := selectionKey(s.Boards, since, s.Match)
	ok, seen := rp.nonEmpty[key]
	if !seen {
		ok = len(selectItems(plan.Items, s.Boards, since, s.Match)) > 0
		rp.nonEmpty[key] = ok
	}
	if ok {
		plan.Recipients++ // nobody gets an empty digest
	}
	return since, ok
}

// eachActivePage calls fn with the active subscribers in id order, a page
// of at most recipientPage at a time, each page read by a query of its own
// so that fn may write through q between them.
func eachActivePage(ctx context.Context, q subQuerier, fn func([]Subscriber) error) error {
	page := make([]Subscriber, 0, recipientPage)
	var after int64
	for {
		rows, err := q.QueryContext(ctx, `SELECT `+recipientColumns+` FROM subscribers
			WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2`, after, recipientPage)
		if err != nil {
			return fmt.Errorf("read active subscribers: %w", err)
		}
		page = page[:0]
		for rows.Next() {
			s, err := scanRecipient(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read active subscribers: %w", err)
			}
			page = append(page, s)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read active subscribers: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read active subscribers: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < recipientPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// planDigest works out the next digest without writing anything.
func (m *Mailer) planDigest(ctx context.Context) (digestPlan, error) {
	p, err := m.nextPeriod(ctx)
	if err != nil {
		return digestPlan{}, err
	}
	plan := digestPlan{Period: p}
	if plan.Items, err = m.periodItems(ctx, p); err != nil || len(plan.Items) == 0 {
		return plan, err
	}
	rp := newRecipientPlanner(&plan)
	err = eachActivePage(ctx, m.db, func(page []Subscriber) error {
		for _, s := range page {
			rp.wants(s)
		}
		return nil
	})
	return plan, err
}

// createDigest writes the next digest and its deliveries, in one
// transaction, if anyone would receive it; ok is false when there is
// nothing to send. Subscribers are read and deliveries written a page at a
// time; the transaction keeps the subscriber list still meanwhile.
func (m *Mailer) createDigest(ctx context.Context) (d digestRow, plan digestPlan, ok bool, err error) {
	p, err := m.nextPeriod(ctx)
	if err != nil {
		return d, plan, false, err
	}
	plan.Period = p
	if plan.Items, err = m.periodItems(ctx, p); err != nil || len(plan.Items) == 0 {
		return d, plan, false, err
	}
	d = digestRow{Start: p.Start, End: p.End, SeqStart: p.SeqStart, SeqEnd: p.SeqEnd, Created: m.Now()}
	for _, it := range plan.Items {
		d.Items = append(d.Items, itemKey(it))
	}
	items, err := json.Marshal(d.Items)
	if err != nil {
		return d, plan, false, fmt.Errorf("create digest: %w", err)
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return d, plan, false, fmt.Errorf("create digest: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO digests (period_start, period_end, items, created, seq_start, seq_end)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		ledgerTime(d.Start), ledgerTime(d.End), string(items), ledgerTime(d.Created), d.SeqStart, d.SeqEnd).Scan(&d.ID); err != nil {
		return d, plan, false, fmt.Errorf("create digest: %w", err)
	}
	rp := newRecipientPlanner(&plan)
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, recipientPage*deliveryColumns)
	err = eachActivePage(ctx, tx, func(page []Subscriber) error {
		args = args[:0]
		for _, s := range page {
			since, ok := rp.wants(s)
			if !ok {
				continue
			}
			args = append(args, d.ID, s.ID, m.digestMessageID(d.ID, s.UID), strings.Join(s.Boards, ","), ledgerTime(since), s.Match)
		}
		n := len(args) / deliveryColumns
		var err error
		switch {
		case n == 0:
			return nil
		case n == recipientPage:
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertDeliveriesSQL(db.EngineOf(m.db), n)); err != nil {
					return fmt.Errorf("create digest %d deliveries: %w", d.ID, err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		default:
			_, err = tx.ExecContext(ctx, insertDeliveriesSQL(db.EngineOf(m.db), n), args...)
		}
		if err != nil {
			return fmt.Errorf("create digest %d deliveries to subscribers %d to %d: %w", d.ID, page[0].ID, page[len(page)-1].ID, err)
		}
		return nil
	})
	if err != nil || plan.Recipients == 0 {
		return d, plan, false, err // a digest nobody would receive is never written
	}
	if err := tx.Commit(); err != nil {
		return d, plan, false, fmt.Errorf("create digest %d: %w", d.ID, err)
	}
	m.Log.Info("digest created", "digest", d.ID, "period", plan.Period.String(), "items", len(d.Items), "recipients", plan.Recipients)
	return d, plan, true, nil
}

// deliveryColumns is how many values insertDeliveriesSQL takes per row.
const deliveryColumns = 6

// insertDeliveriesSQL inserts n pending deliveries. Its placeholders are
// the engine's for the reason importInsertSQL's are.
func insertDeliveriesSQL(e db.Engine, n int) string {
	return `INSERT INTO deliveries (digest_id, subscriber_id, message_id, boards, since, match_pattern, status) VALUES ` +
		e.ValuesRows(n, deliveryColumns, ", 'pending'")
}

// digestMessageID is the Message-ID of a digest to a subscriber, fixed when
// the digest is created so a resend is recognisable.
func (m *Mailer) digestMessageID(digestID int64, uid string) string {
	return fmt.Sprintf("digest-%d-%s@%s", digestID, uidHash(uid), m.host)
}

// digestItems reads back the posts of a stored digest, in digest order.
// Posts edited since keep their place and show their current text.
func (m *Mailer) digestItems(ctx context.Context, d digestRow) ([]feeds.Item, error) {
	want := make(map[string]bool, len(d.Items))
	for _, k := range d.Items {
		want[k] = true
	}
	all, err := m.items.ItemsInSeq(ctx, d.SeqStart, d.SeqEnd, time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("digest %d items: %w", d.ID, err)
	}
	var out []feeds.Item
	for _, it := range all {
		if want[itemKey(it)] {
			out = append(out, it)
		}
	}
	return orderItems(m.Boards, out), nil
}

// edition is a digest rendered for one set of posts with placeholders
// where each recipient's address and links go. Everyone who gets the same
// posts shares an edition, so templates run once per distinct board set;
// per recipient only the placeholders are filled.
type edition struct {
	subject personalText
	text    personalText
	html    personalText
}

// Placeholder slots of a personalText, in the order of personal's fields.
const (
	slotEmail = iota
	slotName
	slotUnsubscribe
	slotPreferences
	slotCount
)

// personalText is a rendered text cut at its placeholders: parts[i] is
// followed by the value of slot slots[i].
type personalText struct {
	parts []string
	slots []int
	size  int
}

// cutPersonal cuts s at every occurrence of the markers.
func cutPersonal(s string, markers [slotCount]string) personalText {
	var pt personalText
	for {
		at, slot := -1, -1
		for i, mk := range markers {
			if j := strings.Index(s, mk); j >= 0 && (at < 0 || j < at) {
				at, slot = j, i
			}
		}
		if at < 0 {
			pt.parts = append(pt.parts, s)
			pt.size += len(s)
			return pt
		}
		pt.parts = append(pt.parts, s[:at])
		pt.slots = append(pt.slots, slot)
		pt.size += at
		s = s[at+len(markers[slot]):]
	}
}

// fill joins the parts with values in the slots.
func (pt personalText) fill(values [slotCount]string) string {
	n := pt.size
	for _, sl := range pt.slots {
		n += len(values[sl])
	}
	var b strings.Builder
	b.Grow(n)
	for i, part := range pt.parts {
		b.WriteString(part)
		if i < len(pt.slots) {
			b.WriteString(values[pt.slots[i]])
		}
	}
	return b.String()
}

// editions renders and caches editions by their set of posts.
type editions struct {
	m      *Mailer
	period DigestPeriod
	byKey  map[string]*edition
}

func (m *Mailer) newEditions(p DigestPeriod) *editions {
	return &editions{m: m, period: p, byKey: map[string]*edition{}}
}

// get returns the edition for items, rendering it on first use.
func (e *editions) get(items []feeds.Item) (*edition, error) {
	var kb strings.Builder
	for _, it := range items {
		kb.WriteString(itemKey(it))
		kb.WriteByte(',')
	}
	key := kb.String()
	if ed, ok := e.byKey[key]; ok {
		return ed, nil
	}
	v := e.m.digestView(e.period, items)
	mk := e.m.markers()
	v.Recipient = mk
	subject, text, html, err := e.m.tpl.renderDigest(v)
	if err != nil {
		return nil, err
	}
	markers := [slotCount]string{mk.Email, mk.Name, mk.UnsubscribeURL, mk.PreferencesURL}
	// Bodies go out with CRLF line ends, once per edition, so that a
	// message can be sent as 8bit without being rewritten (see buildMsg).
	ed := &edition{subject: cutPersonal(subject, markers), text: cutPersonal(crlf(text), markers),
		html: cutPersonal(crlf(html), markers)}
	e.byKey[key] = ed
	return ed, nil
}

// digestView is the shared part of a digest's template data.
func (m *Mailer) digestView(p DigestPeriod, items []feeds.Item) digestView {
	v := digestView{
		Date:    kstDay(p.End),
		Period:  p.String(),
		Count:   len(items),
		BaseURL: m.cfg.BaseURL,
	}
	for _, it := range items {
		if n := len(v.Boards); n == 0 || v.Boards[n-1].Slug != it.Board {
			v.Boards = append(v.Boards, boardView{Slug: it.Board, Name: m.Boards.Name(it.Board)})
		}
		b := &v.Boards[len(v.Boards)-1]
		b.Items = append(b.Items, newItemView(it))
	}
	if len(v.Boards) > 0 {
		v.FirstTitle = v.Boards[0].Items[0].Title
	}
	return v
}

// markers returns placeholders for the personal parts of a digest. They are
// plain letters and digits, unchanged by any escaping the templates apply,
// and carry a random nonce so no post can contain them.
func (m *Mailer) markers() recipientView {
	return recipientView{
		Email:          m.marker + "email",
		Name:           m.marker + "name",
		UnsubscribeURL: m.marker + "unsub",
		PreferencesURL: m.marker + "prefs",
	}
}

// personal is one recipient's address and links.
type personal struct {
	Email          string
	Name           string
	UnsubscribeURL string
	PreferencesURL string
}

// personalFor returns the personal parts of a digest for a subscriber.
// Unsubscribe and preferences links do not expire: they must still work
// in an old digest.
func (m *Mailer) personalFor(uid, email, name string) personal {
	return personal{
		Email:          email,
		Name:           flattenText(name),
		UnsubscribeURL: m.cfg.BaseURL + "/unsubscribe/" + m.tokens.Sign(PurposeUnsubscribe, uid, 0),
		PreferencesURL: m.cfg.BaseURL + "/preferences/" + m.tokens.Sign(PurposePreferences, uid, 0),
	}
}

// personalise fills an edition's placeholders for one recipient, escaped
// for HTML in the HTML part.
func (m *Mailer) personalise(ed *edition, p personal) (subject, text, htmlBody string) {
	plain := [slotCount]string{p.Email, p.Name, p.UnsubscribeURL, p.PreferencesURL}
	escaped := [slotCount]string{html.EscapeString(p.Email), html.EscapeString(p.Name),
		html.EscapeString(p.UnsubscribeURL), html.EscapeString(p.PreferencesURL)}
	return SanitizeSubject(ed.subject.fill(plain)), ed.text.fill(plain), ed.html.fill(escaped)
}

// unsubscribeMailto is the mailto: URI of List-Unsubscribe: mail.unsubscribe,
// or else the sender's address.
func unsubscribeMailto(unsubscribe string, from *mail.Address) string {
	if a, err := mail.ParseAddress(unsubscribe); err == nil {
		return "mailto:" + a.Address + "?subject=unsubscribe"
	}
	if from != nil {
		return "mailto:" + from.Address + "?subject=unsubscribe"
	}
	return ""
}

// Preview is a digest rendered for one reader.
type Preview struct {
	Period  DigestPeriod
	Items   int
	Subject string
	Text    string
	HTML    string
}

// ErrNothingNew is returned by Preview when the reader would get no digest.
var ErrNothingNew = errors.New("nothing new for a digest")

// Preview renders the next digest as the subscriber with address email
// would receive it, or, for email "", as a reader of every board. It writes
// nothing; a subscriber's links in it are real.
func (m *Mailer) Preview(ctx context.Context, email string) (Preview, error) {
	p, err := m.nextPeriod(ctx)
	if err != nil {
		return Preview{}, err
	}
	pv := Preview{Period: p}
	items, err := m.periodItems(ctx, p)
	if err != nil {
		return pv, err
	}
	who := Subscriber{UID: "preview", Email: "reader@example.org"}
	if email != "" {
		if who, err = recipientByEmail(ctx, m.db, email); err != nil {
			return pv, err
		}
		items = selectItems(items, who.Boards, recipientSince(who, p), who.Match)
	}
	if len(items) == 0 {
		return pv, fmt.Errorf("%w since %s", ErrNothingNew, p.Start.In(feeds.KST).Format("2006-01-02 15:04 KST"))
	}
	ed, err := m.newEditions(p).get(items)
	if err != nil {
		return pv, err
	}
	pv.Items = len(items)
	pv.Subject, pv.Text, pv.HTML = m.personalise(ed, m.personalFor(who.UID, who.Email, who.Name))
	// The edition is cut for the wire; a preview is read on a terminal.
	pv.Text, pv.HTML = strings.ReplaceAll(pv.Text, "\r\n", "\n"), strings.ReplaceAll(pv.HTML, "\r\n", "\n")
	return pv, nil
}

// SendPlan is what a send would do now, for --dry-run.
type SendPlan struct {
	// Unfinished digests and their pending deliveries, sent first.
	Unfinished []DigestStatus
	// The digest a send would create after them (Recipients 0: none).
	Period     DigestPeriod
	Items      int
	Recipients int
}

// Plan says what SendDigest would do now, without writing or sending.
func (m *Mailer) Plan(ctx context.Context) (SendPlan, error) {
	var sp SendPlan
	all, err := m.Status(ctx, 1000)
	if err != nil {
		return sp, err
	}
	for _, s := range all {
		if s.Finished.IsZero() {
			sp.Unfinished = append(sp.Unfinished, s)
		}
	}
	plan, err := m.planDigest(ctx)
	if err != nil {
		return sp, err
	}
	sp.Period, sp.Items, sp.Recipients = plan.Period, len(plan.Items), plan.Recipients
	return sp, nil
}
