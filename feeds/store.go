package feeds

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
)

// Store keeps boards, items, attachments and crawl runs in the database
// (SQLite or PostgreSQL). Its
// exported methods each run in one transaction; the clock is a field so
// tests can set it.
type Store struct {
	db  *sql.DB
	Now func() time.Time
	// Registry is the set of boards the store serves (see Boards); nil
	// means the built-in boards. Set it before first use.
	Registry *Registry
}

// NewStore returns a Store over an opened, migrated database.
func NewStore(db *sql.DB) *Store {
	return &Store{db: db, Now: time.Now}
}

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// timeLayout has a fixed width so stored times sort as strings.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(KST).Format(timeLayout)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t.In(KST)
}

// Boards returns the boards of the registry in display order. A built-in
// board carries the ids stored for it (discovered), falling back to those
// of DefaultBoards; a configured board keeps the ids of its list_url and
// takes only a bbsSeqNo learnt from its list pages, when it has none.
func (s *Store) Boards(ctx context.Context) ([]Board, error) {
	bs := s.Registry.Boards()
	rows, err := s.db.QueryContext(ctx, `SELECT slug, mid, mpid, bbsseqno FROM boards`)
	if err != nil {
		return nil, fmt.Errorf("read boards: %w", err)
	}
	defer rows.Close()
	stored := map[string]Board{}
	for rows.Next() {
		var b Board
		if err := rows.Scan(&b.Slug, &b.MID, &b.MPID, &b.BBSSeqNo); err != nil {
			return nil, fmt.Errorf("read boards: %w", err)
		}
		stored[b.Slug] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read boards: %w", err)
	}
	for i, b := range bs {
		if st, ok := stored[b.Slug]; ok {
			if st.MID != "" && !b.Configured {
				bs[i].MID, bs[i].MPID = st.MID, st.MPID
			}
			// A configured board's learnt bbsSeqNo counts only while its
			// list_url still names the list it was learnt from.
			learnt := !b.Configured || (b.BBSSeqNo == "" && st.MID == b.MID && st.MPID == b.MPID)
			if st.BBSSeqNo != "" && learnt {
				bs[i].BBSSeqNo = st.BBSSeqNo
			}
		}
	}
	return bs, nil
}

// SaveBoard records the ids of a board (after discovery).
func (s *Store) SaveBoard(ctx context.Context, b Board) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO boards (slug, name, mid, mpid, bbsseqno, discovered) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT(slug) DO UPDATE SET name = excluded.name, mid = excluded.mid, mpid = excluded.mpid,
		bbsseqno = excluded.bbsseqno, discovered = excluded.discovered`,
		b.Slug, b.Name, b.MID, b.MPID, b.BBSSeqNo, formatTime(s.Now()))
	if err != nil {
		return fmt.Errorf("save board %s: %w", b.Slug, err)
	}
	return nil
}

// ensureBoard makes the board row exist so items can reference it.
func (s *Store) ensureBoard(ctx context.Context, tx *sql.Tx, slug string) error {
	name := s.Registry.Name(slug)
	_, err := tx.ExecContext(ctx, `INSERT INTO boards (slug, name) VALUES ($1, $2) ON CONFLICT(slug) DO NOTHING`, slug, name)
	return err
}

// ListHash records what a list row says of a post, one short hash per field
// (title, date, department, thumbnail) with "-" for a field the row lacked,
// so that a later row can be compared field by field (see ListChanged).
func ListHash(r ListRow) string {
	fields := listFields(r)
	for i, f := range fields {
		if f == "" {
			fields[i] = "-"
		} else {
			fields[i] = hashOf(f)[:8]
		}
	}
	return listHashPrefix + strings.Join(fields, ".")
}

const listHashPrefix = "v2:"

func listFields(r ListRow) []string {
	var date string
	if !r.Published.IsZero() {
		date = formatTime(r.Published)
	}
	return []string{r.Title, date, r.Department, r.Thumbnail}
}

// ListChanged reports whether row says something of its post that differs
// from what the stored list hash recorded, comparing only the fields both
// have: a field the site stopped showing (a redesign without the
// department column) is no edit, and neither is one it shows again. merged
// is the hash to keep: the stored one with the fields only row has added.
// An empty or unreadable stored hash counts as changed.
func ListChanged(stored string, row ListRow) (changed bool, merged string) {
	now := ListHash(row)
	rest, ok := strings.CutPrefix(stored, listHashPrefix)
	if !ok {
		// A hash from before field-wise hashes: one over all four fields.
		if stored != "" && stored == hashOf(row.Title, formatTime(row.Published), row.Department, row.Thumbnail) {
			return false, now
		}
		return true, now
	}
	old := strings.Split(rest, ".")
	cur := strings.Split(strings.TrimPrefix(now, listHashPrefix), ".")
	if len(old) != len(cur) {
		return true, now
	}
	for i := range cur {
		switch {
		case old[i] == "-" || old[i] == "":
			old[i] = cur[i]
		case cur[i] == "-":
		case old[i] != cur[i]:
			return true, now
		}
	}
	return false, listHashPrefix + strings.Join(old, ".")
}

// SetListHash records a new list hash for a stored post without touching
// anything a reader sees (the fields a row shows again after a redesign).
func (s *Store) SetListHash(ctx context.Context, board string, id int64, listHash string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE items SET list_hash = $1 WHERE board = $2 AND ntt_seq_no = $3`,
		listHash, board, id); err != nil {
		return fmt.Errorf("record list row of %s/%d: %w", board, id, err)
	}
	return nil
}

// ContentHash is the hash of the fields of an item that matter to a reader.
func ContentHash(it Item) string {
	parts := []string{it.Title, formatTime(it.Published), it.Department, it.Body, it.Thumbnail}
	for _, a := range it.Attachments {
		parts = append(parts, a.Name, a.URL, a.Type)
	}
	return hashOf(parts...)
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Known returns, for those of ids already stored on board, the list hash
// recorded when each was last saved.
func (s *Store) Known(ctx context.Context, board string, ids []int64) (map[int64]string, error) {
	known := make(map[int64]string, len(ids))
	if len(ids) == 0 {
		return known, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT ntt_seq_no, list_hash FROM items WHERE board = $1 AND ntt_seq_no IN (`)
	args := make([]any, 0, len(ids)+1)
	args = append(args, board)
	for i, id := range ids {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("$" + strconv.Itoa(i+2))
		args = append(args, id)
	}
	q.WriteByte(')')
	rows, err := s.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("look up known items of %s: %w", board, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var h string
		if err := rows.Scan(&id, &h); err != nil {
			return nil, fmt.Errorf("look up known items of %s: %w", board, err)
		}
		known[id] = h
	}
	return known, rows.Err()
}

// DueForRevisit returns, for board, up to limit stored posts published at
// or after since whose pages were last fetched before checkedBefore, the
// longest unchecked first, as the list rows a crawl would have read for them.
func (s *Store) DueForRevisit(ctx context.Context, board string, since, checkedBefore time.Time, limit int) ([]ListRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ntt_seq_no, title, published, department, thumbnail FROM items
		WHERE board = $1 AND published >= $2 AND checked < $3
		ORDER BY checked, ntt_seq_no DESC LIMIT $4`, board, formatTime(since), formatTime(checkedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("find posts of %s to revisit: %w", board, err)
	}
	defer rows.Close()
	var due []ListRow
	for rows.Next() {
		var r ListRow
		var published string
		if err := rows.Scan(&r.ID, &r.Title, &published, &r.Department, &r.Thumbnail); err != nil {
			return nil, fmt.Errorf("find posts of %s to revisit: %w", board, err)
		}
		r.Published = parseTime(published)
		due = append(due, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find posts of %s to revisit: %w", board, err)
	}
	return due, nil
}

// MarkChecked records that the page of board's post id was fetched (or
// tried) now without anything to save, so a revisit moves on to others.
func (s *Store) MarkChecked(ctx context.Context, board string, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE items SET checked = $1 WHERE board = $2 AND ntt_seq_no = $3`,
		formatTime(s.Now()), board, id); err != nil {
		return fmt.Errorf("mark %s/%d checked: %w", board, id, err)
	}
	return nil
}

// SaveResult says what Save did.
type SaveResult int

// The outcomes of Save.
const (
	Unchanged SaveResult = iota
	Created
	Updated
)

// Save stores an item fetched from the source. A new (board, ID) is created
// with FirstSeen = Updated = now; a known one whose content hash differs is
// updated in place with Updated = now (it never becomes a second item); an
// unchanged one only has its list hash refreshed. Every save records the
// item as checked now. An empty listHash (a post fetched again without its
// list row) keeps the stored one. An item without a date keeps the stored
// post's date, or, new, takes the day it is first seen (DateFromSeen). The
// board's version is bumped whenever a reader would see a difference.
func (s *Store) Save(ctx context.Context, it Item, listHash string) (SaveResult, error) {
	if it.Board == "" || it.ID == 0 {
		return Unchanged, fmt.Errorf("save item: board and id are required")
	}
	now := s.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	defer tx.Rollback()
	// One writer of items at a time, so that seq is handed out in commit
	// order and "updated" stays unique (see migration 0006).
	if err := db.EngineOf(s.db).LockTx(ctx, tx, "items"); err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	if err := s.ensureBoard(ctx, tx, it.Board); err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	// Every save gets its own instant, later than any stored: it is the
	// entry's "updated" in the feeds, where two equal values are an error.
	var latest string
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(updated), '') FROM items`).Scan(&latest); err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	stamp := now.Truncate(time.Millisecond) // the precision the column keeps
	if l := parseTime(latest); !stamp.After(l) {
		stamp = l.Add(time.Millisecond)
	}
	var oldHash, oldPublished, oldDateFrom string
	err = tx.QueryRowContext(ctx, `SELECT hash, published, date_from FROM items WHERE board = $1 AND ntt_seq_no = $2`,
		it.Board, it.ID).Scan(&oldHash, &oldPublished, &oldDateFrom)
	if it.Published.IsZero() {
		if err == nil {
			it.Published, it.DateFrom = parseTime(oldPublished), oldDateFrom
		} else {
			y, m, d := now.In(KST).Date()
			it.Published, it.DateFrom = time.Date(y, m, d, 0, 0, 0, 0, KST), DateFromSeen
		}
	}
	it.Hash = ContentHash(it)
	result := Updated
	switch {
	case errors.Is(err, sql.ErrNoRows):
		result = Created
		_, err = tx.ExecContext(ctx, `INSERT INTO items (board, ntt_seq_no, title, url, published, first_seen, updated,
			department, body, summary, thumbnail, hash, list_hash, checked, date_from, seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, (SELECT coalesce(max(seq), 0) + 1 FROM items))`,
			it.Board, it.ID, it.Title, it.URL, formatTime(it.Published), formatTime(now), formatTime(stamp),
			it.Department, it.Body, it.Summary, it.Thumbnail, it.Hash, listHash, formatTime(now), it.DateFrom)
	case err != nil:
	case oldHash == it.Hash:
		result = Unchanged
		_, err = tx.ExecContext(ctx, `UPDATE items SET list_hash = coalesce(nullif($1, ''), list_hash), checked = $2
			WHERE board = $3 AND ntt_seq_no = $4`, listHash, formatTime(now), it.Board, it.ID)
	default:
		_, err = tx.ExecContext(ctx, `UPDATE items SET title = $1, url = $2, published = $3, updated = $4, department = $5,
			body = $6, summary = $7, thumbnail = $8, hash = $9, list_hash = coalesce(nullif($10, ''), list_hash), checked = $11,
			date_from = $12 WHERE board = $13 AND ntt_seq_no = $14`,
			it.Title, it.URL, formatTime(it.Published), formatTime(stamp), it.Department, it.Body, it.Summary,
			it.Thumbnail, it.Hash, listHash, formatTime(now), it.DateFrom, it.Board, it.ID)
	}
	if err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	if result != Unchanged {
		if err := saveAttachments(ctx, tx, it); err != nil {
			return Unchanged, fmt.Errorf("save %s/%d attachments: %w", it.Board, it.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE boards SET version = version + 1, changed = $1 WHERE slug = $2`,
			formatTime(now), it.Board); err != nil {
			return Unchanged, fmt.Errorf("save %s/%d: bump version: %w", it.Board, it.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Unchanged, fmt.Errorf("save %s/%d: %w", it.Board, it.ID, err)
	}
	return result, nil
}

func saveAttachments(ctx context.Context, tx *sql.Tx, it Item) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM attachments WHERE board = $1 AND ntt_seq_no = $2`, it.Board, it.ID); err != nil {
		return err
	}
	for i, a := range it.Attachments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO attachments (board, ntt_seq_no, position, name, url, type) VALUES ($1, $2, $3, $4, $5, $6)`,
			it.Board, it.ID, i, a.Name, a.URL, a.Type); err != nil {
			return err
		}
	}
	return nil
}

const itemColumns = `board, ntt_seq_no, title, url, published, first_seen, updated, department, body, summary, thumbnail, hash, date_from`

// Items returns the latest limit items of board (or of every board for
// AllSlug), newest published first, with their attachments.
func (s *Store) Items(ctx context.Context, board string, limit int) ([]Item, error) {
	var rows *sql.Rows
	var err error
	if board == AllSlug {
		rows, err = s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM items
			ORDER BY published DESC, first_seen DESC, ntt_seq_no DESC LIMIT $1`, limit)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM items WHERE board = $1
			ORDER BY published DESC, ntt_seq_no DESC LIMIT $2`, board, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read items of %s: %w", board, err)
	}
	items, err := s.scanItems(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("read items of %s: %w", board, err)
	}
	return items, nil
}

// LastSeq returns the highest storage sequence number given so far (0 if
// nothing is stored). Every post with a number up to it is committed: the
// numbers are handed out in commit order (migration 0006).
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM items`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read the last storage sequence number: %w", err)
	}
	return n, nil
}

// ItemsInSeq returns the items stored with a sequence number in
// (after, upto], first seen after firstSeenAfter and published on or after
// publishedSince (either zero for any), newest published first, with their
// attachments.
func (s *Store) ItemsInSeq(ctx context.Context, after, upto int64, firstSeenAfter, publishedSince time.Time) ([]Item, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM items
		WHERE seq > $1 AND seq <= $2 AND (first_seen > $3 OR $3 = '') AND published >= $4
		ORDER BY published DESC, ntt_seq_no DESC`,
		after, upto, formatTime(firstSeenAfter), formatTime(publishedSince))
	if err != nil {
		return nil, fmt.Errorf("read items stored after #%d: %w", after, err)
	}
	items, err := s.scanItems(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("read items stored after #%d: %w", after, err)
	}
	return items, nil
}

// Item returns one item with its attachments, or sql.ErrNoRows.
func (s *Store) Item(ctx context.Context, board string, id int64) (Item, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM items WHERE board = $1 AND ntt_seq_no = $2`, board, id)
	if err != nil {
		return Item{}, fmt.Errorf("read %s/%d: %w", board, id, err)
	}
	items, err := s.scanItems(ctx, rows)
	if err != nil {
		return Item{}, fmt.Errorf("read %s/%d: %w", board, id, err)
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("read %s/%d: %w", board, id, sql.ErrNoRows)
	}
	return items[0], nil
}

// scanItems reads item rows (closing them) and then their attachments.
func (s *Store) scanItems(ctx context.Context, rows *sql.Rows) ([]Item, error) {
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var it Item
		var pub, first, upd string
		if err := rows.Scan(&it.Board, &it.ID, &it.Title, &it.URL, &pub, &first, &upd, &it.Department,
			&it.Body, &it.Summary, &it.Thumbnail, &it.Hash, &it.DateFrom); err != nil {
			return nil, err
		}
		it.Published, it.FirstSeen, it.Updated = parseTime(pub), parseTime(first), parseTime(upd)
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(items) == 0 {
		return items, nil
	}
	type key struct {
		board string
		id    int64
	}
	index := make(map[key]int, len(items))
	for i, it := range items {
		index[key{it.Board, it.ID}] = i
	}
	// Chunk to stay under SQLite's variable limit.
	const chunk = 400
	for start := 0; start < len(items); start += chunk {
		end := min(start+chunk, len(items))
		cond := make([]string, 0, end-start)
		args := make([]any, 0, 2*(end-start))
		for j, it := range items[start:end] {
			cond = append(cond, fmt.Sprintf("(board = $%d AND ntt_seq_no = $%d)", 2*j+1, 2*j+2))
			args = append(args, it.Board, it.ID)
		}
		arows, err := s.db.QueryContext(ctx, `SELECT board, ntt_seq_no, name, url, type FROM attachments WHERE `+
			strings.Join(cond, " OR ")+` ORDER BY board, ntt_seq_no, position`, args...)
		if err != nil {
			return nil, err
		}
		for arows.Next() {
			var k key
			var a Attachment
			if err := arows.Scan(&k.board, &k.id, &a.Name, &a.URL, &a.Type); err != nil {
				arows.Close()
				return nil, err
			}
			if i, ok := index[k]; ok {
				items[i].Attachments = append(items[i].Attachments, a)
			}
		}
		if err := arows.Err(); err != nil {
			arows.Close()
			return nil, err
		}
		arows.Close()
	}
	return items, nil
}

// BoardVersion is a board's change counter and the time of its last change.
type BoardVersion struct {
	Version int64
	Changed time.Time
}

// Versions returns every board's version; a board never written has none.
func (s *Store) Versions(ctx context.Context) (map[string]BoardVersion, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT slug, version, changed FROM boards`)
	if err != nil {
		return nil, fmt.Errorf("read board versions: %w", err)
	}
	defer rows.Close()
	vs := map[string]BoardVersion{}
	for rows.Next() {
		var slug, changed string
		var v BoardVersion
		if err := rows.Scan(&slug, &v.Version, &changed); err != nil {
			return nil, fmt.Errorf("read board versions: %w", err)
		}
		v.Changed = parseTime(changed)
		vs[slug] = v
	}
	return vs, rows.Err()
}

// BoardStats summarises a board for `msitfeed boards` and health checks.
type BoardStats struct {
	Board   string
	Items   int
	Newest  time.Time // newest published date
	LastRun CrawlRun  // zero if never crawled
}

// Stats returns per-board counts, newest post and last crawl run.
func (s *Store) Stats(ctx context.Context) (map[string]BoardStats, error) {
	out := map[string]BoardStats{}
	rows, err := s.db.QueryContext(ctx, `SELECT board, count(*), max(published) FROM items GROUP BY board`)
	if err != nil {
		return nil, fmt.Errorf("read board stats: %w", err)
	}
	for rows.Next() {
		var st BoardStats
		var newest string
		if err := rows.Scan(&st.Board, &st.Items, &newest); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read board stats: %w", err)
		}
		st.Newest = parseTime(newest)
		out[st.Board] = st
	}
	rows.Close()
	runs, err := s.LastRuns(ctx)
	if err != nil {
		return nil, err
	}
	for b, r := range runs {
		st := out[b]
		st.Board = b
		st.LastRun = r
		out[b] = st
	}
	return out, nil
}

func (s *Store) count(ctx context.Context, board string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE board = $1`, board).Scan(&n); err != nil {
		return 0, fmt.Errorf("count items of %s: %w", board, err)
	}
	return n, nil
}
