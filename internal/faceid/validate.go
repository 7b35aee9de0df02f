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
//     an Extra that is not UTF-8, a RuleId with unprintable characters, a ThemeColor
//     that is not #RRGGBB.
//   - CodeInvalidParameterValue: a field is well formed but its value is not
//     allowed: too long, out of range, not in the documented set of values, or in
//     conflict with another field (ActionList without an action SecurityLevel,
//     SelectedWarningCodes with DisableCheckOcrWarnings).
//   - CodeUnsupportedRegion: a non-empty Region that is not one of Regions (the
//     API 3.0 common code for "API does not support the requested region").
const (
	CodeMissingParameter      = "MissingParameter"
	CodeInvalidParameter      = "InvalidParameter"
	CodeInvalidParameterValue = "InvalidParameterValue"
	CodeUnsupportedRegion     = "UnsupportedRegion"
)

// Input limits enforced by Validate.
const (
	// MaxRedirectURLLen is the longest RedirectURL accepted, in bytes. The API does
	// not document one; 1024 leaves room for the BizToken Tencent appends while
	// staying well inside what browsers and proxies handle.
	MaxRedirectURLLen = 1024
	// MaxImageBase64Len is the longest CompareImageBase64 accepted, in bytes of
	// base64 text (the API's "max 8 MB").
	MaxImageBase64Len = 8 << 20
	// MaxExtraLen is the most characters (runes, not bytes) Extra may hold.
	MaxExtraLen = 1000
	// MaxRuleIdLen is the longest RuleId accepted. The API does not document one;
	// console business-process ids are short.
	MaxRuleIdLen = 64
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
// problem found as a *FieldError, or nil. Fields are checked in the order of the
// request struct: RedirectURL, CompareImageBase64, Extra, Config (its fields in
// struct order, each cross-field rule on the later field), RuleId.
//
// Rules beyond the upstream's text, each a deliberate choice:
//   - RedirectURL: an absolute http or https URL with a host, at most
//     MaxRedirectURLLen bytes, with no whitespace or control characters (they would
//     allow header injection in the redirect).
//   - CompareImageBase64: standard base64 as encoding/base64.StdEncoding decodes it
//     (padded, length a multiple of 4) but with no line breaks or other whitespace;
//     at most MaxImageBase64Len bytes; not empty (omit the field to skip the
//     comparison). A Data URI header ("data:image/jpeg;base64,") is refused: the
//     API requires it removed, and producers remove it with StripDataURI first.
//   - Extra: valid UTF-8, at most MaxExtraLen characters (runes).
//   - RuleId: non-empty, at most MaxRuleIdLen bytes of printable ASCII, no spaces.
//   - Config.SecurityLevel: 1-5. The field's doc lists 1-4, but the ActionList rule
//     names level 5, so 5 is accepted and left to the upstream.
//   - Config.ThemeColor: exactly #RRGGBB (hex digits, either case). The upstream
//     silently falls back to its default colour on a bad value; a caller who set a
//     colour surely meant one, so Validate refuses instead.
//   - Config.ActionList: one or two distinct actions of Actions, comma-separated
//     without spaces, and only when SecurityLevel is 2, 4 or 5 (an unset
//     SecurityLevel means the default 3, so ActionList is refused).
//   - Config.SelectedWarningCodes: "" (all warnings) or distinct codes of
//     WarningCodes, comma-separated without spaces, and only when
//     DisableCheckOcrWarnings is not true.
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
	if p.RuleId != nil {
		if err := validateRuleID(*p.RuleId); err != nil {
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
		return badValue(f, "is %d bytes long; at most %d are allowed", len(s), MaxRedirectURLLen)
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
	if s == "" {
		return badValue(f, "is empty; omit the field to skip the face comparison")
	}
	if len(s) > MaxImageBase64Len {
		return badValue(f, "is %d bytes of base64; at most %d (8 MB) are allowed", len(s), MaxImageBase64Len)
	}
	if hasDataURIPrefix(s) {
		return malformed(f, "starts with a Data URI header (data:<type>;base64,); remove everything up to and including the first comma (faceid.StripDataURI does it)")
	}
	if off := base64Invalid(s); off >= 0 {
		return malformed(f, "is not valid standard base64 (RFC 4648 alphabet, '=' padding, no whitespace or line breaks): bad character or length at byte %d", off)
	}
	return nil
}

// base64Invalid returns -1 when s decodes with base64.StdEncoding and holds no
// line break (StdEncoding skips \r and \n; Validate refuses them), else the offset
// of the first problem (len(s) when only the length is wrong).
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
	if pad > 2 {
		return body
	}
	if len(s)%4 != 0 {
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

func validateRuleID(s string) error {
	const f = "RuleId"
	if s == "" {
		return badValue(f, "is empty; omit the field to use the default business process")
	}
	if len(s) > MaxRuleIdLen {
		return badValue(f, "is %d bytes long; at most %d are allowed", len(s), MaxRuleIdLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return malformed(f, "must be printable ASCII without spaces (byte %d is not)", i)
		}
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
	if c.ThemeColor != nil && !isHexColor(*c.ThemeColor) {
		return malformed("Config.ThemeColor", "must be a colour as #RRGGBB, e.g. #2d72f1, not %s", quote(*c.ThemeColor))
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
	if c.SelectedWarningCodes != nil {
		const f = "Config.SelectedWarningCodes"
		if c.DisableCheckOcrWarnings != nil && *c.DisableCheckOcrWarnings {
			return badValue(f, "has no effect when Config.DisableCheckOcrWarnings is true; remove one of them")
		}
		if s := *c.SelectedWarningCodes; s != "" {
			if err := validateList(f, s, WarningCodes, len(WarningCodes)); err != nil {
				return err
			}
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

func isHexColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < 7; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
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
