package faceid

import (
	"context"
	"encoding/json"
	"strings"

	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
)

// ActionGet is the second upstream action: the result of a person's web
// verification, fetchable for three days after the BizToken was issued.
const ActionGet = "GetWebVerificationResultIntl"

// Token-ending codes of ActionGet: the verification can no longer be fetched, and
// the job's Verification ends as "expired". FailedOperation.InvalidTokenParameter
// (a token the upstream does not know) is treated the same way: a retry asks about
// the same unknown token.
var tokenEndCodes = map[string]bool{
	"InvalidParameterValue.BizTokenExpired": true,
	"InvalidParameterValue.BizTokenIllegal": true,
	"FailedOperation.InvalidTokenParameter": true,
}

// TokenEnded reports whether code says that a BizToken's result can no longer be
// fetched (expired, illegal or unknown): the verification ends as "expired".
func TokenEnded(code string) bool { return tokenEndCodes[code] }

// GetWebVerificationResultIntlRequestParams holds ActionGet's input fields.
type GetWebVerificationResultIntlRequestParams struct {
	// The BizToken of ApplyWebVerificationBizTokenIntl. Required.
	BizToken *string `json:"BizToken,omitnil,omitempty" name:"BizToken"`
}

// GetWebVerificationResultIntlRequest is the SDK-shaped request sent with
// common.Client.Send.
type GetWebVerificationResultIntlRequest struct {
	*tchttp.BaseRequest

	BizToken *string `json:"BizToken,omitnil,omitempty" name:"BizToken"`
}

// NewGetWebVerificationResultIntlRequest returns a request with its API info set.
func NewGetWebVerificationResultIntlRequest() *GetWebVerificationResultIntlRequest {
	r := &GetWebVerificationResultIntlRequest{BaseRequest: &tchttp.BaseRequest{}}
	r.Init().WithApiInfo(Service, APIVersion, ActionGet)
	return r
}

// GetWebVerificationResultIntlResponseParams holds ActionGet's output fields, in the
// SDK's shape WITHOUT its biometric media: VideoBase64 and BestFrameBase64 have no
// field here, so the decoder skips their bytes and they are never held beyond the
// decode of the answer (see OCRResult for the document images).
type GetWebVerificationResultIntlResponseParams struct {
	// The final result: 0 the same person; another H5 error code otherwise; null
	// while the person has not finished.
	ErrorCode *int64 `json:"ErrorCode,omitnil,omitempty" name:"ErrorCode"`
	// The description of ErrorCode.
	ErrorMsg *string `json:"ErrorMsg,omitnil,omitempty" name:"ErrorMsg"`
	// One entry per attempt of the person.
	VerificationDetailList []*VerificationDetail `json:"VerificationDetailList,omitnil,omitempty" name:"VerificationDetailList"`
	// The document recognition results, without their images.
	OCRResult []*OCRResult `json:"OCRResult,omitnil,omitempty" name:"OCRResult"`
	// The pass-through Extra of the Apply call.
	Extra *string `json:"Extra,omitnil,omitempty" name:"Extra"`
	// Unique request id.
	RequestId *string `json:"RequestId,omitnil,omitempty" name:"RequestId"`
}

// VerificationDetail is one attempt of a person (SDK shape).
type VerificationDetail struct {
	ErrorCode         *int64    `json:"ErrorCode,omitnil,omitempty" name:"ErrorCode"`
	ErrorMsg          *string   `json:"ErrorMsg,omitnil,omitempty" name:"ErrorMsg"`
	LivenessErrorCode *int64    `json:"LivenessErrorCode,omitnil,omitempty" name:"LivenessErrorCode"`
	LivenessErrorMsg  *string   `json:"LivenessErrorMsg,omitnil,omitempty" name:"LivenessErrorMsg"`
	CompareErrorCode  *int64    `json:"CompareErrorCode,omitnil,omitempty" name:"CompareErrorCode"`
	CompareErrorMsg   *string   `json:"CompareErrorMsg,omitnil,omitempty" name:"CompareErrorMsg"`
	ReqTimestamp      *uint64   `json:"ReqTimestamp,omitnil,omitempty" name:"ReqTimestamp"`
	Similarity        *float64  `json:"Similarity,omitnil,omitempty" name:"Similarity"`
	Seq               *string   `json:"Seq,omitnil,omitempty" name:"Seq"`
	LivenessInfoTag   []*string `json:"LivenessInfoTag,omitnil,omitempty" name:"LivenessInfoTag"`
}

// OCRResult is one document recognition result WITHOUT its images: the SDK's
// CardImageBase64, CardCutImageBase64, CardBackImageBase64, CardBackCutImageBase64
// and HeadImageBase64 have no field here, and NormalCardInfo is kept only after every
// image-like value in it was removed while decoding (see UnmarshalJSON).
type OCRResult struct {
	IsPass *bool `json:"IsPass,omitnil,omitempty" name:"IsPass"`
	// Deprecated by the upstream: the card's text fields as a JSON string.
	CardInfo *string `json:"CardInfo,omitnil,omitempty" name:"CardInfo"`
	// The card's text fields, one sub-object per document type.
	NormalCardInfo json.RawMessage `json:"NormalCardInfo,omitempty" name:"NormalCardInfo"`
	RequestId      *string         `json:"RequestId,omitnil,omitempty" name:"RequestId"`
	WarnCardInfos  []*int64        `json:"WarnCardInfos,omitnil,omitempty" name:"WarnCardInfos"`
	// The original OCR text (CheckMode 4).
	OriginalCardInfo *string `json:"OriginalCardInfo,omitnil,omitempty" name:"OriginalCardInfo"`
}

// UnmarshalJSON decodes an OCRResult, skipping every image field and removing
// image-like values (a key naming an image, or a long base64 run) from
// NormalCardInfo.
func (o *OCRResult) UnmarshalJSON(b []byte) error {
	type plain OCRResult
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if len(p.NormalCardInfo) > 0 {
		var v any
		if err := json.Unmarshal(p.NormalCardInfo, &v); err != nil {
			return err
		}
		clean, err := json.Marshal(scrubImages(v))
		if err != nil {
			return err
		}
		p.NormalCardInfo = clean
	}
	*o = OCRResult(p)
	return nil
}

// scrubImages removes from a decoded JSON value every member whose key names an
// image or a Base64 field, and every string holding a base64 run of 100 characters
// or more.
func scrubImages(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			lk := strings.ToLower(k)
			if hasBase64Run(k, 100) || strings.Contains(lk, "base64") || strings.Contains(lk, "image") || strings.Contains(lk, "photo") || strings.Contains(lk, "portrait") {
				delete(x, k)
				continue
			}
			if s, ok := e.(string); ok && hasBase64Run(s, 100) {
				delete(x, k)
				continue
			}
			x[k] = scrubImages(e)
		}
		return x
	case []any:
		out := x[:0]
		for _, e := range x {
			if s, ok := e.(string); ok && hasBase64Run(s, 100) {
				continue
			}
			out = append(out, scrubImages(e))
		}
		return out
	}
	return v
}

func hasBase64Run(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if isBase64Char(s[i]) {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// WithoutOCRText returns r with its OCR text (names, document numbers) removed:
// what faceidq keeps unless FACEIDQ_VERIFY_KEEP_OCR is set. Only IsPass and
// WarnCardInfos remain of each OCRResult.
func (r *GetWebVerificationResultIntlResponseParams) WithoutOCRText() *GetWebVerificationResultIntlResponseParams {
	if r == nil {
		return nil
	}
	c := *r
	c.OCRResult = make([]*OCRResult, 0, len(r.OCRResult))
	for _, o := range r.OCRResult {
		if o == nil {
			continue
		}
		c.OCRResult = append(c.OCRResult, &OCRResult{IsPass: o.IsPass, WarnCardInfos: o.WarnCardInfos})
	}
	return &c
}

// Similarity returns the similarity of the last attempt that has one, or nil.
func (r *GetWebVerificationResultIntlResponseParams) Similarity() *float64 {
	if r == nil {
		return nil
	}
	for i := len(r.VerificationDetailList) - 1; i >= 0; i-- {
		if d := r.VerificationDetailList[i]; d != nil && d.Similarity != nil {
			return d.Similarity
		}
	}
	return nil
}

// GetWebVerificationResultIntlResponse is the SDK-shaped response envelope.
type GetWebVerificationResultIntlResponse struct {
	*tchttp.BaseResponse
	Response *GetWebVerificationResultIntlResponseParams `json:"Response"`
}

// NewGetWebVerificationResultIntlResponse returns an empty response ready for Send.
func NewGetWebVerificationResultIntlResponse() *GetWebVerificationResultIntlResponse {
	return &GetWebVerificationResultIntlResponse{BaseResponse: &tchttp.BaseResponse{}}
}

// Get calls GetWebVerificationResultIntl in region ("" means DefaultRegion) for
// bizToken, once, within the Client's Timeout. Failures are *APIError as for Apply
// (TokenEnded tells the codes that end the verification). The answer never holds
// the person's video, best frame or document images (see the response type).
func (c *Client) Get(ctx context.Context, region, bizToken string) (*GetWebVerificationResultIntlResponseParams, error) {
	if region == "" {
		region = DefaultRegion
	}
	if err := ValidateRegion(region); err != nil {
		return nil, err
	}
	if bizToken == "" {
		return nil, missing("BizToken", "is required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req := NewGetWebVerificationResultIntlRequest()
	req.BizToken = &bizToken
	req.SetContext(ctx)
	resp := NewGetWebVerificationResultIntlResponse()
	if err := c.regionClient(region).Send(req, resp); err != nil {
		return nil, c.apiError(ctx, err, &ApplyWebVerificationBizTokenIntlRequestParams{})
	}
	if resp.Response == nil {
		return nil, &APIError{Code: CodeBadResponse, Message: "answer has no Response object"}
	}
	return resp.Response, nil
}
