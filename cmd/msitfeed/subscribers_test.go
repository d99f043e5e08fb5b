package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// subscribersEnv is the environment of one test: its own database, and
// mail written to files in a temp directory.
type subscribersEnv struct {
	dir     string
	environ []string
}

func newSubscribersEnv(t *testing.T) *subscribersEnv {
	t.Helper()
	dir := t.TempDir()
	return &subscribersEnv{dir: dir, environ: []string{
		"MSITFEED_DATABASE=" + filepath.Join(dir, "x.db"),
		"MSITFEED_MAIL_FROM=news@example.org",
		"MSITFEED_SMTP_TRANSPORT=file",
		"MSITFEED_SMTP_DIR=" + filepath.Join(dir, "mail"),
		"MSITFEED_BASE_URL=https://feeds.example.org",
	}}
}

// run runs msitfeed with args and stdin, and returns what it printed and
// its exit code.
func (e *subscribersEnv) run(t *testing.T, stdin string, extraEnv []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(stdin), &out, &errOut, append(append([]string{}, e.environ...), extraEnv...))
	err := m.Run(context.Background(), args)
	code = ExitCode(err, &errOut)
	return out.String(), errOut.String(), code
}

// ok runs msitfeed and fails the test unless it exits 0.
func (e *subscribersEnv) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.run(t, "", nil, args...)
	if code != 0 {
		t.Fatalf("msitfeed %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (e *subscribersEnv) mails(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.dir, "mail", "*.eml"))
	return files
}

func TestSubscribers_AddShowSetRemove(t *testing.T) {
	e := newSubscribersEnv(t)

	out := e.ok(t, "subscribers", "add", "Jane Doe <Jane@Bücher.Example>", "--boards", "press,notice", "--confirmed")
	if want := "added Jane@xn--bcher-kva.example (active); boards: notice,press\n"; out != want {
		t.Errorf("add printed %q, want %q", out, want)
	}
	if n := len(e.mails(t)); n != 0 {
		t.Errorf("--confirmed sent %d mails", n)
	}

	out = e.ok(t, "subscribers", "show", "jane@BÜCHER.example")
	for _, want := range []string{"email:         Jane@xn--bcher-kva.example\n", "name:          Jane Doe\n", "status:        active\n", "boards:        notice,press\n", "origin:        cli\n", "unsubscribed:  -\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	out = e.ok(t, "subscribers", "set", "jane@xn--bcher-kva.example", "--boards", "all")
	if !strings.HasSuffix(out, "now receives: all\n") {
		t.Errorf("set printed %q", out)
	}
	out = e.ok(t, "subscribers", "set", "--boards", "photo", "jane@xn--bcher-kva.example")
	if !strings.HasSuffix(out, "now receives: photo\n") {
		t.Errorf("set with the flag first printed %q", out)
	}

	out = e.ok(t, "subscribers", "remove", "jane@xn--bcher-kva.example")
	if !strings.HasPrefix(out, "unsubscribed Jane@xn--bcher-kva.example;") {
		t.Errorf("remove printed %q", out)
	}
	out = e.ok(t, "subscribers", "remove", "jane@xn--bcher-kva.example")
	if !strings.Contains(out, "already unsubscribed") {
		t.Errorf("second remove printed %q", out)
	}

	_, errOut, code := e.run(t, "", nil, "subscribers", "add", "jane@xn--bcher-kva.example", "--confirmed")
	if code != 1 || !strings.Contains(errOut, "unsubscribed since") || !strings.Contains(errOut, "--force") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("re-adding an unsubscribed address: exit %d, %q", code, errOut)
	}
	e.ok(t, "subscribers", "add", "jane@xn--bcher-kva.example", "--confirmed", "--force")
	if out := e.ok(t, "subscribers", "show", "jane@xn--bcher-kva.example"); !strings.Contains(out, "status:        active") {
		t.Errorf("after --force:\n%s", out)
	}

	out = e.ok(t, "subscribers", "remove", "jane@xn--bcher-kva.example", "--purge")
	if !strings.HasPrefix(out, "purged jane@xn--bcher-kva.example") { // --force stored the new spelling
		t.Errorf("purge printed %q", out)
	}
	_, errOut, code = e.run(t, "", nil, "subscribers", "show", "jane@xn--bcher-kva.example")
	if code != 1 || !strings.Contains(errOut, "is not a subscriber") {
		t.Errorf("show after purge: exit %d, %q", code, errOut)
	}
}

func TestSubscribers_AddPendingSendsConfirmation(t *testing.T) {
	e := newSubscribersEnv(t)

	out := e.ok(t, "subscribers", "add", "pat@example.org", "--name", "Pat")
	if want := "pat@example.org added as pending; confirmation mail sent; boards: all\n"; out != want {
		t.Errorf("add printed %q, want %q", out, want)
	}
	files := e.mails(t)
	if len(files) != 1 {
		t.Fatalf("%d mails written, want 1", len(files))
	}
	msg, _ := os.ReadFile(files[0])
	if !bytes.Contains(msg, []byte("pat@example.org")) || !bytes.Contains(msg, []byte("https://feeds.example.org/confirm/")) {
		t.Errorf("confirmation mail lacks the address or the link:\n%s", msg)
	}

	t.Run("a failed confirmation leaves the subscriber pending and says so", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		smtp := []string{"MSITFEED_SMTP_TRANSPORT=smtp", "MSITFEED_SMTP_HOST=127.0.0.1", "MSITFEED_SMTP_PORT=" + strconv.Itoa(port), "MSITFEED_SMTP_TLS=none", "MSITFEED_SMTP_TIMEOUT=2s"}
		_, errOut, code := e.run(t, "", smtp, "subscribers", "add", "sam@example.org")
		if code != 1 || !strings.Contains(errOut, "sam@example.org added as pending, but the confirmation mail was not sent") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("exit %d, %q", code, errOut)
		}
		if out := e.ok(t, "subscribers", "show", "sam@example.org"); !strings.Contains(out, "status:        pending") {
			t.Errorf("after a failed send:\n%s", out)
		}
		// Running the same add again resends.
		out := e.ok(t, "subscribers", "add", "sam@example.org")
		if !strings.Contains(out, "was already pending; confirmation mail sent") || len(e.mails(t)) != 2 {
			t.Errorf("resend printed %q, %d mails", out, len(e.mails(t)))
		}
	})

	t.Run("adding a pending address with --confirmed activates it", func(t *testing.T) {
		out := e.ok(t, "subscribers", "add", "pat@example.org", "--confirmed")
		if !strings.HasPrefix(out, "confirmed pat@example.org (was pending)") {
			t.Errorf("printed %q", out)
		}
		_, errOut, code := e.run(t, "", nil, "subscribers", "add", "PAT@example.org")
		if code != 1 || !strings.Contains(errOut, "already subscribed (active)") {
			t.Errorf("adding an active address: exit %d, %q", code, errOut)
		}
	})

	t.Run("without mail.from a pending add is refused before anything is stored", func(t *testing.T) {
		e := newSubscribersEnv(t)
		e.environ = e.environ[:1]
		_, errOut, code := e.run(t, "", nil, "subscribers", "add", "x@example.org")
		if code != 2 || !strings.Contains(errOut, "mail.from") || !strings.Contains(errOut, "--confirmed") {
			t.Errorf("exit %d, %q", code, errOut)
		}
		if out := e.ok(t, "subscribers", "list", "--format", "csv"); strings.Count(out, "\n") != 1 {
			t.Errorf("something was stored:\n%s", out)
		}
	})
}

func TestSubscribers_Errors(t *testing.T) {
	e := newSubscribersEnv(t)
	e.ok(t, "subscribers", "add", "kept@example.org", "--confirmed")
	for _, tt := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no command", []string{"subscribers"}, 2, "no command given"},
		{"an unknown command", []string{"subscribers", "delete", "x@example.org"}, 2, `unknown command "delete"`},
		{"an unknown flag", []string{"subscribers", "add", "x@example.org", "--bords", "press"}, 2, "-bords"},
		{"a bad board slug", []string{"subscribers", "add", "x@example.org", "--boards", "press,sport", "--confirmed"}, 2, `unknown board "sport"`},
		{"a missing EMAIL", []string{"subscribers", "add", "--confirmed"}, 2, "missing EMAIL"},
		{"two addresses", []string{"subscribers", "show", "a@example.org", "b@example.org"}, 2, `unexpected argument "b@example.org"`},
		{"an invalid address", []string{"subscribers", "add", "jane@gmail", "--confirmed"}, 2, "has no dot"},
		{"set without boards", []string{"subscribers", "set", "kept@example.org"}, 2, "--boards"},
		{"a bad list status", []string{"subscribers", "list", "--status", "gone"}, 2, "not a status"},
		{"a bad list board", []string{"subscribers", "list", "--board", "sport"}, 2, "not a board"},
		{"a bad list format", []string{"subscribers", "list", "--format", "xml"}, 2, "not a format"},
		{"a bad export format", []string{"subscribers", "export", "--format", "table"}, 2, "not a format"},
		{"import without a file", []string{"subscribers", "import"}, 2, "missing FILE"},
		{"show of an unknown address", []string{"subscribers", "show", "nobody@example.org"}, 1, "nobody@example.org is not a subscriber"},
		{"remove of an unknown address", []string{"subscribers", "remove", "nobody@example.org", "--purge"}, 1, "is not a subscriber"},
		{"set of an unknown address", []string{"subscribers", "set", "nobody@example.org", "--boards", "press"}, 1, "is not a subscriber"},
		{"an import file that is not there", []string{"subscribers", "import", "/nonexistent/x.csv"}, 1, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.run(t, "", nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			last := errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
			if !strings.HasPrefix(last, "msitfeed: ") || !strings.Contains(last, tt.says) {
				t.Errorf("last stderr line %q does not say %q", last, tt.says)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

func TestSubscribers_ListImportExport(t *testing.T) {
	e := newSubscribersEnv(t)
	csvFile := filepath.Join(e.dir, "in.csv")
	in := "\ufeffEmail,Name,Boards,Status\r\n" +
		"a@example.org,\"Doe, A\",\"press,notice\",\r\n" +
		"b@example.org,B,,pending\r\n" +
		"c@example.org,C,photo,unsubscribed\r\n" +
		"d@example.org,D,sport,\r\n" +
		"A@EXAMPLE.ORG,dup,,\r\n" +
		"e@,E,,\r\n"
	if err := os.WriteFile(csvFile, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("an import with invalid rows imports nothing and lists them", func(t *testing.T) {
		out, errOut, code := e.run(t, "", nil, "subscribers", "import", csvFile)
		want := "line 5: unknown board \"sport\" (use notice, press, photo, trends, newsletter or all)\n" +
			"line 6: A@example.org is a duplicate of line 2, skipped\n" +
			"line 7: invalid email address \"e@\": missing '@' or angle-addr\n" +
			"msitfeed: subscribers import " + csvFile + ": 2 invalid rows (listed above), nothing imported; fix them, or use --skip-invalid to import the rest\n"
		if code != 1 || errOut != want || out != "" {
			t.Errorf("exit %d\nstdout %q\nstderr:\n%s\nwant:\n%s", code, out, errOut, want)
		}
		if out := e.ok(t, "subscribers", "list", "--format", "csv"); strings.Count(out, "\n") != 1 {
			t.Errorf("rows were imported:\n%s", out)
		}
	})

	t.Run("--skip-invalid after the file imports the good rows", func(t *testing.T) {
		out, errOut, code := e.run(t, "", nil, "subscribers", "import", csvFile, "--skip-invalid")
		if code != 0 || out != "imported 3 subscribers from "+csvFile+"; skipped 1 already known; 2 invalid\n" || strings.Count(errOut, "\n") != 3 {
			t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
		}
	})

	t.Run("list filters and formats", func(t *testing.T) {
		out := e.ok(t, "subscribers", "list")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "EMAIL") || !strings.HasPrefix(lines[1], "a@example.org  Doe, A  active        notice,press  import") {
			t.Errorf("table:\n%s", out)
		}
		out = e.ok(t, "subscribers", "list", "--board", "photo", "--status", "active", "--format", "csv")
		if want := "email,name,boards,status,origin,created,confirmed,unsubscribed,match\n"; out != want {
			t.Errorf("photo and active:\n%s", out)
		}
		out = e.ok(t, "subscribers", "list", "--board", "press", "--format", "json")
		var rows []struct{ Email string }
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 || rows[0].Email != "a@example.org" || rows[1].Email != "b@example.org" {
			t.Errorf("press as json (%v):\n%s", err, out)
		}
	})

	t.Run("export then import from stdin into a fresh database round-trips", func(t *testing.T) {
		exported := e.ok(t, "subscribers", "export")
		fresh := newSubscribersEnv(t)
		out, errOut, code := fresh.run(t, exported, nil, "subscribers", "import", "-")
		if code != 0 || out != "imported 3 subscribers from standard input; skipped 0 already known; 0 invalid\n" {
			t.Fatalf("exit %d, %q, %q", code, out, errOut)
		}
		if again := fresh.ok(t, "subscribers", "export"); again != exported {
			t.Errorf("export after round trip:\n%s\nwant:\n%s", again, exported)
		}
		if a, b := e.ok(t, "subscribers", "list"), fresh.ok(t, "subscribers", "list"); a != b {
			t.Errorf("listings differ:\n%s\n%s", a, b)
		}
		js := e.ok(t, "subscribers", "export", "--format", "json")
		if !json.Valid([]byte(js)) || !strings.Contains(js, `"status":"unsubscribed"`) {
			t.Errorf("json export:\n%s", js)
		}
	})
}
