package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/internal/db/dbtest"
	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// TestDigestPeriodsFollowCommitOrder stores posts through one database
// handle (a crawl, as another process would) while another handle makes
// and sends a digest, round after round with no sleeps: every post ends up
// in exactly one digest, none in two and none in none.
func TestDigestPeriodsFollowCommitOrder(t *testing.T) {
	dbtest.Each(t, digestPeriodsFollowCommitOrder)
}

func digestPeriodsFollowCommitOrder(t *testing.T, engine db.Engine) {
	const rounds = 300
	e := newDigestEnvOn(t, engine, smtptest.Faults{})
	e.addSubscriber("reader@example.org", "", "", mailer.StatusActive, time.Now().Add(-30*24*time.Hour))
	m := e.mailer()
	m.Now = time.Now

	crawlDB, err := db.Open(context.Background(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer crawlDB.Close()
	crawl := feeds.NewStore(crawlDB)

	slugs := feeds.BoardSlugs()
	var keys []string
	for round := range rounds {
		// Each round stores one to three posts while a digest is made.
		batch := 1 + round%3
		var wg sync.WaitGroup
		var saveErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range batch {
				id := int64(10000 + 10*round + j)
				it := feeds.Item{Board: slugs[int(id)%len(slugs)], ID: id, Title: fmt.Sprintf("Post %d", id),
					URL: fmt.Sprintf("https://www.msit.go.kr/eng/bbs/view.do?nttSeqNo=%d", id), Published: time.Now()}
				if _, err := crawl.Save(context.Background(), it, ""); err != nil {
					saveErr = err
					return
				}
			}
		}()
		if _, err := m.SendDigest(context.Background()); err != nil {
			t.Fatalf("send in round %d: %v", round, err)
		}
		wg.Wait()
		if saveErr != nil {
			t.Fatalf("store in round %d: %v", round, saveErr)
		}
		for j := range batch {
			id := 10000 + 10*round + j
			keys = append(keys, fmt.Sprintf("%s/%d", slugs[id%len(slugs)], id))
		}
	}
	if _, err := m.SendDigest(context.Background()); err != nil { // what the last round stored after its digest
		t.Fatal(err)
	}

	seen := map[string]int{}
	rows, err := e.db.Query(`SELECT items FROM digests ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	digests := 0
	for rows.Next() {
		var js string
		var in []string
		if err := rows.Scan(&js); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(js), &in); err != nil {
			t.Fatal(err)
		}
		for _, k := range in {
			seen[k]++
		}
		digests++
	}
	rows.Close()
	twice, none := 0, 0
	for _, k := range keys {
		switch seen[k] {
		case 0:
			none++
		case 1:
		default:
			twice++
		}
	}
	if none != 0 || twice != 0 || len(seen) != len(keys) {
		t.Errorf("%d posts in no digest, %d in more than one, %d distinct in digests; want each of %d once", none, twice, len(seen), len(keys))
	}
	if digests < rounds/2 {
		t.Errorf("only %d digests in %d rounds: stores and digests did not interleave", digests, rounds)
	}
	if n := e.smtp.Count(); n != digests {
		t.Errorf("%d messages for %d digests to one reader", n, digests)
	}
	t.Logf("%d posts in %d rounds, %d digests", len(keys), rounds, digests)
}
