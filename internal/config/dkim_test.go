package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePEM writes one PEM block to a file in dir and returns its path.
func writePEM(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestDKIM_GoodKeysLoad(t *testing.T) {
	dir := t.TempDir()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{
		"Ed25519 in PKCS #8":  writePEM(t, dir, "ed.pem", "PRIVATE KEY", pkcs8(t, edKey)),
		"RSA 2048 in PKCS #8": writePEM(t, dir, "rsa8.pem", "PRIVATE KEY", pkcs8(t, rsaKey)),
		"RSA 2048 in PKCS #1": writePEM(t, dir, "rsa1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
	}
	for name, path := range keys {
		t.Run(name+" is accepted, set through the environment", func(t *testing.T) {
			c, err := Load("", []string{"MSITFEED_MAIL_DKIM_DOMAIN=msitfeed.example", "MSITFEED_MAIL_DKIM_SELECTOR=mf2026",
				"MSITFEED_MAIL_DKIM_KEY=" + path})
			if err != nil {
				t.Fatal(err)
			}
			if !c.Mail.DKIMEnabled() || c.Mail.DKIMDomain != "msitfeed.example" || c.Mail.DKIMSelector != "mf2026" || c.Mail.DKIMKey != path {
				t.Errorf("mail = %+v, want DKIM enabled with the three values", c.Mail)
			}
		})
	}
	t.Run("none of the three set is no DKIM", func(t *testing.T) {
		c, err := Load("", nil)
		if err != nil || c.Mail.DKIMEnabled() {
			t.Errorf("defaults: DKIM enabled %v, error %v", c.Mail.DKIMEnabled(), err)
		}
	})
}

func TestDKIM_BadSettingsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := writePEM(t, dir, "good.pem", "PRIVATE KEY", pkcs8(t, edKey))
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(edKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "key.txt")
	os.WriteFile(notPEM, []byte("this is not a key\n"), 0o600)
	unreadable := filepath.Join(dir, "missing.pem")

	all := func(key string) map[string]string {
		return map[string]string{"domain": "msitfeed.example", "selector": "mf2026", "key": key}
	}
	cases := []struct {
		name     string
		set      map[string]string
		wantKeys []string // every key the error must name
		want     string   // and what it must say
	}{
		{"only the domain set", map[string]string{"domain": "msitfeed.example"}, []string{"mail.dkim_selector", "mail.dkim_key"}, "not set"},
		{"only the key set", map[string]string{"key": good}, []string{"mail.dkim_domain", "mail.dkim_selector"}, "not set"},
		{"domain and selector without the key", map[string]string{"domain": "msitfeed.example", "selector": "mf2026"}, []string{"mail.dkim_key"}, "not set"},
		{"a key file that cannot be read", all(unreadable), []string{"mail.dkim_key"}, "no such file"},
		{"a key file that is not PEM", all(notPEM), []string{"mail.dkim_key"}, "not PEM"},
		{"an ECDSA key", all(writePEM(t, dir, "ec.pem", "PRIVATE KEY", pkcs8(t, ec))), []string{"mail.dkim_key"}, "ECDSA"},
		{"an ECDSA key in SEC 1", all(writePEM(t, dir, "ec1.pem", "EC PRIVATE KEY", []byte{1})), []string{"mail.dkim_key"}, "EC PRIVATE KEY"},
		{"an RSA key of 1024 bits", all(writePEM(t, dir, "short.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(short))), []string{"mail.dkim_key"}, "1024-bit RSA key"},
		{"an RSA key of 1024 bits in PKCS #8", all(writePEM(t, dir, "short8.pem", "PRIVATE KEY", pkcs8(t, short))), []string{"mail.dkim_key"}, "1024-bit RSA key"},
		{"a public key", all(writePEM(t, dir, "pub.pem", "PUBLIC KEY", pub)), []string{"mail.dkim_key"}, "public key"},
		{"an encrypted key", all(writePEM(t, dir, "enc.pem", "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})), []string{"mail.dkim_key"}, "encrypted"},
		{"a PEM block that does not parse", all(writePEM(t, dir, "junk.pem", "PRIVATE KEY", []byte("junk"))), []string{"mail.dkim_key"}, "does not parse"},
		{"a domain that is not a domain", map[string]string{"domain": "msitfeed example", "selector": "mf2026", "key": good}, []string{"mail.dkim_domain"}, "not a domain name"},
		{"a domain of one label", map[string]string{"domain": "localhost", "selector": "mf2026", "key": good}, []string{"mail.dkim_domain"}, "not a domain name"},
		{"a selector with an underscore", map[string]string{"domain": "msitfeed.example", "selector": "mf_2026", "key": good}, []string{"mail.dkim_selector"}, "not a selector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for k, v := range tc.set {
				env = append(env, "MSITFEED_MAIL_DKIM_"+strings.ToUpper(k)+"="+v)
			}
			_, err := Load("", env)
			if err == nil {
				t.Fatalf("Load accepted %v", tc.set)
			}
			for _, key := range tc.wantKeys {
				if !strings.Contains(err.Error(), "config "+key+":") {
					t.Errorf("error %q does not name %s", err, key)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
