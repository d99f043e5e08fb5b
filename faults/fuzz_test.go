package faults

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
	"github.com/msitfeed/msitfeed/mailer"
)

// The fuzz targets of this package; the other three (FuzzParseList,
// FuzzParseDetail, FuzzUnescape) live beside their code in feeds/msit.
// `go test` runs their seeds; a development run is
//
//	go test ./faults -run '^$' -fuzz '^FuzzImport$' -fuzztime 2m
//
// and a crasher it finds lands in testdata/fuzz/<target>/, where it stays as
// a regression case.

var (
	fuzzDBOnce sync.Once
	fuzzDB     *sql.DB
	fuzzDir    string
	fuzzDBErr  error
)

// importDB is one database per process for FuzzImport: opening and
// migrating one per input would make the fuzzer a benchmark of migrations.
func importDB(t *testing.T) *sql.DB {
	fuzzDBOnce.Do(func() {
		var err error
		if fuzzDir, err = os.MkdirTemp("", "msitfeed-fuzz-"); err != nil {
			fuzzDBErr = err
			return
		}
		fuzzDB, fuzzDBErr = db.Open(context.Background(), filepath.Join(fuzzDir, "fuzz.db"))
	})
	if fuzzDBErr != nil {
		t.Fatal(fuzzDBErr)
	}
	return fuzzDB
}

// FuzzImport feeds arbitrary files to (*mailer.Subscribers).Import, in
// all-or-nothing mode and with SkipInvalid: it must not panic, must store
// exactly what it reports as added (nothing at all when all-or-nothing
// fails), and must report each problem as one line with a line number in
// the file.
func FuzzImport(f *testing.F) {
	seeds := []string{
		"email,name,boards\nalice@example.org,Alice,press\nbob@example.org,,\n",
		"email\nnot-an-address\nok@example.org\n",
		"EMAIL,Status,created\n\"Jane Doe <jane@example.org>\",active,2024-05-01\n",
		"email,name\n\"carol@example.org\r\nBcc: x@y.org\",Carol\n",
		"email,boards\nuser@bücher.example,sports\n",
		"\xef\xbb\xbfemail,name\nren\xe9@example.org,Ren\xe9\n",
		"\xff\xfee\x00m\x00a\x00i\x00l\x00\n\x00",
		`[{"email":"a@example.org","boards":["press"]},{"email":"b@"}]`,
		"email,status,unsubscribed\nu@example.org,unsubscribed,2024-01-01T00:00:00Z\n",
		"email\n" + strings.Repeat("x", 300) + "@example.org\n",
		"email,name\n\"unterminated@example.org,\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, file []byte, skipInvalid bool) {
		d := importDB(t)
		ctx := context.Background()
		if _, err := d.ExecContext(ctx, `DELETE FROM subscribers`); err != nil {
			t.Fatal(err)
		}
		subs := mailer.NewSubscribers(d)
		rep, err := subs.Import(ctx, bytes.NewReader(file), mailer.ImportOptions{SkipInvalid: skipInvalid, MaxLine: 1024})
		var stored int
		if qerr := d.QueryRowContext(ctx, `SELECT count(*) FROM subscribers`).Scan(&stored); qerr != nil {
			t.Fatal(qerr)
		}
		switch {
		case err != nil && !errors.Is(err, mailer.ErrInvalidRows) && !errors.Is(err, mailer.ErrBadFile):
			t.Fatalf("unexpected kind of error: %v", err)
		case err != nil && !skipInvalid && stored != 0:
			t.Fatalf("all-or-nothing import failed (%v) but stored %d rows", err, stored)
		case stored != rep.Added:
			t.Fatalf("stored %d rows, reported %d added (err %v)", stored, rep.Added, err)
		case err == nil && !skipInvalid && len(rep.Errors) > 0:
			t.Fatalf("all-or-nothing import succeeded with %d invalid rows", len(rep.Errors))
		}
		lines := bytes.Count(file, []byte("\n")) + 1
		for _, le := range append(rep.Errors, rep.Notes...) {
			if le.Line < 1 || le.Line > lines {
				t.Fatalf("error on line %d of a %d-line file: %s", le.Line, lines, le.Msg)
			}
			if strings.ContainsAny(le.Msg, "\r\n") {
				t.Fatalf("line %d: error message spans lines: %q", le.Line, le.Msg)
			}
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error spans lines: %q", err)
		}
		// Every stored address is one the address parser accepts.
		rows, qerr := d.QueryContext(ctx, `SELECT email FROM subscribers`)
		if qerr != nil {
			t.Fatal(qerr)
		}
		defer rows.Close()
		for rows.Next() {
			var email string
			rows.Scan(&email)
			if a, perr := mailer.ParseAddress(email); perr != nil || a.Email != email {
				t.Fatalf("stored address %q does not parse back (%v, %q)", email, perr, a.Email)
			}
		}
	})
}

// tokenClock is the verifier's time in FuzzVerify.
var tokenClock = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// signedTokens signs a fixed set of tokens: the ones Verify may accept
// (valid at tokenClock, for their own purpose) and signed ones it must
// refuse (expired).
func signedTokens() (valid map[string]mailer.Purpose, expired []string) {
	key := []byte("fuzz-secret")
	now := mailer.NewTokens(key)
	now.Now = func() time.Time { return tokenClock }
	past := mailer.NewTokens(key)
	past.Now = func() time.Time { return tokenClock.Add(-30 * 24 * time.Hour) }
	valid = map[string]mailer.Purpose{}
	for _, p := range []mailer.Purpose{mailer.PurposeConfirm, mailer.PurposeUnsubscribe, mailer.PurposePreferences, "form"} {
		for _, uid := range []string{"0123456789abcdef0123456789abcdef", "subscribe", "x"} {
			valid[now.Sign(p, uid, 0)] = p
			valid[now.Sign(p, uid, time.Hour)] = p
			expired = append(expired, past.Sign(p, uid, time.Hour))
		}
	}
	return valid, expired
}

// FuzzVerify: (*mailer.Tokens).Verify must never accept a token it did not
// sign for that purpose and that has not expired — not a forgery, not a
// token for another purpose, not an expired one, and not another spelling
// of a signed token.
func FuzzVerify(f *testing.F) {
	valid, expired := signedTokens()
	for tok := range valid {
		f.Add(tok, uint8(0))
		f.Add(tok[:len(tok)-1], uint8(1))
	}
	for _, tok := range expired {
		f.Add(tok, uint8(2))
	}
	f.Add("", uint8(0))
	f.Add(".", uint8(1))
	f.Add("Y29uZmlybS54LjA.AAAA", uint8(0))
	verifier := mailer.NewTokens([]byte("fuzz-secret"))
	verifier.Now = func() time.Time { return tokenClock }
	purposes := []mailer.Purpose{mailer.PurposeConfirm, mailer.PurposeUnsubscribe, mailer.PurposePreferences, "form"}
	f.Fuzz(func(t *testing.T, token string, which uint8) {
		p := purposes[int(which)%len(purposes)]
		uid, err := verifier.Verify(p, token)
		if err != nil {
			if !errors.Is(err, mailer.ErrBadToken) {
				t.Fatalf("error %v is not ErrBadToken", err)
			}
			return
		}
		if vp, ok := valid[token]; !ok || vp != p {
			t.Fatalf("accepted %q for %s (uid %q): not a token signed for that purpose and valid now", token, p, uid)
		}
	})
}
