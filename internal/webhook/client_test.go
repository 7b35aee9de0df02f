package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// get sends a GET through c and returns the status or the error.
func get(t *testing.T, c *http.Client, rawURL string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestClientGuardsAtDial(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	// rebind answers with a public address the first time (what ValidateURL sees) and
	// with 127.0.0.1 afterwards (what the dialer sees).
	var lookups atomic.Int64
	rebind := resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return addrs("93.184.216.34"), nil
		}
		return addrs("127.0.0.1"), nil
	})
	res := mapResolver{
		"loopback.test": addrs("127.0.0.1"),
		"metadata.test": addrs("169.254.169.254"),
		"private.test":  addrs("10.0.0.1"),
		"v6.test":       addrs("::1"),
		"mapped.test":   addrs("::ffff:127.0.0.1"),
	}
	allow := mustParseAllow(t, "127.0.0.1/32")
	tests := []struct {
		name    string
		policy  Policy
		url     string
		wantErr string // "" for a 204 from the server
	}{
		{"literal loopback", Policy{AllowHTTP: true}, "http://127.0.0.1:" + port, "127.0.0.1 is a private"},
		{"name resolving to loopback", Policy{AllowHTTP: true, Resolver: res}, "http://loopback.test:" + port, "127.0.0.1 is a private"},
		{"name resolving to mapped loopback", Policy{AllowHTTP: true, Resolver: res}, "http://mapped.test:" + port, "is a private"},
		{"name resolving to cloud metadata", Policy{Resolver: res}, "https://metadata.test/", "169.254.169.254 is a private"},
		{"literal cloud metadata", Policy{}, "https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a private"},
		{"name resolving to 10.0.0.1", Policy{Resolver: res}, "https://private.test/", "10.0.0.1 is a private"},
		{"literal 10.0.0.1", Policy{}, "https://10.0.0.1/", "10.0.0.1 is a private"},
		{"name resolving to ::1", Policy{Resolver: res}, "https://v6.test:" + port, "::1 is a private"},
		{"literal [::1]", Policy{}, "https://[::1]:" + port, "::1 is a private"},
		{"plain http outside the allow list", Policy{}, "http://127.0.0.1:" + port, "plain http to 127.0.0.1"},
		{"allow-listed literal over http", Policy{Allow: allow}, "http://127.0.0.1:" + port, ""},
		{"allow-listed name over http", Policy{Allow: allow, Resolver: res}, "http://loopback.test:" + port, ""},
		{"other scheme", Policy{Allow: allow}, "ftp://127.0.0.1:" + port, "scheme must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			c := NewClient(tt.policy, ClientOptions{ConnectTimeout: 2 * time.Second, Timeout: 5 * time.Second})
			code, err := get(t, c, tt.url)
			if tt.wantErr == "" {
				if err != nil || code != http.StatusNoContent {
					t.Fatalf("got %d, %v; want 204", code, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrInvalidURL) {
				t.Errorf("err = %v, want ErrForbidden or ErrInvalidURL", err)
			}
			if hits.Load() != before {
				t.Error("the server was reached")
			}
		})
	}

	t.Run("DNS rebinding after validation", func(t *testing.T) {
		p := Policy{Resolver: rebind, AllowHTTP: true}
		if err := ValidateURL(context.Background(), "http://rebind.test:"+port+"/", p); err != nil {
			t.Fatalf("ValidateURL with the public answer: %v", err)
		}
		before := hits.Load()
		_, err := get(t, NewClient(p, ClientOptions{}), "http://rebind.test:"+port+"/")
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
		if hits.Load() != before {
			t.Error("the server was reached")
		}
	})
}

func TestClientHTTPSThroughGuard(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tests := []struct {
		name   string
		policy Policy
		ok     bool
	}{
		{"allow-listed", Policy{Allow: mustParseAllow(t, "127.0.0.0/8")}, true},
		{"not allow-listed", Policy{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(tt.policy, ClientOptions{TLSConfig: tlsConf})
			code, err := get(t, c, srv.URL)
			if tt.ok && (err != nil || code != http.StatusAccepted) {
				t.Fatalf("got %d, %v; want 202", code, err)
			}
			if !tt.ok && !errors.Is(err, ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
		})
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/to", http.StatusFound)
	})
	mux.HandleFunc("/to", func(http.ResponseWriter, *http.Request) { followed.Store(true) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := NewClient(Policy{Allow: mustParseAllow(t, "127.0.0.1/32")}, ClientOptions{})
	code, err := get(t, c, srv.URL+"/from")
	if err != nil || code != http.StatusFound {
		t.Fatalf("got %d, %v; want 302", code, err)
	}
	if followed.Load() {
		t.Fatal("the redirect was followed")
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied.Store(true) }))
	t.Cleanup(proxy.Close)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	// A destination the guard refuses must stay refused, not be handed to a proxy.
	_, err := get(t, NewClient(Policy{AllowHTTP: true}, ClientOptions{}), "http://10.0.0.1/")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
	if proxied.Load() {
		t.Fatal("the request went through the proxy")
	}
}
