package simulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
)

// apply sends one ApplyWebVerificationBizTokenIntl request with the official SDK and
// returns the response, or the error code ("" on success) and the error.
func apply(t *testing.T, c *common.Client, p faceid.ApplyWebVerificationBizTokenIntlRequestParams) (*faceid.ApplyWebVerificationBizTokenIntlResponse, string, error) {
	t.Helper()
	req := faceid.NewApplyWebVerificationBizTokenIntlRequest()
	req.RedirectURL, req.CompareImageBase64, req.Extra, req.Config, req.RuleId = p.RedirectURL, p.CompareImageBase64, p.Extra, p.Config, p.RuleId
	resp := faceid.NewApplyWebVerificationBizTokenIntlResponse()
	err := c.Send(req, resp)
	if err == nil {
		return resp, "", nil
	}
	var sdkErr *tcerr.TencentCloudSDKError
	if !errors.As(err, &sdkErr) {
		t.Fatalf("Send returned %T %v, not a TencentCloudSDKError", err, err)
	}
	return resp, sdkErr.Code, err
}

func ptr[T any](v T) *T { return &v }

var valid = faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://example.com/verified")}

func TestSDK(t *testing.T) {
	sim := faceidtest.Start(t, simulator.Config{Rate: -1})

	t.Run("accepted", func(t *testing.T) {
		resp, code, err := apply(t, sim.Client("ap-singapore"), faceid.ApplyWebVerificationBizTokenIntlRequestParams{
			RedirectURL: ptr("https://example.com/verified"), Extra: ptr("user-1"),
			Config: &faceid.WebVerificationConfigIntl{AutoSkip: ptr(true), CheckMode: ptr(int64(1)), IDCardType: ptr("HKIDCard")},
		})
		if err != nil {
			t.Fatalf("Send: %v (%s)", err, code)
		}
		r := resp.Response
		if r == nil || r.BizToken == nil || r.VerificationURL == nil || r.RequestId == nil {
			t.Fatalf("incomplete response %+v", r)
		}
		if len(*r.BizToken) != 36 || *r.VerificationURL != simulator.VerificationURLPrefix+*r.BizToken || len(*r.RequestId) != 36 {
			t.Errorf("BizToken %q VerificationURL %q RequestId %q", *r.BizToken, *r.VerificationURL, *r.RequestId)
		}
	})

	t.Run("common request", func(t *testing.T) {
		req := tchttp.NewCommonRequest(faceid.Service, faceid.APIVersion, faceid.Action)
		if err := req.SetActionParameters(map[string]any{"RedirectURL": "https://example.com/x"}); err != nil {
			t.Fatal(err)
		}
		resp := tchttp.NewCommonResponse()
		if err := sim.Client("ap-jakarta").Send(req, resp); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if !strings.Contains(string(resp.GetBody()), `"BizToken"`) {
			t.Errorf("body %s", resp.GetBody())
		}
	})

	wrongKey := common.NewCommonClient(common.NewCredential(sim.SecretID, "not-the-key"), "ap-singapore", sim.Profile())
	unknownID := common.NewCommonClient(common.NewCredential("AKIDnobody", sim.SecretKey), "ap-singapore", sim.Profile())
	tests := []struct {
		name   string
		client *common.Client
		params faceid.ApplyWebVerificationBizTokenIntlRequestParams
		want   string
	}{
		{"wrong key", wrongKey, valid, "AuthFailure.SignatureFailure"},
		{"unknown SecretId", unknownID, valid, "AuthFailure.SecretIdNotFound"},
		{"unsupported region", sim.Client("ap-guangzhou"), valid, "UnsupportedRegion"},
		{"missing RedirectURL", sim.Client("ap-singapore"), faceid.ApplyWebVerificationBizTokenIntlRequestParams{Extra: ptr("x")}, "MissingParameter"},
		{"Extra of 1,001 characters", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, Extra: ptr(strings.Repeat("x", 1001))}, "InvalidParameterValue"},
		{"Extra of 1,000 characters", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, Extra: ptr(strings.Repeat("x", 1000))}, ""},
		{"bad Config.CheckMode", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, Config: &faceid.WebVerificationConfigIntl{CheckMode: ptr(int64(9))}}, "InvalidParameterValue"},
		{"bad Config.IDCardType", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, Config: &faceid.WebVerificationConfigIntl{IDCardType: ptr("Passport")}}, "InvalidParameterValue"},
		{"ActionList without action liveness", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, Config: &faceid.WebVerificationConfigIntl{ActionList: ptr("blink")}}, "InvalidParameterValue"},
		{"Data URI image", sim.Client("ap-singapore"),
			faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: valid.RedirectURL, CompareImageBase64: ptr("data:image/png;base64,AAAA")}, "InvalidParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code, err := apply(t, tt.client, tt.params)
			if code != tt.want {
				t.Fatalf("code %q (%v), want %q", code, err, tt.want)
			}
		})
	}

	t.Run("other action and version", func(t *testing.T) {
		for _, tc := range []struct{ version, action, want string }{
			{faceid.APIVersion, "DetectAuth", "InvalidAction"},
			{"2017-03-12", faceid.Action, "NoSuchVersion"},
		} {
			req := tchttp.NewCommonRequest(faceid.Service, tc.version, tc.action)
			_ = req.SetActionParameters(map[string]any{"BizToken": "x"})
			err := sim.Client("ap-singapore").Send(req, tchttp.NewCommonResponse())
			var sdkErr *tcerr.TencentCloudSDKError
			if !errors.As(err, &sdkErr) || sdkErr.Code != tc.want {
				t.Errorf("%s %s: %v, want %s", tc.action, tc.version, err, tc.want)
			}
		}
	})

	t.Run("unknown parameter", func(t *testing.T) {
		req := tchttp.NewCommonRequest(faceid.Service, faceid.APIVersion, faceid.Action)
		_ = req.SetActionParameters(map[string]any{"RedirectURL": "https://example.com/x", "CallbackURL": "https://example.com/hook"})
		err := sim.Client("ap-singapore").Send(req, tchttp.NewCommonResponse())
		var sdkErr *tcerr.TencentCloudSDKError
		if !errors.As(err, &sdkErr) || sdkErr.Code != "UnknownParameter" || !strings.Contains(sdkErr.Message, "CallbackURL") {
			t.Errorf("%v, want UnknownParameter naming CallbackURL", err)
		}
	})
}

// TestStaleTimestamp runs the simulator's clock ahead of the SDK's.
func TestStaleTimestamp(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
		want string
	}{
		{"10 minutes late", 10 * time.Minute, "AuthFailure.SignatureExpire"},
		{"10 minutes early", -10 * time.Minute, "AuthFailure.SignatureExpire"},
		{"1 minute late", time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := faceidtest.Start(t, simulator.Config{Now: func() time.Time { return time.Now().Add(tc.skew) }})
			if _, code, err := apply(t, sim.Client("ap-singapore"), valid); code != tc.want {
				t.Fatalf("code %q (%v), want %q", code, err, tc.want)
			}
		})
	}
}

// TestConcurrentBurst fires 60 SDK calls at once at a simulator with the default limit.
func TestConcurrentBurst(t *testing.T) {
	burst := func(t *testing.T, sim *faceidtest.Simulator) map[string]int {
		t.Helper()
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 60 {
			wg.Go(func() {
				<-start
				_, code, _ := apply(t, sim.Client("ap-singapore"), valid)
				if code == "" {
					code = "OK"
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		return codes
	}

	t.Run("frozen clock", func(t *testing.T) {
		frozen := time.Now()
		sim := faceidtest.Start(t, simulator.Config{Now: func() time.Time { return frozen }})
		codes := burst(t, sim)
		if codes["OK"] != 20 || codes["RequestLimitExceeded"] != 40 {
			t.Errorf("answers %v, want 20 OK and 40 RequestLimitExceeded", codes)
		}
		st := sim.Stats()
		if st.Requests != 60 || st.MaxInAnySecond != 60 || st.MaxAdmittedInAnySecond != 20 || st.ByCode["OK"] != 20 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("real clock", func(t *testing.T) {
		sim := faceidtest.Start(t, simulator.Config{})
		codes := burst(t, sim)
		st := sim.Stats()
		if codes["OK"]+codes["RequestLimitExceeded"] != 60 || st.MaxAdmittedInAnySecond > 20 {
			t.Errorf("answers %v, stats %+v", codes, st)
		}
		if st.LastAt.Sub(st.FirstAt) < time.Second && codes["OK"] != 20 {
			t.Errorf("60 arrivals within %v: %d OK, want 20", st.LastAt.Sub(st.FirstAt), codes["OK"])
		}
	})
}

func TestFaultsOverHTTP(t *testing.T) {
	sim := faceidtest.Start(t, simulator.Config{Rate: -1})
	client := sim.Client("ap-singapore")
	put := func(t *testing.T, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, sim.URL+"/_sim/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("PUT /_sim/faults: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT /_sim/faults %s: %s %s", body, resp.Status, b)
		}
	}

	t.Run("account error", func(t *testing.T) {
		put(t, `{"account_error":"UnauthorizedOperation.Arrears"}`)
		t.Cleanup(func() { put(t, `{}`) })
		if _, code, _ := apply(t, client, valid); code != "UnauthorizedOperation.Arrears" {
			t.Errorf("code %q", code)
		}
	})

	t.Run("html502", func(t *testing.T) {
		put(t, `{"outage":"html502"}`)
		t.Cleanup(func() { put(t, `{}`) })
		if _, code, _ := apply(t, client, valid); code != "ClientError.ParseJsonError" {
			t.Errorf("SDK code %q during an html502 outage", code)
		}
		resp, err := http.Post(sim.URL+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "<html>") {
			t.Errorf("%s %s", resp.Status, b)
		}
	})

	t.Run("latency", func(t *testing.T) {
		put(t, `{"latency":"150ms"}`)
		t.Cleanup(func() { put(t, `{}`) })
		start := time.Now()
		if _, code, err := apply(t, client, valid); err != nil {
			t.Fatalf("%s %v", code, err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("answered after %v with a 150ms latency fault", d)
		}
	})

	t.Run("caller gone during latency", func(t *testing.T) {
		put(t, `{"latency":"1h"}`)
		t.Cleanup(func() { put(t, `{}`) })
		before := sim.Stats().ByCode[simulator.CodeCanceled]
		ctx, cancel := context.WithCancel(context.Background())
		req := faceid.NewApplyWebVerificationBizTokenIntlRequest()
		req.RedirectURL = valid.RedirectURL
		req.SetContext(ctx)
		errc := make(chan error, 1)
		go func() { errc <- client.Send(req, faceid.NewApplyWebVerificationBizTokenIntlResponse()) }()
		waittest.Until(t, waittest.DefaultTimeout, "the request to be in flight", func() bool { return sim.Stats().InFlight == 1 })
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("a canceled call succeeded")
		}
		waittest.Until(t, waittest.DefaultTimeout, "the cancellation to be counted", func() bool {
			st := sim.Stats()
			return st.ByCode[simulator.CodeCanceled] == before+1 && st.InFlight == 0
		})
	})

	t.Run("internal errors", func(t *testing.T) {
		put(t, `{"internal_error_rate":0.5}`)
		t.Cleanup(func() { put(t, `{}`) })
		n := 0
		for range 200 {
			if _, code, _ := apply(t, client, valid); code == "InternalError" {
				n++
			}
		}
		if n < 70 || n > 130 {
			t.Errorf("%d InternalError of 200 at rate 0.5", n)
		}
	})
}

// TestRefuse checks that a refuse outage refuses connections for real under Serve and
// that the listener comes back on the same port.
func TestRefuse(t *testing.T) {
	sim := faceidtest.Start(t, simulator.Config{Rate: -1})
	client := sim.Client("ap-singapore")
	dialable := func() bool {
		c, err := net.DialTimeout("tcp", sim.Endpoint, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	if _, _, err := apply(t, client, valid); err != nil { // opens a keep-alive connection
		t.Fatal(err)
	}

	t.Run("until changed", func(t *testing.T) {
		if err := sim.SetFaults(simulator.Faults{Outage: simulator.OutageRefuse}); err != nil {
			t.Fatal(err)
		}
		waittest.Until(t, waittest.DefaultTimeout, "the listener to close", func() bool { return !dialable() })
		_, err := net.Dial("tcp", sim.Endpoint)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial during the outage: %v, want connection refused", err)
		}
		if _, code, _ := apply(t, client, valid); code != "ClientError.NetworkError" {
			t.Errorf("SDK code %q during a refuse outage", code)
		}
		if err := sim.SetFaults(simulator.Faults{}); err != nil {
			t.Fatal(err)
		}
		waittest.Until(t, waittest.DefaultTimeout, "the listener to reopen", dialable)
		if _, code, err := apply(t, client, valid); err != nil {
			t.Fatalf("after the outage: %s %v", code, err)
		}
	})

	t.Run("timed, over HTTP", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, sim.URL+"/_sim/faults", strings.NewReader(`{"outage":"refuse","outage_for":"300ms"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("the PUT that starts the outage must get its answer: %v", err)
		}
		var view map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&view)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || view["outage"] != "refuse" {
			t.Fatalf("%s %v", resp.Status, view)
		}
		waittest.Until(t, waittest.DefaultTimeout, "the outage to end by itself", func() bool {
			_, code, _ := apply(t, client, valid)
			return code == ""
		})
		if f := sim.Faults(); f.Outage != simulator.OutageNone {
			t.Errorf("Faults().Outage = %q after the timed outage", f.Outage)
		}
	})
}

func TestListenAndServeStops(t *testing.T) {
	s, err := simulator.New(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after its context ended")
	}

	t.Run("bad address", func(t *testing.T) {
		if err := s.ListenAndServe(context.Background(), "256.0.0.1:http"); err == nil {
			t.Error("listened on a bad address")
		}
	})
}

// BenchmarkSDKRoundTrip measures whole calls from the official SDK client to a
// simulator over loopback HTTP (client and server share the machine), limit lifted.
func BenchmarkSDKRoundTrip(b *testing.B) {
	sim := faceidtest.Start(b, simulator.Config{Rate: -1})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := sim.Client("ap-singapore")
		for pb.Next() {
			req := faceid.NewApplyWebVerificationBizTokenIntlRequest()
			req.RedirectURL = valid.RedirectURL
			if err := c.Send(req, faceid.NewApplyWebVerificationBizTokenIntlResponse()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
