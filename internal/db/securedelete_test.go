package db

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSecureDelete measures what secure_delete costs the writes that
// delete or overwrite (an item update replaces its attachments; a purge
// deletes a subscriber): each op stores a 2 KB row and deletes it, in a
// database opened as Open opens it, with secure_delete off (the baseline)
// and on.
func BenchmarkSecureDelete(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			q := url.Values{}
			q.Add("_pragma", "journal_mode(WAL)")
			q.Add("_pragma", "synchronous(NORMAL)")
			if mode == "on" {
				q.Add("_pragma", "secure_delete(1)")
			} else {
				q.Add("_pragma", "secure_delete(0)")
			}
			q.Set("_txlock", "immediate")
			d, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "b.db")+"?"+q.Encode())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			if _, err := d.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
				b.Fatal(err)
			}
			payload := strings.Repeat("x", 2048)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := d.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, i, payload); err != nil {
					b.Fatal(err)
				}
				if _, err := d.ExecContext(ctx, `DELETE FROM t WHERE id = ?`, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
