package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// shutdownGrace bounds how long Serve waits for requests in flight when ctx ends.
const shutdownGrace = 5 * time.Second

// ListenAndServe listens on the TCP address addr and serves the simulator until ctx
// is done (then it returns nil). See Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("simulator: listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the simulator on ln until ctx is done, then shuts down (requests in a
// latency delay are dropped, answers being written get up to 5 s) and returns nil. Serve takes ownership of ln: during a refuse outage it closes ln and every
// open connection, so that connecting fails with "connection refused", and listens
// again on ln's address when the outage ends. It returns an error when serving fails
// or the address cannot be listened on again.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	network, addr := ln.Addr().Network(), ln.Addr().String()
	for {
		err := s.serveUntilRefuse(ctx, ln)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if !s.waitOutageEnd(ctx) {
			return nil
		}
		ln, err = net.Listen(network, addr)
		if err != nil {
			return fmt.Errorf("simulator: listen again on %s after the outage: %w", addr, err)
		}
	}
}

// serveUntilRefuse serves on ln until ctx is done (returns nil with ctx.Err() set) or
// a refuse outage starts (returns nil with ln and its connections closed).
func (s *Server) serveUntilRefuse(ctx context.Context, ln net.Listener) error {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// stop ends the requests in flight (a request in a latency delay is dropped
	// without an answer), lets the answers being written finish (among them the
	// PUT /_sim/faults that started an outage) and closes every connection.
	stop := func(grace time.Duration) {
		cancel()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer scancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
		<-errc
	}
	for {
		changed := s.changes() // before reading the faults: no change can slip between
		if s.faults.Load().outage(s.cfg.Now()) == OutageRefuse {
			stop(time.Second)
			return nil
		}
		select {
		case <-ctx.Done():
			stop(shutdownGrace)
			return nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("simulator: serve %s: %w", ln.Addr(), err)
		case <-changed:
		}
	}
}

// waitOutageEnd waits until no refuse outage is in force, and reports false when ctx
// ended first.
func (s *Server) waitOutageEnd(ctx context.Context) bool {
	for {
		changed := s.changes()
		f := s.faults.Load()
		now := s.cfg.Now()
		if f.outage(now) != OutageRefuse {
			return true
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if !f.until.IsZero() {
			t = time.NewTimer(f.until.Sub(now))
			timeout = t.C
		}
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-changed:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
		if done {
			return false
		}
	}
}
