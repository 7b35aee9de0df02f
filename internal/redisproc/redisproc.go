// Package redisproc runs real redis-server processes on loopback ports: for tests
// (through internal/redistest) and for the benchmark harness.
package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoBinary is returned when redis-server is not installed.
var ErrNoBinary = errors.New("redisproc: redis-server not found in PATH (apt-get install -y redis-server)")

// Options configures a server.
type Options struct {
	// Binary is the program to run. Defaults to redis-server from PATH.
	Binary string
	// Args are extra arguments, e.g. "--appendonly", "yes".
	Args []string
	// Port to listen on. Defaults to a free loopback port.
	Port int
	// Dir is the working directory (RDB/AOF files, redis.log). Required.
	Dir string
}

// Server is a running redis-server process.
type Server struct {
	Port int
	Dir  string

	bin  string
	args []string
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start starts a redis-server and waits until it answers PING.
func Start(opts Options) (*Server, error) {
	if opts.Binary == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, ErrNoBinary
		}
		opts.Binary = p
	}
	if opts.Dir == "" {
		return nil, errors.New("redisproc: Options.Dir is required")
	}
	if opts.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		opts.Port = p
	}
	s := &Server{Port: opts.Port, Dir: opts.Dir, bin: opts.Binary}
	s.args = append([]string{
		"--port", strconv.Itoa(opts.Port), "--bind", "127.0.0.1", "--dir", opts.Dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(opts.Dir, "redis.log"),
	}, opts.Args...)
	return s, s.Restart()
}

// Restart starts the process again on the same port and directory (after Kill or Stop).
func (s *Server) Restart() error {
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.Dir
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redisproc: start redis-server: %w", err)
	}
	exit := make(chan struct{})
	s.exit = exit
	go func(c *exec.Cmd) { _ = c.Wait(); close(exit) }(s.cmd)
	if err := WaitReady(s.Addr(), 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		s.Kill()
		return fmt.Errorf("redisproc: redis-server on %s: %w\n%s", s.Addr(), err, log)
	}
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Pid is the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits until a Redis server at addr answers PING (a server still loading
// its data set is not ready).
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
