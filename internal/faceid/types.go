package faceid

import (
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
)

// Service, APIVersion and Action name the one upstream action faceidq calls.
const (
	Service    = "faceid"
	APIVersion = "2018-03-01"
	Action     = "ApplyWebVerificationBizTokenIntl"
)

// DefaultEndpoint is the upstream host used when none is configured.
const DefaultEndpoint = "faceid.intl.tencentcloudapi.com"

// DefaultRegion is the region a job uses when it names none.
const DefaultRegion = "ap-singapore"

// Regions lists every region the action accepts: the three of the reference page
// (ap-bangkok, ap-jakarta, ap-singapore) and the two of Tencent's current page.
var Regions = []string{"ap-bangkok", "ap-hongkong", "ap-jakarta", "ap-singapore", "sa-saopaulo"}

// ValidRegion reports whether r is one of Regions.
func ValidRegion(r string) bool {
	for _, v := range Regions {
		if v == r {
			return true
		}
	}
	return false
}

// WebVerificationConfigIntl controls the verification page. Field order, Go types and
// JSON names are exactly those of the SDK's generated model (note IDCardType and
// IdCardCutReturn).
type WebVerificationConfigIntl struct {
	// Skip the start-verification page. Default false.
	AutoSkipStartPage *bool `json:"AutoSkipStartPage,omitnil,omitempty" name:"AutoSkipStartPage"`
	// Skip the result page and jump to RedirectURL on success. Default false.
	AutoSkip *bool `json:"AutoSkip,omitnil,omitempty" name:"AutoSkip"`
	// 1 OCR+liveness+comparison, 2 liveness+comparison, 3 liveness, 4 OCR. Default 2.
	CheckMode *int64 `json:"CheckMode,omitnil,omitempty" name:"CheckMode"`
	// Document type (HKIDCard, MLIDCard, …).
	IDCardType *string `json:"IDCardType,omitnil,omitempty" name:"IDCardType"`
	// Close the document alarm. Default false.
	DisableCheckOcrWarnings *bool `json:"DisableCheckOcrWarnings,omitnil,omitempty" name:"DisableCheckOcrWarnings"`
	// 1 silent, 2 action, 3 light, 4 action+light liveness. Default 3.
	SecurityLevel *int64 `json:"SecurityLevel,omitnil,omitempty" name:"SecurityLevel"`
	// Skip the privacy-agreement page. Default false.
	SkipPrivacyPolicy *bool `json:"SkipPrivacyPolicy,omitnil,omitempty" name:"SkipPrivacyPolicy"`
	// Return the cropped document image. Default false.
	IdCardCutReturn *bool `json:"IdCardCutReturn,omitnil,omitempty" name:"IdCardCutReturn"`
	// Theme colour as #RRGGBB. Default #2d72f1.
	ThemeColor *string `json:"ThemeColor,omitnil,omitempty" name:"ThemeColor"`
	// th, en, zh-cn, zh-tc, id. Default en.
	Language *string `json:"Language,omitnil,omitempty" name:"Language"`
	// 1 downgrade to silent liveness, 2 disable downgrade. Default 1.
	AutoDowngrade *int64 `json:"AutoDowngrade,omitnil,omitempty" name:"AutoDowngrade"`
	// One or two of blink, mouth, nod, shake, comma-separated. Only with SecurityLevel 2, 4 or 5.
	ActionList *string `json:"ActionList,omitnil,omitempty" name:"ActionList"`
	// Maximum liveness attempts, 1-99. Default 99.
	LivenessRetryLimit *int64 `json:"LivenessRetryLimit,omitnil,omitempty" name:"LivenessRetryLimit"`
	// Liveness timeout in seconds, 0-600. Default 45.
	LivenessTimeout *uint64 `json:"LivenessTimeout,omitnil,omitempty" name:"LivenessTimeout"`
	// OCR warning codes that interrupt the flow, comma-separated.
	SelectedWarningCodes *string `json:"SelectedWarningCodes,omitnil,omitempty" name:"SelectedWarningCodes"`
	// HKID only: whether an expired document may proceed. Default true.
	AllowExpiredDocument *bool `json:"AllowExpiredDocument,omitnil,omitempty" name:"AllowExpiredDocument"`
	// BASIC (default) or PLUS.
	Version *string `json:"Version,omitnil,omitempty" name:"Version"`
}

// ApplyWebVerificationBizTokenIntlRequestParams holds the action's input fields.
type ApplyWebVerificationBizTokenIntlRequestParams struct {
	// Web callback URL after verification: protocol, host and path. Required.
	RedirectURL *string `json:"RedirectURL,omitnil,omitempty" name:"RedirectURL"`
	// Base64 photo to compare (at most 8 MB, no Data URI header).
	CompareImageBase64 *string `json:"CompareImageBase64,omitnil,omitempty" name:"CompareImageBase64"`
	// Pass-through business data, at most 1,000 characters.
	Extra *string `json:"Extra,omitnil,omitempty" name:"Extra"`
	// Page configuration.
	Config *WebVerificationConfigIntl `json:"Config,omitnil,omitempty" name:"Config"`
	// Business-process id from the console.
	RuleId *string `json:"RuleId,omitnil,omitempty" name:"RuleId"`
}

// ApplyWebVerificationBizTokenIntlRequest is the SDK-shaped request sent with
// common.Client.Send.
type ApplyWebVerificationBizTokenIntlRequest struct {
	*tchttp.BaseRequest

	RedirectURL        *string                    `json:"RedirectURL,omitnil,omitempty" name:"RedirectURL"`
	CompareImageBase64 *string                    `json:"CompareImageBase64,omitnil,omitempty" name:"CompareImageBase64"`
	Extra              *string                    `json:"Extra,omitnil,omitempty" name:"Extra"`
	Config             *WebVerificationConfigIntl `json:"Config,omitnil,omitempty" name:"Config"`
	RuleId             *string                    `json:"RuleId,omitnil,omitempty" name:"RuleId"`
}

// NewApplyWebVerificationBizTokenIntlRequest returns a request with its API info set.
func NewApplyWebVerificationBizTokenIntlRequest() *ApplyWebVerificationBizTokenIntlRequest {
	r := &ApplyWebVerificationBizTokenIntlRequest{BaseRequest: &tchttp.BaseRequest{}}
	r.Init().WithApiInfo(Service, APIVersion, Action)
	return r
}

// Params returns the request's input fields.
func (r *ApplyWebVerificationBizTokenIntlRequest) Params() ApplyWebVerificationBizTokenIntlRequestParams {
	return ApplyWebVerificationBizTokenIntlRequestParams{
		RedirectURL: r.RedirectURL, CompareImageBase64: r.CompareImageBase64,
		Extra: r.Extra, Config: r.Config, RuleId: r.RuleId,
	}
}

// ApplyWebVerificationBizTokenIntlResponseParams holds the action's output fields.
type ApplyWebVerificationBizTokenIntlResponseParams struct {
	// Deprecated: use VerificationURL.
	VerificationUrl *string `json:"VerificationUrl,omitnil,omitempty" name:"VerificationUrl"`
	// Token of the web verification process, valid for 10 minutes.
	BizToken *string `json:"BizToken,omitnil,omitempty" name:"BizToken"`
	// URL to open in a browser to start the verification.
	VerificationURL *string `json:"VerificationURL,omitnil,omitempty" name:"VerificationURL"`
	// Unique request id.
	RequestId *string `json:"RequestId,omitnil,omitempty" name:"RequestId"`
}

// ApplyWebVerificationBizTokenIntlResponse is the SDK-shaped response envelope.
type ApplyWebVerificationBizTokenIntlResponse struct {
	*tchttp.BaseResponse
	Response *ApplyWebVerificationBizTokenIntlResponseParams `json:"Response"`
}

// NewApplyWebVerificationBizTokenIntlResponse returns an empty response ready for Send.
func NewApplyWebVerificationBizTokenIntlResponse() *ApplyWebVerificationBizTokenIntlResponse {
	return &ApplyWebVerificationBizTokenIntlResponse{BaseResponse: &tchttp.BaseResponse{}}
}
