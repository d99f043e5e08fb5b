package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a process's output and a test
// reading it meanwhile.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parseLogLine reads one line of slog's text or JSON handler into its keys
// and values; ok is false if it does not parse.
func parseLogLine(format, line string) (map[string]string, bool) {
	kv := map[string]string{}
	if format == "json" {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if dec.Decode(&m) != nil || dec.More() {
			return nil, false
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				b, _ := json.Marshal(v)
				s = string(b)
			}
			kv[k] = s
		}
		return kv, true
	}
	for line != "" {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, ` "`) {
			return nil, false
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return nil, false
			}
			kv[k], _ = strconv.Unquote(q)
			v = v[len(q):]
			if v != "" && v[0] != ' ' {
				return nil, false
			}
			line = strings.TrimPrefix(v, " ")
		} else {
			kv[k], line, _ = strings.Cut(v, " ")
		}
	}
	return kv, true
}

// requestLines parses every line of a serve's stderr (all must parse in
// format) and returns the access-log ones.
func requestLines(t *testing.T, format, stderr string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line == "" {
			continue
		}
		kv, ok := parseLogLine(format, line)
		if !ok || kv["time"] == "" || kv["level"] == "" || kv["msg"] == "" {
			t.Fatalf("a line of stderr is not slog's %s format: %q", format, line)
		}
		if kv["msg"] == "request" {
			out = append(out, kv)
		}
	}
	return out
}

// serve as deployed (the access log on) writes a request's line within
// about a second while it runs, and a SIGTERM right after a burst of
// requests loses none of their lines; every line of stderr, access lines
// and the others, is in the one format asked for.
func TestServe_AccessLogFlushedAndComplete(t *testing.T) {
	bin := buildBinary(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			addr := freeAddr(t)
			cmd := exec.Command(bin, "serve", "--no-scheduler", "--log-format", format)
			cmd.Env = append(os.Environ(), "MSITFEED_DATABASE="+filepath.Join(t.TempDir(), "a.db"), "MSITFEED_LISTEN="+addr)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			exited := false
			defer func() {
				if !exited {
					cmd.Process.Kill()
					<-done
				}
			}()
			waitFor(t, "serve to listen", 20*time.Second, func() bool {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			base := "http://" + addr

			// One request; its line shows up without a shutdown.
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			asked := time.Now()
			waitFor(t, "the line of one request while serve runs", 3*time.Second, func() bool {
				return strings.Contains(stderr.String(), "/healthz")
			})
			t.Logf("%s: the line came %v after the request", format, time.Since(asked).Round(time.Millisecond))

			// A burst, then SIGTERM at once.
			const workers, each = 8, 40
			paths := []string{"/feeds/press.rss", "/healthz", "/feeds/all.json", "/feeds/nope.rss"}
			var mu sync.Mutex
			sent := map[string]int{"/healthz 200": 1}
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						p := paths[(w+i)%len(paths)]
						resp, err := http.Get(base + p)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						sent[p+" "+strconv.Itoa(resp.StatusCode)]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				exited = true
				if err != nil {
					t.Fatalf("serve exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("serve did not stop after SIGTERM\n%s", stderr.String())
			}

			lines := requestLines(t, format, stderr.String())
			logged := map[string]int{}
			for _, kv := range lines {
				for _, k := range []string{"method", "path", "status", "bytes", "duration", "remote"} {
					if kv[k] == "" {
						t.Fatalf("a request line has no %s: %v", k, kv)
					}
				}
				logged[kv["path"]+" "+kv["status"]]++
			}
			if len(lines) != workers*each+1 {
				t.Errorf("%d request lines for %d requests", len(lines), workers*each+1)
			}
			for k, n := range sent {
				if logged[k] != n {
					t.Errorf("%s: %d lines, %d requests answered", k, logged[k], n)
				}
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr.String())
			}
		})
	}
}
