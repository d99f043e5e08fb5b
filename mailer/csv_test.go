package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readSubscriberTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "subscribers", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lineErrors renders errors as "N: message" for comparison.
func lineErrors(errs []LineError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%d: %s", e.Line, e.Msg))
	}
	return out
}

// matchLines checks that got has one entry per want, each "N: substring".
func matchLines(t *testing.T, what string, got []LineError, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		line, sub, _ := strings.Cut(want[i], ": ")
		ok = fmt.Sprint(got[i].Line) == line && strings.Contains(got[i].Msg, sub)
	}
	if !ok {
		t.Errorf("%s:\n got  %q\n want %q", what, lineErrors(got), want)
	}
}

func TestImport(t *testing.T) {
	dbtest.Each(t, importTable)
}

func importTable(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	mb := strings.Repeat("x", 1<<20)
	for _, tt := range []struct {
		name   string
		in     string
		skip   bool
		setup  func(t *testing.T, s *Subscribers)
		err    error // wrapped by Import's error
		errMsg string
		added  int
		errors []string // "line: substring"
		notes  []string
		emails string // stored addresses afterwards, by address
	}{
		{
			name: "a spreadsheet export with a BOM, CRLF, quotes, a multi-line cell and a blank line",
			in:   readSubscriberTestdata(t, "excel.csv"), added: 4,
			emails: "jane@example.org:active minsu@example.kr:pending lee@example.org:active old@example.org:unsubscribed",
		},
		{
			name: "line numbers count the lines inside quoted fields",
			in: "email,name,boards\n" +
				"\"a@example.org\",\"Doe, Jane\",\"press,\nnotice\"\n" +
				"b@example.org,\"He said \"\"hi\"\"\",\n" +
				"c@example.org,x,sport\n" +
				"d@example.org,\"two\nlines\",\n",
			errors: []string{`5: unknown board "sport"`, "6: line break"}, err: ErrInvalidRows,
		},
		{
			name: "a missing header is reported, not imported as data",
			in:   "a@example.org,Jane\nb@example.org,Bob\n", err: ErrBadFile, errMsg: "line 1: the first line must be a header",
		},
		{
			name: "unknown columns are named",
			in:   "email,Phone,fax\na@example.org,1,2\n", err: ErrBadFile, errMsg: `unknown column "Phone", "fax"`,
		},
		{
			name: "a header without an email column is refused",
			in:   "name,boards\nJane,press\n", err: ErrBadFile, errMsg: "no email column",
		},
		{
			name: "a column named twice is refused",
			in:   "email,EMAIL\na@example.org,b@example.org\n", err: ErrBadFile, errMsg: "twice",
		},
		{
			name: "an empty file is refused",
			in:   "", err: ErrBadFile, errMsg: "empty",
		},
		{
			name: "a header alone imports nothing",
			in:   "\ufeffemail\r\n",
		},
		{
			name: "columns in any order and case",
			in:   "STATUS, Boards ,eMail\npending,photo,a@example.org\n,,b@example.org\n", added: 2,
			emails: "a@example.org:pending b@example.org:active",
		},
		{
			name: "bad email, board, status, field count and quote are each reported and nothing is imported",
			in: "email,name,boards,status\n" +
				"good@example.org,,,\n" +
				"not-an-address,,,\n" +
				"x@example.org,,sport,\n" +
				"y@example.org,,,gone\n" +
				"z@example.org,,\n" +
				"q@example.org,a\"b,,\n" +
				"w@gmail,,,\n",
			err: ErrInvalidRows,
			errors: []string{
				`3: invalid email address "not-an-address"`,
				`4: unknown board "sport"`,
				`5: unknown status "gone"`,
				"6: 3 fields, but the header names 4",
				`7: a " inside a field`,
				`8: domain "gmail" has no dot`,
			},
		},
		{
			name: "with skip-invalid the good rows are imported",
			in:   "email,boards\ngood@example.org,\nbad@,\nalso@example.org,press\nx@example.org,sport\n",
			skip: true, added: 2, errors: []string{"3: invalid email", "5: unknown board"},
			emails: "good@example.org:active also@example.org:active",
		},
		{
			name:  "duplicates within the file are skipped whatever their case",
			in:    "email\na@example.org\nA@Example.ORG\nJane <a@example.org>\nb@example.org\n",
			added: 2, notes: []string{"3: duplicate of line 2", "4: duplicate of line 2"},
			emails: "a@example.org:active b@example.org:active",
		},
		{
			name: "duplicates against the database are skipped and suppressed addresses stay suppressed",
			setup: func(t *testing.T, s *Subscribers) {
				mustAdd(t, s, NewSubscriber{Address: "act@example.org", Status: StatusActive})
				mustAdd(t, s, NewSubscriber{Address: "pend@example.org"})
				mustAdd(t, s, NewSubscriber{Address: "gone@example.org", Status: StatusActive})
				if _, err := s.Remove(context.Background(), "gone@example.org"); err != nil {
					t.Fatal(err)
				}
			},
			in:    "email,status\nACT@example.org,active\npend@example.org,active\nnew@example.org,\ngone@example.org,active\n",
			added: 1, notes: []string{"2: already subscribed (active)", "3: already subscribed (pending)", "5: unsubscribed since 2026-03-02 (suppressed), not re-added"},
			emails: "act@example.org:active pend@example.org:pending gone@example.org:unsubscribed new@example.org:active",
		},
		{
			name: "Latin-1 bytes are reported on their line",
			in:   readSubscriberTestdata(t, "latin1.csv"), err: ErrInvalidRows,
			errors: []string{"3: not UTF-8 (save the file as UTF-8)"},
		},
		{
			name: "a 1 MB line is reported and the lines after it keep their numbers",
			in:   "email,name\na@example.org,A\nb@example.org," + mb + "\nc@example.org,C\n" + mb + "\nd@example.org,D",
			skip: true, added: 3, errors: []string{"3: longer than the 65536 allowed", "5: longer than"},
			emails: "a@example.org:active c@example.org:active d@example.org:active",
		},
		{
			name: "a 1 MB line inside a quoted field is reported once",
			in:   "email,name\na@example.org,\"A\n" + mb + "\nB\"\nc@example.org,C\n",
			skip: true, added: 1, errors: []string{"3: longer than"},
			emails: "c@example.org:active",
		},
		{
			name: "rows padded with empty cells and lines of commas are accepted",
			in:   "email,name\na@example.org,A,,\n,,,\n,\n", added: 1,
			emails: "a@example.org:active",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, d := openSubscribersOn(t, engine)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			before := countRows(t, d, "subscribers")
			rep, err := s.Import(ctx, strings.NewReader(tt.in), ImportOptions{SkipInvalid: tt.skip})
			if tt.err == nil && err != nil {
				t.Fatalf("Import: %v", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Import err = %v, want %v", err, tt.err)
			}
			if tt.errMsg != "" && !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("err = %q, want it to say %q", err, tt.errMsg)
			}
			if rep.Added != tt.added || rep.Skipped != len(tt.notes) {
				t.Errorf("added %d skipped %d, want %d and %d", rep.Added, rep.Skipped, tt.added, len(tt.notes))
			}
			matchLines(t, "errors", rep.Errors, tt.errors)
			matchLines(t, "notes", rep.Notes, tt.notes)
			if after := countRows(t, d, "subscribers"); after != before+rep.Added {
				t.Errorf("rows before %d, after %d, added %d", before, after, rep.Added)
			}
			if tt.emails != "" {
				if got := storedEmails(t, s); got != tt.emails {
					t.Errorf("stored:\n got  %s\n want %s", got, tt.emails)
				}
			}
		})
	}
}

// storedEmails lists "email:status" in insertion order.
func storedEmails(t *testing.T, s *Subscribers) string {
	t.Helper()
	subs, err := querySubscribers(context.Background(), s.db, `SELECT `+subscriberColumns+` FROM subscribers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sub := range subs {
		out = append(out, sub.Email+":"+string(sub.Status))
	}
	return strings.Join(out, " ")
}

func TestImport_AllOrNothingLeavesTheDatabaseAlone(t *testing.T) {
	dbtest.Each(t, importAllOrNothingLeavesTheDatabaseAlone)
}

func importAllOrNothingLeavesTheDatabaseAlone(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	s, d := openSubscribersOn(t, engine)
	mustAdd(t, s, NewSubscriber{Address: "kept@example.org", Status: StatusActive})
	var in strings.Builder
	in.WriteString("email\n")
	for i := range 1000 {
		fmt.Fprintf(&in, "u%d@example.org\n", i)
	}
	in.WriteString("broken@\n")
	before := storedEmails(t, s)
	rep, err := s.Import(ctx, strings.NewReader(in.String()), ImportOptions{})
	if !errors.Is(err, ErrInvalidRows) {
		t.Fatalf("err = %v, want ErrInvalidRows", err)
	}
	if rep.Added != 0 || len(rep.Errors) != 1 || rep.Errors[0].Line != 1002 {
		t.Errorf("report = added %d, errors %v", rep.Added, lineErrors(rep.Errors))
	}
	if got := storedEmails(t, s); got != before || countRows(t, d, "subscribers") != 1 {
		t.Errorf("database changed: %s", got)
	}
}

func TestImport_KeepsNamesBoardsAndTimes(t *testing.T) {
	dbtest.Each(t, importKeepsNamesBoardsAndTimes)
}

func importKeepsNamesBoardsAndTimes(t *testing.T, engine db.Engine) {
	s, _ := openSubscribersOn(t, engine)
	in := "email,name,boards,status,origin,created,confirmed,unsubscribed\n" +
		"Jane <jane@example.org>,,\"notice, press\",active,web,2025-01-02T03:04:05.678+09:00,2025-01-03T00:00:00Z,\n" +
		"named@example.org,Real Name,,bounced,,2025-02-01,,\n" +
		"u@example.org,,all,unsubscribed,cli,,,\n"
	if _, err := s.Import(context.Background(), strings.NewReader(in), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(email string) Subscriber {
		sub, err := s.Get(context.Background(), email)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	jane := get("jane@example.org")
	if jane.Name != "Jane" || !reflect.DeepEqual(jane.Boards, []string{"notice", "press"}) || jane.Origin != OriginWeb ||
		!jane.Created.Equal(time.Date(2025, 1, 2, 3, 4, 5, 678e6, subscriberZone)) || !jane.Confirmed.Equal(time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("jane = %+v", jane)
	}
	named := get("named@example.org")
	if named.Name != "Real Name" || named.Status != StatusBounced || named.Origin != OriginImport ||
		!named.Created.Equal(time.Date(2025, 2, 1, 0, 0, 0, 0, subscriberZone)) || !named.Confirmed.IsZero() || !named.Unsubscribed.IsZero() {
		t.Errorf("named = %+v", named)
	}
	u := get("u@example.org")
	if u.Boards != nil || u.Status != StatusUnsubscribed || !u.Unsubscribed.Equal(subscriberClock) || !u.Created.Equal(subscriberClock) {
		t.Errorf("u = %+v", u)
	}
	if _, err := s.Import(context.Background(), strings.NewReader("email,created\nx@example.org,yesterday\n"), ImportOptions{}); err == nil ||
		!strings.Contains(err.Error(), "invalid") {
		t.Errorf("a bad time was accepted: %v", err)
	}
}

// comparable drops what differs between two databases holding the same list.
func comparable(subs []Subscriber) []Subscriber {
	out := make([]Subscriber, len(subs))
	for i, s := range subs {
		s.ID, s.UID = 0, ""
		out[i] = s
	}
	return out
}

func TestExport_RoundTrips(t *testing.T) {
	dbtest.Each(t, exportRoundTrips)
}

func exportRoundTrips(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	src, _ := openSubscribersOn(t, engine)
	if _, err := src.Import(ctx, strings.NewReader(readSubscriberTestdata(t, "excel.csv")), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	src.Now = func() time.Time { return subscriberClock.Add(36 * time.Hour) }
	mustAdd(t, src, NewSubscriber{Address: `"Comma, Quote \"Q\"" <q@example.org>`, Boards: []string{"trends"}, Origin: OriginWeb})
	b := mustAdd(t, src, NewSubscriber{Address: "bounce@example.org", Status: StatusActive})
	if _, err := src.db.Exec(`UPDATE subscribers SET status = 'bounced' WHERE id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}
	want, err := src.List(ctx, ListFilter{})
	if err != nil {
		t.Fatal(err)
	}

	var csvOut bytes.Buffer
	if err := src.Export(ctx, &csvOut, "csv"); err != nil {
		t.Fatal(err)
	}
	dst, _ := openSubscribersOn(t, engine)
	dst.Now = func() time.Time { return subscriberClock.Add(100 * time.Hour) }
	rep, err := dst.Import(ctx, bytes.NewReader(csvOut.Bytes()), ImportOptions{})
	if err != nil {
		t.Fatalf("import of the export: %v\n%s", err, csvOut.String())
	}
	if rep.Added != len(want) {
		t.Errorf("added %d, want %d", rep.Added, len(want))
	}
	got, err := dst.List(ctx, ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(comparable(got), comparable(want)) {
		t.Errorf("round trip differs:\n got  %+v\n want %+v\nexport:\n%s", comparable(got), comparable(want), csvOut.String())
	}
	var again bytes.Buffer
	if err := dst.Export(ctx, &again, "csv"); err != nil {
		t.Fatal(err)
	}
	if again.String() != csvOut.String() {
		t.Errorf("second export differs:\n%s\n---\n%s", again.String(), csvOut.String())
	}

	t.Run("the JSON export carries the same fields", func(t *testing.T) {
		var out bytes.Buffer
		if err := src.Export(ctx, &out, "json"); err != nil {
			t.Fatal(err)
		}
		var rows []map[string]any
		if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if len(rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(rows), len(want))
		}
		for i, r := range rows {
			if r["email"] != want[i].Email || r["status"] != string(want[i].Status) || r["origin"] != string(want[i].Origin) {
				t.Errorf("row %d = %v, want %+v", i, r, want[i])
			}
			if bs, ok := r["boards"].([]any); !ok || len(bs) != len(want[i].Boards) {
				t.Errorf("row %d boards = %v, want %v", i, r["boards"], want[i].Boards)
			}
		}
	})
	t.Run("the JSON export imports back as the same list", func(t *testing.T) {
		var out bytes.Buffer
		if err := src.Export(ctx, &out, "json"); err != nil {
			t.Fatal(err)
		}
		dst, _ := openSubscribersOn(t, engine)
		rep, err := dst.Import(ctx, &out, ImportOptions{})
		if err != nil || rep.Added != len(want) {
			t.Fatalf("added %d: %v %v", rep.Added, err, lineErrors(rep.Errors))
		}
		got, err := dst.List(ctx, ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(comparable(got), comparable(want)) {
			t.Errorf("JSON round trip differs:\n got  %+v\n want %+v", comparable(got), comparable(want))
		}
	})
	t.Run("an unknown format is an error", func(t *testing.T) {
		if err := src.Export(ctx, &bytes.Buffer{}, "xml"); err == nil {
			t.Error("no error")
		}
	})
}

func TestImport_JSON(t *testing.T) {
	dbtest.Each(t, importJSON)
}

func importJSON(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		in     string
		err    error
		errMsg string
		added  int
		errors []string
		notes  []string
	}{
		{
			name: "objects are numbered by the line they start on",
			in: "\ufeff [\n" +
				`  {"email":"a@example.org","boards":["press"]},` + "\n" +
				`  {"email":"b@example.org","boards":"sport"},` + "\n" +
				`  {"email":"c@example.org",` + "\n" + `   "phone":"1"},` + "\n" +
				`  {"email":"A@example.org"},` + "\n" +
				`  {"email":3},` + "\n" +
				`  "x@example.org"` + "\n]",
			err:    ErrInvalidRows,
			errors: []string{`3: unknown board "sport"`, `4: unknown field "phone"`, "7: email must be a string", "8: not an object"},
			notes:  []string{"6: duplicate of line 2"},
		},
		{name: "a syntax error names its line", in: "[\n{\"email\":\"a@example.org\"},\n{\"email\" \"b\"}\n]", err: ErrBadFile, errMsg: "line 3:"},
		{name: "Latin-1 bytes are refused with their line", in: "[\n{\"email\":\"a@example.org\",\n\"name\":\"Jos\xe9\"}]", err: ErrBadFile, errMsg: "line 3: not UTF-8"},
		{name: "an empty array imports nothing", in: " []\n"},
		{name: "a valid array imports", in: `[{"email":"a@example.org","status":"pending"},{"email":"b@example.org","boards":[]}]`, added: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openSubscribersOn(t, engine)
			rep, err := s.Import(ctx, strings.NewReader(tt.in), ImportOptions{})
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.errMsg != "" && !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("err = %q, want it to say %q", err, tt.errMsg)
			}
			if rep.Added != tt.added {
				t.Errorf("added %d, want %d", rep.Added, tt.added)
			}
			matchLines(t, "errors", rep.Errors, tt.errors)
			matchLines(t, "notes", rep.Notes, tt.notes)
		})
	}
}

// importRows builds a CSV of n distinct active subscribers.
func importRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("email,name,boards,status\n")
	for i := range n {
		fmt.Fprintf(&b, "user%06d@example.org,User %d,\"press,notice\",active\n", i, i)
	}
	return b.Bytes()
}

func TestImport_100kRows(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 100,000 rows")
	}
	s, d := openSubscribers(t)
	in := importRows(100_000)
	start := time.Now()
	rep, err := s.Import(context.Background(), bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d rows in %v", rep.Added, time.Since(start))
	if rep.Added != 100_000 || countRows(t, d, "subscribers") != 100_000 {
		t.Errorf("added %d, stored %d", rep.Added, countRows(t, d, "subscribers"))
	}
	// Importing the same file again adds nothing and reports every row.
	rep, err = s.Import(context.Background(), bytes.NewReader(in), ImportOptions{})
	if err != nil || rep.Added != 0 || rep.Skipped != 100_000 {
		t.Errorf("second import: added %d skipped %d, %v", rep.Added, rep.Skipped, err)
	}
}

func BenchmarkImport100k(b *testing.B) {
	in := importRows(100_000)
	for b.Loop() {
		b.StopTimer()
		s, _ := openSubscribers(b)
		b.StartTimer()
		rep, err := s.Import(context.Background(), bytes.NewReader(in), ImportOptions{})
		if err != nil || rep.Added != 100_000 {
			b.Fatalf("added %d: %v", rep.Added, err)
		}
	}
}
