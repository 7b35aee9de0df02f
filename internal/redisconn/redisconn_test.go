package redisconn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/redistest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		kind     Kind
		addrs    []string
		user     string
		pass     string
		db       int
		tls      bool
		check    func(t *testing.T, s *Spec)
		wantErr  string // substring of the error; "" means success
		noSecret string // a string the error must not contain
	}{
		{name: "plain", url: "redis://127.0.0.1:6379/0", kind: Standalone, addrs: []string{"127.0.0.1:6379"}},
		{name: "default port and db", url: "redis://cache.internal/3", kind: Standalone, addrs: []string{"cache.internal:6379"}, db: 3},
		{name: "credentials", url: "redis://app:s%40cret@h:7000", kind: Standalone, addrs: []string{"h:7000"}, user: "app", pass: "s@cret"},
		{name: "password only", url: "redis://:pw@h", kind: Standalone, addrs: []string{"h:6379"}, pass: "pw"},
		{name: "tls", url: "rediss://h:6380", kind: Standalone, addrs: []string{"h:6380"}, tls: true},
		{name: "options", url: "redis://h?dial_timeout=3s&pool_size=50&protocol=2", kind: Standalone, addrs: []string{"h:6379"},
			check: func(t *testing.T, s *Spec) {
				if s.Standalone.DialTimeout != 3*time.Second || s.Standalone.PoolSize != 50 || s.Standalone.Protocol != 2 {
					t.Errorf("options not applied: %+v", s.Standalone)
				}
			}},
		{name: "unix socket", url: "unix:///run/redis.sock?db=2", kind: Standalone, addrs: []string{"/run/redis.sock"}, db: 2},
		{name: "ipv6", url: "redis://[::1]:7000", kind: Standalone, addrs: []string{"[::1]:7000"}},

		{name: "sentinel", url: "redis-sentinel://u:p@s1:26379,s2:26380,s3/mymaster?db=2", kind: Sentinel,
			addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, user: "u", pass: "p", db: 2,
			check: func(t *testing.T, s *Spec) {
				if s.Sentinel.MasterName != "mymaster" {
					t.Errorf("MasterName = %q", s.Sentinel.MasterName)
				}
			}},
		{name: "sentinel db in path", url: "redis-sentinel://s1/mymaster/4", kind: Sentinel, addrs: []string{"s1:26379"}, db: 4},
		{name: "sentinel credentials", url: "redis-sentinel://s1/m?sentinel_username=su&sentinel_password=sp&read_timeout=2s", kind: Sentinel, addrs: []string{"s1:26379"},
			check: func(t *testing.T, s *Spec) {
				if s.Sentinel.SentinelUsername != "su" || s.Sentinel.SentinelPassword != "sp" || s.Sentinel.ReadTimeout != 2*time.Second {
					t.Errorf("sentinel options: %+v", s.Sentinel)
				}
			}},
		{name: "sentinel tls", url: "rediss-sentinel://[::1],s2:1/m", kind: Sentinel, addrs: []string{"[::1]:26379", "s2:1"}, tls: true},
		{name: "sentinel tls skip verify", url: "rediss-sentinel://s1/m?skip_verify=true", kind: Sentinel, addrs: []string{"s1:26379"}, tls: true,
			check: func(t *testing.T, s *Spec) {
				if !s.Sentinel.TLSConfig.InsecureSkipVerify {
					t.Error("skip_verify not applied")
				}
			}},
		{name: "cluster", url: "redis-cluster://u:p@n1:7000,n2:7001", kind: Cluster, addrs: []string{"n1:7000", "n2:7001"}, user: "u", pass: "p"},
		{name: "cluster one seed", url: "redis-cluster://n1", kind: Cluster, addrs: []string{"n1:6379"}},
		{name: "cluster options", url: "rediss-cluster://n1:7000/?route_randomly=true&read_only=true", kind: Cluster, addrs: []string{"n1:7000"}, tls: true,
			check: func(t *testing.T, s *Spec) {
				if !s.Cluster.RouteRandomly || !s.Cluster.ReadOnly {
					t.Errorf("cluster options: %+v", s.Cluster)
				}
			}},

		{name: "empty", url: "", wantErr: "empty"},
		{name: "no scheme", url: "localhost:6379", wantErr: "no scheme"},
		{name: "unknown scheme", url: "http://h", wantErr: "unknown scheme"},
		{name: "bad db", url: "redis://h/abc", wantErr: "database"},
		{name: "unknown option", url: "redis://h?pool=1", wantErr: "unexpected option"},
		{name: "bad port hides password", url: "redis://u:hunter2@h:abc", wantErr: "invalid", noSecret: "hunter2"},
		{name: "sentinel without master", url: "redis-sentinel://s1:26379", wantErr: "names the master"},
		{name: "sentinel empty host", url: "redis-sentinel://s1,,s2/m", wantErr: "empty host"},
		{name: "sentinel bad port", url: "redis-sentinel://s1:x/m", wantErr: "bad port"},
		{name: "sentinel bad db", url: "redis-sentinel://s1/m/x", wantErr: "database"},
		{name: "sentinel master_name option", url: "redis-sentinel://s1/m?master_name=x", wantErr: "master_name"},
		{name: "sentinel route randomly", url: "redis-sentinel://s1/m?route_randomly=true", wantErr: "not supported"},
		{name: "cluster db", url: "redis-cluster://n1/3", wantErr: "database 0"},
		{name: "cluster addr option", url: "redis-cluster://n1?addr=n2:1", wantErr: "addr"},
		{name: "cluster unknown option hides password", url: "redis-cluster://u:topsecret@n1?nope=1", wantErr: "unexpected option", noSecret: "topsecret"},
		{name: "skip_verify without tls", url: "redis-cluster://n1?skip_verify=true", wantErr: "rediss"},
		{name: "unbracketed ipv6", url: "redis-cluster://::1", wantErr: "bad"},
		{name: "no host", url: "redis-cluster://u:p@", wantErr: "no host"},
		{name: "fragment", url: "redis-cluster://n1#x", wantErr: "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.url)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error", tt.url, s)
				}
				if !errors.Is(err, ErrURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, want ErrURL mentioning %q", tt.url, err, tt.wantErr)
				}
				if tt.noSecret != "" && strings.Contains(err.Error(), tt.noSecret) {
					t.Fatalf("error %q leaks the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.url, err)
			}
			if s.Kind != tt.kind {
				t.Errorf("Kind = %s, want %s", s.Kind, tt.kind)
			}
			if got := s.Addrs(); !slices.Equal(got, tt.addrs) {
				t.Errorf("Addrs = %v, want %v", got, tt.addrs)
			}
			var user, pass string
			var db int
			var tls bool
			switch s.Kind {
			case Standalone:
				user, pass, db, tls = s.Standalone.Username, s.Standalone.Password, s.Standalone.DB, s.Standalone.TLSConfig != nil
			case Sentinel:
				user, pass, db, tls = s.Sentinel.Username, s.Sentinel.Password, s.Sentinel.DB, s.Sentinel.TLSConfig != nil
			case Cluster:
				user, pass, tls = s.Cluster.Username, s.Cluster.Password, s.Cluster.TLSConfig != nil
			}
			if user != tt.user || pass != tt.pass || db != tt.db || tls != tt.tls {
				t.Errorf("user %q pass %q db %d tls %v, want %q %q %d %v", user, pass, db, tls, tt.user, tt.pass, tt.db, tt.tls)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://u:secret@h:6379/0", "redis://u:xxxxx@h:6379/0"},
		{"redis-sentinel://u:p@a,b/m?sentinel_password=sp&db=1", "redis-sentinel://u:xxxxx@a,b/m?sentinel_password=xxxxx&db=1"},
		{"rediss://:p%40w@h", "rediss://:xxxxx@h"},
		{"not a url secret", "[unparsable REDIS_URL]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewConnects(t *testing.T) {
	m := redistest.Mini(t)
	rdb, err := New("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the parsed client: %v", err)
	}
	if got, _ := m.Get("k"); got != "v" {
		t.Fatalf("miniredis has %q", got)
	}
}

func TestMaxmemoryPolicy(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, NoEviction},
		{"lru", []string{"--maxmemory-policy", "allkeys-lru"}, "allkeys-lru"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{Args: tt.args})
			rdb, err := New(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			got, err := MaxmemoryPolicy(context.Background(), rdb)
			if err != nil || got != tt.want {
				t.Fatalf("MaxmemoryPolicy = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", ""}})
		rdb, _ := New(srv.URL())
		defer rdb.Close()
		if _, err := MaxmemoryPolicy(context.Background(), rdb); err == nil {
			t.Fatal("MaxmemoryPolicy with CONFIG disabled: want an error")
		}
	})
}
