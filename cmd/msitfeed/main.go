// Command msitfeed crawls the English site of Korea's Ministry of Science and
// ICT into SQLite, serves its boards as RSS, Atom and JSON feeds, and mails a
// digest of new posts to subscribers. main only wires signals, runs Main and
// turns its error into an exit code; each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/msitfeed/msitfeed/internal/accesslog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(os.Stdin, os.Stdout, os.Stderr, os.Environ())
	err := m.Run(ctx, os.Args[1:])
	os.Exit(ExitCode(err, os.Stderr))
}

// Main is the program, built with its streams and environment so tests can
// run it without a process.
type Main struct {
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string

	log *slog.Logger
	// logOut is Stderr behind a lock, shared by the logger and the
	// access log; logFormat is the logger's format, which the access log
	// follows.
	logOut    io.Writer
	logFormat accesslog.Format
	// accessLog makes serve log every request.
	accessLog bool
	// ready, if set, receives the HTTP address once serve listens (tests).
	ready chan<- string
}

// NewMain returns a Main reading and writing the given streams.
func NewMain(stdin io.Reader, stdout, stderr io.Writer, environ []string) *Main {
	return &Main{Stdin: stdin, Stdout: stdout, Stderr: stderr, Environ: environ}
}

// UsageError is a mistake in the command line or configuration: exit code 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// usagef returns a UsageError.
func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// ExitCode writes err as one line to w and returns the exit code for it:
// 0 for nil, 2 for usage or configuration errors, 1 otherwise.
func ExitCode(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(w, "msitfeed: %s\n", oneLine(err.Error()))
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

var errHelp = errors.New("help shown")

func oneLine(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' || r == '\r' {
			b[i] = ';'
		}
	}
	return string(b)
}

const usage = `usage: msitfeed [--config FILE] <command> [arguments]

commands:
  serve                          HTTP server (feeds, pages) and scheduler
  crawl [--board B] [--pages N]  one crawl now (all boards by default)
  boards                         ids, counts, newest post, last crawl, last error
  check [--board B] [--save DIR] read page 1 and the newest post of every board
                                 from the live site; say what each let it read
  status                         jobs, board health, digest counts
  feeds export --dir D           write every feed as static files (atomic)
  subscribers add|remove|show|set|list|import|export ...
  digest preview|send|status ...
  dkim                           the DNS TXT record to publish for mail.dkim_key
  websub list [--format table|json]
                                 WebSub subscriptions: topic, callback, lease
                                 end, last delivery and its status
  migrate-store --from DB --to DB
                                 copy every row into an empty store (SQLite
                                 file or postgres:// URL), verified by hashes
  demo                           the whole pipeline against bundled sample pages, offline
  version                        print the version
`

// Run parses the global flags and runs one subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	configPath := ""
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--config" || a == "-config":
			if len(args) < 2 {
				return usagef("--config needs a file name")
			}
			configPath, args = args[1], args[2:]
			continue
		case len(a) > 9 && (a[:9] == "--config="):
			configPath, args = a[9:], args[1:]
			continue
		case a == "-h" || a == "--help" || a == "help":
			fmt.Fprint(m.Stdout, usage)
			return errHelp
		}
		break
	}
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return usagef("no command given (try msitfeed serve)")
	}
	if configPath == "" {
		for _, kv := range m.Environ {
			if v, ok := cutPrefix(kv, "MSITFEED_CONFIG="); ok {
				configPath = v
			}
		}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version":
		fmt.Fprintln(m.Stdout, "msitfeed", Version)
		return nil
	case "serve":
		return m.runServe(ctx, configPath, rest)
	case "crawl":
		return m.runCrawl(ctx, configPath, rest)
	case "boards":
		return m.runBoards(ctx, configPath, rest)
	case "check":
		return m.runCheck(ctx, configPath, rest)
	case "status":
		return m.runStatus(ctx, configPath, rest)
	case "feeds":
		return m.runFeeds(ctx, configPath, rest)
	case "subscribers":
		return m.runSubscribers(ctx, configPath, rest)
	case "digest":
		return m.runDigest(ctx, configPath, rest)
	case "dkim":
		return m.runDKIM(configPath, rest)
	case "demo":
		return m.runDemo(ctx, configPath, rest)
	case "websub":
		return m.runWebSub(ctx, configPath, rest)
	case "migrate-store":
		return m.runMigrateStore(ctx, rest)
	}
	return usagef("unknown command %q (see msitfeed --help)", cmd)
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"
