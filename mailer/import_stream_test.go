package mailer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// TestImport_StreamedBatches imports files of many small batches: a bad
// row anywhere, the last one included, writes nothing though earlier
// batches were already inserted in the transaction; duplicates are found
// across batches, whether of an earlier row or of a stored subscriber.
func TestImport_StreamedBatches(t *testing.T) {
	dbtest.Each(t, importStreamedBatches)
}

func importStreamedBatches(t *testing.T, engine db.Engine) {
	defer SetImportBatchForTest(7)()
	ctx := context.Background()
	rows := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("reader%03d@example.org,press", i))
		}
		return out
	}
	file := func(lines []string) string { return "email,boards\n" + strings.Join(lines, "\n") + "\n" }

	for _, tt := range []struct {
		name   string
		lines  []string
		skip   bool
		err    error
		added  int
		errors []string
		stored int
	}{
		{name: "a bad last row writes nothing", lines: append(rows(50), "reader999@,press"), err: ErrInvalidRows,
			errors: []string{"52: invalid email"}},
		{name: "a bad row in the middle writes nothing", lines: append(append(rows(20), "x@example.org,sport"), rows(50)[20:]...), err: ErrInvalidRows,
			errors: []string{`22: unknown board "sport"`}},
		{name: "with skip-invalid the rows around a bad last row are stored", lines: append(rows(50), "reader999@,press"), skip: true,
			added: 50, errors: []string{"52: invalid email"}, stored: 50},
		{name: "a good file of many batches is stored whole", lines: rows(50), added: 50, stored: 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, d := openSubscribersOn(t, engine)
			rep, err := s.Import(ctx, strings.NewReader(file(tt.lines)), ImportOptions{SkipInvalid: tt.skip})
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Import: %v, want %v", err, tt.err)
			}
			matchLines(t, "errors", rep.Errors, tt.errors)
			if rep.Added != tt.added {
				t.Errorf("report says %d added, want %d", rep.Added, tt.added)
			}
			if n := countRows(t, d, "subscribers"); n != tt.stored {
				t.Errorf("%d subscribers stored, want %d", n, tt.stored)
			}
		})
	}

	t.Run("duplicates across batches", func(t *testing.T) {
		s, d := openSubscribersOn(t, engine)
		mustAdd(t, s, NewSubscriber{Address: "known@example.org", Status: StatusActive})
		gone := mustAdd(t, s, NewSubscriber{Address: "gone@example.org", Status: StatusActive})
		if _, err := s.Unsubscribe(ctx, gone.UID); err != nil {
			t.Fatal(err)
		}
		lines := rows(30)
		lines[3] = "known@example.org,"      // line 5, batch 1
		lines[4] = "READER000@example.org,"  // line 6: an earlier row of the same batch
		lines[12] = "reader002@example.org," // line 14: a row of batch 1, from batch 2
		lines[20] = "Known@Example.org,"     // line 22: the stored address again, batch 3
		lines[25] = "gone@example.org,"      // line 27
		lines[27] = "gone@example.org,"      // line 29: same batch as its first
		rep, err := s.Import(ctx, strings.NewReader(file(lines)), ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		matchLines(t, "notes", rep.Notes, []string{
			"5: already subscribed (active)",
			"6: duplicate of line 2",
			"14: duplicate of line 4",
			"22: duplicate of line 5",
			"27: unsubscribed since",
			"29: duplicate of line 27",
		})
		if rep.Added != 24 || rep.Skipped != 6 {
			t.Errorf("added %d, skipped %d; want 24 and 6", rep.Added, rep.Skipped)
		}
		if n := countRows(t, d, "subscribers"); n != 26 {
			t.Errorf("%d subscribers stored, want 26", n)
		}
		// The same file again: every row is known now, and an import
		// leaves nothing behind on its connection that stops the next.
		rep, err = s.Import(ctx, strings.NewReader(file(lines)), ImportOptions{})
		if err != nil {
			t.Fatalf("second import: %v", err)
		}
		if rep.Added != 0 || rep.Skipped != 30 {
			t.Errorf("second import: added %d, skipped %d; want 0 and 30", rep.Added, rep.Skipped)
		}
		if got := rep.Notes[4]; got.Line != 6 || !strings.Contains(got.Msg, "duplicate of line 2") {
			t.Errorf("second import, line 6: %v, want a duplicate of line 2", got)
		}
	})
}

// TestImport_ReportStreamsInLineOrder: with a report function the invalid
// and skipped rows come out in line order as the import goes, the same
// lines the report otherwise keeps, with the same counts.
func TestImport_ReportStreamsInLineOrder(t *testing.T) {
	defer SetImportBatchForTest(5)()
	ctx := context.Background()
	var in strings.Builder
	in.WriteString("email,boards\n")
	for i := range 40 {
		switch {
		case i%7 == 3:
			fmt.Fprintf(&in, "reader%03d@example.org,sport\n", i) // invalid
		case i%9 == 4:
			fmt.Fprintf(&in, "reader%03d@example.org,press\n", i-3) // a duplicate of a row 3 lines up
		case i == 17:
			in.WriteString(strings.Repeat("x", 300) + "\n") // longer than MaxLine
		case i == 30:
			in.WriteString("known@example.org,\n")
		default:
			fmt.Fprintf(&in, "reader%03d@example.org,press\n", i)
		}
	}
	in.WriteString("\"unclosed@example.org,press\n") // a quote never closed, at the end

	run := func(report func(LineError)) (ImportReport, error) {
		s, _ := openSubscribers(t)
		mustAdd(t, s, NewSubscriber{Address: "known@example.org", Status: StatusActive})
		return s.Import(ctx, strings.NewReader(in.String()), ImportOptions{SkipInvalid: true, MaxLine: 200, Report: report})
	}
	kept, err := run(nil)
	if err != nil {
		t.Fatal(err)
	}
	var streamed []LineError
	rep, err := run(func(e LineError) { streamed = append(streamed, e) })
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]LineError{}, kept.Errors...), kept.Notes...)
	slices.SortStableFunc(want, func(a, b LineError) int { return a.Line - b.Line })
	if !slices.Equal(streamed, want) {
		t.Errorf("streamed:\n %q\nwant\n %q", lineErrors(streamed), lineErrors(want))
	}
	if len(rep.Errors) != 0 || len(rep.Notes) != 0 {
		t.Errorf("with a report function the report kept %d errors and %d notes", len(rep.Errors), len(rep.Notes))
	}
	if rep.Invalid != len(kept.Errors) || rep.Skipped != len(kept.Notes) || rep.Added != kept.Added ||
		kept.Invalid != len(kept.Errors) || kept.Skipped != len(kept.Notes) {
		t.Errorf("counts: streamed %+v, kept %+v", rep, kept)
	}
	if len(kept.Errors) < 7 || len(kept.Notes) < 3 {
		t.Errorf("the file gave %d errors and %d notes; the test wants more of each", len(kept.Errors), len(kept.Notes))
	}
}
