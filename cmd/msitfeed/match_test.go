package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A subscriber's keyword filter through the CLI: add --match, set --match
// (and --match ” to clear), show, list, export and import; a bad pattern
// is a one-line usage error (exit 2) that changes nothing.
func TestSubscribers_Match(t *testing.T) {
	e := newSubscribersEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // stdout
	}{
		{"add with a filter", []string{"subscribers", "add", "kim@example.kr", "--boards", "press", "--match", "AI|6G", "--confirmed"},
			"added kim@example.kr (active); boards: press; only posts matching AI|6G\n"},
		{"add pending with a filter mails the confirmation", []string{"subscribers", "add", "lee@example.kr", "--match", "(?i)quantum"},
			"lee@example.kr added as pending; confirmation mail sent; boards: all; only posts matching (?i)quantum\n"},
		{"set the filter alone keeps the boards", []string{"subscribers", "set", "kim@example.kr", "--match", "(?i)semiconductor|반도체"},
			"kim@example.kr (active) now receives: press; only posts matching (?i)semiconductor|반도체\n"},
		{"set the boards alone keeps the filter", []string{"subscribers", "set", "kim@example.kr", "--boards", "notice,press"},
			"kim@example.kr (active) now receives: notice,press; only posts matching (?i)semiconductor|반도체\n"},
		{"set both", []string{"subscribers", "set", "kim@example.kr", "--boards", "all", "--match", "6G"},
			"kim@example.kr (active) now receives: all; only posts matching 6G\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := e.ok(t, tc.args...); out != tc.want {
				t.Errorf("printed %q, want %q", out, tc.want)
			}
		})
	}
	if out := e.ok(t, "subscribers", "show", "kim@example.kr"); !strings.Contains(out, "match:         6G\n") {
		t.Errorf("show:\n%s", out)
	}
	if out := e.ok(t, "subscribers", "list"); !strings.Contains(out, "MATCH") || !strings.Contains(out, "(?i)quantum\n") {
		t.Errorf("list:\n%s", out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string // stderr
	}{
		{"add refuses a bad filter", []string{"subscribers", "add", "new@example.org", "--match", "(AI", "--confirmed"},
			`subscribers add: --match: bad match "(AI": missing closing )`},
		{"set refuses a bad filter", []string{"subscribers", "set", "kim@example.kr", "--match", "a{9999}"},
			`subscribers set: --match: bad match "a{9999}": invalid repeat count`},
		{"set refuses a filter over the length cap", []string{"subscribers", "set", "kim@example.kr", "--match", strings.Repeat("x", 513)},
			"the pattern is 513 bytes, longer than the 512 allowed"},
		{"set needs something to change", []string{"subscribers", "set", "kim@example.kr"},
			"subscribers set: nothing to change; give --boards B,... (or all), --match RE (or '' to clear) or both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := e.run(t, "", nil, tc.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, out, errOut, tc.want)
			}
		})
	}
	if out := e.ok(t, "subscribers", "show", "kim@example.kr"); !strings.Contains(out, "match:         6G\n") {
		t.Errorf("a refused set changed the filter:\n%s", out)
	}
	if _, _, code := e.run(t, "", nil, "subscribers", "show", "new@example.org"); code == 0 {
		t.Error("a refused add stored the subscriber")
	}

	// Export and import carry the filter; --match '' clears it.
	exported := e.ok(t, "subscribers", "export")
	if !strings.Contains(exported, ",6G\n") || !strings.Contains(exported, ",(?i)quantum\n") {
		t.Errorf("export:\n%s", exported)
	}
	fresh := newSubscribersEnv(t)
	if out, errOut, code := fresh.run(t, exported, nil, "subscribers", "import", "-"); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if out := fresh.ok(t, "subscribers", "show", "lee@example.kr"); !strings.Contains(out, "match:         (?i)quantum\n") {
		t.Errorf("imported:\n%s", out)
	}
	if out := e.ok(t, "subscribers", "set", "kim@example.kr", "--match", ""); out != "kim@example.kr (active) now receives: all\n" {
		t.Errorf("clearing printed %q", out)
	}
	if out := e.ok(t, "subscribers", "show", "kim@example.kr"); !strings.Contains(out, "match:         -\n") {
		t.Errorf("after clearing:\n%s", out)
	}

	// A bad match in an import file is that line's error.
	csvFile := filepath.Join(t.TempDir(), "subs.csv")
	os.WriteFile(csvFile, []byte("email,match\nok@example.org,AI\nbad@example.org,(AI\n"), 0o644)
	out, errOut, code := fresh.run(t, "", nil, "subscribers", "import", csvFile)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "line 3: bad match \"(AI\": missing closing )\n") {
		t.Errorf("import of a bad match: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}
