package mailer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msitfeed/msitfeed/mailer"
	"github.com/msitfeed/msitfeed/mailer/smtptest"
)

// dkimKey is a key made for a test: the PEM file mail.dkim_key points at,
// and the TXT record that publishes it, made here from the public key
// (not by the code under test).
type dkimKey struct {
	kind   string // rsa or ed25519
	path   string
	record string
}

// newDKIMKey makes an RSA 2048 or an Ed25519 key and writes it as PKCS #8
// PEM into a temporary directory.
func newDKIMKey(t testing.TB, kind string) dkimKey {
	t.Helper()
	var priv crypto.Signer
	var p []byte
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if p, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			t.Fatal(err)
		}
		priv = k
	case "ed25519":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, priv = pub, k
	default:
		t.Fatalf("no key kind %q", kind)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), kind+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return dkimKey{kind: kind, path: path, record: "v=DKIM1; k=" + kind + "; p=" + base64.StdEncoding.EncodeToString(p)}
}

// withDKIM signs the env's mail with key for msitfeed.example, selector mf2026.
func (e *digestEnv) withDKIM(key dkimKey) {
	e.cfg.Mail.DKIMDomain = "msitfeed.example"
	e.cfg.Mail.DKIMSelector = "mf2026"
	e.cfg.Mail.DKIMKey = key.path
}

// dkimVerifyScript checks each message of a JSON list with Debian's
// python3-dkim (dkimpy), the key given as the TXT record its DNS lookup
// returns, and prints one result per message: whether it verified, the
// name looked up, and what the verifier logged.
const dkimVerifyScript = `
import base64, json, logging, sys, dkim
class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())
out = []
for case in json.load(sys.stdin):
    record = case["record"].encode()
    asked = []
    def dnsfunc(name, timeout=5):
        asked.append(name.decode() if isinstance(name, bytes) else name)
        return record
    log = logging.getLogger("dkim%d" % len(out))
    log.propagate = False
    h = Collect()
    log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        ok = dkim.verify(base64.b64decode(case["message"]), logger=log, dnsfunc=dnsfunc)
    except Exception as e:
        ok = False
        h.lines.append("exception: %r" % e)
    out.append({"ok": bool(ok), "asked": asked, "log": h.lines})
print(json.dumps(out))
`

type dkimResult struct {
	OK    bool     `json:"ok"`
	Asked []string `json:"asked"`
	Log   []string `json:"log"`
}

// dkimVerify runs /usr/bin/python3 with python3-dkim on each message
// against record.
func dkimVerify(t *testing.T, record string, messages ...[]byte) []dkimResult {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import dkim, nacl").CombinedOutput(); err != nil {
		t.Fatalf("the DKIM check needs /usr/bin/python3 with Debian's python3-dkim (apt-get install python3-dkim): %s", out)
	}
	type in struct {
		Message string `json:"message"`
		Record  string `json:"record"`
	}
	var cases []in
	for _, m := range messages {
		cases = append(cases, in{Message: base64.StdEncoding.EncodeToString(m), Record: record})
	}
	input, _ := json.Marshal(cases)
	cmd := exec.Command("/usr/bin/python3", "-c", dkimVerifyScript)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3-dkim: %v: %s", err, stderr.String())
	}
	var res []dkimResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(messages) {
		t.Fatalf("python3-dkim said %q (%v)", out, err)
	}
	return res
}

// dkimTags returns the tags of the message's DKIM-Signature field, with
// folding whitespace taken out of their values.
func dkimTags(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	pm := parseMail(t, raw)
	fields := pm.Header["Dkim-Signature"]
	if len(fields) != 1 {
		t.Fatalf("%d DKIM-Signature fields, want 1", len(fields))
	}
	tags := map[string]string{}
	for _, tag := range strings.Split(fields[0], ";") {
		k, v, ok := strings.Cut(tag, "=")
		if !ok {
			continue
		}
		tags[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
	}
	return tags
}

// alterBody changes one byte of the message's body: the first lower-case
// letter of the text of its first part (after the part's own header).
func alterBody(t *testing.T, raw []byte) []byte {
	t.Helper()
	out := bytes.Clone(raw)
	header := bytes.Index(out, []byte("\r\n\r\n"))
	part := bytes.Index(out[header+4:], []byte("\r\n\r\n"))
	if header < 0 || part < 0 {
		t.Fatal("no body part")
	}
	for i := header + 4 + part + 4; i < len(out); i++ {
		if c := out[i]; c >= 'a' && c <= 'y' {
			out[i] = c + 1
			return out
		}
	}
	t.Fatal("no letter to change in the body")
	return nil
}

// addHeader puts field on top of the message, as a relay or an attacker
// might.
func addHeader(raw []byte, field string) []byte {
	return append([]byte(field+"\r\n"), raw...)
}

// checkSigned verifies every message with the key, and checks that it
// fails once its body is altered, once a second List-Unsubscribe is added
// above ours, and against another key of the same kind.
func checkSigned(t *testing.T, key dkimKey, msgs []smtptest.Message) {
	t.Helper()
	var all [][]byte
	for _, m := range msgs {
		if m.Data == nil {
			t.Fatal("the server kept no message data")
		}
		all = append(all, m.Data)
	}
	for i, r := range dkimVerify(t, key.record, all...) {
		if !r.OK {
			t.Errorf("message to %v: python3-dkim does not verify it: %v\n%s", msgs[i].To, r.Log, headerOf(all[i]))
		}
		if len(r.Asked) != 1 || strings.TrimSuffix(r.Asked[0], ".") != "mf2026._domainkey.msitfeed.example" {
			t.Errorf("message to %v: the verifier looked up %v, want mf2026._domainkey.msitfeed.example", msgs[i].To, r.Asked)
		}
	}
	for _, raw := range all {
		tags := dkimTags(t, raw)
		wantAlg := map[string]string{"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}[key.kind]
		if tags["a"] != wantAlg || tags["c"] != "relaxed/relaxed" || tags["d"] != "msitfeed.example" || tags["s"] != "mf2026" {
			t.Errorf("signature tags a=%s c=%s d=%s s=%s, want %s relaxed/relaxed msitfeed.example mf2026", tags["a"], tags["c"], tags["d"], tags["s"], wantAlg)
		}
		signed := map[string]bool{}
		for _, h := range strings.Split(tags["h"], ":") {
			signed[strings.ToLower(h)] = true
		}
		for _, h := range []string{"from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type"} {
			if !signed[h] {
				t.Errorf("h=%s does not sign %s", tags["h"], h)
			}
		}
		for i, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line %d is %d octets long", i+1, len(line))
			}
		}
	}
	// Each check must be able to fail.
	other := newDKIMKey(t, key.kind)
	bad := [][]byte{alterBody(t, all[0]), all[0]}
	if len(msgs[0].Header["List-Unsubscribe"]) > 0 {
		bad = append(bad, addHeader(all[0], "List-Unsubscribe: <https://evil.example/unsubscribe>"))
	}
	res := dkimVerify(t, other.record, all[0])
	if res[0].OK {
		t.Errorf("the message verifies against another %s key", key.kind)
	}
	res = dkimVerify(t, key.record, bad...)
	if res[0].OK {
		t.Errorf("a message whose body changed by one byte after signing still verifies")
	}
	if !res[1].OK {
		t.Errorf("the message itself does not verify: %v", res[1].Log)
	}
	if len(res) > 2 && res[2].OK {
		t.Errorf("a message with a second List-Unsubscribe added on top still verifies")
	}
}

func headerOf(raw []byte) string {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return string(raw[:i])
	}
	return string(raw)
}

// Digests and confirmation mails are signed with the configured key, and
// python3-dkim, given only the published record, verifies them as they
// arrived at the SMTP server: 8bit bodies from a server with 8BITMIME,
// quoted-printable ones from a 7-bit server, with RSA 2048 and Ed25519.
func TestDKIM_MailArrivesSignedAndVerifies(t *testing.T) {
	keys := map[string]dkimKey{"rsa": newDKIMKey(t, "rsa"), "ed25519": newDKIMKey(t, "ed25519")}
	servers := []struct {
		name     string
		faults   smtptest.Faults
		wantCTE  string
		wantBody string
	}{
		{"8bit bodies to a server with 8BITMIME", smtptest.Faults{}, "8bit", "8BITMIME"},
		{"quoted-printable bodies to a 7-bit server", smtptest.Faults{No8BitMIME: true}, "quoted-printable", ""},
	}
	for _, kind := range []string{"rsa", "ed25519"} {
		key := keys[kind]
		for _, srv := range servers {
			t.Run("a digest signed with "+kind+", "+srv.name, func(t *testing.T) {
				e := newDigestEnv(t, srv.faults)
				e.withDKIM(key)
				joined := e.now.Add(-30 * 24 * time.Hour)
				e.addSubscriber("kim@example.org", "Kim Min-jun 김민준", "", mailer.StatusActive, joined)
				e.addSubscriber("press@example.org", "", "press", mailer.StatusActive, joined)
				e.addItem("press", "Seoul–Daejeon quantum link · 과학기술정보통신부 announces a national programme for AI semiconductors = progress",
					e.now.Add(-24*time.Hour), e.now.Add(-time.Hour))
				e.addItem("notice", "Call for proposals:   spaces,\ttabs and a trailing space ", e.now.Add(-24*time.Hour), e.now.Add(-time.Hour))
				res := e.mustSend(e.mailer())
				if res.Sent() != 2 {
					t.Fatalf("sent %d, want 2", res.Sent())
				}
				msgs := e.smtp.Messages()
				for _, m := range msgs {
					if m.Body != srv.wantBody {
						t.Errorf("MAIL FROM BODY=%q, want %q", m.Body, srv.wantBody)
					}
					for _, p := range parseMail(t, m.Data).Parts {
						if p.Encoding != srv.wantCTE {
							t.Errorf("a %s part went out %s, want %s", p.ContentType, p.Encoding, srv.wantCTE)
						}
					}
				}
				checkSigned(t, key, msgs)
			})
		}
		t.Run("a confirmation mail signed with "+kind, func(t *testing.T) {
			e := newDigestEnv(t, smtptest.Faults{})
			e.withDKIM(key)
			m := e.mailer()
			sub := mailer.Subscriber{ID: 1, UID: mailer.NewUID(), Email: "new@example.org", Name: "New Reader 새 독자"}
			if err := m.SendConfirmation(context.Background(), sub); err != nil {
				t.Fatal(err)
			}
			checkSigned(t, key, e.smtp.Messages())
		})
	}
}

// Without mail.dkim_*, nothing is signed.
func TestDKIM_UnsetSignsNothing(t *testing.T) {
	e := newDigestEnv(t, smtptest.Faults{})
	e.seedDigest(2)
	e.mustSend(e.mailer())
	for _, m := range e.smtp.Messages() {
		if len(m.Header["Dkim-Signature"]) != 0 {
			t.Errorf("message to %v signed without mail.dkim_*", m.To)
		}
	}
}

// mailer.New refuses a key that cannot sign, naming mail.dkim_key, even
// for a configuration that was not validated first.
func TestDKIM_NewRefusesABadKey(t *testing.T) {
	dir := t.TempDir()
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	shortPath := filepath.Join(dir, "short.pem")
	os.WriteFile(shortPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(short)}), 0o600)
	notPEM := filepath.Join(dir, "key.txt")
	os.WriteFile(notPEM, []byte("not a key"), 0o600)
	for _, tc := range []struct{ name, domain, key, want string }{
		{"missing file", "msitfeed.example", filepath.Join(dir, "missing.pem"), "config mail.dkim_key"},
		{"not PEM", "msitfeed.example", notPEM, "config mail.dkim_key"},
		{"RSA of 1024 bits", "msitfeed.example", shortPath, "1024-bit"},
		{"no domain", "", shortPath, "config mail.dkim_domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDigestEnv(t, smtptest.Faults{})
			e.cfg.Mail.DKIMDomain, e.cfg.Mail.DKIMSelector, e.cfg.Mail.DKIMKey = tc.domain, "mf2026", tc.key
			_, err := mailer.New(context.Background(), e.cfg, e.db)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// The record NewDKIMRecord makes is the one the tests publish: name,
// k= and p= for each kind of key, split into strings of at most 255 octets.
func TestDKIM_Record(t *testing.T) {
	for _, kind := range []string{"rsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			key := newDKIMKey(t, kind)
			e := newDigestEnv(t, smtptest.Faults{})
			e.withDKIM(key)
			r, err := mailer.NewDKIMRecord(e.cfg.Mail)
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != "mf2026._domainkey.msitfeed.example" || r.Value != key.record {
				t.Errorf("record %s %q, want mf2026._domainkey.msitfeed.example %q", r.Name, r.Value, key.record)
			}
			strs := r.Strings()
			for _, s := range strs {
				if len(s) > 255 || len(s) == 0 {
					t.Errorf("a string of %d octets", len(s))
				}
			}
			if strings.Join(strs, "") != r.Value {
				t.Errorf("the strings do not join to the value")
			}
			if want := map[string]int{"rsa": 2, "ed25519": 1}[kind]; len(strs) != want {
				t.Errorf("%d strings, want %d", len(strs), want)
			}
			if want := fmt.Sprintf("%s. IN TXT \"%s\"", r.Name, strings.Join(strs, "\" \"")); r.ZoneLine() != want {
				t.Errorf("zone line %q, want %q", r.ZoneLine(), want)
			}
		})
	}
	e := newDigestEnv(t, smtptest.Faults{})
	if _, err := mailer.NewDKIMRecord(e.cfg.Mail); err != mailer.ErrNoDKIM {
		t.Errorf("without mail.dkim_*: %v, want ErrNoDKIM", err)
	}
}
