package msit

import (
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

func TestFindDate(t *testing.T) {
	nov5 := "2025-11-05"
	tests := []struct {
		name string
		in   string
		want string // YYYY-MM-DD, "" for no date
	}{
		{"ISO", "2025-11-05", nov5},
		{"dotted", "2025.11.05", nov5},
		{"dotted with a final dot (home page)", "2025.11.05.", nov5},
		{"dotted with spaces and no padding (Korean site)", "2025. 11. 5", nov5},
		{"slashes", "2025/11/05", nov5},
		{"one-digit month and day", "2025-1-5", "2025-01-05"},
		{"English abbreviated month (English lists)", "Nov 5, 2025", nov5},
		{"English full month", "November 5, 2025", nov5},
		{"English month with a dot", "Nov. 5, 2025", nov5},
		{"day before month", "5 Nov 2025", nov5},
		{"day before full month", "05 November 2025", nov5},
		{"Korean", "2025년 11월 5일", nov5},
		{"Korean without spaces", "2025년11월05일", nov5},
		{"in running text", "Registered on Nov 5, 2025 by the division", nov5},
		{"labelled", "등록일 : 2026. 10. 1", "2026-10-01"},
		{"Sept", "Sept 30, 2025", "2025-09-30"},
		{"upper case", "NOV 5, 2025", nov5},
		{"first of two dates", "2025-11-05 ~ 2025-12-01", nov5},
		{"earliest form wins", "5 Nov 2025, updated 2025-12-01", nov5},

		{"a year alone", "MSIT 2025 Budget", ""},
		{"month and year", "Nov 2025 newsletter", ""},
		{"a title that mentions a year and a month", "The 2025 Korea-UK dialogue in Nov 2025", ""},
		{"impossible day", "2025-02-30", ""},
		{"impossible English day", "Feb 30, 2025", ""},
		{"impossible month", "2025.13.01", ""},
		{"day zero", "2025.11.00", ""},
		{"mixed separators", "2025-11.05", ""},
		{"phone number", "044-202-4321", ""},
		{"long digit run", "12025-11-05", ""},
		{"month name inside a word", "Novel 5, 2025", ""},
		{"year before 1900", "1899-12-31", ""},
		{"version number", "v2.1.3", ""},
		{"empty", "", ""},
		{"Korean month and year only", "2025년 11월", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findDate(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("findDate(%q) = %v, want no date", tt.in, got)
				}
				return
			}
			if !ok {
				t.Fatalf("findDate(%q): no date, want %s", tt.in, tt.want)
			}
			if s := got.Format(time.DateOnly); s != tt.want || got.Location() != feeds.KST || got.Hour() != 0 {
				t.Fatalf("findDate(%q) = %v, want %s midnight KST", tt.in, got, tt.want)
			}
		})
	}
}
