package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// ClientOptions tunes NewClient. The zero value is usable.
type ClientOptions struct {
	// ConnectTimeout bounds name resolution, TCP connect and the TLS handshake of a new
	// connection. Defaults to 5 seconds.
	ConnectTimeout time.Duration
	// Timeout bounds a whole request, from dial to the end of the response body.
	// Defaults to 15 seconds.
	Timeout time.Duration
	// TLSConfig is used for https. Defaults to the system roots and TLS 1.2 or later.
	TLSConfig *tls.Config
	// MaxIdleConnsPerHost is the number of kept-alive connections per receiver.
	// Defaults to 8.
	MaxIdleConnsPerHost int
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 8
	}
	return o
}

// NewClient returns an HTTP client for webhook deliveries that enforces the policy where
// it cannot be fooled: every address is checked in a net.Dialer Control hook, on the very
// address being connected to, after resolution (so DNS rebinding does not get around it).
// Plain http connects only to allow-listed networks unless p.AllowHTTP. The client uses
// no proxy, does not follow redirects (a 3xx is returned as is), and applies the
// timeouts of o. Refusals wrap ErrForbidden; other schemes than http and https wrap
// ErrInvalidURL.
func NewClient(p Policy, o ClientOptions) *http.Client {
	o = o.withDefaults()
	g := &dialGuard{policy: p, resolver: p.resolver(), timeout: o.ConnectTimeout}
	tlsConf := o.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would dial on our behalf, past the guard
		DialContext:            g.dialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    o.ConnectTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: &schemeGuard{next: tr, allowHTTP: p.AllowHTTP},
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// listedOnlyKey marks a plain-http request's context: its connections may go only to
// allow-listed networks. The transport passes request context values to DialContext,
// and pools http connections apart from https ones.
type listedOnlyKey struct{}

// schemeGuard admits only http and https and marks plain-http requests.
type schemeGuard struct {
	next      *http.Transport
	allowHTTP bool
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "https":
	case "http":
		if !g.allowHTTP {
			req = req.WithContext(context.WithValue(req.Context(), listedOnlyKey{}, true))
		}
	default:
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%w: scheme must be https", ErrInvalidURL)
	}
	return g.next.RoundTrip(req)
}

// CloseIdleConnections closes the transport's idle connections.
func (g *schemeGuard) CloseIdleConnections() { g.next.CloseIdleConnections() }

type dialGuard struct {
	policy   Policy
	resolver Resolver
	timeout  time.Duration
}

// dialContext resolves address with the policy's resolver and connects to each address
// in turn; the Control hook refuses forbidden ones.
func (g *dialGuard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("webhook: dial: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("webhook: dial: bad port")
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("webhook: resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("webhook: resolve %s: no address", host)
		}
	}
	listedOnly, _ := ctx.Value(listedOnlyKey{}).(bool)
	d := net.Dialer{
		KeepAlive: 30 * time.Second,
		Control:   g.control(listedOnly),
	}
	var first error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if first == nil || errors.Is(first, ErrForbidden) && !errors.Is(err, ErrForbidden) {
			first = err // prefer reporting a connection failure to a refusal of another address
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// control is the real guard: it runs on the socket about to connect, with the numeric
// address it connects to.
func (g *dialGuard) control(listedOnly bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable address", ErrForbidden)
		}
		a := ap.Addr()
		if listedOnly {
			if !g.policy.Listed(a) {
				return fmt.Errorf("%w: plain http to %s, which is not in the allow list", ErrForbidden, a)
			}
			return nil
		}
		if !g.policy.Allowed(a) {
			return fmt.Errorf("%w: %s is a private, loopback, link-local or reserved address", ErrForbidden, a)
		}
		return nil
	}
}
