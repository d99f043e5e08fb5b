package mailer

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
)

// Import and export of subscribers as CSV.
//
// The format is one header line naming the columns, in any order and any
// case, then one subscriber per row:
//
//	email         required; "Jane <j@x.org>" is accepted (the name is taken from it)
//	name          optional
//	boards        slugs separated by commas ("press,notice"); empty or "all" = all boards
//	status        active (default), pending, unsubscribed or bounced
//	origin        cli, web or import (default import)
//	created, confirmed, unsubscribed
//	              RFC 3339 times (or 2006-01-02); empty = the time of the import
//	              (confirmed only for active rows, unsubscribed only for unsubscribed ones)
//	match         keyword filter: a regular expression a post's title or summary
//	              must match (see Subscriber.Match); empty = every post
//
// Export writes exactly these columns, so an export imports back into an
// empty database as the same list: unsubscribed and bounced rows come back
// as suppression records with their status and times. Import also reads the
// JSON export (an array of objects with these names as keys), recognised by
// its leading "[". Import never sends mail — pending rows wait for a
// confirmation sent by other means — and never changes an existing
// subscriber: a row whose address is already known is skipped and reported,
// whatever either status is. Bounce counts and UIDs are not exported; an
// imported subscriber gets a new UID, so links in mail sent from the old
// database do not carry over.

// LineError is a problem with one line of an import file. Line is the
// physical line number in the file (1 = the header), counting the lines
// inside quoted fields, so an editor can jump to it.
type LineError struct {
	Line int
	Msg  string
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ImportReport says what an import did.
type ImportReport struct {
	Added   int // rows added
	Skipped int // valid rows not added because the address was already in the file or the database
	Invalid int // invalid rows; without SkipInvalid any means nothing was imported
	// Errors lists the invalid rows in line order (unless
	// ImportOptions.Report took them).
	Errors []LineError
	// Notes says, in line order, why each skipped row was skipped (unless
	// ImportOptions.Report took them).
	Notes []LineError
}

// ImportOptions tune Import.
type ImportOptions struct {
	// SkipInvalid imports the valid rows of a file that has invalid ones;
	// without it the import is all-or-nothing.
	SkipInvalid bool
	// MaxLine is the longest line accepted, in bytes (DefaultMaxLine if 0).
	// A longer line is reported and skipped without being held in memory.
	MaxLine int
	// Report, when set, is given each invalid and each skipped row, in
	// line order, while the import runs, and the report's Errors and Notes
	// stay empty (Invalid and Skipped count them): a file of a million
	// addresses already known would otherwise hold a million notes.
	Report func(LineError)
}

// DefaultMaxLine is the longest import line accepted by default. A
// subscriber row is a few hundred bytes at most.
const DefaultMaxLine = 64 << 10

// ErrInvalidRows is wrapped by Import's error when invalid rows stopped an
// all-or-nothing import; the report lists them.
var ErrInvalidRows = errors.New("invalid rows")

// ErrBadFile is wrapped by Import's error when the file as a whole cannot
// be imported (no header, unknown columns, unreadable).
var ErrBadFile = errors.New("cannot import file")

// csvColumns are the columns Export writes and Import reads, in export order.
var csvColumns = []string{"email", "name", "boards", "status", "origin", "created", "confirmed", "unsubscribed", "match"}

// importBatch is how many rows one INSERT statement carries (a variable
// so tests can cross many batches with few rows).
var importBatch = 200

// importRow is one valid row waiting to be inserted.
type importRow struct {
	line int
	key  string
	sub  Subscriber
}

// Import reads subscribers from CSV or from a JSON export (see the format
// above) and adds them in one transaction. It returns an error wrapping
// ErrBadFile if the file has no usable header, ErrInvalidRows if a row is
// invalid and SkipInvalid is not set (nothing is imported then), or a
// database error; the report is filled in every case.
//
// Rows are streamed: each batch of valid rows is checked against the
// database and inserted as the file is read, and the transaction is rolled
// back at the end if a row was invalid, so memory does not grow with the
// file (a JSON export is read whole, up to 256 MB, to number its lines).
func (s *Subscribers) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportReport, error) {
	var rep ImportReport
	maxLine := opts.MaxLine
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	now := s.Now()
	br := bufio.NewReader(r)
	// A UTF-16 file (what Windows tools save as "Unicode text") would
	// otherwise be reported as unknown columns full of NUL bytes.
	head, _ := br.Peek(512)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) || bytes.IndexByte(head, 0) >= 0 {
		return rep, fmt.Errorf("%w: the file is not UTF-8 (UTF-16?); save it as UTF-8", ErrBadFile)
	}

	log := &lineLog{rep: &rep, report: opts.Report}
	imp, err := s.beginImport(ctx, log)
	if err != nil {
		return rep, err
	}
	defer imp.close()
	if looksLikeJSON(br) {
		err = readJSONRows(ctx, br, s.Boards, now, log, imp.add)
	} else {
		err = readCSVRows(ctx, br, s.Boards, maxLine, now, log, imp.add)
	}
	if err == nil {
		err = imp.flush()
	}
	log.held = 0
	log.pass(math.MaxInt)
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Line < rep.Errors[j].Line })
	sort.SliceStable(rep.Notes, func(i, j int) bool { return rep.Notes[i].Line < rep.Notes[j].Line })
	if err != nil {
		rep.Added = 0
		return rep, err
	}
	if rep.Invalid > 0 && !opts.SkipInvalid {
		rep.Added = 0
		return rep, fmt.Errorf("import: %w: %d invalid, nothing imported", ErrInvalidRows, rep.Invalid)
	}
	if err := imp.commit(); err != nil {
		rep.Added = 0
		return rep, err
	}
	return rep, nil
}

// lineLog collects the invalid and skipped rows of an import: in the
// report, or, with a report function, passed on in line order as soon as
// no earlier line can still come (the rows of a batch are only sorted out
// when it is inserted).
type lineLog struct {
	rep     *ImportReport
	report  func(LineError)
	pending []LineError
	held    int // first line of the batch not yet inserted; 0 if none
}

func (l *lineLog) invalid(e LineError) {
	l.rep.Invalid++
	if l.report == nil {
		l.rep.Errors = append(l.rep.Errors, e)
		return
	}
	l.pending = append(l.pending, e)
}

func (l *lineLog) skipped(e LineError) {
	l.rep.Skipped++
	if l.report == nil {
		l.rep.Notes = append(l.rep.Notes, e)
		return
	}
	l.pending = append(l.pending, e)
}

// pass passes on, in line order, what is pending up to line upTo (all
// lines read so far), short of a batch not yet inserted.
func (l *lineLog) pass(upTo int) {
	if l.report == nil || len(l.pending) == 0 {
		return
	}
	if l.held > 0 {
		upTo = min(upTo, l.held-1)
	}
	slices.SortStableFunc(l.pending, func(a, b LineError) int { return cmp.Compare(a.Line, b.Line) })
	n := 0
	for n < len(l.pending) && l.pending[n].Line <= upTo {
		l.report(l.pending[n])
		n++
	}
	l.pending = append(l.pending[:0], l.pending[n:]...)
}

// readCSVRows reads a CSV file, passing each valid row to add in line
// order and the invalid ones to log.
func readCSVRows(ctx context.Context, r io.Reader, boards *feeds.Registry, maxLine int, now time.Time, log *lineLog, add func(importRow) error) error {
	guard := newLineGuard(r, maxLine)
	cr := csv.NewReader(guard)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(guard.long) > 0 {
				return fmt.Errorf("%w: line 1 is longer than %d bytes; expected a header such as email,name,boards,status", ErrBadFile, maxLine)
			}
			return fmt.Errorf("%w: the file is empty; expected a header such as email,name,boards,status", ErrBadFile)
		}
		return fmt.Errorf("%w: header: %v", ErrBadFile, csvReason(err))
	}
	line, _ := cr.FieldPos(0)
	cols, err := parseHeader(header)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrBadFile, line, err)
	}

	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if !guard.isLong(pe.StartLine, pe.Line) {
				log.invalid(LineError{pe.StartLine, csvReason(err)})
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadFile, err)
		}
		start, _ := cr.FieldPos(0)
		last, _ := cr.FieldPos(len(rec) - 1)
		if guard.isLong(start, last+strings.Count(rec[len(rec)-1], "\n")) {
			continue // reported as a long line
		}
		// Long lines before this record are reported, and no later
		// record asks about them.
		for len(guard.long) > 0 && guard.long[0].line < start {
			l := guard.long[0]
			log.invalid(LineError{l.line, fmt.Sprintf("line is %d bytes, longer than the %d allowed; not a subscriber row", l.size, maxLine)})
			guard.long = guard.long[1:]
		}
		row, err := cols.row(rec, boards, now)
		if err != nil {
			log.invalid(LineError{start, err.Error()})
			continue
		}
		if row.key == "" {
			continue // a line of empty cells, as spreadsheets write
		}
		row.line = start
		if err := add(row); err != nil {
			return err
		}
		log.pass(start)
	}
	for _, l := range guard.long {
		log.invalid(LineError{l.line, fmt.Sprintf("line is %d bytes, longer than the %d allowed; not a subscriber row", l.size, maxLine)})
	}
	return nil
}

// importCacheKiB is the SQLite page cache an import runs with, in KiB. The
// two unique indexes (address and UID) take inserts all over, and with the
// default 2 MB cache most of a large import's time goes to evicting and
// re-reading their pages; 32 MiB holds them for a million subscribers'
// worth of inserts at a fraction of the old cost in memory.
const importCacheKiB = 32 << 10

// importer inserts the rows of one import in batches, inside one
// transaction on a connection of its own, and sorts out the rows whose
// address is already taken: each batch's addresses are looked up first, so
// a file already imported inserts nothing, and a taken address is named as
// a duplicate of an earlier row of the file (found by the ids this import
// inserted, or by the ids of stored subscribers the file already had,
// with their lines) or as a subscriber stored before.
type importer struct {
	ctx    context.Context
	engine db.Engine
	conn   *sql.Conn
	tx     *sql.Tx
	log    *lineLog
	batch  []importRow
	// mine holds the id and line of every row this import inserted, in id
	// order once sorted: 12 bytes a row rather than the row.
	mine   []importedRow
	sorted bool
	// known holds, for each stored subscriber the file has named, the line
	// that first named it, so that a later repeat is called a duplicate of
	// that line (about 20 bytes an address, rather than a temporary table
	// in the transaction, which cost a re-import twice its time).
	known   map[int64]int32
	restore string // the statement that puts the connection's cache back, if any
	args    []any
	stmt    *sql.Stmt // the insert of a full batch
	lookup  *sql.Stmt // the lookup of a full batch
}

// importedRow is a row this import inserted.
type importedRow struct {
	id   int64
	line int32
}

// beginImport takes a connection, enlarges its page cache and begins the
// import's transaction.
func (s *Subscribers) beginImport(ctx context.Context, log *lineLog) (*importer, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	imp := &importer{ctx: ctx, engine: db.EngineOf(s.db), conn: conn, log: log, sorted: true,
		batch: make([]importRow, 0, importBatch), known: map[int64]int32{}}
	imp.restore = imp.engine.GrowCache(ctx, conn, importCacheKiB)
	if imp.tx, err = conn.BeginTx(ctx, nil); err != nil {
		imp.close()
		return nil, fmt.Errorf("import: %w", err)
	}
	return imp, nil
}

// close rolls back what was not committed and gives the connection back
// as it was.
func (imp *importer) close() {
	for _, st := range []*sql.Stmt{imp.stmt, imp.lookup} {
		if st != nil {
			st.Close()
		}
	}
	if imp.tx != nil {
		imp.tx.Rollback()
	}
	if imp.restore != "" {
		imp.conn.ExecContext(context.WithoutCancel(imp.ctx), imp.restore)
	}
	imp.conn.Close()
}

// commit commits the import.
func (imp *importer) commit() error {
	err := imp.tx.Commit()
	imp.tx = nil
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// add queues a valid row, inserting the queue when it is full.
func (imp *importer) add(row importRow) error {
	if len(imp.batch) == 0 {
		imp.log.held = row.line
	}
	imp.batch = append(imp.batch, row)
	if len(imp.batch) == importBatch {
		return imp.flush()
	}
	return nil
}

// holder is the stored subscriber that holds an address.
type holder struct {
	id  int64
	sub Subscriber
}

// flush inserts the queued rows whose address is not taken and notes the
// others.
func (imp *importer) flush() error {
	if len(imp.batch) == 0 {
		return nil
	}
	defer func() { imp.log.held = 0 }()
	log := imp.log
	// Rows repeating an address earlier in the same batch: the database
	// cannot tell them apart, so they are sorted out here.
	firstLine := make(map[string]int, len(imp.batch))
	fresh := make([]importRow, 0, len(imp.batch))
	for _, row := range imp.batch {
		if prev, dup := firstLine[row.key]; dup {
			log.skipped(LineError{row.line, fmt.Sprintf("%s is a duplicate of line %d, skipped", row.sub.Email, prev)})
			continue
		}
		firstLine[row.key] = row.line
		fresh = append(fresh, row)
	}
	imp.batch = imp.batch[:0]

	// Looking the addresses up before inserting costs a first import
	// little (the insert reads the same index pages) and spares a
	// re-import an insert of rows that all conflict.
	held, err := imp.holders(fresh)
	if err != nil {
		return err
	}
	var taken []importRow
	toInsert := make([]importRow, 0, len(fresh))
	for _, row := range fresh {
		if _, ok := held[row.key]; ok {
			taken = append(taken, row)
		} else {
			toInsert = append(toInsert, row)
		}
	}
	inserted, err := imp.insert(toInsert, firstLine)
	if err != nil {
		return err
	}
	// An address stored by another writer since the lookup (PostgreSQL,
	// outside this transaction's view until now) is taken too.
	var raced []importRow
	for _, row := range toInsert {
		if !inserted[row.key] {
			raced = append(raced, row)
		}
	}
	if len(raced) > 0 {
		more, err := imp.holders(raced)
		if err != nil {
			return err
		}
		for k, h := range more {
			held[k] = h
		}
		taken = append(taken, raced...)
		slices.SortFunc(taken, func(a, b importRow) int { return cmp.Compare(a.line, b.line) })
	}
	return imp.noteTaken(taken, held)
}

// holders looks up the stored subscribers holding the addresses of rows.
func (imp *importer) holders(rows []importRow) (map[string]holder, error) {
	byKey := make(map[string]holder, len(rows))
	if len(rows) == 0 {
		return byKey, nil
	}
	args := make([]any, len(rows))
	for i, row := range rows {
		args[i] = row.key
	}
	found, err := imp.stmtFor(&imp.lookup, len(rows), func(n int) string {
		return `SELECT id, email_key, status, unsubscribed FROM subscribers WHERE email_key IN ` + imp.engine.ValuesRows(1, n, "")
	}).QueryContext(imp.ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
	}
	defer found.Close()
	for found.Next() {
		var h holder
		var key, status, unsubscribed string
		if err := found.Scan(&h.id, &key, &status, &unsubscribed); err != nil {
			return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
		}
		h.sub.Status, h.sub.Unsubscribed = Status(status), parseSubTime(unsubscribed)
		byKey[key] = h
	}
	if err := found.Err(); err != nil {
		return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
	}
	return byKey, nil
}

// insert inserts rows, leaving out any whose address is taken, records
// the ids and lines of those it inserted and returns their keys.
func (imp *importer) insert(rows []importRow, firstLine map[string]int) (map[string]bool, error) {
	inserted := make(map[string]bool, len(rows))
	if len(rows) == 0 {
		return inserted, nil
	}
	imp.args = imp.args[:0]
	for _, row := range rows {
		imp.args = append(imp.args, subscriberArgs(row.sub, row.key)...)
	}
	res, err := imp.stmtFor(&imp.stmt, len(rows), func(n int) string {
		return importInsertSQL(imp.engine, n)
	}).QueryContext(imp.ctx, imp.args...)
	if err != nil {
		return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
	}
	defer res.Close()
	for res.Next() {
		var id int64
		var key string
		if err := res.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
		}
		inserted[key] = true
		if n := len(imp.mine); n > 0 && imp.mine[n-1].id > id {
			imp.sorted = false
		}
		imp.mine = append(imp.mine, importedRow{id, int32(firstLine[key])})
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("import line %d: %w", rows[0].line, err)
	}
	imp.log.rep.Added += len(inserted)
	return inserted, nil
}

// importInsertSQL inserts n subscribers, leaving out those whose address
// is taken, and returns the id and address key of those it inserted.
//
// Its placeholders are "?" on SQLite, where new SQL has "$1", and numbered
// on PostgreSQL (db.Engine.ValuesRows says why).
func importInsertSQL(e db.Engine, n int) string {
	return insertSubscriberSQL + e.ValuesRows(n, subscriberFields, "") +
		` ON CONFLICT (email_key) DO NOTHING RETURNING id, email_key`
}

// noteTaken notes why each of rows, whose address held says the database
// already holds, was skipped. A stored address is said to be known the
// first time the file has it and a duplicate of that line after.
func (imp *importer) noteTaken(rows []importRow, held map[string]holder) error {
	log := imp.log
	for _, row := range rows {
		h, ok := held[row.key]
		if !ok {
			return fmt.Errorf("import line %d: %s was neither inserted nor found", row.line, row.sub.Email)
		}
		if first, seen := imp.known[h.id]; seen {
			log.skipped(LineError{row.line, fmt.Sprintf("%s is a duplicate of line %d, skipped", row.sub.Email, first)})
			continue
		}
		if line, mine := imp.lineOf(h.id); mine {
			log.skipped(LineError{row.line, fmt.Sprintf("%s is a duplicate of line %d, skipped", row.sub.Email, line)})
			continue
		}
		imp.known[h.id] = int32(row.line)
		if old := h.sub; old.Status == StatusActive || old.Status == StatusPending {
			log.skipped(LineError{row.line, fmt.Sprintf("%s is already subscribed (%s), skipped", row.sub.Email, old.Status)})
		} else {
			log.skipped(LineError{row.line, fmt.Sprintf("%s is %s (suppressed), not re-added; subscribers add --force re-adds it if they asked", row.sub.Email, describeSuppression(old))})
		}
	}
	return nil
}

// stmtFor returns a statement of query(n), prepared once into *full when n
// is a whole batch (as it is for every batch of a file already imported),
// else for this use only; a statement that cannot be prepared reports its
// error when used.
func (imp *importer) stmtFor(full **sql.Stmt, n int, query func(n int) string) stmtRunner {
	if n != importBatch {
		return txRunner{imp.tx, query(n)}
	}
	if *full == nil {
		st, err := imp.tx.PrepareContext(imp.ctx, query(n))
		if err != nil {
			return errRunner{err}
		}
		*full = st
	}
	return *full
}

// stmtRunner is what stmtFor returns: a prepared statement, or a query to
// run once, or an error.
type stmtRunner interface {
	QueryContext(ctx context.Context, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
}

type txRunner struct {
	tx    *sql.Tx
	query string
}

func (r txRunner) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return r.tx.QueryContext(ctx, r.query, args...)
}

func (r txRunner) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return r.tx.ExecContext(ctx, r.query, args...)
}

type errRunner struct{ err error }

func (r errRunner) QueryContext(context.Context, ...any) (*sql.Rows, error) { return nil, r.err }
func (r errRunner) ExecContext(context.Context, ...any) (sql.Result, error) { return nil, r.err }

// lineOf returns the line of the row this import inserted with id.
func (imp *importer) lineOf(id int64) (int, bool) {
	if !imp.sorted {
		slices.SortFunc(imp.mine, func(a, b importedRow) int { return cmp.Compare(a.id, b.id) })
		imp.sorted = true
	}
	i, ok := slices.BinarySearchFunc(imp.mine, id, func(r importedRow, id int64) int { return cmp.Compare(r.id, id) })
	if !ok {
		return 0, false
	}
	return int(imp.mine[i].line), true
}

// maxJSONImport bounds a JSON import, which is read whole to number its lines.
const maxJSONImport = 256 << 20

// looksLikeJSON reports whether the input starts (after a byte order mark
// and white space) with "[", the start of a JSON export.
func looksLikeJSON(br *bufio.Reader) bool {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if err != nil || n > 4096 {
			return false
		}
		switch c := b[n-1]; {
		case c == '[':
			return true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case n <= 3 && bytes.HasPrefix(utf8BOM, b):
		default:
			return false
		}
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readJSONRows reads a JSON export (an array of objects with the CSV
// column names as keys, boards a string or an array of strings), passing
// each valid row to add in order and the invalid ones to log with the line
// each object starts on.
func readJSONRows(ctx context.Context, r io.Reader, boards *feeds.Registry, now time.Time, log *lineLog, add func(importRow) error) error {
	data, err := io.ReadAll(io.LimitReader(r, maxJSONImport+1))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if len(data) > maxJSONImport {
		return fmt.Errorf("%w: JSON larger than %d MB; split it or use CSV", ErrBadFile, maxJSONImport>>20)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}) }
	if !utf8.Valid(data) {
		bad := 0
		for len(data[bad:]) > 0 {
			r, size := utf8.DecodeRune(data[bad:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad += size
		}
		return fmt.Errorf("%w: line %d: not UTF-8 (save the file as UTF-8)", ErrBadFile, lineAt(int64(bad)))
	}
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: line %d: %v", ErrBadFile, lineAt(se.Offset), err)
		}
		return fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	cols := columns{}
	for i, c := range csvColumns {
		cols[c] = i
	}
	for n := 0; dec.More(); n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		off := dec.InputOffset()
		for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
			off++
		}
		line := lineAt(off)
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return syntax(err)
			}
			log.invalid(LineError{line, "not an object with the fields " + strings.Join(csvColumns, ", ")})
			continue
		}
		rec, err := jsonRecord(obj)
		if err == nil {
			var row importRow
			if row, err = cols.row(rec, boards, now); err == nil {
				if row.key == "" {
					err = errors.New("no email")
				} else {
					row.line = line
					if err := add(row); err != nil {
						return err
					}
					log.pass(line)
					continue
				}
			}
		}
		log.invalid(LineError{line, err.Error()})
	}
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	return nil
}

// jsonRecord turns one exported object into a record in csvColumns order.
func jsonRecord(obj map[string]json.RawMessage) ([]string, error) {
	rec := make([]string, len(csvColumns))
	var unknown []string
	for k, raw := range obj {
		i := slices.Index(csvColumns, strings.ToLower(k))
		if i < 0 {
			unknown = append(unknown, fmt.Sprintf("%q", k))
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case nil:
		case string:
			rec[i] = v
		case []any:
			if csvColumns[i] != "boards" {
				return nil, fmt.Errorf("%s must be a string", k)
			}
			var bs []string
			for _, b := range v {
				s, ok := b.(string)
				if !ok {
					return nil, errors.New("boards must be strings")
				}
				bs = append(bs, s)
			}
			rec[i] = strings.Join(bs, ",")
		default:
			return nil, fmt.Errorf("%s must be a string", k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown field %s (fields are %s)", strings.Join(unknown, ", "), strings.Join(csvColumns, ", "))
	}
	return rec, nil
}

// columns maps the columns of an import file to their index.
type columns map[string]int

func parseHeader(header []string) (columns, error) {
	cols := columns{}
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !utf8.ValidString(name) {
			return nil, errors.New("header is not UTF-8 (save the file as UTF-8)")
		}
		if strings.Contains(name, "@") {
			return nil, fmt.Errorf("the first line must be a header naming the columns (email,name,boards,status), not an address like %q", h)
		}
		known := false
		for _, c := range csvColumns {
			known = known || c == name
		}
		switch {
		case !known:
			unknown = append(unknown, fmt.Sprintf("%q", h))
		case cols.has(name):
			return nil, fmt.Errorf("column %q appears twice", name)
		default:
			cols[name] = i
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown column %s (columns are %s)", strings.Join(unknown, ", "), strings.Join(csvColumns, ", "))
	}
	if !cols.has("email") {
		return nil, fmt.Errorf("no email column (columns are %s)", strings.Join(csvColumns, ", "))
	}
	return cols, nil
}

func (c columns) has(name string) bool { _, ok := c[name]; return ok }

// row validates one record, its boards against boards. A record of empty
// cells gives a row with no key.
func (c columns) row(rec []string, boards *feeds.Registry, now time.Time) (importRow, error) {
	for _, f := range rec {
		if !utf8.ValidString(f) {
			return importRow{}, errors.New("not UTF-8 (save the file as UTF-8)")
		}
	}
	if allEmpty(rec) {
		return importRow{}, nil
	}
	// Spreadsheets pad rows with empty cells; anything else that does not
	// match the header is a row the reader cannot place.
	if len(rec) < len(c) || (len(rec) > len(c) && !allEmpty(rec[len(c):])) {
		return importRow{}, fmt.Errorf("%d fields, but the header names %d", len(rec), len(c))
	}
	get := func(name string) string {
		if i, ok := c[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	a, err := ParseAddress(get("email"))
	if err != nil {
		return importRow{}, err
	}
	sub := Subscriber{UID: NewUID(), Email: a.Email, Status: StatusActive, Origin: OriginImport}
	name := get("name")
	if name == "" {
		name = a.Name
	}
	if sub.Name, err = cleanName(name); err != nil {
		return importRow{}, err
	}
	if sub.Boards, err = ParseBoardsFor(boards, get("boards")); err != nil {
		return importRow{}, err
	}
	if sub.Match, err = CheckMatch(get("match")); err != nil {
		return importRow{}, err
	}
	if v := strings.ToLower(get("status")); v != "" {
		sub.Status = Status(v)
		if !validSubscriberStatus(sub.Status) {
			return importRow{}, fmt.Errorf("unknown status %q (use active, pending, unsubscribed or bounced)", get("status"))
		}
	}
	if v := strings.ToLower(get("origin")); v != "" {
		sub.Origin = Origin(v)
		if !validSubscriberOrigin(sub.Origin) {
			return importRow{}, fmt.Errorf("unknown origin %q (use cli, web or import)", get("origin"))
		}
	}
	for _, t := range []struct {
		col string
		dst *time.Time
		def bool
	}{
		{"created", &sub.Created, true},
		{"confirmed", &sub.Confirmed, sub.Status == StatusActive},
		{"unsubscribed", &sub.Unsubscribed, sub.Status == StatusUnsubscribed},
	} {
		v := get(t.col)
		if v == "" {
			if t.def {
				*t.dst = now
			}
			continue
		}
		if *t.dst, err = parseImportTime(v); err != nil {
			return importRow{}, fmt.Errorf("%s %q is not a time like 2006-01-02T15:04:05Z", t.col, v)
		}
	}
	return importRow{key: a.Key, sub: sub}, nil
}

func parseImportTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, s, subscriberZone)
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// csvReason turns an encoding/csv error into a reason without its own
// line prefix, with what to do about it.
func csvReason(err error) string {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return `a " inside a field that is not quoted (quote the field and double the " inside it)`
	case errors.Is(pe.Err, csv.ErrQuote):
		return `a quoted field is not closed, or has text after its closing " (double the " inside a quoted field)`
	}
	return pe.Err.Error()
}

// longLine records a line that lineGuard left out.
type longLine struct{ line, size int }

// lineGuard passes its input through line by line, dropping (but counting)
// any line longer than max so that encoding/csv, which has no limit of its
// own, never holds one in memory. A dropped line is replaced by an empty
// one, so line numbers stay right. It also drops a UTF-8 byte order mark.
type lineGuard struct {
	br      *bufio.Reader
	line    int // lines read so far
	long    []longLine
	pending []byte
	err     error
}

func newLineGuard(r io.Reader, max int) *lineGuard {
	return &lineGuard{br: bufio.NewReaderSize(r, max)}
}

func (g *lineGuard) Read(p []byte) (int, error) {
	for len(g.pending) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.fill()
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

var newline = []byte{'\n'}

func (g *lineGuard) fill() {
	b, err := g.br.ReadSlice('\n')
	if len(b) > 0 {
		g.line++
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		size := len(b)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = g.br.ReadSlice('\n')
			size += len(b)
		}
		g.long = append(g.long, longLine{g.line, size})
		if err == nil {
			g.pending = newline
		}
		g.err = err
		return
	}
	if g.line == 1 {
		b = trimBOM(b)
	}
	g.pending, g.err = b, err
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// isLong reports whether a dropped line lies within lines from..to.
func (g *lineGuard) isLong(from, to int) bool {
	for _, l := range g.long {
		if l.line >= from && l.line <= to {
			return true
		}
	}
	return false
}

// Export writes every subscriber, ordered by address, as CSV (format "csv"
// or "") or JSON ("json"). The CSV imports back as the same list. Rows are
// written as they are read, so memory does not grow with the list.
func (s *Subscribers) Export(ctx context.Context, w io.Writer, format string) error {
	sw, err := newSubscriberWriter(w, format)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+subscriberColumns+` FROM subscribers ORDER BY email_key`)
	if err != nil {
		return fmt.Errorf("export subscribers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		sub, err := scanSubscriber(rows)
		if err != nil {
			return fmt.Errorf("export subscribers: %w", err)
		}
		if err := sw.write(sub); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export subscribers: %w", err)
	}
	return sw.close()
}

// WriteSubscribers writes subs as CSV (format "csv" or "") with the columns
// Import reads, or as a JSON array ("json") of objects with the same names
// (boards an array, [] for all boards; empty times and match left out).
func WriteSubscribers(w io.Writer, format string, subs []Subscriber) error {
	sw, err := newSubscriberWriter(w, format)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if err := sw.write(sub); err != nil {
			return err
		}
	}
	return sw.close()
}

// subscriberWriter writes subscribers one at a time in an export format.
type subscriberWriter struct {
	json bool
	bw   *bufio.Writer
	cw   *csv.Writer
	n    int
}

func newSubscriberWriter(w io.Writer, format string) (*subscriberWriter, error) {
	sw := &subscriberWriter{bw: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case "", "csv":
		sw.cw = csv.NewWriter(sw.bw)
		sw.cw.Write(csvColumns)
	case "json":
		sw.json = true
		sw.bw.WriteString("[")
	default:
		return nil, fmt.Errorf("unknown format %q (use csv or json)", format)
	}
	return sw, nil
}

func (sw *subscriberWriter) write(sub Subscriber) error {
	sw.n++
	if !sw.json {
		if err := sw.cw.Write([]string{sub.Email, sub.Name, joinBoards(sub.Boards), string(sub.Status), string(sub.Origin),
			formatSubTime(sub.Created), formatSubTime(sub.Confirmed), formatSubTime(sub.Unsubscribed), sub.Match}); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		return nil
	}
	if sw.n > 1 {
		sw.bw.WriteString(",")
	}
	sw.bw.WriteString("\n  ")
	boards := sub.Boards
	if boards == nil {
		boards = []string{}
	}
	b, err := json.Marshal(subscriberJSON{
		Email: sub.Email, Name: sub.Name, Boards: boards, Status: sub.Status, Origin: sub.Origin,
		Created: formatSubTime(sub.Created), Confirmed: formatSubTime(sub.Confirmed), Unsubscribed: formatSubTime(sub.Unsubscribed),
		Match: sub.Match,
	})
	if err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	if _, err := sw.bw.Write(b); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// close ends the document and flushes it.
func (sw *subscriberWriter) close() error {
	if !sw.json {
		sw.cw.Flush()
		if err := sw.cw.Error(); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		if err := sw.bw.Flush(); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		return nil
	}
	sw.bw.WriteString("\n]\n")
	if err := sw.bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// subscriberJSON is the JSON form of a subscriber in exports.
type subscriberJSON struct {
	Email        string   `json:"email"`
	Name         string   `json:"name"`
	Boards       []string `json:"boards"`
	Status       Status   `json:"status"`
	Origin       Origin   `json:"origin"`
	Created      string   `json:"created"`
	Confirmed    string   `json:"confirmed,omitempty"`
	Unsubscribed string   `json:"unsubscribed,omitempty"`
	Match        string   `json:"match,omitempty"`
}
