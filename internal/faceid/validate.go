package faceid

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Codes a FieldError carries: the code the real API answers for the same problem.
//
//   - CodeMissingParameter: a required field is absent (RedirectURL nil or "", or an
//     empty Region).
//   - CodeInvalidParameter: a field is malformed, i.e. it cannot be read at all: a
//     RedirectURL that is not an absolute URL or holds whitespace or control
//     characters, a CompareImageBase64 that is not base64 or has a Data URI header,
//     an Extra that is not UTF-8.
//   - CodeInvalidParameterValue: a field is well formed but its value is not
//     allowed: too long, out of range, not in the documented set of values, or in
//     conflict with another field (ActionList without an action SecurityLevel).
//   - CodeUnsupportedRegion: a non-empty Region that is not one of Regions (the
//     API 3.0 common code for "API does not support the requested region").
const (
	CodeMissingParameter      = "MissingParameter"
	CodeInvalidParameter      = "InvalidParameter"
	CodeInvalidParameterValue = "InvalidParameterValue"
	CodeUnsupportedRegion     = "UnsupportedRegion"
)

// Input limits enforced by Validate, each with its source: the API's field comments
// (the SDK's ApplyWebVerificationBizTokenIntlRequestParams) or an RFC.
const (
	// MaxRedirectURLLen is the longest RedirectURL accepted, in bytes. The API states
	// none; RFC 9110 §4.1 recommends that senders and recipients support URIs of at
	// least 8000 octets, so a longer one may not survive the person's browser or a
	// proxy on the redirect (and Tencent appends the BizToken to it).
	MaxRedirectURLLen = 8000
	// MaxImageBase64Len is the longest CompareImageBase64 accepted, in bytes of
	// base64 text (the API's "max 8 MB").
	MaxImageBase64Len = 8 << 20
	// MaxExtraLen is the most characters (runes, not bytes) Extra may hold (the
	// API's "max 1,000 characters").
	MaxExtraLen = 1000
)

// Documented value sets of WebVerificationConfigIntl (tencent-api-notes §1.2).
var (
	// IDCardTypes lists every documented Config.IDCardType.
	IDCardTypes = []string{
		"HKIDCard", "MLIDCard", "IndonesiaIDCard", "PhilippinesVoteID",
		"PhilippinesDrivingLicense", "PhilippinesTinID", "PhilippinesSSSID",
		"PhilippinesUMID", "InternationalIDPassport", "ThailandIDCard",
		"SingaporeIDCard", "MainlandIDCard",
	}
	// Languages lists every documented Config.Language.
	Languages = []string{"th", "en", "zh-cn", "zh-tc", "id"}
	// Actions lists the liveness actions Config.ActionList may name.
	Actions = []string{"blink", "mouth", "nod", "shake"}
	// WarningCodes lists the OCR warning codes Config.SelectedWarningCodes may name.
	WarningCodes = []string{"-9101", "-9102", "-9103", "-9104", "-9107", "-9108", "-9109"}
	// Versions lists the documented Config.Version values.
	Versions = []string{"BASIC", "PLUS"}
)

// FieldError is an input problem found before anything is sent upstream.
type FieldError struct {
	// Code is the code the real API would answer: one of CodeMissingParameter,
	// CodeInvalidParameter, CodeInvalidParameterValue, CodeUnsupportedRegion.
	Code string
	// Field is the JSON path of the field, e.g. "RedirectURL" or "Config.CheckMode".
	Field string
	// Reason says what is wrong and how to fix it. It never contains image bytes.
	Reason string
}

// Error returns Field + ": " + Reason.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func missing(field, reason string) *FieldError {
	return &FieldError{Code: CodeMissingParameter, Field: field, Reason: reason}
}

func malformed(field, format string, args ...any) *FieldError {
	return &FieldError{Code: CodeInvalidParameter, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func badValue(field, format string, args ...any) *FieldError {
	return &FieldError{Code: CodeInvalidParameterValue, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidateRegion returns nil when r is one of Regions, and a *FieldError on field
// "Region" otherwise: CodeMissingParameter for "" (callers that mean DefaultRegion
// substitute it first, as Client.Apply does) and CodeUnsupportedRegion for any other
// value.
func ValidateRegion(r string) error {
	if r == "" {
		return missing("Region", "is required: one of "+strings.Join(Regions, ", "))
	}
	if !ValidRegion(r) {
		return &FieldError{Code: CodeUnsupportedRegion, Field: "Region",
			Reason: fmt.Sprintf("must be one of %s, not %s", strings.Join(Regions, ", "), quote(r))}
	}
	return nil
}

// Validate checks p as the upstream documents its inputs and returns the first
// problem found as a *FieldError, or nil. It refuses only what a source states: the
// API's field documentation (the SDK's models, tencent-api-notes §1) or, for the
// shape of a URL or of base64, the RFC the field names. Where the documentation is
// silent the upstream decides, so the simulator, which runs the same Validate, does
// not refuse what the API might accept. Fields are checked in the order of the
// request struct: RedirectURL, CompareImageBase64, Extra, Config (its fields in
// struct order, each cross-field rule on the later field). RuleId is not checked
// (the API says only "the business process ID generated by the console"; an
// unknown one answers InvalidParameterValue.RuleIdNotExist).
//
// The rules and their sources:
//   - RedirectURL: required ("including the protocol, hostname, and path"): an
//     absolute http or https URL with a host, without whitespace or control
//     characters (RFC 3986 §2 has no such characters; they would also allow header
//     injection in the redirect), at most MaxRedirectURLLen bytes (RFC 9110 §4.1;
//     the API states no limit).
//   - CompareImageBase64: "Base64-encoded (max 8 MB)", "the Data URI scheme header
//     needs to be removed": at most MaxImageBase64Len bytes of the RFC 4648 base64
//     alphabet (§3.3: characters outside it, line breaks included, are refused),
//     padded or not (the API does not say; RFC 4648 §3.2 lets the referring
//     specification decide), a length no base64 text can have refused. A Data URI
//     header is refused; producers remove it with StripDataURI first. An empty
//     value is left to the upstream (producers treat it as no image).
//   - Extra: valid UTF-8, at most MaxExtraLen characters (runes).
//   - Config.CheckMode, IDCardType, Language, AutoDowngrade, LivenessRetryLimit,
//     LivenessTimeout, Version: the documented values and ranges.
//   - Config.SecurityLevel: 1-5. The field's doc lists 1-4, but the ActionList rule
//     names level 5, so 5 is accepted and left to the upstream.
//   - Config.ThemeColor: anything; the API "uses default values if the format is
//     incorrect".
//   - Config.ActionList: one or two distinct actions of Actions, comma-separated
//     without spaces, and only when SecurityLevel is 2, 4 or 5 ("otherwise, an API
//     error occurs"; an unset SecurityLevel means the default 3).
//   - Config.SelectedWarningCodes: "" (all warnings) or distinct codes of
//     WarningCodes, comma-separated without spaces. With DisableCheckOcrWarnings
//     true the API ignores it ("will not be effective"): then it is not checked.
//   - Config.AllowExpiredDocument: accepted with every IDCardType; the upstream
//     documents it for HKIDCard only and ignores it otherwise.
//
// Validate is pure and safe for concurrent use. A nil p fails on RedirectURL.
func Validate(p *ApplyWebVerificationBizTokenIntlRequestParams) error {
	if p == nil {
		return missing("RedirectURL", "is required")
	}
	if err := validateRedirectURL(p.RedirectURL); err != nil {
		return err
	}
	if p.CompareImageBase64 != nil {
		if err := validateImage(*p.CompareImageBase64); err != nil {
			return err
		}
	}
	if p.Extra != nil {
		if err := validateExtra(*p.Extra); err != nil {
			return err
		}
	}
	if p.Config != nil {
		if err := validateConfig(p.Config); err != nil {
			return err
		}
	}
	return nil
}

func validateRedirectURL(u *string) error {
	const f = "RedirectURL"
	if u == nil || *u == "" {
		return missing(f, "is required: the absolute http(s) URL to send the person to after the verification")
	}
	s := *u
	if len(s) > MaxRedirectURLLen {
		return badValue(f, "is %d bytes long; at most %d are allowed (RFC 9110 §4.1: longer URLs may not survive a browser or proxy)", len(s), MaxRedirectURLLen)
	}
	for i, r := range s {
		if r == utf8.RuneError || r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return malformed(f, "has whitespace, a control character or invalid UTF-8 at byte %d; percent-encode it", i)
		}
	}
	parsed, err := url.Parse(s)
	if err != nil || !parsed.IsAbs() || parsed.Opaque != "" {
		return malformed(f, "must be an absolute URL such as https://example.com/done")
	}
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return badValue(f, "must use http or https, not %s", quote(parsed.Scheme))
	}
	if parsed.Hostname() == "" {
		return malformed(f, "must name a host, as in https://example.com/done")
	}
	return nil
}

func validateImage(s string) error {
	const f = "CompareImageBase64"
	if len(s) > MaxImageBase64Len {
		return badValue(f, "is %d bytes of base64; at most %d (8 MB) are allowed", len(s), MaxImageBase64Len)
	}
	if hasDataURIPrefix(s) {
		return malformed(f, "starts with a Data URI header (data:<type>;base64,); remove everything up to and including the first comma (faceid.StripDataURI does it)")
	}
	if off := base64Invalid(s); off >= 0 {
		return malformed(f, "is not valid standard base64 (RFC 4648 alphabet, no whitespace or line breaks): bad character or length at byte %d", off)
	}
	return nil
}

// base64Invalid returns -1 when s decodes with base64.StdEncoding (padded) or
// base64.RawStdEncoding (unpadded) and holds no line break (StdEncoding skips \r and
// \n; Validate refuses them), else the offset of the first problem (len(s) when
// only the length is wrong).
func base64Invalid(s string) int {
	pad := 0
	for pad < len(s) && pad < 3 && s[len(s)-1-pad] == '=' {
		pad++
	}
	body := len(s) - pad
	for i := 0; i < body; i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return i
		}
	}
	switch {
	case pad > 2:
		return body
	case pad == 0 && body%4 == 1: // no base64 text leaves one character over
		return len(s)
	case pad > 0 && body%4 != 4-pad: // padding completes the last quantum exactly
		return len(s)
	}
	return -1
}

func validateExtra(s string) error {
	const f = "Extra"
	if !utf8.ValidString(s) {
		return malformed(f, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxExtraLen {
		return badValue(f, "has %d characters; at most %d are allowed", n, MaxExtraLen)
	}
	return nil
}

func validateConfig(c *WebVerificationConfigIntl) error {
	if c.CheckMode != nil && (*c.CheckMode < 1 || *c.CheckMode > 4) {
		return badValue("Config.CheckMode", "must be 1 (OCR+liveness+comparison), 2 (liveness+comparison), 3 (liveness) or 4 (OCR), not %d", *c.CheckMode)
	}
	if c.IDCardType != nil && !oneOf(*c.IDCardType, IDCardTypes) {
		return badValue("Config.IDCardType", "must be one of %s, not %s", strings.Join(IDCardTypes, ", "), quote(*c.IDCardType))
	}
	if c.SecurityLevel != nil && (*c.SecurityLevel < 1 || *c.SecurityLevel > 5) {
		return badValue("Config.SecurityLevel", "must be 1 (silent), 2 (action), 3 (light), 4 (action+light) or 5, not %d", *c.SecurityLevel)
	}
	if c.Language != nil && !oneOf(*c.Language, Languages) {
		return badValue("Config.Language", "must be one of %s, not %s", strings.Join(Languages, ", "), quote(*c.Language))
	}
	if c.AutoDowngrade != nil && *c.AutoDowngrade != 1 && *c.AutoDowngrade != 2 {
		return badValue("Config.AutoDowngrade", "must be 1 (downgrade to silent liveness) or 2 (no downgrade), not %d", *c.AutoDowngrade)
	}
	if c.ActionList != nil {
		if err := validateActionList(*c.ActionList, c.SecurityLevel); err != nil {
			return err
		}
	}
	if c.LivenessRetryLimit != nil && (*c.LivenessRetryLimit < 1 || *c.LivenessRetryLimit > 99) {
		return badValue("Config.LivenessRetryLimit", "must be 1-99, not %d", *c.LivenessRetryLimit)
	}
	if c.LivenessTimeout != nil && *c.LivenessTimeout > 600 {
		return badValue("Config.LivenessTimeout", "must be 0-600 seconds, not %d", *c.LivenessTimeout)
	}
	ocrWarningsOff := c.DisableCheckOcrWarnings != nil && *c.DisableCheckOcrWarnings
	if c.SelectedWarningCodes != nil && *c.SelectedWarningCodes != "" && !ocrWarningsOff {
		if err := validateList("Config.SelectedWarningCodes", *c.SelectedWarningCodes, WarningCodes, len(WarningCodes)); err != nil {
			return err
		}
	}
	if c.Version != nil && !oneOf(*c.Version, Versions) {
		return badValue("Config.Version", "must be BASIC or PLUS, not %s", quote(*c.Version))
	}
	return nil
}

func validateActionList(s string, level *int64) error {
	const f = "Config.ActionList"
	lv := int64(3) // the documented default SecurityLevel
	if level != nil {
		lv = *level
	}
	if lv != 2 && lv != 4 && lv != 5 {
		note := ""
		if level == nil {
			note = ", the default"
		}
		return badValue(f, "is only allowed when Config.SecurityLevel is 2, 4 or 5 (it is %d%s)", lv, note)
	}
	return validateList(f, s, Actions, 2)
}

// validateList checks a comma-separated list of 1..most distinct items of allowed.
func validateList(field, s string, allowed []string, most int) error {
	items := strings.Split(s, ",")
	if len(items) > most {
		return badValue(field, "names %d items; at most %d are allowed", len(items), most)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if !oneOf(it, allowed) {
			return badValue(field, "must be a comma-separated list (no spaces) of %s; %s is not one", strings.Join(allowed, ", "), quote(it))
		}
		if seen[it] {
			return badValue(field, "names %s twice", quote(it))
		}
		seen[it] = true
	}
	return nil
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// quote renders a caller's value for a Reason: Go-quoted (so control characters
// show as escapes) and cut to 32 bytes.
func quote(s string) string {
	const max = 32
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func hasDataURIPrefix(s string) bool {
	return len(s) >= 5 && strings.EqualFold(s[:5], "data:")
}

// maxDataURIHeader bounds the header StripDataURI looks for ("data:" + media type
// and parameters + ";base64,"), so a huge input without a comma is not scanned.
const maxDataURIHeader = 256

// StripDataURI removes a leading Data URI header ("data:<mediatype>[;params];base64,",
// matched case-insensitively, at most 256 bytes) from s and reports whether it did.
// Anything else, including a data: URI that is not base64 ("data:text/plain,hi"),
// is returned unchanged with had false, for Validate to refuse. Producers call it
// before Validate and record that they did; the simulator does not.
func StripDataURI(s string) (stripped string, had bool) {
	if !hasDataURIPrefix(s) {
		return s, false
	}
	head := s
	if len(head) > maxDataURIHeader {
		head = head[:maxDataURIHeader]
	}
	comma := strings.IndexByte(head, ',')
	if comma < 0 {
		return s, false
	}
	const suffix = ";base64"
	h := s[:comma]
	if len(h) < len(suffix) || !strings.EqualFold(h[len(h)-len(suffix):], suffix) {
		return s, false
	}
	return s[comma+1:], true
}
