// Package redistest starts Redis servers for tests: an embedded miniredis for unit
// tests, and real redis-server processes on free loopback ports (package redisproc)
// for tests that need persistence, restarts, kill -9, replication, Sentinel or Cluster.
//
// A test that needs a real server skips with a clear message when the redis-server
// binary is missing, and fails instead when FACEIDQ_REQUIRE_REDIS=1 (CI sets it).
package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redisproc"
)

// RequireEnv is the environment variable that turns a missing redis-server into a failure.
const RequireEnv = "FACEIDQ_REQUIRE_REDIS"

// Mini starts an embedded miniredis that is closed when the test ends.
func Mini(tb testing.TB) *miniredis.Miniredis {
	tb.Helper()
	return miniredis.RunT(tb)
}

// Binary returns the path of redis-server (or of name, e.g. "redis-sentinel"), skipping
// or failing tb when it is missing.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("redistest: %s not found in PATH (apt-get install -y redis-server)", name)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s, and %s=1 requires it", msg, RequireEnv)
	}
	tb.Skip(msg + "; skipping a test that needs a real Redis")
	return ""
}

// Options configures a real server.
type Options struct {
	// Args are extra redis-server arguments, e.g. "--appendonly", "yes".
	Args []string
	// Port to listen on. Defaults to a free loopback port.
	Port int
	// Dir is the working directory (RDB/AOF files). Defaults to a new temporary directory.
	Dir string
}

// Server is a real redis-server process, stopped when its test ends.
type Server struct {
	*redisproc.Server
	tb testing.TB
}

// Start starts a redis-server that is stopped when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Binary(tb, "redis-server")
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := redisproc.Start(redisproc.Options{Binary: bin, Args: opts.Args, Port: opts.Port, Dir: opts.Dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return &Server{Server: s, tb: tb}
}

// Restart starts the server again on the same port and directory after Kill or Stop,
// failing the test if it cannot.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.Server.Restart(); err != nil {
		s.tb.Fatal(err)
	}
}

// Client returns a go-redis client that is closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := redisproc.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
