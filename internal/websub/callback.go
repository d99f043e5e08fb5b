package websub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// maxURLBytes bounds a topic or callback URL.
const maxURLBytes = 2048

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// blockedPrefixes are the networks a callback may not reach unless
// AllowPrivate is set, beside what netip.Addr classifies as loopback,
// private, link-local, multicast or unspecified: addresses that are not
// the public Internet, where a request from the hub could reach a service
// only the hub's own network should see.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
}

// The IPv6 prefixes that embed an IPv4 address a client may end up at.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// publicAddr reports whether a is an address a callback may be delivered
// to when private addresses are not allowed. An IPv6 address that embeds an
// IPv4 one (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by
// the IPv4 address as well.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return true
}

// errPrivateAddress is the dialer's refusal of an address publicAddr
// refuses: checked at connect time too, so a host name that resolved to a
// public address when the subscription was made and resolves to a private
// one now (DNS rebinding) is not reached either.
var errPrivateAddress = errors.New("callback address is loopback, private or link-local")

// guardDial is a net.Dialer Control function that refuses non-public
// addresses.
func guardDial(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if !publicAddr(a) {
		return fmt.Errorf("dial %s: %w", address, errPrivateAddress)
	}
	return nil
}

// refusal is a subscription request the hub answers with an error status
// and a one-line reason.
type refusal struct {
	code   int
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(code int, format string, a ...any) *refusal {
	return &refusal{code: code, reason: fmt.Sprintf(format, a...)}
}

// unreserved reports whether c is an unreserved URL character (RFC 3986).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeUnreserved decodes the percent-encoded unreserved characters of s
// (%7E is ~), as the Recommendation asks of hubs for topic and callback
// URLs, so that two spellings of one URL are one subscription. Everything
// else stays as written.
func decodeUnreserved(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if c := hi<<4 | lo; ok1 && ok2 && unreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseCallback checks the form of a callback URL and returns it
// normalised, with its host name in lower case.
func parseCallback(raw string) (string, string, *refusal) {
	if raw == "" {
		return "", "", refuse(400, "hub.callback is missing")
	}
	if len(raw) > maxURLBytes {
		return "", "", refuse(400, "hub.callback is longer than %d bytes", maxURLBytes)
	}
	cb := decodeUnreserved(raw)
	u, err := url.Parse(cb)
	if err != nil {
		return "", "", refuse(400, "hub.callback is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", refuse(400, "hub.callback must be an http or https URL, not %q", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", "", refuse(400, "hub.callback %q has no host", raw)
	}
	if u.Fragment != "" || strings.Contains(cb, "#") {
		return "", "", refuse(400, "hub.callback must not have a #fragment")
	}
	if u.User != nil {
		return "", "", refuse(400, "hub.callback must not carry a user name or password")
	}
	return cb, strings.ToLower(u.Hostname()), nil
}

// checkAddresses refuses a callback host that resolves to an address that
// is not public: every address it resolves to is checked, since a client
// may connect to any of them.
func checkAddresses(ctx context.Context, r Resolver, host string) *refusal {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		found, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(found) == 0 {
			return refuse(422, "hub.callback host %s does not resolve", host)
		}
		addrs = found
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return refuse(403, "hub.callback host %s is at %s, a loopback, private or link-local address; this hub delivers only to public addresses", host, a.Unmap())
		}
	}
	return nil
}

// withQuery appends params to u, after the query u already has: the
// Recommendation keeps a callback's own parameters, even those named like
// the hub's.
func withQuery(u string, params url.Values) string {
	sep := "?"
	switch {
	case strings.HasSuffix(u, "?") || strings.HasSuffix(u, "&"):
		sep = ""
	case strings.Contains(u, "?"):
		sep = "&"
	}
	return u + sep + params.Encode()
}
