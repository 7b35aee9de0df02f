package faultsuite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// route is one HTTP route of an api or a worker's metrics listener.
type route struct{ method, path string }

// apiRoutes are the routes of `faceidq api` that require a token when tokens are
// configured: every route but /healthz and /v1/start/{LinkId}. The campaign routes
// are listed whether or not this build serves them (an unknown route requires a
// token too).
var apiRoutes = []route{
	{"POST", "/v1/tokens"},
	{"GET", "/v1/tokens/j_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
	{"GET", "/v1/tokens/not-an-id"},
	{"GET", "/v1/pipeline"},
	{"POST", "/v1/pipeline/pause"},
	{"POST", "/v1/pipeline/resume"},
	{"GET", "/readyz"},
	{"GET", "/metrics"},
	{"POST", "/v1/batches"},
	{"GET", "/v1/batches"},
	{"GET", "/v1/batches/b_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
	{"GET", "/v1/batches/b_aaaaaaaaaaaaaaaaaaaaaaaaaa/results"},
	{"POST", "/v1/batches/b_aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel"},
	{"POST", "/v1/batches/b_aaaaaaaaaaaaaaaaaaaaaaaaaa/pause"},
	{"GET", "/v1/links/l_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
	{"POST", "/v1/links/l_aaaaaaaaaaaaaaaaaaaaaaaaaa/revoke"},
	{"DELETE", "/v1/tokens"},
	{"PUT", "/v1/pipeline"},
	{"GET", "/no/such/route"},
	{"GET", "/"},
}

// workerRoutes are those of a worker's FACEIDQ_METRICS_LISTEN.
var workerRoutes = []route{{"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/no/such/route"}, {"POST", "/metrics"}}

// TestAccess checks authentication: of every HTTP route when tokens are configured,
// and of Redis (requirepass, an ACL user, TLS) against real redis-server processes.
func TestAccess(t *testing.T) {
	t.Parallel()
	t.Run("Routes", testRoutes)
	t.Run("RedisRequirepass", func(t *testing.T) {
		t.Parallel()
		const pw = "p@ss:w/rd% with spaces"
		addr := startRedis(t, []string{"--requirepass", pw})
		u := url.URL{Scheme: "redis", User: url.UserPassword("", pw), Host: addr, Path: "/0"}
		jobThrough(t, u.String(), nil)
		refused(t, "redis://:wrong@"+addr+"/0", pw, nil)
	})
	t.Run("RedisACLUser", func(t *testing.T) {
		t.Parallel()
		const pw = "acl-S3cret/pw#1"
		addr := startRedis(t, []string{"--user", "default", "off", "--user", "faceidq", "on", ">" + pw, "~*", "&*", "+@all"})
		u := url.URL{Scheme: "redis", User: url.UserPassword("faceidq", pw), Host: addr, Path: "/0"}
		jobThrough(t, u.String(), nil)
		refused(t, "redis://"+addr+"/0", pw, nil) // no credentials: the default user is off
	})
	t.Run("RedisTLS", testRedisTLS)
}

const (
	routeToken = "route-token-Aq1"
	otherToken = "route-token-Bz2"
)

func testRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{env: map[string]string{"FACEIDQ_API_TOKENS": routeToken + "," + otherToken}})
	api := s.api(t, "api", nil)
	w := s.worker(t, "worker", nil)
	ctx := context.Background()

	check := func(t *testing.T, base string, routes []route) {
		for _, r := range routes {
			t.Run(r.method+" "+r.path, func(t *testing.T) {
				body := ""
				if r.method == "POST" {
					body = jobBody
				}
				for _, bad := range []struct{ name, header, value string }{
					{"no token", "", ""},
					{"wrong token", "Authorization", "Bearer " + routeToken + "x"},
					{"token prefix", "Authorization", "Bearer " + routeToken[:len(routeToken)-1]},
					{"basic scheme", "Authorization", "Basic " + routeToken},
					{"no scheme", "Authorization", routeToken},
					{"token in another header", "X-Api-Token", routeToken},
				} {
					var hdr []string
					if bad.header != "" {
						hdr = []string{bad.header, bad.value}
					}
					a, err := do(ctx, r.method, base+r.path, "", body, hdr...)
					if err != nil {
						t.Fatal(err)
					}
					if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s: HTTP %d (WWW-Authenticate %q), want 401 Bearer", bad.name, a.status, a.header.Get("WWW-Authenticate"))
					}
				}
				a, err := do(ctx, r.method, base+r.path+"?access_token="+routeToken, "", body)
				if err != nil || a.status != http.StatusUnauthorized {
					t.Errorf("token in the query string: HTTP %d %v, want 401", a.status, err)
				}
				a, err = do(ctx, r.method, base+r.path, routeToken, body)
				if err != nil || a.status == http.StatusUnauthorized || a.status >= 500 {
					t.Errorf("valid token: HTTP %d %v %s", a.status, err, a.body)
				}
			})
		}
	}
	t.Run("api", func(t *testing.T) { check(t, api.url, apiRoutes) })
	t.Run("worker", func(t *testing.T) { check(t, w.url, workerRoutes) })
	// Leave the pipeline running for what follows.
	if a, err := do(ctx, "POST", api.url+"/v1/pipeline/resume", routeToken, ""); err != nil || a.status/100 != 2 {
		t.Fatalf("resume: %v %d", err, a.status)
	}

	for _, base := range []string{api.url, w.url} {
		if a, err := do(ctx, "GET", base+"/healthz", "", ""); err != nil || a.status != http.StatusOK {
			t.Errorf("GET %s/healthz without a token: %v HTTP %d, want 200", base, err, a.status)
		}
	}
	if a, err := do(ctx, "GET", api.url+"/v1/start/l_aaaaaaaaaaaaaaaaaaaaaaaaaa", "", ""); err != nil || a.status >= 500 {
		t.Errorf("GET /v1/start/{LinkId} without a token: %v HTTP %d", err, a.status)
	} else {
		t.Logf("GET /v1/start/{LinkId} of an unknown link without a token (public by design once campaigns are served): HTTP %d", a.status)
	}

	// A job is readable with any valid token and with nothing else.
	id, a, err := submit(ctx, api.url, routeToken, jobBody)
	if err != nil || id == "" {
		t.Fatalf("submit: %v %d %s", err, a.status, a.body)
	}
	job := waitJob(t, api.url, otherToken, id)
	for _, tok := range []string{"", routeToken + routeToken, "Bearer"} {
		a, err := do(ctx, "GET", api.url+"/v1/tokens/"+id, tok, "")
		if err != nil || a.status != http.StatusUnauthorized {
			t.Errorf("GET the job with token %q: %v HTTP %d, want 401", tok, err, a.status)
		}
		if job.BizToken != "" && strings.Contains(a.body, job.BizToken) {
			t.Errorf("a 401 answer shows the job's BizToken")
		}
	}
}

// waitJob long-polls GET /v1/tokens/{id} until the job is final and returns it.
func waitJob(t testing.TB, base, token, id string) *tasks.Job {
	t.Helper()
	var job tasks.Job
	waittest.UntilReason(t, 2*time.Minute, "job "+id+" to be final", func() (bool, string) {
		a, err := do(context.Background(), "GET", base+"/v1/tokens/"+id, token, "", "Prefer", "wait=5")
		if err != nil || a.status != http.StatusOK {
			return false, fmt.Sprintf("%v HTTP %d %s", err, a.status, a.body)
		}
		if err := json.Unmarshal([]byte(a.body), &job); err != nil {
			return false, err.Error()
		}
		return job.Status.Final(), string(job.Status)
	})
	return &job
}

// jobThrough runs an api and a worker on redisURL (with extra environment) and
// checks that a job submitted through the api succeeds.
func jobThrough(t *testing.T, redisURL string, extra map[string]string) {
	t.Helper()
	env := map[string]string{}
	for k, v := range extra {
		env[k] = v
	}
	s := newStack(t, stackOptions{redisURL: redisURL, env: env})
	api := s.api(t, "api", nil)
	s.worker(t, "worker", nil)
	id, a, err := submit(context.Background(), api.url, "", jobBody)
	if err != nil || id == "" {
		t.Fatalf("submit: %v %d %s", err, a.status, a.body)
	}
	if job := waitJob(t, api.url, "", id); job.Status != tasks.StatusSucceeded {
		t.Fatalf("job %s: %+v", id, job)
	}
}

// refused checks that `faceidq api` with redisURL stops with an error (exit code 1)
// that does not show secret.
func refused(t *testing.T, redisURL, secret string, extra map[string]string) string {
	t.Helper()
	env := map[string]string{"REDIS_URL": redisURL, "FACEIDQ_LISTEN": "127.0.0.1:0", "FACEIDQ_LOG_FORMAT": "json"}
	for k, v := range extra {
		env[k] = v
	}
	p := startProc(t, "api-refused", []string{"api"}, env)
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("api with a refused Redis connection did not stop:\n%s", p.Out.String())
	}
	out := p.Out.String()
	if code := p.Cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("api with a refused Redis connection exited 0:\n%s", out)
	}
	if secret != "" && strings.Contains(out, secret) {
		t.Errorf("the error shows the secret:\n%s", out)
	}
	return out
}

// startRedis starts redis-server with args (plus a free --port unless args set one,
// loopback only, no persistence) and waits until port (or the tls-port) accepts
// connections. It returns host:port of the port the test should use.
func startRedis(t *testing.T, args []string) string {
	t.Helper()
	bin := redistest.Binary(t, "redis-server")
	dir := t.TempDir()
	port := redistest.FreePort(t)
	all := []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
		"--logfile", filepath.Join(dir, "redis.log")}
	if i := indexOf(args, "--tls-port"); i >= 0 {
		port, _ = strconv.Atoi(args[i+1])
	} else {
		all = append(all, "--port", strconv.Itoa(port))
	}
	cmd := exec.Command(bin, append(all, args...)...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waittest.UntilReason(t, 15*time.Second, "redis-server on "+addr, func() (bool, string) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server %v exited:\n%s", args, log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return addr
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v && i+1 < len(s) {
			return i
		}
	}
	return -1
}

// testRedisTLS runs a job over rediss:// against redis-server with --tls-port and a
// certificate of a CA made here, trusted once through the URL's tls_ca_file option and
// once through SSL_CERT_FILE (Go on Linux reads the system roots from it). Without
// either the processes must refuse the server.
func testRedisTLS(t *testing.T) {
	t.Parallel()
	bin := redistest.Binary(t, "redis-server")
	if out, _ := exec.Command(bin, "--version").Output(); !tlsCapable(bin) {
		t.Skipf("this redis-server (%s) has no TLS support (--tls-port): install a build with TLS", strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	port := redistest.FreePort(t)
	addr := startRedis(t, []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"})
	redisURL := "rediss://" + addr + "/0"
	jobThrough(t, redisURL+"?tls_ca_file="+ca, nil)
	jobThrough(t, redisURL, map[string]string{"SSL_CERT_FILE": ca})
	out := refused(t, redisURL, "", map[string]string{"SSL_CERT_FILE": filepath.Join(dir, "none.pem")})
	if !strings.Contains(out, "certificate") {
		t.Errorf("without the CA, the api should refuse the server's certificate; it said:\n%s", out)
	}
}

// tlsCapable reports whether redis-server was built with TLS: given a TLS port and
// no key, a build with TLS fails on the missing key, one without it on the unknown
// tls-port directive.
func tlsCapable(bin string) bool {
	out, _ := exec.Command(bin, "--port", "0", "--tls-port", "0", "--bind", "127.0.0.1", "--save", "",
		"--tls-cert-file", "/nonexistent").CombinedOutput()
	return !strings.Contains(string(out), "Bad directive")
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by it.
func writeCerts(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "faultsuite test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
