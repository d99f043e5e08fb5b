package mailer

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/msitfeed/msitfeed/feeds"
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
	// Errors lists the invalid rows in line order. Without SkipInvalid any
	// error means nothing was imported.
	Errors []LineError
	// Notes says, in line order, why each skipped row was skipped.
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

// importBatch is how many rows one INSERT statement carries.
const importBatch = 200

// importRow is one valid row waiting to be inserted.
type importRow struct {
	line int
	key  string
	sub  Subscriber
}

// Import reads subscribers from CSV or from a JSON export (see the format
// above) and adds them in one transaction, in batches. It returns an error wrapping ErrBadFile if the file has
// no usable header, ErrInvalidRows if a row is invalid and SkipInvalid is
// not set (nothing is imported then), or a database error; the report is
// filled in every case.
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
	var rows []importRow
	var err error
	if looksLikeJSON(br) {
		rows, err = readJSONRows(br, s.Boards, now, &rep)
	} else {
		rows, err = readCSVRows(br, s.Boards, maxLine, now, &rep)
	}
	if err != nil {
		return rep, err
	}
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Line < rep.Errors[j].Line })
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	rows = dropDuplicateRows(rows, &rep)
	if err := s.insertRows(ctx, rows, &rep, opts.SkipInvalid || len(rep.Errors) == 0); err != nil {
		return rep, err
	}
	sort.SliceStable(rep.Notes, func(i, j int) bool { return rep.Notes[i].Line < rep.Notes[j].Line })
	rep.Skipped = len(rep.Notes)
	if len(rep.Errors) > 0 && !opts.SkipInvalid {
		return rep, fmt.Errorf("import: %w: %d invalid, nothing imported", ErrInvalidRows, len(rep.Errors))
	}
	return rep, nil
}

// readCSVRows reads the valid rows of a CSV file, adding the invalid ones
// to rep.Errors.
func readCSVRows(r io.Reader, boards *feeds.Registry, maxLine int, now time.Time, rep *ImportReport) ([]importRow, error) {
	guard := newLineGuard(r, maxLine)
	cr := csv.NewReader(guard)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(guard.long) > 0 {
				return nil, fmt.Errorf("%w: line 1 is longer than %d bytes; expected a header such as email,name,boards,status", ErrBadFile, maxLine)
			}
			return nil, fmt.Errorf("%w: the file is empty; expected a header such as email,name,boards,status", ErrBadFile)
		}
		return nil, fmt.Errorf("%w: header: %v", ErrBadFile, csvReason(err))
	}
	line, _ := cr.FieldPos(0)
	cols, err := parseHeader(header)
	if err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrBadFile, line, err)
	}

	var rows []importRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if !guard.isLong(pe.StartLine, pe.Line) {
				rep.Errors = append(rep.Errors, LineError{pe.StartLine, csvReason(err)})
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
		}
		start, _ := cr.FieldPos(0)
		last, _ := cr.FieldPos(len(rec) - 1)
		if guard.isLong(start, last+strings.Count(rec[len(rec)-1], "\n")) {
			continue // reported as a long line
		}
		row, err := cols.row(rec, boards, now)
		if err != nil {
			rep.Errors = append(rep.Errors, LineError{start, err.Error()})
			continue
		}
		if row.key == "" {
			continue // a line of empty cells, as spreadsheets write
		}
		row.line = start
		rows = append(rows, row)
	}
	for _, l := range guard.long {
		rep.Errors = append(rep.Errors, LineError{l.line, fmt.Sprintf("line is %d bytes, longer than the %d allowed; not a subscriber row", l.size, maxLine)})
	}
	return rows, nil
}

// dropDuplicateRows keeps the first row of each address, noting the others.
func dropDuplicateRows(rows []importRow, rep *ImportReport) []importRow {
	firstLine := map[string]int{}
	out := rows[:0]
	for _, row := range rows {
		if prev, dup := firstLine[row.key]; dup {
			rep.Notes = append(rep.Notes, LineError{row.line, fmt.Sprintf("%s is a duplicate of line %d, skipped", row.sub.Email, prev)})
			continue
		}
		firstLine[row.key] = row.line
		out = append(out, row)
	}
	return out
}

// insertRows inserts the rows whose address is not yet known, in batches in
// one transaction, noting the others in rep. With commit false it only
// checks against the database, so that a rejected import still reports its
// duplicates.
func (s *Subscribers) insertRows(ctx context.Context, rows []importRow, rep *ImportReport, commit bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer tx.Rollback()

	existing := map[string]Subscriber{}
	known, err := querySubscribers(ctx, tx, `SELECT `+subscriberColumns+` FROM subscribers`)
	if err != nil {
		return fmt.Errorf("import: read subscribers: %w", err)
	}
	for _, sub := range known {
		existing[emailKey(sub.Email)] = sub
	}
	fresh := rows[:0:0]
	for _, row := range rows {
		old, ok := existing[row.key]
		switch {
		case !ok:
			fresh = append(fresh, row)
		case old.Status == StatusActive || old.Status == StatusPending:
			rep.Notes = append(rep.Notes, LineError{row.line, fmt.Sprintf("%s is already subscribed (%s), skipped", row.sub.Email, old.Status)})
		default:
			rep.Notes = append(rep.Notes, LineError{row.line, fmt.Sprintf("%s is %s (suppressed), not re-added; subscribers add --force re-adds it if they asked", row.sub.Email, describeSuppression(old))})
		}
	}
	if !commit {
		return nil
	}

	var batch, single *sql.Stmt
	defer func() {
		for _, st := range []*sql.Stmt{batch, single} {
			if st != nil {
				st.Close()
			}
		}
	}()
	args := make([]any, 0, importBatch*subscriberFields)
	for len(fresh) > 0 {
		n := min(len(fresh), importBatch)
		st := &batch
		if n < importBatch {
			st = &single
			n = 1
		}
		if *st == nil {
			q := insertSubscriberSQL + valuesRows(n)
			p, err := tx.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			*st = p
		}
		args = args[:0]
		for _, row := range fresh[:n] {
			args = append(args, subscriberArgs(row.sub, row.key)...)
		}
		if _, err := (*st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("import line %d: %w", fresh[0].line, err)
		}
		rep.Added += n
		fresh = fresh[n:]
	}
	if err := tx.Commit(); err != nil {
		rep.Added = 0
		return fmt.Errorf("import: %w", err)
	}
	return nil
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

// readJSONRows reads the valid rows of a JSON export (an array of objects
// with the CSV column names as keys, boards a string or an array of
// strings), adding the invalid ones to rep.Errors with the line each
// object starts on.
func readJSONRows(r io.Reader, boards *feeds.Registry, now time.Time, rep *ImportReport) ([]importRow, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxJSONImport+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if len(data) > maxJSONImport {
		return nil, fmt.Errorf("%w: JSON larger than %d MB; split it or use CSV", ErrBadFile, maxJSONImport>>20)
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
		return nil, fmt.Errorf("%w: line %d: not UTF-8 (save the file as UTF-8)", ErrBadFile, lineAt(int64(bad)))
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
		return nil, syntax(err)
	}
	cols := columns{}
	for i, c := range csvColumns {
		cols[c] = i
	}
	var rows []importRow
	for dec.More() {
		off := dec.InputOffset()
		for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
			off++
		}
		line := lineAt(off)
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return nil, syntax(err)
			}
			rep.Errors = append(rep.Errors, LineError{line, "not an object with the fields " + strings.Join(csvColumns, ", ")})
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
					rows = append(rows, row)
					continue
				}
			}
		}
		rep.Errors = append(rep.Errors, LineError{line, err.Error()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	return rows, nil
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
// or "") or JSON ("json"). The CSV imports back as the same list.
func (s *Subscribers) Export(ctx context.Context, w io.Writer, format string) error {
	subs, err := s.List(ctx, ListFilter{})
	if err != nil {
		return err
	}
	return WriteSubscribers(w, format, subs)
}

// WriteSubscribers writes subs as CSV (format "csv" or "") with the columns
// Import reads, or as a JSON array ("json") of objects with the same names
// (boards an array, [] for all boards; empty times and match left out).
func WriteSubscribers(w io.Writer, format string, subs []Subscriber) error {
	switch format {
	case "", "csv":
		return writeCSV(w, subs)
	case "json":
		return writeJSON(w, subs)
	}
	return fmt.Errorf("unknown format %q (use csv or json)", format)
}

func writeCSV(w io.Writer, subs []Subscriber) error {
	cw := csv.NewWriter(w)
	cw.Write(csvColumns)
	for _, sub := range subs {
		cw.Write([]string{sub.Email, sub.Name, joinBoards(sub.Boards), string(sub.Status), string(sub.Origin),
			formatSubTime(sub.Created), formatSubTime(sub.Confirmed), formatSubTime(sub.Unsubscribed), sub.Match})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
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

func writeJSON(w io.Writer, subs []Subscriber) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	for i, sub := range subs {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  ")
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
		bw.Write(b)
	}
	bw.WriteString("\n]\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
