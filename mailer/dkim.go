package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
// mail.dkim_key: relaxed/relaxed, rsa-sha256 or ed25519-sha256 (RFC 8463)
// as the key says.
//
// It signs rendered bytes itself rather than through go-mail's signer,
// which canonicalizes the body a byte at a time on every message and
// cannot be given a body hash: here the body hash of a digest's edition is
// computed from its shared lines once (see msgTemplate), and only the
// lines that differ per recipient are hashed per message.
type dkimSigner struct {
	domain   string
	selector string
	key      crypto.Signer
	algo     string // "rsa-sha256" or "ed25519-sha256"
	// tags is the signature's value up to bh=, the same for every message.
	tags string
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
	d := &dkimSigner{domain: cfg.DKIMDomain, selector: cfg.DKIMSelector, key: key}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < config.MinDKIMRSABits {
			return nil, fmt.Errorf("config mail.dkim_key: %s holds a %d-bit RSA key; DKIM needs %d bits or more (RFC 8301), or an Ed25519 key",
				cfg.DKIMKey, k.N.BitLen(), config.MinDKIMRSABits)
		}
		d.algo = "rsa-sha256"
	case ed25519.PrivateKey:
		d.algo = "ed25519-sha256"
	default:
		return nil, fmt.Errorf("config mail.dkim_key: %s holds a %T key; DKIM needs RSA or Ed25519", cfg.DKIMKey, key)
	}
	for _, v := range []struct{ name, value string }{{"mail.dkim_domain", d.domain}, {"mail.dkim_selector", d.selector}} {
		if strings.ContainsAny(v.value, " \t\r\n;=") {
			return nil, fmt.Errorf("config %s: %q holds a space, ';' or '='", v.name, v.value)
		}
	}
	d.tags = "v=1; a=" + d.algo + "; c=relaxed/relaxed; d=" + d.domain + "; s=" + d.selector + "; "
	return d, nil
}

// dkimHeaderList is the h= tag: every signed field once, the oversigned
// ones again.
var dkimHeaderList = strings.Join(append(append([]string{}, dkimSignedHeaders...), dkimOversignedHeaders...), ":")

// dkimHeaderNames is the h= list, name by name.
var dkimHeaderNames = strings.Split(dkimHeaderList, ":")

// signature returns the value of the DKIM-Signature field (folded, without
// the name) for a message whose header is header (every field with its
// CRLF) and whose canonical body hashes to bodyHash, signed at t.
func (d *dkimSigner) signature(header []byte, bodyHash []byte, t time.Time) (string, error) {
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer renderBuffers.Put(buf)
	fields := headerFields(header)
	for _, name := range dkimHeaderNames {
		if f := takeField(fields, name); f != nil {
			appendRelaxedField(buf, f.name, f.value)
			buf.WriteString("\r\n")
		}
	}
	return d.signCanonical(buf, bodyHash, t)
}

// takeField returns the last field named name not yet taken, marking it
// taken (RFC 6376 5.4.2: each name in h= takes the next instance from the
// bottom up); nil when none is left, and the name adds nothing.
func takeField(fields []headerField, name string) *headerField {
	for i := len(fields) - 1; i >= 0; i-- {
		if !fields[i].used && strings.EqualFold(fields[i].name, name) {
			fields[i].used = true
			return &fields[i]
		}
	}
	return nil
}

// signCanonical signs: buf holds the signed fields canonicalized, each
// with its CRLF, in h= order; it gets the signature field itself (with b=
// empty and no CRLF) and is hashed.
func (d *dkimSigner) signCanonical(buf *bytes.Buffer, bodyHash []byte, t time.Time) (string, error) {
	value := d.tags + "t=" + strconv.FormatInt(t.Unix(), 10) + "; h=" + dkimHeaderList +
		"; bh=" + base64.StdEncoding.EncodeToString(bodyHash) + "; b="
	appendRelaxedField(buf, "DKIM-Signature", value)
	sum := sha256.Sum256(buf.Bytes())
	var sig []byte
	var err error
	switch k := d.key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, sum[:])
	default:
		sig, err = d.key.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	return foldDKIM("DKIM-Signature: " + value + base64.StdEncoding.EncodeToString(sig) + "\r\n")
}

// headerField is one field of a rendered header: its name and its value
// as written (folding kept).
type headerField struct {
	name, value string
	used        bool
}

// headerFields cuts a rendered header into its fields.
func headerFields(header []byte) []headerField {
	var out []headerField
	for len(header) > 0 {
		end := 0
		for {
			i := bytes.IndexByte(header[end:], '\n')
			if i < 0 {
				end = len(header)
				break
			}
			end += i + 1
			if end >= len(header) || (header[end] != ' ' && header[end] != '\t') {
				break
			}
		}
		field := string(header[:end])
		header = header[end:]
		name, value, ok := strings.Cut(field, ":")
		if !ok {
			continue
		}
		out = append(out, headerField{name: name, value: value})
	}
	return out
}

// appendRelaxedField writes a field as relaxed header canonicalization
// makes it (RFC 6376 3.4.2): the name in lower case, a colon, the value
// unfolded with runs of whitespace as one space and none at either end.
func appendRelaxedField(buf *bytes.Buffer, name, value string) {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != ' ' && c != '\t' {
			buf.WriteByte(c)
		}
	}
	buf.WriteByte(':')
	space := false
	started := false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\r', '\n':
		case ' ', '\t':
			space = started
		default:
			if space {
				buf.WriteByte(' ')
				space = false
			}
			buf.WriteByte(c)
			started = true
		}
	}
}

// relaxedBody is a running relaxed body canonicalization (RFC 6376 3.4.4)
// into a hash: whitespace runs within a line become one space, whitespace
// at the end of a line goes, and empty lines at the end of the body go.
// It is fed whole lines, CRLF included; empty lines are held back until a
// line with something on it shows they were not the last.
type relaxedBody struct {
	h       hash.Hash
	empties int
	line    []byte
}

var crlfCRLF = []byte("\r\n")

// writeLines canonicalizes and hashes b, whole lines ending in LF (a CR
// before the LF is part of the line end; a last line without one is taken
// as ending there).
func (rb *relaxedBody) writeLines(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		line = rb.canonLine(line)
		if len(line) == 0 {
			rb.empties++
			continue
		}
		for ; rb.empties > 0; rb.empties-- {
			rb.h.Write(crlfCRLF)
		}
		rb.h.Write(line)
		rb.h.Write(crlfCRLF)
	}
}

// canonLine returns line with whitespace runs as one space and none at its
// end; line itself when it needs no change.
func (rb *relaxedBody) canonLine(line []byte) []byte {
	clean := true
	for i, c := range line {
		if c == '\t' || c == ' ' && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t') {
			clean = false
			break
		}
	}
	if clean {
		return line
	}
	out := rb.line[:0]
	space := false
	for _, c := range line {
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, c)
	}
	rb.line = out
	return out
}

// bodyHash returns the relaxed body hash of body.
func bodyHash(body []byte) []byte {
	rb := relaxedBody{h: sha256.New()}
	rb.writeLines(body)
	return rb.h.Sum(nil)
}

// signWire signs a rendered message: header is every field with its CRLF,
// body what follows the empty line. It returns the DKIM-Signature field to
// put before the header.
func (d *dkimSigner) signWire(header, body []byte, t time.Time) ([]byte, error) {
	value, err := d.signature(header, bodyHash(body), t)
	if err != nil {
		return nil, err
	}
	return []byte("DKIM-Signature: " + value + "\r\n"), nil
}

// renderBuffers hold messages while they are built and signed.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// splitMessage cuts a rendered message into its header (every field with
// its CRLF) and its body.
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
