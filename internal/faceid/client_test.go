package faceid

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSecretID  = "AKIDfaceidqTESTsecretID000000000000"
	testSecretKey = "faceidqTESTsecretKEY0000000000000"
)

// captured is one request the fake upstream received.
type captured struct {
	header http.Header
	host   string
	method string
	path   string
	body   []byte
}

// upstream is a fake FaceID endpoint: it records each request and answers with
// the test's handler.
type upstream struct {
	srv     *httptest.Server
	release chan struct{} // closed at cleanup, unblocking slow handlers

	mu   sync.Mutex
	reqs []captured
}

func startUpstream(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, captured{header: r.Header.Clone(), host: r.Host, method: r.Method, path: r.URL.Path, body: body})
		u.mu.Unlock()
		answer(w, r, body)
	}))
	t.Cleanup(func() {
		close(u.release)
		u.srv.Close()
	})
	return u
}

func (u *upstream) requests() []captured {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]captured(nil), u.reqs...)
}

func mustClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.SecretID == "" {
		cfg.SecretID, cfg.SecretKey = testSecretID, testSecretKey
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func successBody(region string) map[string]any {
	return map[string]any{"Response": map[string]any{
		"BizToken":        "TOKEN-" + region,
		"VerificationURL": "https://intl.faceid.qq.com/reflect/?token=TOKEN-" + region,
		"RequestId":       "rid-ok",
	}}
}

func errorBody(code, msg, rid string) map[string]any {
	return map[string]any{"Response": map[string]any{
		"Error": map[string]any{"Code": code, "Message": msg}, "RequestId": rid,
	}}
}

func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if s := err.Error(); strings.Contains(s, testSecretKey) || strings.Contains(s, testSecretID) {
		t.Errorf("error text %q contains a credential", s)
	}
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tc3Signature computes a TC3-HMAC-SHA256 signature from scratch (notes §4).
func tc3Signature(secretKey, date, timestamp, service, canonicalRequest string) string {
	sts := "TC3-HMAC-SHA256\n" + timestamp + "\n" + date + "/" + service + "/tc3_request\n" + sha256Hex(canonicalRequest)
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func TestTC3SignatureVectorA(t *testing.T) {
	payload := `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	cr := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" + sha256Hex(payload)
	got := tc3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "1551113065", "cvm", cr)
	if want := "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"; got != want {
		t.Fatalf("test verifier signature %s, want %s", got, want)
	}
}

var authRE = regexp.MustCompile(`^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/faceid/tc3_request, SignedHeaders=content-type;host, Signature=([0-9a-f]{64})$`)

// verifySigned checks a captured request's TC3 Authorization against the test key.
func verifySigned(t *testing.T, c captured) {
	t.Helper()
	m := authRE.FindStringSubmatch(c.header.Get("Authorization"))
	if m == nil {
		t.Fatalf("Authorization %q has not the TC3 format", c.header.Get("Authorization"))
	}
	if m[1] != testSecretID {
		t.Errorf("Credential SecretId %q, want %q", m[1], testSecretID)
	}
	ts := c.header.Get("X-TC-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("X-TC-Timestamp %q: %v", ts, err)
	}
	if d := time.Since(time.Unix(sec, 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("X-TC-Timestamp %s is %s away from now", ts, d)
	}
	date := time.Unix(sec, 0).UTC().Format("2006-01-02")
	if m[2] != date {
		t.Errorf("credential date %s, want UTC date %s of the timestamp", m[2], date)
	}
	cr := "POST\n/\n\ncontent-type:" + c.header.Get("Content-Type") + "\nhost:" + c.host + "\n\ncontent-type;host\n" + sha256Hex(string(c.body))
	if want := tc3Signature(testSecretKey, date, ts, "faceid", cr); m[3] != want {
		t.Errorf("signature %s does not verify (want %s)", m[3], want)
	}
}

func TestApplyRequest(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, successBody(r.Header.Get("X-TC-Region")))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	p := &ApplyWebVerificationBizTokenIntlRequestParams{
		RedirectURL: ptr("https://example.com/cb"),
		Extra:       ptr("order-7"),
		Config:      &WebVerificationConfigIntl{IDCardType: ptr("HKIDCard"), CheckMode: ptr(int64(1))},
	}
	tests := []struct{ name, region, wantRegion string }{
		{"default region", "", DefaultRegion},
		{"explicit region", "ap-jakarta", "ap-jakarta"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Apply(context.Background(), tt.region, p)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if *got.BizToken != "TOKEN-"+tt.wantRegion || *got.VerificationURL == "" || *got.RequestId != "rid-ok" {
				t.Errorf("response %+v", got)
			}
			reqs := up.requests()
			if len(reqs) != i+1 {
				t.Fatalf("upstream got %d requests, want %d", len(reqs), i+1)
			}
			r := reqs[i]
			if r.method != http.MethodPost || r.path != "/" {
				t.Errorf("request %s %s, want POST /", r.method, r.path)
			}
			wantHeaders := map[string]string{
				"X-TC-Action":   Action,
				"X-TC-Version":  APIVersion,
				"X-TC-Region":   tt.wantRegion,
				"X-TC-Language": "en-US",
				"Content-Type":  "application/json",
			}
			for k, v := range wantHeaders {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rc := r.header.Get("X-TC-RequestClient"); !strings.Contains(rc, "faceidq") {
				t.Errorf("X-TC-RequestClient %q does not name faceidq", rc)
			}
			if r.header.Get("X-TC-Token") != "" || r.header.Get("X-Idempotency-Key") != "" {
				t.Errorf("unexpected X-TC-Token or X-Idempotency-Key header")
			}
			if r.host != up.srv.Listener.Addr().String() {
				t.Errorf("Host %q, want %q", r.host, up.srv.Listener.Addr())
			}
			verifySigned(t, r)

			var body map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if _, ok := body["CompareImageBase64"]; ok {
				t.Errorf("body %s sends CompareImageBase64 though it is nil", r.body)
			}
			if _, ok := body["RuleId"]; ok {
				t.Errorf("body %s sends RuleId though it is nil", r.body)
			}
			if want := `{"IDCardType":"HKIDCard","CheckMode":1}`; !jsonEqual(t, body["Config"], want) {
				t.Errorf("Config %s, want %s", body["Config"], want)
			}
			if string(body["RedirectURL"]) != `"https://example.com/cb"` || string(body["Extra"]) != `"order-7"` {
				t.Errorf("body %s", r.body)
			}
			if len(body) != 3 {
				t.Errorf("body %s has %d fields, want 3", r.body, len(body))
			}
		})
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad want %s", want)
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestApplySendsImage(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, successBody("x"))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	img := "QUJDRA=="
	if _, err := c.Apply(context.Background(), "", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com"), CompareImageBase64: &img, RuleId: ptr("9")}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	r := up.requests()[0]
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body["CompareImageBase64"] != img || body["RuleId"] != "9" {
		t.Errorf("body %s", r.body)
	}
	verifySigned(t, r)
}

func TestApplyErrors(t *testing.T) {
	html := "<html><head><title>502 Bad Gateway</title></head><body>" + strings.Repeat("<p>upstream unavailable</p>", 100) + "</body></html>"
	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		code      string
		requestID string
		class     Class
	}{
		{"internal error", 200, "application/json", `{"Response":{"Error":{"Code":"InternalError","Message":"Internal error."},"RequestId":"rid-1"}}`, "InternalError", "rid-1", Retryable},
		{"rate limited exact", 200, "application/json", `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"too many"},"RequestId":"rid-2"}}`, "RequestLimitExceeded", "rid-2", RateLimited},
		{"rate limited sub-code", 200, "application/json", `{"Response":{"Error":{"Code":"RequestLimitExceeded.UinLimitExceeded","Message":"uin"},"RequestId":"rid-3"}}`, "RequestLimitExceeded.UinLimitExceeded", "rid-3", RateLimited},
		{"arrears", 200, "application/json", `{"Response":{"Error":{"Code":"UnauthorizedOperation.Arrears","Message":"The account is in arrears."},"RequestId":"rid-4"}}`, "UnauthorizedOperation.Arrears", "rid-4", Account},
		{"signature failure", 200, "application/json", `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad signature"},"RequestId":"rid-5"}}`, "AuthFailure.SignatureFailure", "rid-5", Account},
		{"invalid value", 200, "application/json", `{"Response":{"Error":{"Code":"InvalidParameterValue","Message":"RedirectURL"},"RequestId":"rid-6"}}`, "InvalidParameterValue", "rid-6", Permanent},
		{"envelope with status 500", 500, "application/json", `{"Response":{"Error":{"Code":"ServiceUnavailable","Message":"down"},"RequestId":"rid-7"}}`, "ServiceUnavailable", "rid-7", Retryable},
		{"html 502", 502, "text/html", html, "ClientError.ParseJsonError", "", Retryable},
		{"json 503 without error", 503, "application/json", `{"message":"maintenance"}`, "ClientError.HttpStatusCodeError", "", Retryable},
		{"empty object", 200, "application/json", `{}`, CodeBadResponse, "", Retryable},
		{"success without token", 200, "application/json", `{"Response":{"RequestId":"rid-8"}}`, CodeBadResponse, "rid-8", Retryable},
		{"legacy envelope", 200, "application/json", `{"code":4000,"message":"legacy failure","codeDesc":"InvalidParameter"}`, "InvalidParameter", "", Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := mustClient(t, Config{Endpoint: up.srv.URL})
			got, err := c.Apply(context.Background(), "ap-bangkok", validParams())
			if err == nil {
				t.Fatalf("Apply succeeded with %+v", got)
			}
			t.Logf("Apply: %v", err)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Apply: %v (%T), want *APIError", err, err)
			}
			if ae.Code != tt.code || ae.RequestID != tt.requestID {
				t.Errorf("APIError code %q rid %q, want %q %q (%v)", ae.Code, ae.RequestID, tt.code, tt.requestID, err)
			}
			if got := Classify(err); got != tt.class {
				t.Errorf("Classify = %v, want %v", got, tt.class)
			}
			if len(ae.Message) > maxMessageLen+len("…") {
				t.Errorf("message is %d bytes, want at most %d", len(ae.Message), maxMessageLen)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("answered call matches a context error: %v", err)
			}
			if n := len(up.requests()); n != 1 {
				t.Errorf("upstream got %d requests, want exactly 1 (SDK retries must be off)", n)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestApplyRedactsEchoedSecrets(t *testing.T) {
	img := strings.Repeat("QUJD", 64)
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		msg := "bad key " + testSecretKey + " for " + testSecretID + " image " + img + "\r\ninjected"
		writeJSON(w, http.StatusOK, errorBody("InvalidParameter", msg, "rid-9"))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	p := validParams()
	p.CompareImageBase64 = &img
	_, err := c.Apply(context.Background(), "", p)
	if err == nil {
		t.Fatal("Apply succeeded")
	}
	assertNoSecrets(t, err)
	if s := err.Error(); strings.Contains(s, "QUJDQUJD") || strings.ContainsAny(s, "\r\n") {
		t.Errorf("error %q leaks image bytes or control characters", s)
	}
}

func TestApplyTimeout(t *testing.T) {
	tests := []struct {
		name   string
		answer func(u *upstream) func(w http.ResponseWriter, r *http.Request, _ []byte)
		code   string
	}{
		{"no answer", func(u *upstream) func(w http.ResponseWriter, r *http.Request, _ []byte) {
			return func(w http.ResponseWriter, r *http.Request, _ []byte) {
				select {
				case <-r.Context().Done():
				case <-u.release:
				}
			}
		}, "ClientError.NetworkError"},
		{"body cut short", func(u *upstream) func(w http.ResponseWriter, r *http.Request, _ []byte) {
			return func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "1000")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, `{"Response":{`)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-u.release:
				}
			}
		}, "ClientError.ParseJsonError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var up *upstream
			up = startUpstream(t, func(w http.ResponseWriter, r *http.Request, b []byte) { tt.answer(up)(w, r, b) })
			c := mustClient(t, Config{Endpoint: up.srv.URL, Timeout: 200 * time.Millisecond})
			_, err := c.Apply(context.Background(), "", validParams())
			t.Logf("Apply: %v", err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Apply: %v, want a context.DeadlineExceeded", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("Apply: %v (%T), want *APIError %s", err, err, tt.code)
			}
			if Classify(err) != Retryable {
				t.Errorf("Classify = %v, want retryable", Classify(err))
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestApplyCanceled(t *testing.T) {
	arrived := make(chan struct{}, 1)
	var up *upstream
	up = startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-up.release:
		}
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Apply(ctx, "", validParams())
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("request never arrived")
	}
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply: %v, want context.Canceled", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "ClientError.NetworkError" {
		t.Errorf("Apply: %v, want *APIError ClientError.NetworkError", err)
	}
	if Classify(err) != Retryable {
		t.Errorf("Classify = %v, want retryable", Classify(err))
	}
}

func TestApplyConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	c := mustClient(t, Config{Endpoint: endpoint})
	_, err := c.Apply(context.Background(), "", validParams())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "ClientError.NetworkError" {
		t.Fatalf("Apply: %v, want *APIError ClientError.NetworkError", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("transport error not reachable: %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("refused connection matches a context error: %v", err)
	}
	if Classify(err) != Retryable {
		t.Errorf("Classify = %v, want retryable", Classify(err))
	}
	assertNoSecrets(t, err)
}

func TestApplyRefusesBeforeCalling(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, successBody("x"))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	tests := []struct {
		name, region string
		p            *ApplyWebVerificationBizTokenIntlRequestParams
		code, field  string
	}{
		{"unknown region", "ap-guangzhou", validParams(), CodeUnsupportedRegion, "Region"},
		{"region case", "AP-SINGAPORE", validParams(), CodeUnsupportedRegion, "Region"},
		{"nil params", "", nil, CodeMissingParameter, "RedirectURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Apply(context.Background(), tt.region, tt.p)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != tt.field {
				t.Fatalf("Apply: %v, want *FieldError %s on %s", err, tt.code, tt.field)
			}
			if Classify(err) != Permanent {
				t.Errorf("Classify = %v, want permanent", Classify(err))
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream got %d requests, want none", n)
	}
}

func TestApplyConcurrentRegions(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, successBody(r.Header.Get("X-TC-Region")))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	const perRegion = 8
	var wg sync.WaitGroup
	errc := make(chan error, perRegion*len(Regions))
	for _, region := range Regions {
		for range perRegion {
			wg.Go(func() {
				got, err := c.Apply(context.Background(), region, validParams())
				switch {
				case err != nil:
					errc <- err
				case *got.BizToken != "TOKEN-"+region:
					errc <- fmt.Errorf("region %s got token %s", region, *got.BizToken)
				}
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := len(up.requests()); n != perRegion*len(Regions) {
		t.Errorf("upstream got %d requests, want %d", n, perRegion*len(Regions))
	}
	c.mu.Lock()
	n := len(c.regions)
	c.mu.Unlock()
	if n != len(Regions) {
		t.Errorf("client holds %d SDK clients, want one per region (%d)", n, len(Regions))
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		endpoint string // "" means New must fail
		scheme   string
	}{
		{"default endpoint", Config{}, DefaultEndpoint, "HTTPS"},
		{"bare host", Config{Endpoint: "faceid.ap-singapore.tencentcloudapi.com"}, "faceid.ap-singapore.tencentcloudapi.com", "HTTPS"},
		{"host upper case", Config{Endpoint: "FaceID.Intl.TencentCloudAPI.com"}, "faceid.intl.tencentcloudapi.com", "HTTPS"},
		{"host and port", Config{Endpoint: "127.0.0.1:9000"}, "127.0.0.1:9000", "HTTPS"},
		{"http URL", Config{Endpoint: "http://127.0.0.1:9000"}, "127.0.0.1:9000", "HTTP"},
		{"http URL upper scheme", Config{Endpoint: "HTTP://localhost:9000/"}, "localhost:9000", "HTTP"},
		{"https default port dropped", Config{Endpoint: "https://faceid.intl.tencentcloudapi.com:443"}, "faceid.intl.tencentcloudapi.com", "HTTPS"},
		{"http default port dropped", Config{Endpoint: "http://127.0.0.1:80"}, "127.0.0.1", "HTTP"},
		{"IPv6", Config{Endpoint: "http://[::1]:9000"}, "[::1]:9000", "HTTP"},
		{"ftp scheme", Config{Endpoint: "ftp://h"}, "", ""},
		{"URL with path", Config{Endpoint: "http://h:1/api"}, "", ""},
		{"URL with query", Config{Endpoint: "http://h:1/?a=b"}, "", ""},
		{"URL with user", Config{Endpoint: "http://u:p@h:1"}, "", ""},
		{"URL without host", Config{Endpoint: "http://"}, "", ""},
		{"host with path", Config{Endpoint: "h/api"}, "", ""},
		{"host with space", Config{Endpoint: "h h"}, "", ""},
		{"bad port", Config{Endpoint: "h:port"}, "", ""},
		{"negative timeout", Config{Timeout: -time.Second}, "", ""},
		{"bad language", Config{Language: "fr-FR"}, "", ""},
		{"zh-CN", Config{Language: "zh-CN"}, DefaultEndpoint, "HTTPS"},
		{"missing key", Config{SecretID: "AKID", SecretKey: ""}, "", ""},
		{"key with newline", Config{SecretID: "AKID", SecretKey: "key\n"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.SecretID == "" {
				cfg.SecretID, cfg.SecretKey = testSecretID, testSecretKey
			}
			c, err := New(cfg)
			if tt.endpoint == "" {
				if err == nil {
					t.Fatalf("New(%v) succeeded, want an error", cfg)
				}
				assertNoSecrets(t, err)
				if strings.Contains(err.Error(), "key\n") {
					t.Errorf("error %q shows the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.Endpoint() != tt.endpoint || c.profile.HttpProfile.Scheme != tt.scheme {
				t.Errorf("endpoint %q scheme %q, want %q %q", c.Endpoint(), c.profile.HttpProfile.Scheme, tt.endpoint, tt.scheme)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c := mustClient(t, Config{})
	p := c.profile
	if c.timeout != DefaultTimeout || p.HttpProfile.ReqTimeout != 10 || p.Language != "en-US" {
		t.Errorf("timeout %s ReqTimeout %d language %q", c.timeout, p.HttpProfile.ReqTimeout, p.Language)
	}
	if !p.DisableRegionBreaker || p.NetworkFailureMaxRetries != 0 || p.RateLimitExceededMaxRetries != 0 || p.UnsafeRetryOnConnectionFailure {
		t.Errorf("SDK retries or breaker not off: %+v", p)
	}
	if c.transport == nil {
		t.Error("no default transport")
	}
	c = mustClient(t, Config{Timeout: 1500 * time.Millisecond})
	if c.profile.HttpProfile.ReqTimeout != 2 {
		t.Errorf("ReqTimeout %d for 1.5s, want 2 (rounded up)", c.profile.HttpProfile.ReqTimeout)
	}
}

func TestAccountAndStrings(t *testing.T) {
	a := mustClient(t, Config{})
	b := mustClient(t, Config{})
	other := mustClient(t, Config{SecretID: "AKIDanother", SecretKey: testSecretKey})
	if a.Account() != b.Account() {
		t.Errorf("Account not stable: %s vs %s", a.Account(), b.Account())
	}
	if a.Account() == other.Account() {
		t.Errorf("different SecretIDs share Account %s", a.Account())
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a.Account()) {
		t.Errorf("Account %q is not 16 hex digits", a.Account())
	}
	cfg := Config{SecretID: testSecretID, SecretKey: testSecretKey}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(a), fmt.Sprintf("%+v", a)} {
		if strings.Contains(s, testSecretKey) {
			t.Errorf("%q shows the SecretKey", s)
		}
	}
}
