package mailer_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// withKoreanBoard is the built-in boards and one of the Korean site added
// by configuration.
func withKoreanBoard(t testing.TB) *feeds.Registry {
	t.Helper()
	r, err := feeds.NewRegistry(feeds.Board{Slug: "bodo", Name: "보도자료", MID: "307", MPID: "208",
		SCode: "user", Dir: "/bbs", Lang: "ko"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSubscribers_ConfiguredBoards(t *testing.T) {
	ctx := context.Background()
	e := newDigestEnv(t, smtptest.Faults{})
	subs := mailer.NewSubscribers(e.db)
	subs.Boards = withKoreanBoard(t)

	t.Run("a subscriber can choose a configured board", func(t *testing.T) {
		sub, err := subs.Add(ctx, mailer.NewSubscriber{Address: "ko@example.org", Boards: []string{"BODO", "press"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"press", "bodo"}; !reflect.DeepEqual(sub.Boards, want) {
			t.Errorf("boards %v, want %v (registry order)", sub.Boards, want)
		}
		if sub, err = subs.SetBoards(ctx, sub.UID, []string{"bodo"}); err != nil || !reflect.DeepEqual(sub.Boards, []string{"bodo"}) {
			t.Errorf("SetBoards = %v, %v", sub.Boards, err)
		}
		list, err := subs.List(ctx, mailer.ListFilter{Board: "bodo"})
		if err != nil || len(list) != 1 || list[0].Email != "ko@example.org" {
			t.Errorf("List(bodo) = %v, %v", list, err)
		}
	})
	t.Run("without the registry the board is unknown and the error lists it with it", func(t *testing.T) {
		plain := mailer.NewSubscribers(e.db)
		if _, err := plain.Add(ctx, mailer.NewSubscriber{Address: "x@example.org", Boards: []string{"bodo"}}); !errors.Is(err, mailer.ErrBadBoard) {
			t.Errorf("err = %v, want ErrBadBoard", err)
		}
		_, err := subs.Add(ctx, mailer.NewSubscriber{Address: "y@example.org", Boards: []string{"sports"}})
		if !errors.Is(err, mailer.ErrBadBoard) || !strings.Contains(err.Error(), "bodo") {
			t.Errorf("err = %v, want ErrBadBoard listing bodo", err)
		}
	})
	t.Run("an import takes a configured board", func(t *testing.T) {
		rep, err := subs.Import(ctx, strings.NewReader("email,boards\nimp@example.org,\"bodo,notice\"\n"), mailer.ImportOptions{})
		if err != nil || rep.Added != 1 {
			t.Fatalf("import: %+v, %v", rep, err)
		}
		sub, err := subs.Get(ctx, "imp@example.org")
		if err != nil || !reflect.DeepEqual(sub.Boards, []string{"notice", "bodo"}) {
			t.Errorf("imported %v, %v", sub.Boards, err)
		}
	})
	t.Run("ParseBoardsFor reads a configured board and all", func(t *testing.T) {
		got, err := mailer.ParseBoardsFor(subs.Boards, " bodo , photo")
		if err != nil || !reflect.DeepEqual(got, []string{"photo", "bodo"}) {
			t.Errorf("got %v, %v", got, err)
		}
		if got, err := mailer.ParseBoardsFor(subs.Boards, "all"); got != nil || err != nil {
			t.Errorf("all = %v, %v", got, err)
		}
	})
}

func TestDigest_ConfiguredBoardIsGroupedAfterTheBuiltInOnesWithItsName(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.addSubscriber("all@example.org", "", "", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	e.addSubscriber("ko@example.org", "", "bodo", mailer.StatusActive, e.now.Add(-30*24*time.Hour))
	e.addItem("bodo", "인공지능 기본계획", e.now, e.now.Add(-2*time.Hour))
	e.addItem("press", "Press post", e.now, e.now.Add(-time.Hour))
	m := e.mailer()
	m.Boards = withKoreanBoard(t)
	ctx := context.Background()

	pv, err := m.Preview(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	press, bodo := strings.Index(pv.Text, "Press post"), strings.Index(pv.Text, "인공지능 기본계획")
	if pv.Items != 2 || press < 0 || bodo < press {
		t.Errorf("want Press Releases before the configured board:\n%s", pv.Text)
	}
	if !strings.Contains(pv.Text, "보도자료") {
		t.Errorf("the configured board's name is missing:\n%s", pv.Text)
	}
	pv, err = m.Preview(ctx, "ko@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Items != 1 || strings.Contains(pv.Text, "Press post") || !strings.Contains(pv.Text, "인공지능 기본계획") {
		t.Errorf("preview for a bodo subscriber: %d items\n%s", pv.Items, pv.Text)
	}
	res := e.mustSend(m)
	if res.Sent() != 2 {
		t.Errorf("sent %d, want 2", res.Sent())
	}
	var ko bool
	for _, raw := range e.smtp.Messages() {
		if bytes.Contains(raw.Data, []byte("ko@example.org")) {
			ko = true
		}
	}
	if !ko {
		t.Error("the bodo subscriber got no digest")
	}
}
