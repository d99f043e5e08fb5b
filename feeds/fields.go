package feeds

import (
	"fmt"
	"strings"
)

// listFieldHints say, per field of a list row, where the parser looked, for
// the line that reports a field missing from most rows.
var listFieldHints = map[string]string{
	"title":      "looked for td_NTT_SJ_n cells, the row link's text, a .title element and an image's alt",
	"date":       "looked for td_PSTG_YMD_n and td_REG_DT_n cells and a date in the row's text",
	"department": "looked for td_CHRG_DEPT_NM_n cells and a .dept element",
	"thumbnail":  "looked for an img in the row, icons left out",
}

// ListFieldHint says where the list parser looks for a row's field
// ("title", "date", "department" or "thumbnail"), for a message reporting
// it missing; "" for another field.
func ListFieldHint(field string) string { return listFieldHints[field] }

// countFields adds what one list page let the crawl read to run, and marks
// the run degraded when most of the page's rows lack a field the board
// shows: the title and date always, the department when the page has a
// place for it or the board's previous run read it (a column that
// disappears is news; a board that never had one is not).
func countFields(lp ListPage, page int, prev CrawlRun, run *CrawlRun) {
	var title, date, dept int
	for _, r := range lp.Rows {
		if r.Title == "" {
			title++
		}
		if r.Published.IsZero() {
			date++
		}
		if r.Department == "" {
			dept++
		}
	}
	run.ListRows += len(lp.Rows)
	run.MissingTitle += title
	run.MissingDate += date
	run.MissingDepartment += dept

	deptExpected := lp.HasDepartment || prev.ListRows > prev.MissingDepartment || strings.Contains(prev.Degraded, "department")
	for _, f := range []struct {
		name     string
		missing  int
		expected bool
	}{{"title", title, true}, {"date", date, true}, {"department", dept, deptExpected}} {
		if !f.expected || f.missing*2 <= len(lp.Rows) || strings.Contains(run.Degraded, f.name+" missing") {
			continue
		}
		msg := fmt.Sprintf("%s missing on %d of %d list rows of page %d (%s; posts take it from their own pages)",
			f.name, f.missing, len(lp.Rows), page, listFieldHints[f.name])
		if run.Degraded != "" {
			run.Degraded += "; "
		}
		run.Degraded += msg
	}
}
