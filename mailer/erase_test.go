package mailer_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// TestPurgeErasesTheAddressFromTheFiles: after subscribers remove --purge
// the address is in neither the database file nor its write-ahead log, not
// even in free pages.
func TestPurgeErasesTheAddressFromTheFiles(t *testing.T) {
	const addr = "Erase.Me.Please@Example.org"
	e := newDigestEnv(t, smtptest.Faults{})
	e.addSubscriber(addr, "Erase Me Please", "", mailer.StatusActive, e.now.Add(-48*time.Hour))
	e.addSubscriber("keep@example.org", "", "", mailer.StatusActive, e.now.Add(-48*time.Hour))
	e.addItem("press", "A post", e.now, e.now.Add(-time.Hour))
	m := e.mailer()
	e.mustSend(m)

	needles := [][]byte{[]byte("Erase.Me.Please"), []byte("erase.me.please"), []byte("Erase Me Please")}
	found := func() []string {
		var where []string
		for _, f := range []string{e.path, e.path + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					where = append(where, f+": "+string(n))
				}
			}
		}
		return where
	}
	if len(found()) == 0 {
		t.Fatal("the address is in neither file before the purge: the test would prove nothing")
	}
	if err := mailer.NewSubscribers(e.db).Purge(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	if where := found(); len(where) > 0 {
		t.Errorf("the purged address is still readable in %v", where)
	}
	if st, err := os.Stat(e.path + "-wal"); err == nil && st.Size() != 0 {
		t.Errorf("write-ahead log is %d bytes after the purge, want truncated", st.Size())
	}
	var n int
	e.db.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&n)
	if n != 1 {
		t.Errorf("%d subscribers left, want the other one", n)
	}
}
