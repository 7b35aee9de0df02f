package faceid

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
)

// publishedCodes reads the code lists kept in testdata (each file names its source
// and version in its header): one code per line, a tab, the source's comment.
func publishedCodes(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("testdata/*-errors.txt")
	if err != nil || len(files) < 4 {
		t.Fatalf("testdata code lists: %v (%d files)", err, len(files))
	}
	codes := map[string][]string{} // code -> files naming it
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			line = strings.TrimRight(line, "\r\n")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			code, _, _ := strings.Cut(line, "\t")
			codes[code] = append(codes[code], filepath.Base(name))
			n++
		}
		if n == 0 {
			t.Fatalf("%s lists no code", name)
		}
	}
	return codes
}

// TestTableCoversPublishedCodes: every code of the SDKs' and the documentation's
// published lists has its own row, so a newer list with a new code fails here until
// the code is classified (a prefix match alone would class it silently).
func TestTableCoversPublishedCodes(t *testing.T) {
	for code, from := range publishedCodes(t) {
		if _, ok := classes[code]; !ok {
			t.Errorf("%s (listed in %s) has no row in the table", code, strings.Join(from, ", "))
		}
	}
}

// TestTableRowsOutsideTheLists: a row that no list names is one of faceidq's own
// codes or one whose comment says where it comes from; this test names them, so
// that a new one is a decision.
func TestTableRowsOutsideTheLists(t *testing.T) {
	published := publishedCodes(t)
	explained := map[string]bool{
		CodeBadResponse: true, CodeClientUnknown: true, // faceidq's own
		"AuthFailure": true, // the root covering AuthFailure sub-codes
		// other Tencent AI products' codes (see the table's comment)
		"ResourceUnavailable.InArrears": true, "ResourceUnavailable.ResourcePackageRunOut": true,
		"FailedOperation.UnOpenError": true,
	}
	for code := range classes {
		if _, ok := published[code]; !ok && !explained[code] {
			t.Errorf("row %s is in no published list and not explained", code)
		}
	}
}

// TestClassOfNamedCodes pins the classes the second hardening round corrected and
// the ones a worker's behaviour hangs on.
func TestClassOfNamedCodes(t *testing.T) {
	tests := []struct {
		code string
		want Class
	}{
		{"FailedOperation.RequestLimitExceeded", RateLimited},
		{"RequestLimitExceeded", RateLimited},
		{"RequestLimitExceeded.UinLimitExceeded", RateLimited},
		{"FailedOperation.StsUnAuthErrError", Account},
		{"FailedOperation.EmptyImageError", Permanent},
		{"FailedOperation.PoorImageQuality", Permanent},
		{"ClientError.BuildRequestError", Permanent},
		{"InvalidParameterValue.RuleIdNotExist", Permanent},
		{"InvalidParameterValue.RuleIdDisabled", Permanent},
		{"InternalError", Retryable},
		{"FailedOperation", Retryable},
		{"ClientError.NetworkError", Retryable},
		{"ClientError.Unknown", Retryable},
		{"ClientError.BadResponse", Retryable},
		{"InvalidParameter", Permanent},
		{"MissingParameter", Permanent},
		{"UnauthorizedOperation.Arrears", Account},
		{"UnauthorizedOperation.Activating", Account},
		{"AuthFailure.SignatureFailure", Account},
		{"AuthFailure.SignatureExpire", Account},
		{"ClientError.CredentialError", Account},
		{"LimitExceeded", Account},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := ClassOf(tt.code); got != tt.want {
				t.Errorf("ClassOf(%q) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

func TestClassOfPrefixAndDefault(t *testing.T) {
	tests := []struct {
		code string
		want Class
	}{
		{"RequestLimitExceeded.X", RateLimited},
		{"RequestLimitExceeded.New.Deeper", RateLimited},
		{"UnauthorizedOperation.NewThing", Account},
		{"AuthFailure.Whatever", Account},
		{"InvalidParameter.Foo", Permanent},
		{"InvalidParameterValue.Foo.Bar", Permanent},
		{"LimitExceeded.MonthlyQuota", Account},
		{"InternalError.Timeout", Retryable},
		{"FailedOperation.SomethingNew", Retryable},
		{"FailedOperation.ImageSizeTooLarge.Sub", Permanent},
		{"ResourceUnavailable.InArrears.Sub", Account},
		{"ResourceUnavailable.Other", Retryable},
		{"ClientError.SomethingNew", Retryable},
		// longest prefix wins over a shorter one
		{"InternalError.LifePhotoSizeError.X", Permanent},
		// defaults: unknown roots, empty, odd shapes
		{"BrandNewRoot", Retryable},
		{"BrandNewRoot.Sub", Retryable},
		{"", Retryable},
		{".", Retryable},
		{"InternalError.", Retryable},
		{"internalerror", Retryable},    // codes are case-sensitive
		{"invalidparameter", Retryable}, // (unknown, so the default)
		{"UnauthorizedOperationX", Retryable},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := ClassOf(tt.code); got != tt.want {
				t.Errorf("ClassOf(%q) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

func TestSelfClearing(t *testing.T) {
	for code := range classes {
		want := code == "UnauthorizedOperation.Activating"
		if got := SelfClearing(code); got != want {
			t.Errorf("SelfClearing(%q) = %v, want %v", code, got, want)
		}
	}
	if ClassOf(SelfClearingCode) != Account {
		t.Errorf("the self-clearing code must be account-level")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, 0},
		{"api error", &APIError{Code: "InternalError"}, Retryable},
		{"api error rate", &APIError{Code: "RequestLimitExceeded.UinLimitExceeded"}, RateLimited},
		{"api error permanent", &APIError{Code: "InvalidParameterValue"}, Permanent},
		{"api error account", &APIError{Code: "UnauthorizedOperation.Arrears"}, Account},
		{"wrapped api error", fmt.Errorf("worker: job j1: %w", &APIError{Code: "AuthFailure.SignatureFailure"}), Account},
		{"api error wrapping a cancellation", &APIError{Code: "ClientError.NetworkError", cause: context.Canceled}, Retryable},
		{"sdk error", tcerr.NewTencentCloudSDKError("MissingParameter", "m", "r"), Permanent},
		{"field error", &FieldError{Code: CodeInvalidParameter, Field: "Extra", Reason: "x"}, Permanent},
		{"wrapped field error", fmt.Errorf("producer: %w", &FieldError{Code: CodeMissingParameter}), Permanent},
		{"deadline", context.DeadlineExceeded, Retryable},
		{"wrapped deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Retryable},
		{"canceled", context.Canceled, Retryable},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, Retryable},
		{"url error", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/", Err: errors.New("connection refused")}, Retryable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, Retryable},
		{"other", errors.New("something odd"), Retryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	tests := []struct {
		c    Class
		want string
	}{
		{Retryable, "retryable"}, {RateLimited, "rate_limited"}, {Permanent, "permanent"},
		{Account, "account"}, {0, "Class(0)"}, {9, "Class(9)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Class(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *APIError
		want string
	}{
		{"full", &APIError{Code: "InternalError", Message: "Internal error.", RequestID: "rid-1"}, "faceid: InternalError: Internal error. (RequestId rid-1)"},
		{"code only", &APIError{Code: "ClientError.Unknown"}, "faceid: ClientError.Unknown"},
		{"cause already in message", &APIError{Code: "ClientError.ParseJsonError", Message: "Fail to read http body, because: context deadline exceeded", cause: context.DeadlineExceeded}, "faceid: ClientError.ParseJsonError: Fail to read http body, because: context deadline exceeded"},
		{"with cause", &APIError{Code: "ClientError.NetworkError", Message: "Fail to get response", cause: context.DeadlineExceeded}, "faceid: ClientError.NetworkError: Fail to get response: context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	e := &APIError{Code: "ClientError.NetworkError", cause: fmt.Errorf("post: %w", context.Canceled)}
	if !errors.Is(e, context.Canceled) {
		t.Error("APIError does not unwrap to its cause")
	}
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("QUJD", 50) // 200 base64 characters
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"plain", "Invalid parameter value.", nil, "Invalid parameter value."},
		{"secret", "key is s3cr3tKEY!", []string{"s3cr3tKEY"}, "key is [redacted]!"},
		{"short secret ignored", "abc", []string{"ab"}, "abc"},
		{"image echoed", "bad image " + long + " end", nil, "bad image [redacted 200 bytes] end"},
		{"image at end", "bad " + long, nil, "bad [redacted 200 bytes]"},
		{"short base64 kept", "RequestId 0d6f0b4e2c9a", nil, "RequestId 0d6f0b4e2c9a"},
		{"controls", "a\r\nb\x00c", nil, "a  b c"},
		{"invalid UTF-8", "a\xffb", nil, "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in, tt.secrets); got != tt.want {
				t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("cut", func(t *testing.T) {
		in := strings.Repeat("<p>é ", 400)
		got := sanitize(in, nil)
		if len(got) > maxMessageLen+len("…") || !strings.HasSuffix(got, "…") {
			t.Errorf("sanitize did not cut a %d-byte message: %d bytes", len(in), len(got))
		}
		if !strings.HasPrefix(in, strings.TrimSuffix(got, "…")) {
			t.Errorf("cut message is not a prefix of the original")
		}
	})
}
