package mailer

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalidAddress is wrapped by every error ParseAddress returns, so a
// caller can tell a bad address from a failing database.
var ErrInvalidAddress = errors.New("invalid email address")

// AddressError says why an address was rejected.
type AddressError struct {
	Input  string // what was given
	Reason string // what is wrong, in a few words
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("invalid email address %q: %s", e.Input, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidAddress) true.
func (e *AddressError) Is(target error) bool { return target == ErrInvalidAddress }

// Address is a parsed and normalised email address.
type Address struct {
	Email string // bare address: local part as given, domain lower-case ASCII (punycode)
	Key   string // Email lower-cased: two addresses are the same subscriber if their keys match
	Name  string // display name or comment from the input, if any
}

// Limits from RFC 5321 §4.5.3.1: a longer address cannot be delivered.
const (
	maxLocalLen   = 64
	maxAddressLen = 254
)

// domainProfile converts a domain to its ASCII (punycode) form the way a
// resolver would look it up: mapped to lower case, labels validated, DNS
// length limits enforced.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// ParseAddress parses one address as a person would type it — "j@x.org",
// "Jane <j@x.org>", "j@x.org (Jane)" — with net/mail and normalises it:
// surrounding space trimmed, the domain lower-cased and, if it is an
// internationalised domain, converted to punycode. The local part keeps its
// case (RFC 5321 lets a server distinguish it) but uniqueness is decided on
// Key, which ignores case.
//
// Rejected, with a reason: anything net/mail cannot parse, several addresses,
// quoted or non-ASCII local parts (they need SMTPUTF8 or quoting that many
// servers and clients get wrong), IP-literal domains, domains without a dot
// (usually a typo such as "jane@gmail"), and over-long addresses.
func ParseAddress(s string) (Address, error) {
	in := strings.TrimSpace(s)
	bad := func(reason string) (Address, error) {
		return Address{}, &AddressError{Input: in, Reason: reason}
	}
	if in == "" {
		return bad("empty")
	}
	if !utf8.ValidString(in) {
		return bad("not UTF-8")
	}
	if strings.ContainsAny(in, "\r\n") {
		return bad("contains a line break")
	}
	a, err := mail.ParseAddress(in)
	if err != nil {
		return bad(strings.TrimPrefix(err.Error(), "mail: "))
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return bad("missing @")
	}
	local, domain := a.Address[:at], a.Address[at+1:]
	if err := checkLocal(local); err != "" {
		return bad(err)
	}
	if strings.HasPrefix(domain, "[") {
		return bad("IP-address domains are not accepted")
	}
	ascii, err := domainProfile.ToASCII(domain)
	if err != nil {
		return bad(fmt.Sprintf("domain %q: %s", domain, strings.TrimPrefix(err.Error(), "idna: ")))
	}
	ascii = strings.ToLower(ascii)
	if !strings.Contains(ascii, ".") {
		return bad(fmt.Sprintf("domain %q has no dot", domain))
	}
	if strings.HasSuffix(ascii, ".") {
		return bad(fmt.Sprintf("domain %q ends with a dot", domain))
	}
	if err := checkHost(ascii); err != "" {
		return bad(err)
	}
	email := local + "@" + ascii
	if len(email) > maxAddressLen {
		return bad(fmt.Sprintf("longer than %d characters", maxAddressLen))
	}
	return Address{
		Email: email,
		Key:   strings.ToLower(email),
		Name:  strings.TrimSpace(a.Name),
	}, nil
}

// emailKey is the uniqueness key of an already normalised address.
func emailKey(email string) string { return strings.ToLower(email) }

// checkLocal accepts a dot-atom local part (RFC 5322 §3.2.3) of ASCII only.
func checkLocal(local string) string {
	switch {
	case local == "":
		return "empty local part"
	case len(local) > maxLocalLen:
		return fmt.Sprintf("local part longer than %d characters", maxLocalLen)
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return "local part has a misplaced dot"
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= utf8.RuneSelf:
			return "non-ASCII local part is not supported"
		case c == '.' || isAtext(c):
		default:
			return fmt.Sprintf("local part needs quoting (contains %q); quoted local parts are not supported", c)
		}
	}
	return ""
}

// isAtext reports whether c may appear unquoted in an atom (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkHost accepts letters, digits and inner hyphens in each label, which
// is what a mail domain may hold once converted to ASCII.
func checkHost(host string) string {
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return fmt.Sprintf("domain %q has an empty label", host)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("domain %q has a label starting or ending with a hyphen", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Sprintf("domain %q contains %q", host, c)
			}
		}
	}
	return ""
}
