// Package redistest starts Redis servers for tests: an embedded miniredis for unit
// tests, and real redis-server processes on free loopback ports for tests that need
// persistence, restarts, kill -9, replication, Sentinel or Cluster.
//
// A test that needs a real server skips with a clear message when the redis-server
// binary is missing, and fails instead when FACEIDQ_REQUIRE_REDIS=1 (CI sets it).
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
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

// Server is a real redis-server process.
type Server struct {
	Port int
	Dir  string

	tb   testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start starts a redis-server that is stopped when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Binary(tb, "redis-server")
	if opts.Port == 0 {
		opts.Port = FreePort(tb)
	}
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s := &Server{Port: opts.Port, Dir: opts.Dir, tb: tb, bin: bin}
	s.args = append([]string{
		"--port", strconv.Itoa(opts.Port), "--bind", "127.0.0.1", "--dir", opts.Dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(opts.Dir, "redis.log"),
	}, opts.Args...)
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.Dir
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	exit := make(chan struct{})
	s.exit = exit
	go func(c *exec.Cmd) { _ = c.Wait(); close(exit) }(s.cmd)
	if err := WaitReady(s.Addr(), 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		s.tb.Fatalf("redistest: redis-server on %s: %v\n%s", s.Addr(), err, log)
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a go-redis client that is closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill sends SIGKILL and waits for the process to end: nothing is flushed.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for the process to end (Redis saves per its config).
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exit:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
}

// Restart starts the server again on the same port and directory after Kill or Stop.
func (s *Server) Restart() {
	s.tb.Helper()
	s.start()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitReady waits until a Redis server at addr answers PING with PONG (a loading
// server answers LOADING and is not ready yet).
func WaitReady(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %w", timeout, err)
}
