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
// root row also covers sub-codes not listed. Every code of these published lists has
// its own row (errors_test.go checks it against copies kept in testdata/):
//   - FaceID's codes: the intl Go SDK's faceid/v20180301/errors.go (v3.0.1474) and the
//     Chinese-site Go SDK's (faceid v1.3.165), which adds RuleIdDisabled;
//   - the API 3.0 common codes (the "Common Error Codes" doc table);
//   - the Go SDK's client-side ClientError codes, and faceidq's own
//     (CodeBadResponse, CodeClientUnknown).
//
// A row outside these lists says where it comes from.
var classes = map[string]Class{
	// --- Retryable: server-side trouble that a later attempt may not meet.
	"InternalError":                    Retryable,
	"InternalError.UnKnown":            Retryable,
	"InternalError.EncryptSystemError": Retryable,
	"ServiceUnavailable":               Retryable,
	// ResourceUnavailable is retryable as a root: "unavailable" is a state, not a
	// property of the request. Its sub-codes for arrears and an exhausted resource
	// package are Account below.
	"ResourceUnavailable": Retryable,
	// ResourceInsufficient: the server lacks capacity right now.
	"ResourceInsufficient": Retryable,
	// ResourceInUse: something is busy; it may be released by the next attempt.
	"ResourceInUse": Retryable,
	// FailedOperation is the generic "operation failed": it names no cause in the
	// request, so it is retried within the attempt budget. Its sub-codes about the
	// image or the person's session are Permanent below, StsUnAuthErrError is
	// Account, RequestLimitExceeded is RateLimited.
	"FailedOperation":         Retryable,
	"FailedOperation.UnKnown": Retryable,
	// FaceID's back-end failures (an engine, a database, a store, a decryption):
	// the request is not at fault.
	"FailedOperation.CompareSystemError":           Retryable,
	"FailedOperation.CompareLibServiceUnavailable": Retryable,
	"FailedOperation.DbError":                      Retryable,
	"FailedOperation.DecryptSystemError":           Retryable,
	"FailedOperation.DetectEngineSystemError":      Retryable,
	"FailedOperation.EncryptSystemError":           Retryable,
	"FailedOperation.FileSaveError":                Retryable,
	"FailedOperation.IdPhotoSystemNoanswer":        Retryable,
	"FailedOperation.LivessSystemError":            Retryable,
	"FailedOperation.LipNetFailed":                 Retryable,
	"FailedOperation.DownLoadError":                Retryable,
	"FailedOperation.DownLoadTimeoutError":         Retryable,
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
	// FaceID's own "the number of calls exceeded the limit", filed under
	// FailedOperation: a frequency refusal too, so it spends no attempt.
	"FailedOperation.RequestLimitExceeded": RateLimited,

	// --- Permanent: the request itself is wrong or cannot be served.
	"InvalidParameter":                       Permanent,
	"InvalidParameter.UnsupportEncryptField": Permanent,
	"InvalidParameterValue":                  Permanent,
	"InvalidParameterValue.BizTokenExpired":  Permanent,
	"InvalidParameterValue.BizTokenIllegal":  Permanent,
	// A RuleId the console does not know, or one the account disabled.
	"InvalidParameterValue.RuleIdNotExist": Permanent,
	"InvalidParameterValue.RuleIdDisabled": Permanent,
	"MissingParameter":                     Permanent,
	"UnknownParameter":                     Permanent,
	"RequestSizeLimitExceeded":             Permanent,
	// The same request yields the same oversized answer.
	"ResponseSizeLimitExceeded": Permanent,
	"ResourceNotFound":          Permanent,
	"UnsupportedRegion":         Permanent,
	"InvalidAction":             Permanent,
	"ActionOffline":             Permanent,
	"NoSuchVersion":             Permanent,
	"NoSuchProduct":             Permanent,
	"UnsupportedOperation":      Permanent,
	"UnsupportedProtocol":       Permanent,
	"InvalidRequest":            Permanent,
	// DryRunOperation never succeeds as a real call; faceidq never sends DryRun.
	"DryRunOperation": Permanent,
	// GetWebVerificationResultIntl's "Token not found".
	"FailedOperation.InvalidTokenParameter": Permanent,
	// The comparison photo is unusable: a retry sends the same bytes.
	"FailedOperation.EmptyImageError":        Permanent,
	"FailedOperation.PoorImageQuality":       Permanent,
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
	// Outcomes of a person's liveness, comparison or document session and checks of
	// identity data: FaceID's other actions (and the details of a verification
	// result) answer them, Apply is not expected to. Were one to come, the same
	// request would meet it again.
	"FailedOperation.ActionCloseEye":            Permanent,
	"FailedOperation.ActionFaceClose":           Permanent,
	"FailedOperation.ActionFaceFar":             Permanent,
	"FailedOperation.ActionFaceLeft":            Permanent,
	"FailedOperation.ActionFaceRight":           Permanent,
	"FailedOperation.ActionFirstAction":         Permanent,
	"FailedOperation.ActionLightDark":           Permanent,
	"FailedOperation.ActionLightStrong":         Permanent,
	"FailedOperation.ActionNodetectFace":        Permanent,
	"FailedOperation.ActionOpenMouth":           Permanent,
	"FailedOperation.CompareFail":               Permanent,
	"FailedOperation.CompareLowSimilarity":      Permanent,
	"FailedOperation.CompressVideoError":        Permanent,
	"FailedOperation.CoveredFace":               Permanent,
	"FailedOperation.IdFormatError":             Permanent,
	"FailedOperation.IdNameMisMatch":            Permanent,
	"FailedOperation.IdNoExistSystem":           Permanent,
	"FailedOperation.IdPhotoNoExist":            Permanent,
	"FailedOperation.IdPhotoPoorQuality":        Permanent,
	"FailedOperation.IdentityAuthLimitExceeded": Permanent,
	"FailedOperation.ImageNoIdCard":             Permanent,
	"FailedOperation.IncompleteFace":            Permanent,
	"FailedOperation.LipFaceIncomplete":         Permanent,
	"FailedOperation.LipMoveSmall":              Permanent,
	"FailedOperation.LipSizeError":              Permanent,
	"FailedOperation.LipVideoInvalid":           Permanent,
	"FailedOperation.LipVideoQuaility":          Permanent,
	"FailedOperation.LipVoiceDetect":            Permanent,
	"FailedOperation.LipVoiceLow":               Permanent,
	"FailedOperation.LipVoiceRecognize":         Permanent,
	"FailedOperation.LivessBestFrameError":      Permanent,
	"FailedOperation.LivessDetectFail":          Permanent,
	"FailedOperation.LivessDetectFake":          Permanent,
	"FailedOperation.LivessUnknownError":        Permanent,
	"FailedOperation.NameFormatError":           Permanent,
	"FailedOperation.OcrFailed":                 Permanent,
	"FailedOperation.SilentDetectFail":          Permanent,
	"FailedOperation.SilentEyeLiveFail":         Permanent,
	"FailedOperation.SilentFaceDetectFail":      Permanent,
	"FailedOperation.SilentFaceQualityFail":     Permanent,
	"FailedOperation.SilentFaceWithMaskFail":    Permanent,
	"FailedOperation.SilentMouthLiveFail":       Permanent,
	"FailedOperation.SilentMultiFaceFail":       Permanent,
	"FailedOperation.SilentPictureLiveFail":     Permanent,
	"FailedOperation.SilentThreshold":           Permanent,
	"FailedOperation.SilentTooShort":            Permanent,
	"FailedOperation.UnregisteredEid":           Permanent,
	"FailedOperation.VideoDecodeFailed":         Permanent,
	"FailedOperation.VideoDurationExceeded":     Permanent,
	"InternalError.ActionLightDark":             Permanent,
	"InternalError.ActionLightStrong":           Permanent,
	"InternalError.ActionNodetectFace":          Permanent,
	"InternalError.CompareLowSimilarity":        Permanent,
	// The SDK could not build the request (unknown keys in FromJsonString, bad
	// CommonRequest parameters) or its response type did not fit the answer: a
	// programming error that no retry fixes.
	"ClientError.BuildRequestError": Permanent,
	"ClientError.InvalidParameter":  Permanent,
	"ClientError.TypeError":         Permanent,

	// --- Account: nothing works for the account until a person acts.
	"UnauthorizedOperation":               Account,
	"UnauthorizedOperation.ActivateError": Account,
	// Activating clears by itself: see SelfClearing.
	"UnauthorizedOperation.Activating":            Account,
	"UnauthorizedOperation.Arrears":               Account,
	"UnauthorizedOperation.ChargeStatusException": Account,
	"UnauthorizedOperation.Nonactivated":          Account,
	"UnauthorizedOperation.NonAuthorize":          Account,
	// STS (temporary credentials) unauthorized: the credentials, not the request.
	"FailedOperation.StsUnAuthErrError": Account,
	// Every AuthFailure is account-level, SignatureExpire included: it means this
	// machine's clock is off by more than five minutes, which no retry fixes and
	// which would fail every job the worker touches. The root row (not a published
	// code) covers sub-codes a later list may add.
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
	// Not FaceID codes: the same names in other Tencent AI products' errors.go
	// (iai, facefusion, bda: InArrears; ocr, lkeap: ResourcePackageRunOut; ocr,
	// tiia: UnOpenError) mean arrears, an exhausted resource package and a service
	// not opened. Kept so that, should FaceID answer one, it pauses instead of
	// being retried under its root's class.
	"ResourceUnavailable.InArrears":             Account,
	"ResourceUnavailable.ResourcePackageRunOut": Account,
	"FailedOperation.UnOpenError":               Account,
	// The SDK could not obtain credentials (an environment, a profile file, a role).
	"ClientError.CredentialError": Account,
	"ClientError.INIError":        Account,
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
