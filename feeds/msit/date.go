package msit

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// The platform writes one calendar day in many ways: 2025-11-05,
// 2025.11.05, 2025.11.05. (home page), 2025. 11. 5 (Korean site),
// 2025/11/05, Nov 5, 2025 and November 5, 2025 (English lists), 5 Nov 2025,
// and 2025년 11월 5일. Every form is a day in Korea, with no time.
var (
	numericDate = regexp.MustCompile(`(?:^|[^0-9])([0-9]{4})[ \t]*([-./])[ \t]*([0-9]{1,2})[ \t]*([-./])[ \t]*([0-9]{1,2})(?:[^0-9]|$)`)
	monthName   = `(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)`
	monthDay    = regexp.MustCompile(`(?i)\b` + monthName + `\.?[ \t]+([0-9]{1,2})(?:st|nd|rd|th)?,?[ \t]+([0-9]{4})\b`)
	dayMonth    = regexp.MustCompile(`(?i)\b([0-9]{1,2})(?:st|nd|rd|th)?[ \t]+` + monthName + `\.?,?[ \t]+([0-9]{4})\b`)
	koreanDate  = regexp.MustCompile(`([0-9]{4})[ \t]*년[ \t]*([0-9]{1,2})[ \t]*월[ \t]*([0-9]{1,2})[ \t]*일`)
)

// findDate returns the first calendar day written in s in any of the
// platform's forms, as midnight in KST. A year alone, a month and year
// ("Nov 2025") or an impossible day (2025-02-30) is no date.
func findDate(s string) (time.Time, bool) {
	if len(s) < 8 {
		return time.Time{}, false
	}
	best, bestAt := time.Time{}, len(s)
	try := func(at int, y, m, d string) {
		if at >= bestAt {
			return
		}
		if t, ok := makeDate(y, m, d); ok {
			best, bestAt = t, at
		}
	}
	for _, loc := range numericDate.FindAllStringSubmatchIndex(s, -1) {
		if s[loc[4]:loc[5]] != s[loc[8]:loc[9]] {
			continue // 2025-11.05 mixes separators: no date
		}
		if _, ok := makeDate(s[loc[2]:loc[3]], s[loc[6]:loc[7]], s[loc[10]:loc[11]]); ok {
			try(loc[2], s[loc[2]:loc[3]], s[loc[6]:loc[7]], s[loc[10]:loc[11]])
			break
		}
	}
	if m := monthDay.FindStringSubmatchIndex(s); m != nil {
		try(m[0], s[m[6]:m[7]], monthNumber(s[m[2]:m[3]]), s[m[4]:m[5]])
	}
	if m := dayMonth.FindStringSubmatchIndex(s); m != nil {
		try(m[0], s[m[6]:m[7]], monthNumber(s[m[4]:m[5]]), s[m[2]:m[3]])
	}
	if m := koreanDate.FindStringSubmatchIndex(s); m != nil {
		try(m[0], s[m[2]:m[3]], s[m[4]:m[5]], s[m[6]:m[7]])
	}
	return best, bestAt < len(s)
}

// monthNumber turns an English month name or abbreviation into "1".."12".
func monthNumber(name string) string {
	name = strings.ToLower(name)
	for i, m := range []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"} {
		if strings.HasPrefix(name, m) {
			return strconv.Itoa(i + 1)
		}
	}
	return ""
}

// makeDate checks that y-m-d is a real day from 1900 on and returns it as
// midnight in KST.
func makeDate(ys, ms, ds string) (time.Time, bool) {
	y, err1 := strconv.Atoi(ys)
	m, err2 := strconv.Atoi(ms)
	d, err3 := strconv.Atoi(ds)
	if err1 != nil || err2 != nil || err3 != nil || y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, feeds.KST)
	if t.Day() != d {
		return time.Time{}, false // 2025-02-30
	}
	return t, true
}
