package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidURL is wrapped by every error about the shape of a callback URL.
var ErrInvalidURL = errors.New("webhook: invalid callback URL")

// ErrForbidden is wrapped by every refusal to reach an address: private, loopback,
// link-local, CGNAT, multicast, reserved, or plain http outside the allow list.
var ErrForbidden = errors.New("webhook: destination not allowed")

// MaxURLLen is the longest callback URL accepted.
const MaxURLLen = 2048

// Resolver resolves host names. *net.Resolver implements it; tests supply their own so
// a name can resolve to any address without real DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says where webhooks may go. The zero value allows public https destinations
// only, resolved with net.DefaultResolver.
type Policy struct {
	// Allow lists networks that webhooks may reach although the guard would refuse them
	// (private receivers, tests), over https or plain http (FACEIDQ_WEBHOOK_ALLOW).
	// Defaults to none.
	Allow []netip.Prefix
	// AllowHTTP permits plain http to every address the guard admits, not only to Allow
	// (a development switch). Defaults to false.
	AllowHTTP bool
	// Resolver resolves host names at dial time and in ValidateURL. Defaults to
	// net.DefaultResolver.
	Resolver Resolver
	// ResolveTimeout bounds the name lookup of ValidateURL. Defaults to 2 seconds.
	ResolveTimeout time.Duration
}

func (p Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// ParseAllow parses FACEIDQ_WEBHOOK_ALLOW: comma-separated CIDRs ("10.0.0.0/8") or single
// addresses ("127.0.0.1", taken as /32 or /128). Blank input yields none.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("webhook: allow entry %d %q: not a CIDR or address", i+1, f)
			}
			a = a.WithZone("")
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("webhook: allow entry %d %q: %w", i+1, f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Listed reports whether a is inside one of the Allow networks (an IPv4-mapped IPv6
// address counts as its IPv4 form).
func (p Policy) Listed(a netip.Addr) bool {
	a = a.WithZone("")
	u := a.Unmap()
	for _, n := range p.Allow {
		if n.Contains(a) || n.Contains(u) {
			return true
		}
	}
	return false
}

// Allowed reports whether a webhook may connect to a: it is listed, or it is a public
// unicast address.
func (p Policy) Allowed(a netip.Addr) bool {
	return p.Listed(a) || !Forbidden(a)
}

// forbiddenNets are refused besides what netip's predicates (loopback, private,
// link-local, multicast, unspecified) already catch.
var forbiddenNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64: IPv4 in the last 4 bytes
	sixToFour = netip.MustParsePrefix("2002::/16")    // 6to4: IPv4 in bytes 2..5
)

// Forbidden reports whether a is an address no webhook may reach unless allow-listed:
// unspecified, loopback, private (RFC 1918, IPv6 ULA fc00::/7), link-local (169.254/16
// with cloud metadata, fe80::/10), CGNAT (100.64/10), multicast, documentation and
// reserved ranges, and IPv6 forms that embed such an IPv4 address (IPv4-mapped,
// IPv4-compatible, NAT64, 6to4).
func Forbidden(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() {
		return true
	}
	for _, n := range forbiddenNets {
		if n.Contains(a) {
			return true
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return Forbidden(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return Forbidden(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// parseURL checks the shape of a callback URL without any I/O: absolute http or https,
// a host, no userinfo, no control characters or spaces, a numeric port if any, and a
// host that is a literal IP or a plausible DNS name. It returns the URL and the literal
// address of its host, if it is one.
func parseURL(raw string) (*url.URL, netip.Addr, error) {
	if raw == "" {
		return nil, netip.Addr{}, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	if len(raw) > MaxURLLen {
		return nil, netip.Addr{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, MaxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return nil, netip.Addr{}, fmt.Errorf("%w: contains a control character or space", ErrInvalidURL)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("%w: does not parse", ErrInvalidURL)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, netip.Addr{}, fmt.Errorf("%w: scheme must be https", ErrInvalidURL)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, netip.Addr{}, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return nil, netip.Addr{}, fmt.Errorf("%w: must not contain a user or password", ErrInvalidURL)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, netip.Addr{}, fmt.Errorf("%w: bad port", ErrInvalidURL)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, netip.Addr{}, fmt.Errorf("%w: empty port", ErrInvalidURL)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, netip.Addr{}, fmt.Errorf("%w: IPv6 zone in host", ErrInvalidURL)
		}
		return u, a, nil
	}
	if err := checkHostname(host); err != nil {
		return nil, netip.Addr{}, err
	}
	return u, netip.Addr{}, nil
}

// checkHostname accepts ASCII DNS names (letters, digits, '-', '_', '.') whose last label
// is not a number: names like "2130706433" or "0x7f.1" are IPv4 addresses to some
// parsers and are refused rather than guessed at.
func checkHostname(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: bad host name length", ErrInvalidURL)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%w: bad host name", ErrInvalidURL)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: host name has a character outside letters, digits, '-', '_' (use punycode)", ErrInvalidURL)
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if isNumber(last) {
		return fmt.Errorf("%w: host looks like a non-canonical IP address", ErrInvalidURL)
	}
	return nil
}

func isNumber(s string) bool {
	if x, ok := strings.CutPrefix(s, "0x"); ok {
		s = x
		for i := 0; i < len(s); i++ {
			if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// checkLiteral applies the policy to a URL whose host is the literal address a.
func (p Policy) checkLiteral(scheme string, a netip.Addr) error {
	if !p.Allowed(a) {
		return fmt.Errorf("%w: %s is a private, loopback, link-local or reserved address", ErrForbidden, a)
	}
	if scheme == "http" && !p.AllowHTTP && !p.Listed(a) {
		return fmt.Errorf("%w: plain http is allowed only to networks in the allow list; use https", ErrInvalidURL)
	}
	return nil
}

// ValidateURL checks a callback URL when a job is submitted: it must be an absolute https
// URL (http only to allow-listed networks, or with AllowHTTP) with a host, no userinfo
// and no control characters; a literal IP host must be allowed; a host name is resolved
// (bounded by ResolveTimeout) and refused when it does not exist or when it resolves
// only to forbidden addresses. Other lookup failures are not refusals. The dial-time
// guard of NewClient remains the real protection (DNS answers change). Errors wrap
// ErrInvalidURL or ErrForbidden and never contain the URL's path or query.
func ValidateURL(ctx context.Context, raw string, p Policy) error {
	u, lit, err := parseURL(raw)
	if err != nil {
		return err
	}
	if lit.IsValid() {
		return p.checkLiteral(u.Scheme, lit)
	}
	timeout := p.ResolveTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := u.Hostname()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fmt.Errorf("%w: host %s does not resolve", ErrInvalidURL, host)
		}
		return nil // transient: the dial-time guard decides
	}
	var errs []error
	for _, a := range addrs {
		e := p.checkLiteral(u.Scheme, a)
		if e == nil {
			return nil
		}
		errs = append(errs, e)
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: host %s has no address", ErrInvalidURL, host)
	}
	return fmt.Errorf("webhook: host %s: %w", host, errs[0])
}
