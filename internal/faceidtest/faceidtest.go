// Package faceidtest starts upstream simulators for tests, the way httptest starts
// servers: Start runs a simulator.Server on a free loopback port for the duration of
// a test and returns its address, its credentials and an SDK client profile that
// reaches it.
//
// The simulator runs under simulator.Server.Serve on a real listener (not an
// httptest.Server) so that a refuse outage truly refuses connections.
package faceidtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/faceidq/faceidq/internal/simulator"
)

// Simulator is a running simulator. Its embedded *simulator.Server gives Stats,
// SetFaults and the rest of the Go API.
type Simulator struct {
	*simulator.Server
	// URL is the base URL, e.g. "http://127.0.0.1:41234" (admin: URL + "/_sim/stats").
	URL string
	// Endpoint is the host:port to put in profile.HttpProfile.Endpoint (or in
	// FACEIDQ_ENDPOINT as "http://" + Endpoint).
	Endpoint string
	// SecretID and SecretKey are the credentials the simulator accepts.
	SecretID  string
	SecretKey string
}

// Start starts a simulator configured by cfg on 127.0.0.1 and stops it when the test
// ends; it fails the test when the simulator cannot start or stops with an error.
func Start(tb testing.TB, cfg simulator.Config) *Simulator {
	tb.Helper()
	srv, err := simulator.New(cfg)
	if err != nil {
		tb.Fatalf("faceidtest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faceidtest: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("faceidtest: simulator stopped with an error: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("faceidtest: simulator did not stop within 10 s")
		}
	})
	id, key := srv.Credential()
	addr := ln.Addr().String()
	return &Simulator{Server: srv, URL: "http://" + addr, Endpoint: addr, SecretID: id, SecretKey: key}
}

// Profile returns an SDK client profile that reaches the simulator over plain HTTP,
// with a 10 s request timeout.
func (s *Simulator) Profile() *profile.ClientProfile {
	p := profile.NewClientProfile()
	p.HttpProfile.Scheme = "HTTP"
	p.HttpProfile.Endpoint = s.Endpoint
	p.HttpProfile.ReqTimeout = 10
	p.Language = "en-US"
	return p
}

// Client returns an SDK client for region signed with the simulator's credentials.
func (s *Simulator) Client(region string) *common.Client {
	return common.NewCommonClient(common.NewCredential(s.SecretID, s.SecretKey), region, s.Profile())
}
