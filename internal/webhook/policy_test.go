package webhook

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestForbidden(t *testing.T) {
	tests := []struct {
		addr      string
		forbidden bool
	}{
		{"93.184.216.34", false},
		{"8.8.8.8", false},
		{"2606:4700:4700::1111", false},
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"10.0.0.1", true},
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},      // CGNAT
		{"100.127.255.254", true}, // CGNAT
		{"100.128.0.1", false},    // just past CGNAT
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"::", true},
		{"::1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"fec0::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:93.184.216.34", false},
		{"::127.0.0.1", true},         // IPv4-compatible
		{"64:ff9b::a9fe:a9fe", true},  // NAT64 of 169.254.169.254
		{"64:ff9b::5db8:d822", false}, // NAT64 of 93.184.216.34
		{"2002:7f00:1::1", true},      // 6to4 of 127.0.0.1
		{"2002:5db8:d822::1", false},  // 6to4 of 93.184.216.34
		{"2001:db8::1", true},         // documentation
		{"2001:0:4136:e378::1", true}, // Teredo
		{"64:ff9b:1::a00:1", true},    // local-use NAT64
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := Forbidden(netip.MustParseAddr(tt.addr)); got != tt.forbidden {
				t.Fatalf("Forbidden(%s) = %v, want %v", tt.addr, got, tt.forbidden)
			}
		})
	}
}

func TestPolicyAllowList(t *testing.T) {
	p := Policy{Allow: mustParseAllow(t, "127.0.0.1/32, 10.0.0.0/8")}
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"127.0.0.2", false},
		{"10.200.0.1", true},
		{"192.168.0.1", false},
		{"::1", false},
		{"93.184.216.34", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := p.Allowed(netip.MustParseAddr(tt.addr)); got != tt.allowed {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.addr, got, tt.allowed)
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"blank", "", nil, false},
		{"cidrs", "127.0.0.1/32,10.0.0.0/8", []string{"127.0.0.1/32", "10.0.0.0/8"}, false},
		{"bare addresses", " 127.0.0.1 , ::1 ", []string{"127.0.0.1/32", "::1/128"}, false},
		{"masked", "10.1.2.3/8", []string{"10.0.0.0/8"}, false},
		{"empty entries skipped", "127.0.0.1/32,,", []string{"127.0.0.1/32"}, false},
		{"garbage", "localhost", nil, true},
		{"bad prefix length", "10.0.0.0/33", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllow(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if strings.Join(gs, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", gs, tt.want)
			}
		})
	}
}

func TestValidateURL(t *testing.T) {
	res := mapResolver{
		"public.test":   addrs("93.184.216.34"),
		"mixed.test":    addrs("10.0.0.1", "93.184.216.34"),
		"loopback.test": addrs("127.0.0.1"),
		"private.test":  addrs("10.0.0.1", "192.168.0.1"),
		"metadata.test": addrs("169.254.169.254"),
		"v6.test":       addrs("::1"),
		"mapped.test":   addrs("::ffff:127.0.0.1"),
		"empty.test":    nil,
	}
	slow := resolverFunc(func(ctx context.Context, _, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	strict := Policy{Resolver: res}
	listed := Policy{Resolver: res, Allow: mustParseAllow(t, "127.0.0.1/32")}
	dev := Policy{Resolver: res, AllowHTTP: true}
	tests := []struct {
		name   string
		url    string
		policy Policy
		want   error // nil, ErrInvalidURL or ErrForbidden
	}{
		{"public https", "https://public.test/hook?x=1", strict, nil},
		{"public https with port", "https://public.test:8443/hook", strict, nil},
		{"name resolving to one public address", "https://mixed.test/", strict, nil},
		{"public http refused", "http://public.test/hook", strict, ErrInvalidURL},
		{"public http with the dev flag", "http://public.test/hook", dev, nil},
		{"name resolving to 127.0.0.1", "https://loopback.test/", strict, ErrForbidden},
		{"name resolving only to private addresses", "https://private.test/", strict, ErrForbidden},
		{"name resolving to cloud metadata", "https://metadata.test/", strict, ErrForbidden},
		{"name resolving to ::1", "https://v6.test/", strict, ErrForbidden},
		{"name resolving to mapped loopback", "https://mapped.test/", strict, ErrForbidden},
		{"allow-listed name over http", "http://loopback.test:8080/", listed, nil},
		{"literal 127.0.0.1", "https://127.0.0.1/", strict, ErrForbidden},
		{"literal 10.0.0.1", "https://10.0.0.1/", strict, ErrForbidden},
		{"literal 169.254.169.254", "https://169.254.169.254/latest/meta-data/", strict, ErrForbidden},
		{"literal [::1]", "https://[::1]/", strict, ErrForbidden},
		{"literal mapped metadata", "https://[::ffff:169.254.169.254]/", strict, ErrForbidden},
		{"literal 0.0.0.0", "https://0.0.0.0/", strict, ErrForbidden},
		{"literal allow-listed over http", "http://127.0.0.1:9999/hook", listed, nil},
		{"literal loopback with dev flag only", "http://127.0.0.1/", dev, ErrForbidden},
		{"literal public", "https://93.184.216.34/", strict, nil},
		{"decimal IPv4 host", "https://2130706433/", strict, ErrInvalidURL},
		{"hex IPv4 host", "https://0x7f.0.0.1/", strict, ErrInvalidURL},
		{"octal-ish last label", "https://a.017/", strict, ErrInvalidURL},
		{"zone in host", "https://[fe80::1%25eth0]/", strict, ErrInvalidURL},
		{"userinfo", "https://user:pass@public.test/", strict, ErrInvalidURL},
		{"user only", "https://user@public.test/", strict, ErrInvalidURL},
		{"control character", "https://public.test/\x00", strict, ErrInvalidURL},
		{"newline", "https://public.test/a\nb", strict, ErrInvalidURL},
		{"space", "https://public.test/a b", strict, ErrInvalidURL},
		{"ftp", "ftp://public.test/", strict, ErrInvalidURL},
		{"javascript", "javascript:alert(1)", strict, ErrInvalidURL},
		{"relative", "/hook", strict, ErrInvalidURL},
		{"no host", "https:///hook", strict, ErrInvalidURL},
		{"empty", "", strict, ErrInvalidURL},
		{"bad port", "https://public.test:99999/", strict, ErrInvalidURL},
		{"empty port", "https://public.test:/", strict, ErrInvalidURL},
		{"non-ascii host", "https://bücher.test/", strict, ErrInvalidURL},
		{"too long", "https://public.test/" + strings.Repeat("a", MaxURLLen), strict, ErrInvalidURL},
		{"unknown name", "https://nx.test/", strict, ErrInvalidURL},
		{"name without addresses", "https://empty.test/", strict, ErrInvalidURL},
		{"lookup timeout is not a refusal", "https://slow.test/", Policy{Resolver: slow, ResolveTimeout: 20 * time.Millisecond}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateURL(context.Background(), tt.url, tt.policy)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("ValidateURL: %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("ValidateURL = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hook?x") {
				t.Errorf("error %q shows the path or query", err)
			}
		})
	}
}
