// Package redisconn turns a REDIS_URL into a go-redis client: one Redis server (also on a
// Unix socket), a Sentinel-managed master, or a Redis Cluster, with or without TLS.
//
// Invariants: a URL has one meaning (addresses only in the host list; an unknown option is
// an error); its user and password are those of the data nodes. The forms and options are
// listed in docs/operations.md and docs/internals.md.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Kind is the shape of a Redis deployment.
type Kind string

// The kinds of deployment a URL can name.
const (
	Standalone Kind = "standalone"
	Sentinel   Kind = "sentinel"
	Cluster    Kind = "cluster"
)

// Default ports of the host lists.
const (
	DefaultPort         = "6379"
	DefaultSentinelPort = "26379"
)

// ErrURL is wrapped by every error Parse returns. No error carries a password.
var ErrURL = errors.New("redisconn: invalid REDIS_URL")

// Spec is a parsed REDIS_URL: its Kind and the go-redis options of that kind (only
// the field of its Kind is set).
type Spec struct {
	Kind       Kind
	Standalone *redis.Options
	Sentinel   *redis.FailoverOptions
	Cluster    *redis.ClusterOptions
}

// NewClient returns a client for the spec: a *redis.Client for a single server or a
// Sentinel master, a *redis.ClusterClient for a Cluster. It does no I/O.
func (s *Spec) NewClient() redis.UniversalClient {
	switch s.Kind {
	case Sentinel:
		return redis.NewFailoverClient(s.Sentinel)
	case Cluster:
		return redis.NewClusterClient(s.Cluster)
	}
	return redis.NewClient(s.Standalone)
}

// Addrs returns the addresses the spec connects to first: the server, the sentinels
// or the cluster's seed nodes.
func (s *Spec) Addrs() []string {
	switch s.Kind {
	case Sentinel:
		return slices.Clone(s.Sentinel.SentinelAddrs)
	case Cluster:
		return slices.Clone(s.Cluster.Addrs)
	}
	return []string{s.Standalone.Addr}
}

// New parses raw (see the package doc) and returns its client. It does no I/O.
func New(raw string) (redis.UniversalClient, error) {
	s, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return s.NewClient(), nil
}

// Parse parses a REDIS_URL. Errors wrap ErrURL and never contain the password.
func Parse(raw string) (*Spec, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w: empty", ErrURL)
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%w: no scheme (want redis://, rediss://, redis-sentinel:// or redis-cluster://)", ErrURL)
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		return parseStandalone(raw)
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinel(raw)
	case "redis-cluster", "rediss-cluster":
		return parseCluster(raw)
	}
	return nil, fmt.Errorf("%w: unknown scheme %q (want redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", ErrURL, scheme)
}

func parseStandalone(raw string) (*Spec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, urlErr(err))
	}
	q := u.Query()
	files := takeTLSFiles(q)
	u.RawQuery = q.Encode()
	o, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	if err := files.apply(o.TLSConfig); err != nil {
		return nil, err
	}
	return &Spec{Kind: Standalone, Standalone: o}, nil
}

// tlsFiles are the certificate files named by the tls_* options.
type tlsFiles struct{ ca, cert, key string }

func takeTLSFiles(q url.Values) tlsFiles {
	return tlsFiles{ca: take(q, "tls_ca_file"), cert: take(q, "tls_cert_file"), key: take(q, "tls_key_file")}
}

// apply loads the files into c, which is nil for a scheme without TLS.
func (f tlsFiles) apply(c *tls.Config) error {
	if f == (tlsFiles{}) {
		return nil
	}
	if c == nil {
		return fmt.Errorf("%w: tls_ca_file, tls_cert_file and tls_key_file need a rediss… scheme", ErrURL)
	}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return fmt.Errorf("%w: tls_ca_file: %v", ErrURL, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: tls_ca_file: no PEM certificate in %s", ErrURL, f.ca)
		}
		c.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return fmt.Errorf("%w: tls_cert_file and tls_key_file go together", ErrURL)
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return fmt.Errorf("%w: tls_cert_file/tls_key_file: %v", ErrURL, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// multi is a URL with a list of hosts, split by hand (net/url allows one host).
type multi struct {
	tls      bool
	user     *url.Userinfo
	hosts    []string
	segments []string
	query    url.Values
}

// refused are go-redis URL options that would give a second way to say what the
// host list, the path and the user info say.
var refused = []string{"addr", "master_name", "username", "password"}

func splitMulti(raw, defaultPort string) (*multi, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	m := &multi{tls: strings.HasPrefix(strings.ToLower(scheme), "rediss")}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return nil, fmt.Errorf("%w: a fragment (#…) is not allowed", ErrURL)
	}
	authority, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		// Let net/url decode the user info (percent-encoding, "user:pass").
		u, err := url.Parse("redis://" + authority[:i+1] + "h")
		if err != nil {
			return nil, fmt.Errorf("%w: bad user info (percent-encode special characters)", ErrURL)
		}
		m.user, authority = u.User, authority[i+1:]
	}
	if authority == "" {
		return nil, fmt.Errorf("%w: no host", ErrURL)
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, err
		}
		m.hosts = append(m.hosts, addr)
	}
	path, rawQuery, _ := strings.Cut(pathQuery, "?")
	p, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("%w: bad path: %v", ErrURL, err)
	}
	m.segments = strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	if m.query, err = url.ParseQuery(rawQuery); err != nil {
		return nil, fmt.Errorf("%w: bad query: %v", ErrURL, err)
	}
	for _, k := range refused {
		if m.query.Has(k) {
			return nil, fmt.Errorf("%w: option %s is not accepted here: give hosts in the host list, the master as the path and the credentials before the @", ErrURL, k)
		}
	}
	return m, nil
}

// hostPort validates one host of a host list and adds the default port.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("%w: empty host in the host list", ErrURL)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: "host" or "[::1]".
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
			return "", fmt.Errorf("%w: bad host %q (write IPv6 addresses in brackets)", ErrURL, h)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%w: bad host %q", ErrURL, h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: bad port in %q", ErrURL, h)
	}
	return net.JoinHostPort(host, port), nil
}

// take removes key from q and returns its last value.
func take(q url.Values, key string) string {
	v := q[key]
	q.Del(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// tlsConfig returns the TLS settings of a multi-host URL. ServerName stays empty so
// that each host is verified under its own name.
func tlsConfig(m *multi) (*tls.Config, error) {
	skip := take(m.query, "skip_verify")
	files := takeTLSFiles(m.query)
	if !m.tls {
		if skip != "" {
			return nil, fmt.Errorf("%w: skip_verify needs a rediss-… scheme", ErrURL)
		}
		return nil, files.apply(nil)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if skip != "" {
		b, err := strconv.ParseBool(skip)
		if err != nil {
			return nil, fmt.Errorf("%w: skip_verify must be true or false", ErrURL)
		}
		c.InsecureSkipVerify = b
	}
	return c, files.apply(c)
}

func parseSentinel(raw string) (*Spec, error) {
	m, err := splitMulti(raw, DefaultSentinelPort)
	if err != nil {
		return nil, err
	}
	if len(m.segments) == 0 || len(m.segments) > 2 {
		return nil, fmt.Errorf("%w: a Sentinel URL names the master as its path: redis-sentinel://host:26379/mymaster[/db]", ErrURL)
	}
	db := 0
	if len(m.segments) == 2 {
		if db, err = strconv.Atoi(m.segments[1]); err != nil || db < 0 {
			return nil, fmt.Errorf("%w: bad database number %q", ErrURL, m.segments[1])
		}
	}
	if v := take(m.query, "db"); v != "" {
		if db, err = strconv.Atoi(v); err != nil || db < 0 {
			return nil, fmt.Errorf("%w: bad database number %q", ErrURL, v)
		}
	}
	sentUser, sentPass := take(m.query, "sentinel_username"), take(m.query, "sentinel_password")
	tc, err := tlsConfig(m)
	if err != nil {
		return nil, err
	}
	// go-redis parses the remaining options.
	o, err := redis.ParseFailoverURL("redis://" + m.hosts[0] + "?" + m.query.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	o.SentinelAddrs, o.MasterName, o.DB, o.TLSConfig = m.hosts, m.segments[0], db, tc
	o.SentinelUsername, o.SentinelPassword = sentUser, sentPass
	if m.user != nil {
		o.Username = m.user.Username()
		o.Password, _ = m.user.Password()
	}
	if o.RouteByLatency || o.RouteRandomly {
		return nil, fmt.Errorf("%w: route_by_latency and route_randomly are not supported with Sentinel here (faceidq needs the master)", ErrURL)
	}
	return &Spec{Kind: Sentinel, Sentinel: o}, nil
}

func parseCluster(raw string) (*Spec, error) {
	m, err := splitMulti(raw, DefaultPort)
	if err != nil {
		return nil, err
	}
	if len(m.segments) > 1 || (len(m.segments) == 1 && m.segments[0] != "0") {
		return nil, fmt.Errorf("%w: a Cluster has database 0 only; drop the path", ErrURL)
	}
	if v := take(m.query, "db"); v != "" && v != "0" {
		return nil, fmt.Errorf("%w: a Cluster has database 0 only; drop db=%s", ErrURL, v)
	}
	tc, err := tlsConfig(m)
	if err != nil {
		return nil, err
	}
	o, err := redis.ParseClusterURL("redis://" + m.hosts[0] + "?" + m.query.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	o.Addrs, o.TLSConfig = m.hosts, tc
	if m.user != nil {
		o.Username = m.user.Username()
		o.Password, _ = m.user.Password()
	}
	return &Spec{Kind: Cluster, Cluster: o}, nil
}

// urlErr returns the reason of a net/url error without the URL (which may hold a
// password).
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact returns raw with its password and any password option replaced by "xxxxx",
// for log lines. It works on malformed URLs too (it never returns the original when
// it cannot find the user info).
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "[unparsable REDIS_URL]"
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user := authority[:i]
		if j := strings.IndexByte(user, ':'); j >= 0 {
			user = user[:j] + ":xxxxx"
		}
		authority = user + "@" + authority[i+1:]
	}
	if i := strings.IndexByte(tail, '?'); i >= 0 {
		path, query := tail[:i], tail[i+1:]
		parts := strings.Split(query, "&")
		for k, p := range parts {
			name, _, _ := strings.Cut(p, "=")
			if strings.Contains(strings.ToLower(name), "password") {
				parts[k] = name + "=xxxxx"
			}
		}
		tail = path + "?" + strings.Join(parts, "&")
	}
	return scheme + "://" + authority + tail
}

// NoEviction is the maxmemory-policy a job queue needs: with any other policy Redis
// may evict queued jobs and results under memory pressure.
const NoEviction = "noeviction"

// MaxmemoryPolicy returns the server's maxmemory-policy (CONFIG GET; on a Cluster,
// one node's). Managed services often refuse CONFIG: callers treat an error as
// "unknown".
func MaxmemoryPolicy(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	m, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", fmt.Errorf("redisconn: CONFIG GET maxmemory-policy: %w", err)
	}
	p, ok := m["maxmemory-policy"]
	if !ok {
		return "", errors.New("redisconn: CONFIG GET maxmemory-policy: no value")
	}
	return p, nil
}
