package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// startFlowSim serves a simulator with a settable clock on a real listener and

// serveSim starts a simulator made from cfg on a free loopback port, stopped when
// the test ends, and returns it with its base URL.
func serveSim(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, "http://" + ln.Addr().String()
}

// returns it with a faceid.Client that reaches it.
func startFlowSim(t *testing.T) (*Server, *fakeClock, *faceid.Client, string) {
	t.Helper()
	clock := newFakeClock()
	clock.Set(time.Now())
	s, base := serveSim(t, Config{FlowNow: clock.Now})
	s.SetPublicURL(base)
	id, key := s.Credential()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := faceid.New(faceid.Config{Endpoint: base, SecretID: id, SecretKey: key, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock, c, base
}

func mint(t *testing.T, c *faceid.Client, redirect string) *faceid.ApplyWebVerificationBizTokenIntlResponseParams {
	t.Helper()
	r, err := c.Apply(context.Background(), "", &faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &redirect})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return r
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestFlow(t *testing.T) {
	s, clock, c, base := startFlowSim(t)
	ctx := context.Background()
	t.Cleanup(func() { // keep-alive connections would outlive the test (goleak)
		noFollow.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	})

	t.Run("browser pass", func(t *testing.T) {
		r := mint(t, c, "https://app.example.com/back?x=1")
		if !strings.HasPrefix(*r.VerificationURL, base+VerifyPath+"?token=") {
			t.Fatalf("VerificationURL %s", *r.VerificationURL)
		}
		got, err := c.Get(ctx, "", *r.BizToken)
		if err != nil || got.ErrorCode != nil {
			t.Fatalf("Get before completion = %+v, %v", got, err)
		}
		resp, err := noFollow.Get(*r.VerificationURL + "&outcome=pass&similarity=93.5")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc != "https://app.example.com/back?token="+*r.BizToken+"&x=1" {
			t.Fatalf("redirect %d %q", resp.StatusCode, loc)
		}
		got, err = c.Get(ctx, "", *r.BizToken)
		if err != nil || got.ErrorCode == nil || *got.ErrorCode != 0 || *got.Similarity() != 93.5 {
			t.Fatalf("Get after completion = %+v, %v", got, err)
		}
		b, _ := json.Marshal(got)
		if bytes.Contains(b, []byte(MediaPattern[:40])) {
			t.Fatalf("decoded answer holds media")
		}
	})

	t.Run("complete endpoint and raw answer carries media", func(t *testing.T) {
		r := mint(t, c, "https://app.example.com/back")
		resp, err := http.Post(base+"/_sim/complete", "application/json",
			strings.NewReader(`{"BizToken":"`+*r.BizToken+`","ErrorCode":1001}`))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("complete: %v %v", resp, err)
		}
		resp.Body.Close()
		ans, _, _ := s.getAnswer(*r.BizToken, DevSecretID, clock.Now())
		raw, _ := json.Marshal(ans)
		if !bytes.Contains(raw, []byte(MediaPattern)) {
			t.Fatal("the simulator's answer carries no fake media")
		}
		got, err := c.Get(ctx, "", *r.BizToken)
		if err != nil || *got.ErrorCode != 1001 {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		resp, _ = http.Post(base+"/_sim/complete", "application/json", strings.NewReader(`{"BizToken":"`+*r.BizToken+`","Abandon":true}`))
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("second completion: %d", resp.StatusCode)
		}
	})

	t.Run("abandon, flow timeout, result window, unknown", func(t *testing.T) {
		ab := mint(t, c, "https://app.example.com/back")
		if _, err := s.Complete(Completion{BizToken: *ab.BizToken, Abandon: true}); err != nil {
			t.Fatal(err)
		}
		late := mint(t, c, "https://app.example.com/back")
		clock.Add(11 * time.Minute)
		if _, err := s.Complete(Completion{BizToken: *late.BizToken}); !errors.Is(err, ErrFlowExpired) {
			t.Fatalf("late completion: %v", err)
		}
		resp, _ := noFollow.Get(*late.VerificationURL)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("late page: %d", resp.StatusCode)
		}
		if g, err := c.Get(ctx, "", *ab.BizToken); err != nil || g.ErrorCode != nil {
			t.Fatalf("abandoned: %+v %v", g, err)
		}
		clock.Add(DefaultResultWindow)
		_, err := c.Get(ctx, "", *late.BizToken)
		var ae *faceid.APIError
		if !errors.As(err, &ae) || ae.Code != "InvalidParameterValue.BizTokenExpired" {
			t.Fatalf("expired: %v", err)
		}
		_, err = c.Get(ctx, "", "00000000-0000-0000-0000-000000000000")
		if !errors.As(err, &ae) || ae.Code != "InvalidParameterValue.BizTokenIllegal" {
			t.Fatalf("unknown: %v", err)
		}
	})

	t.Run("own limit per action", func(t *testing.T) {
		s.ResetStats()
		for range 3 {
			mint(t, c, "https://app.example.com/back")
		}
		start, limited := time.Now(), 0
		for range 40 {
			if _, err := c.Get(ctx, "", "00000000-0000-0000-0000-000000000000"); err != nil && faceid.Classify(err) == faceid.RateLimited {
				limited++
			}
		}
		st := s.Stats()
		a, g := st.ByAction[faceid.Action], st.ByAction[faceid.ActionGet]
		if a.Requests != 3 || st.Requests != 3 || g.Requests != 40 || g.MaxAdmittedInAnySecond > 20 {
			t.Fatalf("by action: %+v", st.ByAction)
		}
		if time.Since(start) < time.Second && limited < 20 {
			t.Fatalf("40 Gets within a second, only %d limited", limited)
		}
	})
}
