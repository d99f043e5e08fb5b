package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"strings"
	"testing"
)

func TestSubscribers_KeepAKeywordFilter(t *testing.T) {
	dbtest.Each(t, subscribersKeepAKeywordFilter)
}

func subscribersKeepAKeywordFilter(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	s, _ := openSubscribersOn(t, engine)
	sub := mustAdd(t, s, NewSubscriber{Address: "kim@example.kr", Boards: []string{"press"}, Match: "  AI|6G ", Status: StatusActive})
	if sub.Match != "AI|6G" {
		t.Errorf("Add stored match %q, want it trimmed", sub.Match)
	}
	if got, _ := s.Get(ctx, "kim@example.kr"); got.Match != "AI|6G" {
		t.Errorf("Get: match %q", got.Match)
	}
	for _, tc := range []struct{ set, want string }{
		{"(?i)quantum", "(?i)quantum"},
		{"", ""},
		{"반도체|semiconductor", "반도체|semiconductor"},
	} {
		got, err := s.SetMatch(ctx, sub.UID, tc.set)
		if err != nil || got.Match != tc.want {
			t.Errorf("SetMatch(%q): %q, %v", tc.set, got.Match, err)
		}
		if again, _ := s.Get(ctx, "kim@example.kr"); again.Match != tc.want || !equalStrings(again.Boards, []string{"press"}) {
			t.Errorf("after SetMatch(%q): match %q, boards %v", tc.set, again.Match, again.Boards)
		}
	}
	got, err := s.SetPreferences(ctx, sub.UID, []string{"notice", "press"}, "6G")
	if err != nil || got.Match != "6G" || !equalStrings(got.Boards, []string{"notice", "press"}) {
		t.Errorf("SetPreferences: %+v, %v", got, err)
	}

	for _, bad := range []string{"(AI", "a{2000}", strings.Repeat("x", 513)} {
		if _, err := s.SetMatch(ctx, sub.UID, bad); !errors.Is(err, ErrBadMatch) || strings.Contains(err.Error(), "\n") {
			t.Errorf("SetMatch(%.20q): %v, want ErrBadMatch in one line", bad, err)
		}
		if _, err := s.Add(ctx, NewSubscriber{Address: "new@example.org", Match: bad}); !errors.Is(err, ErrBadMatch) {
			t.Errorf("Add with match %.20q: %v", bad, err)
		}
		if _, err := s.SetPreferences(ctx, sub.UID, nil, bad); !errors.Is(err, ErrBadMatch) {
			t.Errorf("SetPreferences with match %.20q: %v", bad, err)
		}
	}
	if again, _ := s.Get(ctx, "kim@example.kr"); again.Match != "6G" {
		t.Errorf("a refused match changed the stored one to %q", again.Match)
	}
	if _, err := s.Get(ctx, "new@example.org"); !errors.Is(err, ErrNoSubscriber) {
		t.Errorf("Add with a bad match stored the subscriber: %v", err)
	}
	if _, err := CheckMatch("(AI"); err == nil || err.Error() != `bad match "(AI": missing closing )` {
		t.Errorf("CheckMatch: %v", err)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// The match column goes out with export, CSV and JSON, and comes back with
// import; a bad one is the line's error.
func TestCSV_MatchColumnRoundTrips(t *testing.T) {
	dbtest.Each(t, cSVMatchColumnRoundTrips)
}

func cSVMatchColumnRoundTrips(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	src, _ := openSubscribersOn(t, engine)
	in := "email,boards,match\n" +
		"a@example.org,press,\"AI|6G\"\n" +
		"b@example.org,,\"(?i)quantum, computing\"\n" +
		"c@example.org,notice,\n"
	rep, err := src.Import(ctx, strings.NewReader(in), ImportOptions{})
	if err != nil || rep.Added != 3 {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	for _, format := range []string{"csv", "json"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			if err := src.Export(ctx, &out, format); err != nil {
				t.Fatal(err)
			}
			if format == "csv" && !strings.HasPrefix(out.String(), "email,name,boards,status,origin,created,confirmed,unsubscribed,match\n") {
				t.Errorf("CSV header:\n%s", out.String())
			}
			if format == "json" {
				var rows []map[string]any
				if err := json.Unmarshal(out.Bytes(), &rows); err != nil || rows[0]["match"] != "AI|6G" || rows[1]["match"] != "(?i)quantum, computing" {
					t.Errorf("JSON (%v):\n%s", err, out.String())
				}
				if _, has := rows[2]["match"]; has {
					t.Errorf("JSON writes an empty match:\n%s", out.String())
				}
			}
			dst, _ := openSubscribersOn(t, engine)
			if _, err := dst.Import(ctx, &out, ImportOptions{}); err != nil {
				t.Fatal(err)
			}
			for email, want := range map[string]string{"a@example.org": "AI|6G", "b@example.org": "(?i)quantum, computing", "c@example.org": ""} {
				if got, err := dst.Get(ctx, email); err != nil || got.Match != want {
					t.Errorf("%s: match %q (%v), want %q", email, got.Match, err, want)
				}
			}
		})
	}

	bad := "email,match\nok@example.org,AI\nbad@example.org,(AI\nlong@example.org," + strings.Repeat("x", 600) + "\n"
	dst, _ := openSubscribersOn(t, engine)
	rep, err = dst.Import(ctx, strings.NewReader(bad), ImportOptions{})
	if !errors.Is(err, ErrInvalidRows) || rep.Added != 0 {
		t.Fatalf("import of bad matches: %+v, %v", rep, err)
	}
	got := lineErrors(rep.Errors)
	if len(got) != 2 || got[0] != `3: bad match "(AI": missing closing )` ||
		!strings.HasPrefix(got[1], `4: bad match "xxxx`) || !strings.HasSuffix(got[1], "the pattern is 600 bytes, longer than the 512 allowed") {
		t.Errorf("errors %q", got)
	}
	jsonIn := `[{"email": "j@example.org", "match": "6G"}, {"email": "k@example.org", "match": "(6G"}]`
	rep, err = dst.Import(ctx, strings.NewReader(jsonIn), ImportOptions{SkipInvalid: true})
	if err != nil || rep.Added != 1 || len(rep.Errors) != 1 || rep.Errors[0].Line != 1 || !strings.Contains(rep.Errors[0].Msg, "bad match") {
		t.Errorf("JSON import: %+v, %v", rep, err)
	}
	if got, _ := dst.Get(ctx, "j@example.org"); got.Match != "6G" {
		t.Errorf("JSON import: match %q", got.Match)
	}
}
