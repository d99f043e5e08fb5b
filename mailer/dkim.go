package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	mail "github.com/wneessen/go-mail"

	"github.com/msitfeed/msitfeed/internal/config"
)

// dkimSignedHeaders are the header fields every signature covers. A field
// a message lacks (a confirmation has no List-Id) is still named, so that
// adding one later breaks the signature. List-Unsubscribe and
// List-Unsubscribe-Post are signed because RFC 8058 one-click is trusted
// only when the signature covers them.
var dkimSignedHeaders = []string{
	"From", "To", "Subject", "Date", "Message-ID",
	"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
	"MIME-Version", "Content-Type",
}

// dkimOversignedHeaders are named once more, beyond their one instance, so
// that a second From, Subject or unsubscribe header added in transit (which
// a reader's client might show or act on instead of ours) fails the
// signature rather than riding on it.
var dkimOversignedHeaders = []string{"From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"}

// dkimSigner signs outgoing mail for mail.dkim_domain with the key of
// mail.dkim_key, through go-mail's DKIM signer (relaxed/relaxed,
// rsa-sha256 or ed25519-sha256 as the key says).
type dkimSigner struct {
	domain   string
	selector string
	key      crypto.Signer
}

// ErrNoDKIM says mail.dkim_* is not set: mail is not signed.
var ErrNoDKIM = errors.New("DKIM is not configured: set mail.dkim_domain, mail.dkim_selector and mail.dkim_key")

// loadDKIM reads the key of cfg with go-mail's PrivKeyFromPEM. It returns
// ErrNoDKIM when none of the three keys is set, and an error naming the
// key to fix for a partial setting or a key DKIM cannot use (the config
// package refuses the same at start; a Mailer may be made without it).
func loadDKIM(cfg config.Mail) (*dkimSigner, error) {
	if cfg.DKIMDomain == "" && cfg.DKIMSelector == "" && cfg.DKIMKey == "" {
		return nil, ErrNoDKIM
	}
	for _, k := range []struct{ name, value string }{
		{"mail.dkim_domain", cfg.DKIMDomain}, {"mail.dkim_selector", cfg.DKIMSelector}, {"mail.dkim_key", cfg.DKIMKey},
	} {
		if k.value == "" {
			return nil, fmt.Errorf("config %s: not set; DKIM needs mail.dkim_domain, mail.dkim_selector and mail.dkim_key", k.name)
		}
	}
	pemBytes, err := os.ReadFile(cfg.DKIMKey)
	if err != nil {
		return nil, fmt.Errorf("config mail.dkim_key: cannot read the key: %w", err)
	}
	key, err := mail.PrivKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("config mail.dkim_key: %s: %w", cfg.DKIMKey, err)
	}
	if k, ok := key.(*rsa.PrivateKey); ok && k.N.BitLen() < config.MinDKIMRSABits {
		return nil, fmt.Errorf("config mail.dkim_key: %s holds a %d-bit RSA key; DKIM needs %d bits or more (RFC 8301), or an Ed25519 key",
			cfg.DKIMKey, k.N.BitLen(), config.MinDKIMRSABits)
	}
	d := &dkimSigner{domain: cfg.DKIMDomain, selector: cfg.DKIMSelector, key: key}
	if err := d.signer().ValidateConfig(); err != nil {
		return nil, fmt.Errorf("config mail.dkim_key: %w", err)
	}
	return d, nil
}

// signer returns go-mail's signer for one message. A Signer notes its
// algorithm on first use, so workers do not share one.
func (d *dkimSigner) signer() *mail.DKIMSigner {
	s := mail.NewDKIMSigner(d.domain, d.selector, d.key)
	s.SignHeaders(dkimSignedHeaders...)
	s.OversignHeaders(dkimOversignedHeaders...)
	s.HeaderCanonicalization(mail.CanonicalizationRelaxed)
	s.BodyCanonicalization(mail.CanonicalizationRelaxed)
	return s
}

// renderBuffers hold a message while it is signed.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sign renders msg, signs the bytes with go-mail's signer and sets the
// DKIM-Signature field on msg, so that every later rendering (the one
// sent) carries it. msg must render the same bytes every time: its Date,
// Message-ID and multipart boundary are fixed before it is signed.
//
// Signing at send time instead (Msg.SetDKIM) would give go-mail's own
// folding of the field, which breaks a token wider than a line — as the
// h= list of ten field names is — by inserting a line break and a space
// into it; relaxed canonicalization keeps that space, so verifiers hash
// a different field than was signed, and the signature fails. Here the
// field is folded only where it already holds a space (see foldDKIM).
func (d *dkimSigner) sign(msg *mail.Msg) error {
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer renderBuffers.Put(buf)
	if _, err := msg.WriteTo(buf); err != nil {
		return fmt.Errorf("dkim: render the message: %w", err)
	}
	header, body := splitMessage(buf.Bytes())
	field, err := d.signer().Sign(header, body)
	if err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	value, err := foldDKIM(field)
	if err != nil {
		return err
	}
	msg.SetGenHeaderPreformatted("DKIM-Signature", value)
	return nil
}

// splitMessage cuts a rendered message into its header (every field with
// its CRLF) and its body, as go-mail's signer expects them.
func splitMessage(b []byte) (header, body []byte) {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[:i+2], b[i+4:]
	}
	return b, nil
}

// foldDKIM takes the field go-mail's Signer.Sign returns
// ("DKIM-Signature: v=1; …; b=…\r\n", folded by inserting CRLF and a space
// wherever a line reached 76 columns) and returns its value folded only at
// the spaces between tags, each kept as the whitespace of a continuation
// line. Relaxed canonicalization unfolds and collapses whitespace, so the
// field canonicalizes to exactly what was signed. The b= value may be
// folded anywhere: verifiers ignore whitespace in it and hash the field
// with it emptied. A tag list wider than a line (h=) stays on one line of
// its own, well within the 998 octets a line may have.
func foldDKIM(field string) (string, error) {
	const name = "DKIM-Signature: "
	value, ok := strings.CutPrefix(field, name)
	if !ok {
		return "", fmt.Errorf("dkim: go-mail returned %q, not a DKIM-Signature field", trimForError(field))
	}
	value = strings.ReplaceAll(strings.TrimSuffix(value, "\r\n"), "\r\n ", "")
	tags := strings.Split(value, "; ")
	last := tags[len(tags)-1]
	if strings.ContainsAny(value, "\r\n") || !strings.HasPrefix(tags[0], "v=1") || !strings.HasPrefix(last, "b=") || len(last) < 3 {
		return "", fmt.Errorf("dkim: go-mail's signature field is not in the form msitfeed folds (v=1; …; b=…): %q", trimForError(field))
	}
	const width = 78
	var b strings.Builder
	b.Grow(len(value) + len(value)/width*3 + 8)
	col := len(name)
	for i, tag := range tags[:len(tags)-1] {
		piece := tag + ";"
		if i > 0 {
			if col+1+len(piece) > width {
				b.WriteString("\r\n ")
				col = 1
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(piece)
		col += len(piece)
	}
	b.WriteString("\r\n b=")
	col = 3
	for sig := last[2:]; len(sig) > 0; {
		n := min(len(sig), width-col)
		b.WriteString(sig[:n])
		sig = sig[n:]
		if len(sig) > 0 {
			b.WriteString("\r\n ")
			col = 1
		}
	}
	return b.String(), nil
}

func trimForError(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// newBoundary returns a random MIME boundary: 128 random bits in hex, as
// go-mail writes the boundary parameter unquoted (so only token
// characters will do).
func newBoundary() string { return NewUID() }

// DKIMRecord is the DNS TXT record that publishes the public half of
// mail.dkim_key, for receivers to check the signatures with.
type DKIMRecord struct {
	// Name is <selector>._domainkey.<domain>.
	Name string
	// Value is "v=DKIM1; k=rsa; p=…" or "v=DKIM1; k=ed25519; p=…": p= is
	// the base64 of the SubjectPublicKeyInfo (DER) of an RSA key, or of
	// the 32 octets of an Ed25519 key (RFC 8463).
	Value string
	// Key describes the key: "rsa 2048 bits" or "ed25519".
	Key string
}

// NewDKIMRecord reads the key of cfg and returns the record to publish;
// ErrNoDKIM when mail.dkim_* is not set.
func NewDKIMRecord(cfg config.Mail) (DKIMRecord, error) {
	d, err := loadDKIM(cfg)
	if err != nil {
		return DKIMRecord{}, err
	}
	r := DKIMRecord{Name: d.selector + "._domainkey." + d.domain}
	switch pub := d.key.Public().(type) {
	case ed25519.PublicKey:
		r.Value = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
		r.Key = "ed25519"
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return DKIMRecord{}, fmt.Errorf("config mail.dkim_key: %w", err)
		}
		r.Value = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
		r.Key = fmt.Sprintf("rsa %d bits", pub.N.BitLen())
	default:
		return DKIMRecord{}, fmt.Errorf("config mail.dkim_key: a %T key", pub)
	}
	return r, nil
}

// Strings splits the value into the character-strings of a TXT record,
// each at most 255 octets (RFC 1035 3.3); receivers join them.
func (r DKIMRecord) Strings() []string {
	var out []string
	for v := r.Value; len(v) > 0; {
		n := min(len(v), 255)
		out = append(out, v[:n])
		v = v[n:]
	}
	return out
}

// ZoneLine is the record as a line of a DNS zone file:
// `name. IN TXT "…" "…"`. The value holds no quote or backslash, so the
// strings need no escaping.
func (r DKIMRecord) ZoneLine() string {
	var b strings.Builder
	b.WriteString(r.Name + ". IN TXT")
	for _, s := range r.Strings() {
		b.WriteString(` "` + s + `"`)
	}
	return b.String()
}
