package faceid

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
)

// APIError is an upstream call that failed: an error envelope from the API
// (Code is the API's code, e.g. "InternalError") or a failure on the way to it
// (Code is the SDK's client code, e.g. "ClientError.NetworkError"). Client.Apply
// returns every failure of a call it made as an *APIError; a cancellation or
// deadline of the caller's context stays reachable through errors.Is.
type APIError struct {
	// Code is the upstream or SDK error code; ClassOf sorts it into a Class.
	Code string
	// Message is the upstream's message. Client builds it cut to 512 bytes, with
	// the credentials and any long base64 run redacted.
	Message string
	// RequestID is the upstream's RequestId, "" when the call got no answer.
	RequestID string

	cause error
}

// Error renders the code, message, request id and cause. An APIError holds no
// secrets, so neither does its text.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("faceid: ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (RequestId ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	if e.cause != nil {
		if c := e.cause.Error(); !strings.HasSuffix(e.Message, c) {
			b.WriteString(": ")
			b.WriteString(c)
		}
	}
	return b.String()
}

// Unwrap returns the transport error behind a client-side failure (a *url.Error,
// context.Canceled, context.DeadlineExceeded, …), or nil.
func (e *APIError) Unwrap() error { return e.cause }

// Class says what a worker does with a failed call.
type Class int

// The classes. The zero Class is none of them.
const (
	// Retryable: transient; retry with exponential backoff, spending an attempt.
	Retryable Class = iota + 1
	// RateLimited: the upstream refused for frequency; retry after a pause
	// without spending an attempt (the global limiter should have prevented it).
	RateLimited
	// Permanent: the same request will fail the same way; fail the job now.
	Permanent
	// Account: the account or credentials cannot call the API (arrears, service
	// not activated, bad keys); pause the whole pipeline and fail no job for it.
	Account
)

// String returns "retryable", "rate_limited", "permanent" or "account".
func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case RateLimited:
		return "rate_limited"
	case Permanent:
		return "permanent"
	case Account:
		return "account"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Codes faceidq's client uses for failures the SDK does not name itself; both are
// Retryable.
const (
	// CodeBadResponse: the upstream answered 200 without an error but the
	// answer lacks the Response object, the BizToken or the VerificationURL.
	CodeBadResponse = "ClientError.BadResponse"
	// CodeClientUnknown: the SDK failed with an error that is not a
	// TencentCloudSDKError (e.g. an unsupported Content-Encoding).
	CodeClientUnknown = "ClientError.Unknown"
)

// SelfClearingCode is the one account-level code that clears by itself: the
// service is being activated. A worker pauses on it like any Account error but
// probes the upstream and resumes on its own once a call succeeds.
const SelfClearingCode = "UnauthorizedOperation.Activating"

// SelfClearing reports whether code is an account-level condition that clears
// by itself (SelfClearingCode).
func SelfClearing(code string) bool { return code == SelfClearingCode }

// classes is THE table sorting upstream and SDK codes into classes. ClassOf looks a
// code up exactly, then by its longest dotted prefix ("A.B.C" → "A.B" → "A"), so a
// root row also covers sub-codes not listed. Sources: the API 3.0 common error codes
// and the FaceID codes (tencent-api-notes §5), the action's own codes (seed page),
// the FaceID SDK's errors.go codes that an Apply with an image can meet, the
// SDK's ClientError codes, and faceidq's own (CodeBadResponse, CodeClientUnknown).
var classes = map[string]Class{
	// --- Retryable: server-side trouble that a later attempt may not meet.
	"InternalError":         Retryable,
	"InternalError.UnKnown": Retryable,
	"ServiceUnavailable":    Retryable,
	// ResourceUnavailable is retryable as a root: "unavailable" is a state, not a
	// property of the request. Its FaceID sub-codes for arrears and an exhausted
	// resource package are Account below.
	"ResourceUnavailable":                    Retryable,
	"ResourceUnavailable.ImageDownloadError": Retryable,
	// ResourceInsufficient: the server lacks capacity right now.
	"ResourceInsufficient": Retryable,
	// ResourceInUse: something is busy; it may be released by the next attempt.
	"ResourceInUse": Retryable,
	// FailedOperation is the generic "operation failed": it names no cause in the
	// request, so it is retried within the attempt budget. Its FaceID sub-codes
	// about the image are Permanent below, and UnOpenError is Account.
	"FailedOperation":                      Retryable,
	"FailedOperation.UnKnown":              Retryable,
	"FailedOperation.UnKnowError":          Retryable,
	"FailedOperation.CompareSystemError":   Retryable,
	"FailedOperation.LivessSystemError":    Retryable,
	"FailedOperation.DownLoadError":        Retryable,
	"FailedOperation.DownLoadTimeoutError": Retryable,
	// The SDK's client-side codes: no usable answer reached us (connection
	// refused or reset, timeout, cancellation, a 5xx HTML page from a gateway,
	// a truncated body). The request may never have been processed.
	"ClientError":                     Retryable,
	"ClientError.NetworkError":        Retryable,
	"ClientError.ParseJsonError":      Retryable,
	"ClientError.HttpStatusCodeError": Retryable,
	"ClientError.IOError":             Retryable,
	"ClientError.CircuitBreakerError": Retryable,
	CodeBadResponse:                   Retryable,
	CodeClientUnknown:                 Retryable,

	// --- RateLimited: the upstream's frequency limit (every sub-code too).
	"RequestLimitExceeded":                              RateLimited,
	"RequestLimitExceeded.GlobalRegionUinLimitExceeded": RateLimited,
	"RequestLimitExceeded.IPLimitExceeded":              RateLimited,
	"RequestLimitExceeded.UinLimitExceeded":             RateLimited,

	// --- Permanent: the request itself is wrong or cannot be served.
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
	// The same request yields the same oversized answer.
	"ResponseSizeLimitExceeded": Permanent,
	// ResourceNotFound: e.g. a RuleId the console does not know.
	"ResourceNotFound":     Permanent,
	"UnsupportedRegion":    Permanent,
	"InvalidAction":        Permanent,
	"ActionOffline":        Permanent,
	"NoSuchVersion":        Permanent,
	"NoSuchProduct":        Permanent,
	"UnsupportedOperation": Permanent,
	"UnsupportedProtocol":  Permanent,
	"InvalidRequest":       Permanent,
	// DryRunOperation never succeeds as a real call; faceidq never sends DryRun.
	"DryRunOperation": Permanent,
	// The comparison photo is unusable: a retry sends the same bytes.
	"FailedOperation.ImageSizeTooLarge":      Permanent,
	"FailedOperation.ImageDecodeFailed":      Permanent,
	"FailedOperation.ImageBlur":              Permanent,
	"FailedOperation.LifePhotoDetectFaces":   Permanent,
	"FailedOperation.LifePhotoDetectFake":    Permanent,
	"FailedOperation.LifePhotoDetectNoFaces": Permanent,
	"FailedOperation.LifePhotoPoorQuality":   Permanent,
	"FailedOperation.LifePhotoSizeError":     Permanent,
	// FaceID files these image problems under InternalError; they are not transient.
	"InternalError.LifePhotoPoorQuality": Permanent,
	"InternalError.LifePhotoSizeError":   Permanent,
	// The SDK's response type did not fit the answer: a programming error.
	"ClientError.TypeError": Permanent,

	// --- Account: nothing works for the account until a person acts.
	"UnauthorizedOperation":               Account,
	"UnauthorizedOperation.ActivateError": Account,
	// Activating clears by itself: see SelfClearing.
	"UnauthorizedOperation.Activating":   Account,
	"UnauthorizedOperation.Arrears":      Account,
	"UnauthorizedOperation.Nonactivated": Account,
	"UnauthorizedOperation.NonAuthorize": Account,
	// Every AuthFailure is account-level, SignatureExpire included: it means this
	// machine's clock is off by more than five minutes, which no retry fixes and
	// which would fail every job the worker touches.
	"AuthFailure":                       Account,
	"AuthFailure.InvalidAuthorization":  Account,
	"AuthFailure.InvalidSecretId":       Account,
	"AuthFailure.MFAFailure":            Account,
	"AuthFailure.SecretIdNotFound":      Account,
	"AuthFailure.SignatureExpire":       Account,
	"AuthFailure.SignatureFailure":      Account,
	"AuthFailure.TokenFailure":          Account,
	"AuthFailure.UnauthorizedOperation": Account,
	"IpNotInWhitelist":                  Account,
	"IpInBlacklist":                     Account,
	// LimitExceeded is a quota (not a frequency) limit: it lasts until the quota
	// is raised or renewed, so it pauses the pipeline instead of failing a campaign.
	"LimitExceeded": Account,
	// OperationDenied names no field of the request; FaceID uses it for
	// account-side refusals. Pausing costs a person's look; treating it as
	// Permanent could fail a whole campaign for an account problem.
	"OperationDenied": Account,
	// FaceID's codes for an account in arrears, an exhausted resource package
	// and a service not opened, filed under other roots.
	"ResourceUnavailable.InArrears":             Account,
	"ResourceUnavailable.ResourcePackageRunOut": Account,
	"FailedOperation.UnOpenError":               Account,
	// The SDK could not obtain credentials.
	"ClientError.CredentialError": Account,
}

// defaultClass is the class of a code neither the table nor any of its prefixes
// knows. Retryable, deliberately: an unknown root code is most likely a new
// transient condition, retrying it costs at most the job's attempt budget (paced by
// the global limiter), and a job that keeps failing ends failed anyway, just later;
// Permanent would instead fail every job of a campaign at its first sight of a
// transient novelty.
const defaultClass = Retryable

// ClassOf returns the Class of an error code: the table's row for code, else the
// row of its longest dotted prefix, else Retryable (see defaultClass).
func ClassOf(code string) Class {
	for c := code; c != ""; {
		if cl, ok := classes[c]; ok {
			return cl
		}
		i := strings.LastIndexByte(c, '.')
		if i < 0 {
			break
		}
		c = c[:i]
	}
	return defaultClass
}

// Classify returns the Class of err:
//   - an *APIError, or the SDK's *TencentCloudSDKError, by its code (ClassOf);
//   - a *FieldError: Permanent;
//   - context.DeadlineExceeded, context.Canceled (the queue retries the job),
//     a net.Error and any other error: Retryable.
//
// Classify(nil) returns the zero Class, which is none of the classes.
func Classify(err error) Class {
	if err == nil {
		return 0
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ClassOf(ae.Code)
	}
	var se *tcerr.TencentCloudSDKError
	if errors.As(err, &se) {
		return ClassOf(se.Code)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return Permanent
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &ne):
		return Retryable
	}
	return defaultClass
}
