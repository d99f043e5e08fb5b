package mailer

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkReimport imports a file whose every address is already stored
// (a note a row), on SQLite: the case bench/subscribers.sh calls the
// re-import, at 20,000 rows: enough for a CPU profile
// (go test ./mailer -run X -bench Reimport -cpuprofile cpu.out).
func BenchmarkReimport(b *testing.B) {
	ctx := context.Background()
	var sb strings.Builder
	sb.WriteString("email,name,boards\n")
	for i := range 20000 {
		fmt.Fprintf(&sb, "reader%06d@example%d.org,Reader %d,press\n", i, i%97, i)
	}
	file := sb.String()
	s, _ := openSubscribers(b)
	if _, err := s.Import(ctx, strings.NewReader(file), ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := s.Import(ctx, strings.NewReader(file), ImportOptions{Report: func(LineError) {}})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Skipped != 20000 {
			b.Fatalf("skipped %d, want 20000", rep.Skipped)
		}
	}
}
