package db

import (
	"testing"
	"time"
)

func TestWithConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		t    time.Duration
		want string
	}{
		{"postgres://u@h/db", 3 * time.Second, "postgres://u@h/db?connect_timeout=3"},
		{"postgres://u@h/db", 0, "postgres://u@h/db?connect_timeout=5"},
		{"postgres://u@h/db", 1200 * time.Millisecond, "postgres://u@h/db?connect_timeout=1"},
		{"postgres://u@h/db?sslmode=disable", 2 * time.Second, "postgres://u@h/db?connect_timeout=2&sslmode=disable"},
		{"postgres://u@h/db?connect_timeout=9", 2 * time.Second, "postgres://u@h/db?connect_timeout=9"},
	} {
		if got := withConnectTimeout(tc.dsn, tc.t); got != tc.want {
			t.Errorf("withConnectTimeout(%q, %v) = %q, want %q", tc.dsn, tc.t, got, tc.want)
		}
	}
}
