package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// MinDKIMRSABits is the smallest RSA key msitfeed signs with: RFC 8301
// makes verifiers refuse keys under 1024 bits and asks signers for 2048.
const MinDKIMRSABits = 2048

// DKIMEnabled reports whether mail is signed: mail.dkim_domain,
// mail.dkim_selector and mail.dkim_key are all set (Validate refuses a
// configuration with only some of them).
func (m Mail) DKIMEnabled() bool {
	return m.DKIMDomain != "" && m.DKIMSelector != "" && m.DKIMKey != ""
}

// validateDKIM checks the three DKIM keys: all or none set, the domain and
// selector DNS names, and the key file a private key DKIM can use. The key
// is read here so that a bad one stops every command at start, as a
// configuration error, rather than the first digest.
func (m Mail) validateDKIM(bad func(key, format string, a ...any)) {
	keys := []struct{ name, value string }{
		{"mail.dkim_domain", m.DKIMDomain},
		{"mail.dkim_selector", m.DKIMSelector},
		{"mail.dkim_key", m.DKIMKey},
	}
	var set, unset []string
	for _, k := range keys {
		if k.value == "" {
			unset = append(unset, k.name)
		} else {
			set = append(set, k.name)
		}
	}
	if len(set) == 0 {
		return
	}
	verb := "is"
	if len(set) > 1 {
		verb = "are"
	}
	for _, name := range unset {
		bad(name, "not set, but %s %s: set mail.dkim_domain, mail.dkim_selector and mail.dkim_key to sign mail with DKIM, or none of them", strings.Join(set, " and "), verb)
	}
	if m.DKIMDomain != "" && (!isDNSName(m.DKIMDomain) || !strings.Contains(m.DKIMDomain, ".")) {
		bad("mail.dkim_domain", "%q is not a domain name like example.org", m.DKIMDomain)
	}
	if m.DKIMSelector != "" && !isDNSName(m.DKIMSelector) {
		bad("mail.dkim_selector", "%q is not a selector (letters, digits and hyphens, like msitfeed2026)", m.DKIMSelector)
	}
	if m.DKIMKey != "" {
		if err := checkDKIMKeyFile(m.DKIMKey); err != nil {
			bad("mail.dkim_key", "%v", err)
		}
	}
}

// checkDKIMKeyFile reads path and says why its key cannot sign DKIM mail:
// the file is unreadable, holds no PEM block, not a private key, or a key
// that is neither RSA of MinDKIMRSABits or more nor Ed25519. It accepts what
// go-mail's PrivKeyFromPEM reads (PKCS #1 "RSA PRIVATE KEY" and PKCS #8
// "PRIVATE KEY"), so what passes here signs in the mailer.
func checkDKIMKeyFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return fmt.Errorf("%s is not PEM (make a key with: openssl genpkey -algorithm ed25519 -out FILE)", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return fmt.Errorf("%s is encrypted; msitfeed needs the key unencrypted (keep the file readable only by msitfeed's user)", path)
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return fmt.Errorf("%s holds a public key; mail.dkim_key is the private key (the public one goes into DNS: msitfeed dkim prints it)", path)
	default:
		return fmt.Errorf("%s holds a PEM %q block, not an RSA or Ed25519 private key (PKCS #1 or PKCS #8)", path, block.Type)
	}
	if err != nil {
		return fmt.Errorf("%s: the private key does not parse: %w", path, err)
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return nil
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinDKIMRSABits {
			return fmt.Errorf("%s holds a %d-bit RSA key; DKIM needs %d bits or more (RFC 8301), or an Ed25519 key", path, bits, MinDKIMRSABits)
		}
		return nil
	case *ecdsa.PrivateKey:
		return fmt.Errorf("%s holds an ECDSA key; DKIM signs with RSA (%d bits or more) or Ed25519", path, MinDKIMRSABits)
	default:
		return fmt.Errorf("%s holds a %T key; DKIM signs with RSA (%d bits or more) or Ed25519", path, key, MinDKIMRSABits)
	}
}

// isDNSName reports whether s is a DNS name of letters, digits and hyphens
// (RFC 1035 labels, at most 63 octets each and 253 in all), without a
// trailing dot.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
