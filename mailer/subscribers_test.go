package mailer

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
)

// subscriberClock is the fixed time the store tests run at.
var subscriberClock = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// openSubscribers returns a store over a fresh database in a temp directory,
// with its clock fixed at subscriberClock.
func openSubscribers(t testing.TB) (*Subscribers, *sql.DB) {
	t.Helper()
	return openSubscribersOn(t, db.SQLite)
}

func TestMain(m *testing.M) { dbtest.Main(m) }

// openSubscribersOn is openSubscribers on a fresh database of engine.
func openSubscribersOn(t testing.TB, engine db.Engine) (*Subscribers, *sql.DB) {
	t.Helper()
	d, err := db.Open(context.Background(), dbtest.DSN(t, engine))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s := NewSubscribers(d)
	s.Now = func() time.Time { return subscriberClock }
	return s, d
}

func mustAdd(t *testing.T, s *Subscribers, n NewSubscriber) Subscriber {
	t.Helper()
	sub, err := s.Add(context.Background(), n)
	if err != nil {
		t.Fatalf("Add(%+v): %v", n, err)
	}
	return sub
}

func countRows(t testing.TB, d *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := d.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSubscribers_Add(t *testing.T) {
	dbtest.Each(t, subscribersAdd)
}

func subscribersAdd(t *testing.T, engine db.Engine) {
	ctx := context.Background()

	t.Run("a new address is stored normalised and pending", func(t *testing.T) {
		s, _ := openSubscribersOn(t, engine)
		got := mustAdd(t, s, NewSubscriber{Address: "Jane Doe <Jane@Bücher.Example>", Boards: []string{"press", " Notice "}})
		if got.Email != "Jane@xn--bcher-kva.example" || got.Name != "Jane Doe" || got.Status != StatusPending || got.Origin != OriginCLI {
			t.Errorf("Add = %+v", got)
		}
		if want := []string{"notice", "press"}; !reflect.DeepEqual(got.Boards, want) {
			t.Errorf("boards = %v, want %v (display order)", got.Boards, want)
		}
		if !got.Confirmed.IsZero() || !got.Created.Equal(subscriberClock) || got.UID == "" || got.ID == 0 {
			t.Errorf("times or ids wrong: %+v", got)
		}
		back, err := s.Get(ctx, "JANE@bücher.example")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, got) {
			t.Errorf("Get = %+v\nAdd = %+v", back, got)
		}
	})

	t.Run("an explicit name wins over the display name", func(t *testing.T) {
		s, _ := openSubscribersOn(t, engine)
		got := mustAdd(t, s, NewSubscriber{Address: "Jane <j@example.org>", Name: "J. Doe", Status: StatusActive})
		if got.Name != "J. Doe" || got.Status != StatusActive || !got.Confirmed.Equal(subscriberClock) {
			t.Errorf("Add = %+v", got)
		}
	})

	t.Run("a name with a line break is rejected", func(t *testing.T) {
		s, _ := openSubscribersOn(t, engine)
		if _, err := s.Add(ctx, NewSubscriber{Address: "j@example.org", Name: "J\r\nBcc: x@example.org"}); err == nil {
			t.Error("Add accepted a name with CR/LF")
		}
	})

	t.Run("an unknown board is rejected", func(t *testing.T) {
		s, _ := openSubscribersOn(t, engine)
		_, err := s.Add(ctx, NewSubscriber{Address: "j@example.org", Boards: []string{"press", "sports"}})
		if !errors.Is(err, ErrBadBoard) || !strings.Contains(err.Error(), `"sports"`) {
			t.Errorf("err = %v, want ErrBadBoard naming sports", err)
		}
	})

	t.Run("an invalid address is rejected", func(t *testing.T) {
		s, d := openSubscribersOn(t, engine)
		if _, err := s.Add(ctx, NewSubscriber{Address: "jane@"}); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("err = %v, want ErrInvalidAddress", err)
		}
		if n := countRows(t, d, "subscribers"); n != 0 {
			t.Errorf("%d rows stored", n)
		}
	})

	for _, st := range []Status{StatusPending, StatusActive} {
		t.Run("adding a "+string(st)+" address again in another case gives ErrExists", func(t *testing.T) {
			s, d := openSubscribersOn(t, engine)
			first := mustAdd(t, s, NewSubscriber{Address: "j@example.org", Status: st})
			for _, force := range []bool{false, true} {
				old, err := s.Add(ctx, NewSubscriber{Address: "J@EXAMPLE.ORG", Force: force})
				if !errors.Is(err, ErrExists) {
					t.Errorf("force=%v: err = %v, want ErrExists", force, err)
				}
				if old.ID != first.ID {
					t.Errorf("force=%v: returned %+v, want the existing subscriber", force, old)
				}
			}
			if n := countRows(t, d, "subscribers"); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
		})
	}
}

func TestSubscribers_Suppression(t *testing.T) {
	dbtest.Each(t, subscribersSuppression)
}

func subscribersSuppression(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	for _, tt := range []struct {
		name     string
		suppress func(t *testing.T, s *Subscribers, d *sql.DB, sub Subscriber)
		status   Status
	}{
		{"an unsubscribed address", func(t *testing.T, s *Subscribers, d *sql.DB, sub Subscriber) {
			if _, err := s.Remove(ctx, sub.Email); err != nil {
				t.Fatal(err)
			}
		}, StatusUnsubscribed},
		{"a bounced address", func(t *testing.T, s *Subscribers, d *sql.DB, sub Subscriber) {
			// The ledger marks bounces; do what it does.
			if _, err := d.Exec(`UPDATE subscribers SET status = 'bounced', bounces = 3 WHERE id = $1`, sub.ID); err != nil {
				t.Fatal(err)
			}
		}, StatusBounced},
	} {
		t.Run(tt.name+" needs force to be added again", func(t *testing.T) {
			s, d := openSubscribersOn(t, engine)
			sub := mustAdd(t, s, NewSubscriber{Address: "j@example.org", Status: StatusActive, Boards: []string{"press"}})
			tt.suppress(t, s, d, sub)

			old, err := s.Add(ctx, NewSubscriber{Address: "J@example.org", Status: StatusActive})
			if !errors.Is(err, ErrSuppressed) || old.Status != tt.status {
				t.Fatalf("Add without force: %+v, %v; want ErrSuppressed and status %s", old, err, tt.status)
			}
			if got, _ := s.Get(ctx, "j@example.org"); got.Status != tt.status {
				t.Fatalf("after refused add, status = %s", got.Status)
			}

			s.Now = func() time.Time { return subscriberClock.Add(time.Hour) }
			again, err := s.Add(ctx, NewSubscriber{Address: "j@example.org", Force: true})
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != sub.ID || again.UID != sub.UID || again.Status != StatusPending || again.Boards != nil ||
				!again.Unsubscribed.IsZero() || again.Bounces != 0 || !again.Created.Equal(subscriberClock.Add(time.Hour)) {
				t.Errorf("forced add = %+v", again)
			}
			if n := countRows(t, d, "subscribers"); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
		})
	}

	t.Run("purge erases the address and its deliveries, and lifts the suppression", func(t *testing.T) {
		s, d := openSubscribersOn(t, engine)
		sub := mustAdd(t, s, NewSubscriber{Address: "Jane <jane@example.org>", Status: StatusActive})
		keep := mustAdd(t, s, NewSubscriber{Address: "other@example.org", Status: StatusActive})
		if _, err := d.Exec(`INSERT INTO digests (id, period_start, period_end, items, created) VALUES (1, '', '', '[]', '')`); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{sub.ID, keep.ID} {
			if _, err := d.Exec(`INSERT INTO deliveries (digest_id, subscriber_id, message_id, status, last_error) VALUES (1, $1, 'm', 'failed', '550 <jane@example.org> unknown')`, id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Remove(ctx, "jane@example.org"); err != nil {
			t.Fatal(err)
		}
		// PostgreSQL cannot promise the bytes are gone (db.ErrNotErasable):
		// the rows are deleted and Purge says so.
		if err := s.Purge(ctx, "JANE@example.org"); err != nil && !(engine == db.Postgres && errors.Is(err, ErrNotErased)) {
			t.Fatal(err)
		}
		var n int
		d.QueryRow(`SELECT count(*) FROM subscribers WHERE email_key LIKE '%jane%' OR name LIKE '%Jane%'`).Scan(&n)
		if n != 0 {
			t.Errorf("%d subscriber rows still hold the address", n)
		}
		d.QueryRow(`SELECT count(*) FROM deliveries WHERE subscriber_id = $1`, sub.ID).Scan(&n)
		if n != 0 {
			t.Errorf("%d delivery rows of the purged subscriber remain", n)
		}
		if got := countRows(t, d, "deliveries"); got != 1 {
			t.Errorf("%d delivery rows, want the other subscriber's 1", got)
		}
		if _, err := s.Get(ctx, "jane@example.org"); !errors.Is(err, ErrNoSubscriber) {
			t.Errorf("Get after purge: %v, want ErrNoSubscriber", err)
		}
		if _, err := s.Add(ctx, NewSubscriber{Address: "jane@example.org"}); err != nil {
			t.Errorf("Add after purge: %v (a purged address is no longer suppressed)", err)
		}
	})

	t.Run("purging an unknown address says so", func(t *testing.T) {
		s, _ := openSubscribersOn(t, engine)
		if err := s.Purge(ctx, "nobody@example.org"); !errors.Is(err, ErrNoSubscriber) {
			t.Errorf("err = %v, want ErrNoSubscriber", err)
		}
	})
}

func TestSubscribers_Lifecycle(t *testing.T) {
	dbtest.Each(t, subscribersLifecycle)
}

func subscribersLifecycle(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	s, _ := openSubscribersOn(t, engine)
	sub := mustAdd(t, s, NewSubscriber{Address: "j@example.org"})

	t.Run("confirm makes a pending subscriber active", func(t *testing.T) {
		s.Now = func() time.Time { return subscriberClock.Add(time.Minute) }
		got, err := s.Confirm(ctx, sub.UID)
		if err != nil || got.Status != StatusActive || !got.Confirmed.Equal(subscriberClock.Add(time.Minute)) {
			t.Fatalf("Confirm = %+v, %v", got, err)
		}
	})
	t.Run("confirming again changes nothing", func(t *testing.T) {
		s.Now = func() time.Time { return subscriberClock.Add(time.Hour) }
		got, err := s.Confirm(ctx, sub.UID)
		if err != nil || !got.Confirmed.Equal(subscriberClock.Add(time.Minute)) {
			t.Fatalf("Confirm = %+v, %v", got, err)
		}
	})
	t.Run("set boards validates and orders them", func(t *testing.T) {
		got, err := s.SetBoards(ctx, sub.UID, []string{"newsletter", "press", "press"})
		if err != nil || !reflect.DeepEqual(got.Boards, []string{"press", "newsletter"}) {
			t.Fatalf("SetBoards = %v, %v", got.Boards, err)
		}
		if _, err := s.SetBoards(ctx, sub.UID, []string{"nope"}); !errors.Is(err, ErrBadBoard) {
			t.Errorf("SetBoards(nope) err = %v", err)
		}
		got, err = s.SetBoards(ctx, sub.UID, []string{"all"})
		if err != nil || got.Boards != nil {
			t.Fatalf("SetBoards(all) = %v, %v", got.Boards, err)
		}
	})
	t.Run("unsubscribe keeps the record and its first time", func(t *testing.T) {
		got, err := s.Unsubscribe(ctx, sub.UID)
		if err != nil || got.Status != StatusUnsubscribed || !got.Unsubscribed.Equal(subscriberClock.Add(time.Hour)) {
			t.Fatalf("Unsubscribe = %+v, %v", got, err)
		}
		s.Now = func() time.Time { return subscriberClock.Add(2 * time.Hour) }
		got, err = s.Unsubscribe(ctx, sub.UID)
		if err != nil || !got.Unsubscribed.Equal(subscriberClock.Add(time.Hour)) {
			t.Fatalf("second Unsubscribe = %+v, %v", got, err)
		}
	})
	t.Run("an old confirmation link cannot undo an unsubscribe", func(t *testing.T) {
		if _, err := s.Confirm(ctx, sub.UID); !errors.Is(err, ErrSuppressed) {
			t.Errorf("Confirm err = %v, want ErrSuppressed", err)
		}
	})
	t.Run("an unknown uid is not found", func(t *testing.T) {
		if _, err := s.GetByUID(ctx, "nope"); !errors.Is(err, ErrNoSubscriber) {
			t.Errorf("err = %v", err)
		}
		if _, err := s.Confirm(ctx, "nope"); !errors.Is(err, ErrNoSubscriber) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSubscribers_List(t *testing.T) {
	dbtest.Each(t, subscribersList)
}

func subscribersList(t *testing.T, engine db.Engine) {
	ctx := context.Background()
	s, _ := openSubscribersOn(t, engine)
	mustAdd(t, s, NewSubscriber{Address: "c@example.org", Status: StatusActive, Boards: []string{"press"}})
	mustAdd(t, s, NewSubscriber{Address: "a@example.org", Status: StatusActive})
	mustAdd(t, s, NewSubscriber{Address: "b@example.org", Boards: []string{"notice", "photo"}})
	mustAdd(t, s, NewSubscriber{Address: "d@example.org", Status: StatusActive, Boards: []string{"photo"}})
	if _, err := s.Remove(ctx, "d@example.org"); err != nil {
		t.Fatal(err)
	}

	emails := func(subs []Subscriber) string {
		var out []string
		for _, s := range subs {
			out = append(out, s.Email)
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct {
		name   string
		filter ListFilter
		want   string
	}{
		{"no filter lists everyone by address", ListFilter{}, "a@example.org b@example.org c@example.org d@example.org"},
		{"a status filter", ListFilter{Status: StatusActive}, "a@example.org c@example.org"},
		{"a board filter includes all-board subscribers", ListFilter{Board: "photo"}, "a@example.org b@example.org d@example.org"},
		{"a board filter does not match a prefix", ListFilter{Board: "notice"}, "a@example.org b@example.org"},
		{"both filters", ListFilter{Status: StatusActive, Board: "press"}, "a@example.org c@example.org"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if emails(got) != tt.want {
				t.Errorf("List(%+v) = %s, want %s", tt.filter, emails(got), tt.want)
			}
		})
	}
	t.Run("a bad filter is an error", func(t *testing.T) {
		if _, err := s.List(ctx, ListFilter{Board: "sport"}); !errors.Is(err, ErrBadBoard) {
			t.Errorf("err = %v", err)
		}
		if _, err := s.List(ctx, ListFilter{Status: "gone"}); err == nil {
			t.Error("no error for an unknown status")
		}
	})
	t.Run("active lists active subscribers in id order", func(t *testing.T) {
		got, err := s.Active(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if emails(got) != "c@example.org a@example.org" {
			t.Errorf("Active = %s", emails(got))
		}
	})
}

func TestParseBoards(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"all", nil, false},
		{"ALL", nil, false},
		{"press", []string{"press"}, false},
		{" Press , notice,,", []string{"notice", "press"}, false},
		{"press,all", nil, false},
		{"press,sport", nil, true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBoards(tt.in)
			if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseBoards(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}
