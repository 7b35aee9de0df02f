package faceid

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
)

// wantClasses is the expected class of every row of the table, written out again
// so that a changed row fails here.
var wantClasses = map[string]Class{
	"InternalError":                          Retryable,
	"InternalError.UnKnown":                  Retryable,
	"ServiceUnavailable":                     Retryable,
	"ResourceUnavailable":                    Retryable,
	"ResourceUnavailable.ImageDownloadError": Retryable,
	"ResourceInsufficient":                   Retryable,
	"ResourceInUse":                          Retryable,
	"FailedOperation":                        Retryable,
	"FailedOperation.UnKnown":                Retryable,
	"FailedOperation.UnKnowError":            Retryable,
	"FailedOperation.CompareSystemError":     Retryable,
	"FailedOperation.LivessSystemError":      Retryable,
	"FailedOperation.DownLoadError":          Retryable,
	"FailedOperation.DownLoadTimeoutError":   Retryable,
	"ClientError":                            Retryable,
	"ClientError.NetworkError":               Retryable,
	"ClientError.ParseJsonError":             Retryable,
	"ClientError.HttpStatusCodeError":        Retryable,
	"ClientError.IOError":                    Retryable,
	"ClientError.CircuitBreakerError":        Retryable,
	"ClientError.BadResponse":                Retryable,
	"ClientError.Unknown":                    Retryable,

	"RequestLimitExceeded":                              RateLimited,
	"RequestLimitExceeded.GlobalRegionUinLimitExceeded": RateLimited,
	"RequestLimitExceeded.IPLimitExceeded":              RateLimited,
	"RequestLimitExceeded.UinLimitExceeded":             RateLimited,

	"InvalidParameter":                                 Permanent,
	"InvalidParameter.EngineImageDecodeFailed":         Permanent,
	"InvalidParameterValue":                            Permanent,
	"InvalidParameterValue.BizTokenExpired":            Permanent,
	"InvalidParameterValue.BizTokenIllegal":            Permanent,
	"InvalidParameterValue.InvalidFileContentSize":     Permanent,
	"InvalidParameterValue.InvalidParameterValueLimit": Permanent,
	"MissingParameter":                                 Permanent,
	"UnknownParameter":                                 Permanent,
	"RequestSizeLimitExceeded":                         Permanent,
	"ResponseSizeLimitExceeded":                        Permanent,
	"ResourceNotFound":                                 Permanent,
	"UnsupportedRegion":                                Permanent,
	"InvalidAction":                                    Permanent,
	"ActionOffline":                                    Permanent,
	"NoSuchVersion":                                    Permanent,
	"NoSuchProduct":                                    Permanent,
	"UnsupportedOperation":                             Permanent,
	"UnsupportedProtocol":                              Permanent,
	"InvalidRequest":                                   Permanent,
	"DryRunOperation":                                  Permanent,
	"FailedOperation.ImageSizeTooLarge":                Permanent,
	"FailedOperation.ImageDecodeFailed":                Permanent,
	"FailedOperation.ImageBlur":                        Permanent,
	"FailedOperation.LifePhotoDetectFaces":             Permanent,
	"FailedOperation.LifePhotoDetectFake":              Permanent,
	"FailedOperation.LifePhotoDetectNoFaces":           Permanent,
	"FailedOperation.LifePhotoPoorQuality":             Permanent,
	"FailedOperation.LifePhotoSizeError":               Permanent,
	"InternalError.LifePhotoPoorQuality":               Permanent,
	"InternalError.LifePhotoSizeError":                 Permanent,
	"ClientError.TypeError":                            Permanent,

	"UnauthorizedOperation":                     Account,
	"UnauthorizedOperation.ActivateError":       Account,
	"UnauthorizedOperation.Activating":          Account,
	"UnauthorizedOperation.Arrears":             Account,
	"UnauthorizedOperation.Nonactivated":        Account,
	"UnauthorizedOperation.NonAuthorize":        Account,
	"AuthFailure":                               Account,
	"AuthFailure.InvalidAuthorization":          Account,
	"AuthFailure.InvalidSecretId":               Account,
	"AuthFailure.MFAFailure":                    Account,
	"AuthFailure.SecretIdNotFound":              Account,
	"AuthFailure.SignatureExpire":               Account,
	"AuthFailure.SignatureFailure":              Account,
	"AuthFailure.TokenFailure":                  Account,
	"AuthFailure.UnauthorizedOperation":         Account,
	"IpNotInWhitelist":                          Account,
	"IpInBlacklist":                             Account,
	"LimitExceeded":                             Account,
	"OperationDenied":                           Account,
	"ResourceUnavailable.InArrears":             Account,
	"ResourceUnavailable.ResourcePackageRunOut": Account,
	"FailedOperation.UnOpenError":               Account,
	"ClientError.CredentialError":               Account,
}

func TestClassOfEveryRow(t *testing.T) {
	for code, want := range wantClasses {
		t.Run(code, func(t *testing.T) {
			if got := ClassOf(code); got != want {
				t.Errorf("ClassOf(%q) = %v, want %v", code, got, want)
			}
		})
	}
	for code := range classes {
		if _, ok := wantClasses[code]; !ok {
			t.Errorf("table row %q has no expectation in this test", code)
		}
	}
}

// TestTableCoversDocumentedCodes checks that every code the notes (§5), the seed
// page and the spec name has its own row (not only a prefix match).
func TestTableCoversDocumentedCodes(t *testing.T) {
	documented := []string{
		// API 3.0 common codes
		"ActionOffline", "AuthFailure.InvalidAuthorization", "AuthFailure.InvalidSecretId",
		"AuthFailure.MFAFailure", "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureExpire",
		"AuthFailure.SignatureFailure", "AuthFailure.TokenFailure", "AuthFailure.UnauthorizedOperation",
		"DryRunOperation", "FailedOperation", "InternalError", "InvalidAction", "InvalidParameter",
		"InvalidParameterValue", "InvalidRequest", "IpInBlacklist", "IpNotInWhitelist", "LimitExceeded",
		"MissingParameter", "NoSuchProduct", "NoSuchVersion", "RequestLimitExceeded",
		"RequestLimitExceeded.GlobalRegionUinLimitExceeded", "RequestLimitExceeded.IPLimitExceeded",
		"RequestLimitExceeded.UinLimitExceeded", "RequestSizeLimitExceeded", "ResponseSizeLimitExceeded",
		"ResourceInUse", "ResourceInsufficient", "ResourceNotFound", "ResourceUnavailable",
		"ServiceUnavailable", "UnauthorizedOperation", "UnknownParameter", "UnsupportedOperation",
		"UnsupportedProtocol", "UnsupportedRegion",
		// FaceID web-flow codes and the action's own
		"InvalidParameterValue.BizTokenIllegal", "InvalidParameterValue.BizTokenExpired",
		"UnauthorizedOperation.Nonactivated", "UnauthorizedOperation.Activating",
		"UnauthorizedOperation.ActivateError", "UnauthorizedOperation.Arrears",
		"UnauthorizedOperation.NonAuthorize", "OperationDenied", "FailedOperation.ImageSizeTooLarge",
		// the SDK's client codes (notes §3.5)
		"ClientError.NetworkError", "ClientError.ParseJsonError", "ClientError.HttpStatusCodeError",
		"ClientError.IOError", "ClientError.CircuitBreakerError",
	}
	for _, code := range documented {
		if _, ok := classes[code]; !ok {
			t.Errorf("documented code %q has no row", code)
		}
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
