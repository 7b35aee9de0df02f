package redisconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSFiles(t *testing.T) {
	ca, key := writeCert(t)
	ok := []struct{ name, url string }{
		{"standalone CA", "rediss://:pw@redis.internal:6380/1?tls_ca_file=" + ca},
		{"standalone CA and client cert", "rediss://redis.internal:6380?tls_ca_file=" + ca + "&tls_cert_file=" + ca + "&tls_key_file=" + key},
		{"cluster CA", "rediss-cluster://n1:7000,n2:7001?tls_ca_file=" + ca},
		{"sentinel client cert", "rediss-sentinel://s1,s2/mymaster?tls_cert_file=" + ca + "&tls_key_file=" + key},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := s.NewClient()
			defer c.Close()
			var roots, certs bool
			switch s.Kind {
			case Standalone:
				roots, certs = s.Standalone.TLSConfig.RootCAs != nil, len(s.Standalone.TLSConfig.Certificates) == 1
			case Cluster:
				roots, certs = s.Cluster.TLSConfig.RootCAs != nil, len(s.Cluster.TLSConfig.Certificates) == 1
			case Sentinel:
				roots, certs = s.Sentinel.TLSConfig.RootCAs != nil, len(s.Sentinel.TLSConfig.Certificates) == 1
			}
			if strings.Contains(tt.url, "tls_ca_file") != roots || strings.Contains(tt.url, "tls_cert_file") != certs {
				t.Fatalf("roots %v, client certificate %v for %s", roots, certs, tt.name)
			}
		})
	}
	bad := []struct{ name, url, want string }{
		{"CA on plain redis", "redis://h:6379?tls_ca_file=" + ca, "need a rediss"},
		{"CA on plain cluster", "redis-cluster://a,b?tls_ca_file=" + ca, "need a rediss"},
		{"missing CA file", "rediss://h?tls_ca_file=/nonexistent/ca.pem", "tls_ca_file"},
		{"CA file without PEM", "rediss://h?tls_ca_file=" + writeJunk(t), "no PEM certificate"},
		{"cert without key", "rediss://h?tls_cert_file=" + ca, "go together"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.url)
			if !errors.Is(err, ErrURL) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want ErrURL with %q", err, tt.want)
			}
		})
	}
}

func writeJunk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(p, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
