package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runIn runs msitfeed in-process with environ and returns its output and
// exit code.
func runIn(environ []string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errOut, environ)
	code = ExitCode(m.Run(context.Background(), args), &errOut)
	return out.String(), errOut.String(), code
}

// writeKey writes key as PEM of blockType (PKCS #8 for "PRIVATE KEY",
// PKCS #1 for "RSA PRIVATE KEY") into dir.
func writeKey(t *testing.T, dir, name, blockType string, key any) string {
	t.Helper()
	var der []byte
	var err error
	switch blockType {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	default:
		t.Fatalf("block type %s", blockType)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dkimEnv is an environment with a database path that must never be
// created and the three DKIM keys (any may be empty).
func dkimEnv(t *testing.T, domain, selector, key string) (env []string, dbPath string) {
	dbPath = filepath.Join(t.TempDir(), "msitfeed.db")
	env = []string{"MSITFEED_DATABASE=" + dbPath, "MSITFEED_MAIL_FROM=MSIT digest <digest@msitfeed.example>"}
	for name, v := range map[string]string{"DOMAIN": domain, "SELECTOR": selector, "KEY": key} {
		if v != "" {
			env = append(env, "MSITFEED_MAIL_DKIM_"+name+"="+v)
		}
	}
	return env, dbPath
}

var zoneLine = regexp.MustCompile(`^(\S+)\. IN TXT((?: "[^"\\]*")+)$`)

// msitfeed dkim prints the record for the configured key: a comment, then
// one zone-file line whose name is <selector>._domainkey.<domain> and
// whose strings (at most 255 octets each) join to v=DKIM1; k=…; p=…, p=
// being the public key of the file (SubjectPublicKeyInfo for RSA, the raw
// 32 octets for Ed25519).
func TestDKIM_CommandPrintsTheRecord(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind, block string
		key               crypto.Signer
		strings           int
	}{
		{"RSA 2048 in PKCS #8", "rsa", "PRIVATE KEY", rsaKey, 2},
		{"RSA 2048 in PKCS #1", "rsa", "RSA PRIVATE KEY", rsaKey, 2},
		{"Ed25519", "ed25519", "PRIVATE KEY", edKey, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKey(t, dir, string(rune('a'+i))+".pem", tt.block, tt.key)
			env, dbPath := dkimEnv(t, "msitfeed.example", "mf2026", path)
			stdout, stderr, code := runIn(env, "dkim")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "; ") || !strings.Contains(lines[0], "dig +short TXT mf2026._domainkey.msitfeed.example") {
				t.Fatalf("output %q: want a comment saying how to check, then the record", stdout)
			}
			m := zoneLine.FindStringSubmatch(lines[1])
			if m == nil {
				t.Fatalf("record line %q is not `name. IN TXT \"…\" …`", lines[1])
			}
			if m[1] != "mf2026._domainkey.msitfeed.example" {
				t.Errorf("name %q, want mf2026._domainkey.msitfeed.example", m[1])
			}
			strs := regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1)
			var value string
			for _, s := range strs {
				if len(s[1]) > 255 {
					t.Errorf("a string of %d octets (at most 255)", len(s[1]))
				}
				value += s[1]
			}
			if len(strs) != tt.strings {
				t.Errorf("%d strings, want %d", len(strs), tt.strings)
			}
			tags := map[string]string{}
			for _, tag := range strings.Split(value, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(tag), "=")
				tags[k] = v
			}
			if tags["v"] != "DKIM1" || tags["k"] != tt.kind || !strings.HasPrefix(value, "v=DKIM1; ") {
				t.Errorf("value %q: want v=DKIM1 first and k=%s", value, tt.kind)
			}
			p, err := base64.StdEncoding.DecodeString(tags["p"])
			if err != nil {
				t.Fatalf("p= is not base64: %v", err)
			}
			switch tt.kind {
			case "rsa":
				pub, err := x509.ParsePKIXPublicKey(p)
				if err != nil || !rsaKey.PublicKey.Equal(pub) {
					t.Errorf("p= is not the key's SubjectPublicKeyInfo (%v)", err)
				}
			case "ed25519":
				if !bytes.Equal(p, edKey.Public().(ed25519.PublicKey)) {
					t.Errorf("p= is %d octets, not the key's 32-octet public key", len(p))
				}
			}
			if _, err := os.Stat(dbPath); err == nil {
				t.Error("dkim created the database")
			}
		})
	}
}

func TestDKIM_CommandWithoutDKIMExitsTwo(t *testing.T) {
	env, _ := dkimEnv(t, "", "", "")
	stdout, stderr, code := runIn(env, "dkim")
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 2 and nothing", code, stdout)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "DKIM is not configured") || !strings.Contains(stderr, "mail.dkim_key") {
		t.Errorf("stderr %q: want one line saying DKIM is not configured and what to set", stderr)
	}
	if _, stderr, code := runIn(env, "dkim", "extra"); code != 2 || !strings.Contains(stderr, "no arguments") {
		t.Errorf("dkim extra: exit %d, %q", code, stderr)
	}
}

// Every bad DKIM setting stops serve, digest send and dkim at start: exit
// 2, one line naming the key, no database created.
func TestDKIM_ConfigurationErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := writeKey(t, dir, "good.pem", "PRIVATE KEY", edKey)
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notPEM := filepath.Join(dir, "key.txt")
	os.WriteFile(notPEM, []byte("-----not a key-----\n"), 0o600)
	tests := []struct {
		name, domain, selector, key, want string
	}{
		{"only the domain set", "msitfeed.example", "", "", "mail.dkim_selector"},
		{"no selector", "msitfeed.example", "", good, "mail.dkim_selector"},
		{"no domain", "", "mf2026", good, "mail.dkim_domain"},
		{"no key", "msitfeed.example", "mf2026", "", "mail.dkim_key"},
		{"a key that cannot be read", "msitfeed.example", "mf2026", filepath.Join(dir, "missing.pem"), "mail.dkim_key"},
		{"a key that is not PEM", "msitfeed.example", "mf2026", notPEM, "mail.dkim_key"},
		{"an ECDSA key", "msitfeed.example", "mf2026", writeKey(t, dir, "ec.pem", "PRIVATE KEY", ec), "mail.dkim_key"},
		{"an RSA key of 1024 bits", "msitfeed.example", "mf2026", writeKey(t, dir, "short.pem", "RSA PRIVATE KEY", short), "mail.dkim_key"},
		{"a domain that is no domain", "msitfeed example", "mf2026", good, "mail.dkim_domain"},
	}
	for _, tt := range tests {
		for _, args := range [][]string{{"dkim"}, {"digest", "send"}, {"serve", "--no-scheduler"}} {
			t.Run(tt.name+": "+strings.Join(args, " "), func(t *testing.T) {
				env, dbPath := dkimEnv(t, tt.domain, tt.selector, tt.key)
				env = append(env, "MSITFEED_LISTEN=127.0.0.1:0")
				_, stderr, code := runIn(env, args...)
				if code != 2 {
					t.Fatalf("exit %d, want 2: %s", code, stderr)
				}
				if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "config "+tt.want+":") {
					t.Errorf("stderr %q: want one line naming %s", stderr, tt.want)
				}
				if _, err := os.Stat(dbPath); err == nil {
					t.Error("the database was created for a configuration error")
				}
			})
		}
	}
}
