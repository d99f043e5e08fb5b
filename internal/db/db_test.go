package db

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	for i := 0; i < 2; i++ {
		d, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n int
		if err := d.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		names, _ := migrations.ReadDir("migrations")
		if n != len(names) {
			t.Fatalf("open %d: %d migrations recorded, want %d", i, n, len(names))
		}
		var mode string
		d.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		var fk int
		d.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
		if mode != "wal" || fk != 1 {
			t.Fatalf("journal_mode %s foreign_keys %d, want wal and 1", mode, fk)
		}
		d.Close()
	}
}

func TestOpenRefusesWhatIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	content := []byte("this is not an SQLite file, and it must stay exactly as it is\n")
	os.WriteFile(junk, content, 0o600)
	if _, err := Open(context.Background(), junk); err == nil {
		t.Fatal("opened a file that is not a database")
	}
	got, _ := os.ReadFile(junk)
	if string(got) != string(content) {
		t.Fatal("a failed open changed the file")
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "missing", "dir", "x.db")); err == nil {
		t.Fatal("opened a database in a directory that does not exist")
	}
}

func TestLocks(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := Acquire(ctx, d, "digest", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Acquire(ctx, d, "digest", "b", time.Minute); !errors.Is(err, ErrLocked) {
		t.Fatalf("second owner: %v, want ErrLocked", err)
	}
	if err := Refresh(ctx, d, "digest", "b", time.Minute); !errors.Is(err, ErrLocked) {
		t.Fatalf("refresh by non-owner: %v, want ErrLocked", err)
	}
	if err := Release(ctx, d, "digest", "a"); err != nil {
		t.Fatal(err)
	}
	if err := Acquire(ctx, d, "digest", "b", -time.Second); err != nil {
		t.Fatalf("after release: %v", err)
	}
	// b's lock has already expired: a dead holder does not block forever.
	if err := Acquire(ctx, d, "digest", "a", time.Minute); err != nil {
		t.Fatalf("taking over an expired lock: %v", err)
	}
}
