package tc3

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

// The worked examples of tencent-api-notes.md §4.1 (Tencent's own documentation).
const (
	vecPayload = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	vecTS      = 1551113065
	vecHost    = "cvm.tencentcloudapi.com"
	vecCT      = "application/json; charset=utf-8"

	vecAID   = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	vecAKey  = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	vecAAuth = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
)

func vectorRequest(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "https://"+vecHost+"/", strings.NewReader(vecPayload))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", vecCT)
	r.Header.Set("X-TC-Action", "DescribeInstances")
	r.Header.Set("X-TC-Version", "2017-03-12")
	r.Header.Set("X-TC-Region", "ap-guangzhou")
	return r
}

func TestVectorA(t *testing.T) {
	r := vectorRequest(t)
	if err := Sign(r, []byte(vecPayload), "cvm", Credential{vecAID, vecAKey}, time.Unix(vecTS, 0)); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("Authorization"); got != vecAAuth {
		t.Errorf("Authorization\n got %s\nwant %s", got, vecAAuth)
	}
	if got := r.Header.Get("X-TC-Timestamp"); got != "1551113065" {
		t.Errorf("X-TC-Timestamp = %q", got)
	}

	t.Run("intermediates", func(t *testing.T) {
		canon, err := canonicalRequest(nil, r, hostOf(r), []string{"content-type", "host"}, "content-type;host", []byte(vecPayload))
		if err != nil {
			t.Fatal(err)
		}
		wantCanon := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" +
			"35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
		if string(canon) != wantCanon {
			t.Errorf("canonical request\n got %q\nwant %q", canon, wantCanon)
		}
		sum := sha256.Sum256(canon)
		if got := hex.EncodeToString(sum[:]); got != "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031" {
			t.Errorf("HashedCanonicalRequest = %s", got)
		}
	})

	t.Run("verifies", func(t *testing.T) {
		err := Verify(r, []byte(vecPayload), "cvm", lookup(vecAID, vecAKey), time.Unix(vecTS+10, 0))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestVectorB(t *testing.T) {
	key := strings.Repeat("*", 32)
	id := "AKID" + strings.Repeat("*", 32)
	r := vectorRequest(t)
	if err := Sign(r, []byte(vecPayload), "cvm", Credential{id, key}, time.Unix(vecTS, 0), "X-TC-Action"); err != nil {
		t.Fatal(err)
	}
	want := "TC3-HMAC-SHA256 Credential=" + id + "/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host;x-tc-action, " +
		"Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
	if got := r.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}

	steps := []struct {
		name string
		got  []byte
		want string
	}{
		{"SecretDate", secretDate(key, "2019-02-25"), "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"},
		{"SecretService", secretService(key, "2019-02-25", "cvm"), "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"},
		{"SecretSigning", signingKey(key, "2019-02-25", "cvm"), "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if got := hex.EncodeToString(s.got); got != s.want {
				t.Errorf("%s = %s, want %s", s.name, got, s.want)
			}
		})
	}
	t.Run("HashedCanonicalRequest", func(t *testing.T) {
		canon, err := canonicalRequest(nil, r, hostOf(r), []string{"content-type", "host", "x-tc-action"}, "content-type;host;x-tc-action", []byte(vecPayload))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(canon), "\nx-tc-action:describeinstances\n") {
			t.Errorf("x-tc-action value not lowercased in %q", canon)
		}
		sum := sha256.Sum256(canon)
		if got := hex.EncodeToString(sum[:]); got != "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84" {
			t.Errorf("HashedCanonicalRequest = %s", got)
		}
	})
	t.Run("verifies", func(t *testing.T) {
		if err := Verify(r, []byte(vecPayload), "cvm", lookup(id, key), time.Unix(vecTS, 0)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func lookup(id, key string) func(string) (string, bool) {
	return func(s string) (string, bool) {
		if s == id {
			return key, true
		}
		return "", false
	}
}

// TestVerifyTampering signs vector A's request and changes one thing at a time.
func TestVerifyTampering(t *testing.T) {
	now := time.Unix(vecTS, 0)
	sigA := "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	authWith := func(cred, signed, sig string) string {
		return "TC3-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signed + ", Signature=" + sig
	}
	goodCred := vecAID + "/2019-02-25/cvm/tc3_request"
	tests := []struct {
		name    string
		mutate  func(r *http.Request, body *[]byte)
		now     time.Time
		service string
		want    string // "" means valid
	}{
		{name: "untouched", want: ""},
		{name: "spaces after commas optional", mutate: func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", strings.ReplaceAll(vecAAuth, ", ", ","))
		}},
		{name: "unsigned header changed", mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("X-TC-Action", "RunInstances") }},
		{name: "body changed", mutate: func(_ *http.Request, b *[]byte) { *b = []byte(strings.Replace(string(*b), "1", "2", 1)) }, want: CodeSignatureFailure},
		{name: "body extra byte", mutate: func(_ *http.Request, b *[]byte) { *b = append(*b, ' ') }, want: CodeSignatureFailure},
		{name: "content-type changed", mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("Content-Type", "application/json") }, want: CodeSignatureFailure},
		{name: "host changed", mutate: func(r *http.Request, _ *[]byte) { r.Host = "cvm.example.com" }, want: CodeSignatureFailure},
		{name: "method changed", mutate: func(r *http.Request, _ *[]byte) { r.Method = http.MethodPut }, want: CodeSignatureFailure},
		{name: "signature last digit", mutate: func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", authWith(goodCred, "content-type;host", sigA[:63]+"9"))
		}, want: CodeSignatureFailure},
		{name: "timestamp moved one second", mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("X-TC-Timestamp", "1551113066") }, want: CodeSignatureFailure},
		{name: "scope date not timestamp's UTC date", mutate: func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", authWith(vecAID+"/2019-02-26/cvm/tc3_request", "content-type;host", sigA))
		}, want: CodeSignatureFailure},
		{name: "wrong service for verifier", service: "faceid", want: CodeInvalidAuthorization},
		{name: "unknown SecretId", mutate: func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", authWith("AKIDother/2019-02-25/cvm/tc3_request", "content-type;host", sigA))
		}, want: CodeSecretIDNotFound},
		{name: "300 s early is accepted", now: now.Add(-300 * time.Second)},
		{name: "300 s late is accepted", now: now.Add(300 * time.Second)},
		{name: "301 s late", now: now.Add(301 * time.Second), want: CodeSignatureExpire},
		{name: "301 s early", now: now.Add(-301 * time.Second), want: CodeSignatureExpire},
		{name: "no timestamp", mutate: func(r *http.Request, _ *[]byte) { r.Header.Del("X-TC-Timestamp") }, want: CodeMissingParameter},
		{name: "timestamp not a number", mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("X-TC-Timestamp", "1551113065.5") }, want: CodeInvalidParameter},
		{name: "no authorization", mutate: func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") }, want: CodeMissingParameter},
	}
	malformed := map[string]string{
		"other algorithm":         strings.Replace(vecAAuth, "TC3-HMAC-SHA256", "HMAC-SHA256", 1),
		"no fields":               "TC3-HMAC-SHA256",
		"missing signature":       "TC3-HMAC-SHA256 Credential=" + goodCred + ", SignedHeaders=content-type;host",
		"repeated field":          vecAAuth + ", Signature=" + sigA,
		"unknown field":           vecAAuth + ", Foo=bar",
		"short credential":        authWith(vecAID+"/2019-02-25/cvm", "content-type;host", sigA),
		"bad terminator":          authWith(vecAID+"/2019-02-25/cvm/tc4_request", "content-type;host", sigA),
		"bad date":                authWith(vecAID+"/2019-2-25/cvm/tc3_request", "content-type;host", sigA),
		"no host signed":          authWith(goodCred, "content-type", sigA),
		"no content-type signed":  authWith(goodCred, "host", sigA),
		"unsorted signed headers": authWith(goodCred, "host;content-type", sigA),
		"uppercase signed header": authWith(goodCred, "Content-Type;host", sigA),
		"signed header absent":    authWith(goodCred, "content-type;host;x-tc-region-missing", sigA),
		"short signature":         authWith(goodCred, "content-type;host", sigA[:62]),
		"uppercase signature":     authWith(goodCred, "content-type;host", strings.ToUpper(sigA)),
		"non-hex signature":       authWith(goodCred, "content-type;host", "zz"+sigA[2:]),
	}
	for name, h := range malformed {
		tests = append(tests, struct {
			name    string
			mutate  func(r *http.Request, body *[]byte)
			now     time.Time
			service string
			want    string
		}{name: "malformed: " + name, mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("Authorization", h) }, want: CodeInvalidAuthorization})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := vectorRequest(t)
			body := []byte(vecPayload)
			r.Header.Set("X-TC-Timestamp", "1551113065")
			r.Header.Set("Authorization", vecAAuth)
			if tt.mutate != nil {
				tt.mutate(r, &body)
			}
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			service := "cvm"
			if tt.service != "" {
				service = tt.service
			}
			err := Verify(r, body, service, lookup(vecAID, vecAKey), at)
			if got := Code(err); got != tt.want {
				t.Fatalf("Verify code = %q (%v), want %q", got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), vecAKey) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestVerifyHostPort: the Go SDK signs "host:<hostname>:<port>", the Node.js SDK
// "host:<hostname>" for the same request; both verify, another host or port does not.
func TestVerifyHostPort(t *testing.T) {
	const id, key = "AKIDhost", "host-secret-key"
	body := []byte(`{"RedirectURL":"https://example.com/done"}`)
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		requestHost, signedHost string
		ok                      bool
	}{
		{"127.0.0.1:19000", "127.0.0.1:19000", true}, // Go SDK
		{"127.0.0.1:19000", "127.0.0.1", true},       // Node.js SDK
		{"faceid.localhost:19000", "faceid.localhost", true},
		{"[::1]:19000", "[::1]", true},
		{"[::1]:19000", "[::1]:19000", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1:19000", "127.0.0.1:19001", false},
		{"127.0.0.1:19000", "127.0.0.2", false},
		{"127.0.0.1:19000", "127.0.0.2:19000", false},
		{"127.0.0.1", "127.0.0.1:80", false},
		{"127.0.0.1:19000", "127.0.0.1:", false},
	}
	for _, tt := range tests {
		t.Run(tt.requestHost+" signed as "+tt.signedHost, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://"+tt.requestHost+"/", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Host = tt.signedHost
			if err := Sign(r, body, "faceid", Credential{id, key}, now); err != nil {
				t.Fatal(err)
			}
			r.Host = tt.requestHost
			err := Verify(r, body, "faceid", lookup(id, key), now)
			if tt.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.ok && Code(err) != CodeSignatureFailure {
				t.Fatalf("Verify = %v, want %s", err, CodeSignatureFailure)
			}
		})
	}
}

func TestWithoutPort(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:19000": "127.0.0.1", "h:1": "h", "h": "h", "[::1]:80": "[::1]", "[::1]": "[::1]",
		"::1": "::1", "fe80::1:80": "fe80::1:80", "h:": "h:", "h:x": "h:x", "": "",
	} {
		if got := withoutPort(in); got != want {
			t.Errorf("withoutPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnsignedPayload(t *testing.T) {
	r := vectorRequest(t)
	r.Header.Set(HeaderContentSHA256, UnsignedPayload)
	if err := Sign(r, []byte("signed body"), "cvm", Credential{vecAID, vecAKey}, time.Unix(vecTS, 0)); err != nil {
		t.Fatal(err)
	}
	if err := Verify(r, []byte("any other body"), "cvm", lookup(vecAID, vecAKey), time.Unix(vecTS, 0)); err != nil {
		t.Fatalf("unsigned payload: %v", err)
	}
	r.Header.Del(HeaderContentSHA256)
	if err := Verify(r, []byte("any other body"), "cvm", lookup(vecAID, vecAKey), time.Unix(vecTS, 0)); Code(err) != CodeSignatureFailure {
		t.Fatalf("without the header: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	tests := []struct {
		name    string
		cred    Credential
		service string
		noCT    bool
	}{
		{name: "empty key", cred: Credential{"id", ""}, service: "cvm"},
		{name: "empty service", cred: Credential{"id", "key"}},
		{name: "no content-type", cred: Credential{"id", "key"}, service: "cvm", noCT: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := vectorRequest(t)
			if tt.noCT {
				r.Header.Del("Content-Type")
			}
			if err := Sign(r, nil, tt.service, tt.cred, time.Now()); err == nil {
				t.Fatal("Sign succeeded")
			}
		})
	}
}

// TestSDKInterop sends requests with the official SDK to a server that verifies them
// with this package: what the SDK signs, Verify accepts, and a wrong key is refused.
func TestSDKInterop(t *testing.T) {
	const id, key = "AKIDinterop", "interop-secret-key"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		if _, err := body.ReadFrom(r.Body); err != nil {
			t.Errorf("read body: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		if err := Verify(r, body.Bytes(), "faceid", lookup(id, key), time.Now()); err != nil {
			e := err.(*Error)
			fmt.Fprintf(w, `{"Response":{"Error":{"Code":%q,"Message":%q},"RequestId":"r1"}}`, e.Code, e.Message)
			return
		}
		fmt.Fprint(w, `{"Response":{"RequestId":"r1"}}`)
	}))
	t.Cleanup(srv.Close)

	for _, tt := range []struct {
		name, key, want string
	}{
		{"right key", key, ""},
		{"wrong key", "not-the-key", CodeSignatureFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cpf := profile.NewClientProfile()
			cpf.HttpProfile.Scheme = "HTTP"
			cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
			c := common.NewCommonClient(common.NewCredential(id, tt.key), "ap-singapore", cpf)
			req := tchttp.NewCommonRequest("faceid", "2018-03-01", "ApplyWebVerificationBizTokenIntl")
			if err := req.SetActionParameters(map[string]any{"RedirectURL": "https://example.com/cb", "Extra": "é \u2028 <>&"}); err != nil {
				t.Fatal(err)
			}
			err := c.Send(req, tchttp.NewCommonResponse())
			var sdkErr *tcerr.TencentCloudSDKError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.want != "" && (!errors.As(err, &sdkErr) || sdkErr.Code != tt.want):
				t.Fatalf("Send error = %v, want code %s", err, tt.want)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9000/", nil)
	r.Header.Set("Content-Type", "application/json")
	body := []byte(`{"RedirectURL":"https://example.com/cb","Extra":"job-1"}`)
	now := time.Now()
	if err := Sign(r, body, "faceid", Credential{"id", "key"}, now); err != nil {
		b.Fatal(err)
	}
	lk := lookup("id", "key")
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(r, body, "faceid", lk, now); err != nil {
			b.Fatal(err)
		}
	}
}
