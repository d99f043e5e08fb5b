package feeds

import (
	"strings"
	"testing"
	"time"
)

func TestListChanged(t *testing.T) {
	day := time.Date(2025, 11, 5, 0, 0, 0, 0, KST)
	full := ListRow{ID: 1, Title: "T", Published: day, Department: "D"}
	noDept := ListRow{ID: 1, Title: "T", Published: day}
	tests := []struct {
		name    string
		stored  string
		row     ListRow
		changed bool
		merged  string
	}{
		{"the same row", ListHash(full), full, false, ListHash(full)},
		{"a new title", ListHash(full), ListRow{ID: 1, Title: "T2", Published: day, Department: "D"}, true, ""},
		{"a new date", ListHash(full), ListRow{ID: 1, Title: "T", Published: day.AddDate(0, 0, 1), Department: "D"}, true, ""},
		{"a department the site no longer shows", ListHash(full), noDept, false, ListHash(full)},
		{"a department shown again after a redesign", ListHash(noDept), full, false, ListHash(full)},
		{"a changed department", ListHash(full), ListRow{ID: 1, Title: "T", Published: day, Department: "E"}, true, ""},
		{"a hash from before field-wise hashes, same row", hashOf("T", formatTime(day), "D", ""), full, false, ListHash(full)},
		{"a hash from before field-wise hashes, other row", hashOf("T", formatTime(day), "D", ""), noDept, true, ""},
		{"nothing stored", "", full, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, merged := ListChanged(tt.stored, tt.row)
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v", changed, tt.changed)
			}
			if !changed && merged != tt.merged {
				t.Errorf("merged = %q, want %q", merged, tt.merged)
			}
			if changed && merged != ListHash(tt.row) {
				t.Errorf("a changed row keeps %q, want the row's own hash", merged)
			}
		})
	}
}

func TestCountFields(t *testing.T) {
	day := time.Date(2025, 11, 5, 0, 0, 0, 0, KST)
	rows := func(n int, r ListRow) []ListRow {
		out := make([]ListRow, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	tests := []struct {
		name     string
		lp       ListPage
		prev     CrawlRun
		degraded []string // fields named; none for a healthy page
	}{
		{"every field read", ListPage{Rows: rows(10, ListRow{Title: "T", Published: day, Department: "D"}), HasDepartment: true}, CrawlRun{}, nil},
		{"dates missing on most rows", ListPage{Rows: rows(10, ListRow{Title: "T", Department: "D"}), HasDepartment: true}, CrawlRun{}, []string{"date"}},
		{"titles missing", ListPage{Rows: rows(3, ListRow{Published: day})}, CrawlRun{}, []string{"title"}},
		{"a board that never showed departments", ListPage{Rows: rows(10, ListRow{Title: "T", Published: day})}, CrawlRun{ListRows: 10, MissingDepartment: 10}, nil},
		{"empty department cells", ListPage{Rows: rows(10, ListRow{Title: "T", Published: day}), HasDepartment: true}, CrawlRun{}, []string{"department"}},
		{"a department column that disappeared", ListPage{Rows: rows(10, ListRow{Title: "T", Published: day})}, CrawlRun{ListRows: 10}, []string{"department"}},
		{"and stays away", ListPage{Rows: rows(10, ListRow{Title: "T", Published: day})}, CrawlRun{ListRows: 10, MissingDepartment: 10, Degraded: "department missing on 10 of 10"}, []string{"department"}},
		{"a few rows without a date", ListPage{Rows: append(rows(8, ListRow{Title: "T", Published: day}), rows(2, ListRow{Title: "T"})...)}, CrawlRun{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var run CrawlRun
			countFields(tt.lp, 1, tt.prev, &run)
			if run.ListRows != len(tt.lp.Rows) {
				t.Errorf("ListRows = %d, want %d", run.ListRows, len(tt.lp.Rows))
			}
			for _, f := range []string{"title", "date", "department"} {
				want := false
				for _, d := range tt.degraded {
					want = want || d == f
				}
				if got := strings.Contains(run.Degraded, f+" missing"); got != want {
					t.Errorf("degraded %q: names %s = %v, want %v", run.Degraded, f, got, want)
				}
			}
			if tt.degraded != nil && !strings.Contains(run.Degraded, "looked for") {
				t.Errorf("degraded %q does not say what was looked for", run.Degraded)
			}
		})
	}
}
