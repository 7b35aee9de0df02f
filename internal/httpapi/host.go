package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// LoopbackHosts returns the Host headers an API listening on addr may be reached by
// when addr is a loopback TCP address: the address itself, the loopback names with
// its port, and publicURL's host. For any other address it returns nil: no check
// (Config.Hosts).
func LoopbackHosts(addr net.Addr, publicURL string) []string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return nil
	}
	port := ta.AddrPort().Port()
	hosts := []string{addr.String()}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		hosts = append(hosts, net.JoinHostPort(h, strconv.Itoa(int(port))))
	}
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		hosts = append(hosts, u.Host)
	}
	return hosts
}

// hostAllowed reports whether r may be served: always with tokens configured or no
// Config.Hosts; otherwise only when its Host is one of them. A page on another site
// whose name was rebound to 127.0.0.1 sends its own name as Host: this refuses it on
// an open API.
func (a *API) hostAllowed(r *http.Request) bool {
	if a.auth.enabled() || len(a.cfg.Hosts) == 0 {
		return true
	}
	for _, h := range a.cfg.Hosts {
		if strings.EqualFold(r.Host, h) {
			return true
		}
	}
	return false
}
