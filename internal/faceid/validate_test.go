package faceid

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func ptr[T any](v T) *T { return &v }

// validParams returns a request that passes Validate; cases change one thing.
func validParams() *ApplyWebVerificationBizTokenIntlRequestParams {
	return &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://example.com/done")}
}

func withConfig(c WebVerificationConfigIntl) *ApplyWebVerificationBizTokenIntlRequestParams {
	p := validParams()
	p.Config = &c
	return p
}

func TestValidate(t *testing.T) {
	const img = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	tests := []struct {
		name  string
		p     *ApplyWebVerificationBizTokenIntlRequestParams
		code  string // "" means valid
		field string
	}{
		{"minimal", validParams(), "", ""},
		{"nil params", nil, CodeMissingParameter, "RedirectURL"},
		{"full valid", &ApplyWebVerificationBizTokenIntlRequestParams{
			RedirectURL:        ptr("http://example.com:8080/a/b?x=1#frag"),
			CompareImageBase64: ptr(img),
			Extra:              ptr("order-42 ✓"),
			RuleId:             ptr("1"),
			Config: &WebVerificationConfigIntl{
				AutoSkipStartPage: ptr(true), AutoSkip: ptr(true), CheckMode: ptr(int64(1)),
				IDCardType: ptr("HKIDCard"), DisableCheckOcrWarnings: ptr(false),
				SecurityLevel: ptr(int64(4)), SkipPrivacyPolicy: ptr(true), IdCardCutReturn: ptr(true),
				ThemeColor: ptr("#2D72f1"), Language: ptr("zh-tc"), AutoDowngrade: ptr(int64(2)),
				ActionList: ptr("blink,shake"), LivenessRetryLimit: ptr(int64(99)),
				LivenessTimeout: ptr(uint64(600)), SelectedWarningCodes: ptr("-9101,-9109"),
				AllowExpiredDocument: ptr(false), Version: ptr("PLUS"),
			},
		}, "", ""},

		// RedirectURL
		{"redirect missing", &ApplyWebVerificationBizTokenIntlRequestParams{}, CodeMissingParameter, "RedirectURL"},
		{"redirect empty", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("")}, CodeMissingParameter, "RedirectURL"},
		// The API states no length; RFC 9110 §4.1's 8000 octets bound it.
		{"redirect 1025 bytes", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/" + strings.Repeat("a", 1025-14))}, "", ""},
		{"redirect max length", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/" + strings.Repeat("a", MaxRedirectURLLen-14))}, "", ""},
		{"redirect too long", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/" + strings.Repeat("a", MaxRedirectURLLen-13))}, CodeInvalidParameterValue, "RedirectURL"},
		{"redirect relative", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("/done")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect no scheme", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("example.com/done")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect ftp", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("ftp://example.com/x")}, CodeInvalidParameterValue, "RedirectURL"},
		{"redirect javascript", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("javascript:alert(1)")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect no host", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https:///done")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect port only", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://:443/done")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect CRLF", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/\r\nSet-Cookie: a=b")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect space", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/a b")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect tab", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/a\tb")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect NUL", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/\x00")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect DEL", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/\x7f")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect NBSP", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/a\u00a0b")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect line separator", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/a\u2028b")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect C1 control", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/a\u0085b")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect invalid UTF-8", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com/\xff")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect bad port", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com:http/")}, CodeInvalidParameter, "RedirectURL"},
		{"redirect upper-case scheme", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("HTTPS://e.com/")}, "", ""},

		// CompareImageBase64
		{"image valid", func() *ApplyWebVerificationBizTokenIntlRequestParams {
			p := validParams()
			p.CompareImageBase64 = ptr(img)
			return p
		}(), "", ""},
		{"image empty", imageParams(""), "", ""}, // undocumented: the upstream decides
		{"image data URI", imageParams("data:image/png;base64," + img), CodeInvalidParameter, "CompareImageBase64"},
		{"image data URI upper", imageParams("DATA:image/png;base64," + img), CodeInvalidParameter, "CompareImageBase64"},
		{"image not base64", imageParams("not base64!"), CodeInvalidParameter, "CompareImageBase64"},
		{"image url-safe alphabet", imageParams("ab-_"), CodeInvalidParameter, "CompareImageBase64"},
		{"image unpadded", imageParams("YWI"), "", ""},    // padding is not documented
		{"image unpadded two", imageParams("YQ"), "", ""}, // (RFC 4648 §3.2 leaves it
		{"image one left over", imageParams("YWJjY"), CodeInvalidParameter, "CompareImageBase64"},
		{"image short padding", imageParams("YQ="), CodeInvalidParameter, "CompareImageBase64"},
		{"image needless padding", imageParams("YWJj===="), CodeInvalidParameter, "CompareImageBase64"},
		{"image three pads", imageParams("Y==="), CodeInvalidParameter, "CompareImageBase64"},
		{"image padding inside", imageParams("YQ==YWJj"), CodeInvalidParameter, "CompareImageBase64"},
		{"image newline", imageParams("YWJj\nYWJj"), CodeInvalidParameter, "CompareImageBase64"},
		{"image CR", imageParams("YWJj\rYWJj"), CodeInvalidParameter, "CompareImageBase64"},
		{"image trailing space", imageParams("YWJj "), CodeInvalidParameter, "CompareImageBase64"},
		{"image one pad", imageParams("YWI="), "", ""},
		{"image two pads", imageParams("YQ=="), "", ""},
		{"image at 8 MB", imageParams(strings.Repeat("A", MaxImageBase64Len)), "", ""},
		{"image over 8 MB", imageParams(strings.Repeat("A", MaxImageBase64Len+4)), CodeInvalidParameterValue, "CompareImageBase64"},

		// Extra
		{"extra empty", extraParams(""), "", ""},
		{"extra 1000 runes multibyte", extraParams(strings.Repeat("é", MaxExtraLen)), "", ""},
		{"extra 1001 runes", extraParams(strings.Repeat("a", MaxExtraLen+1)), CodeInvalidParameterValue, "Extra"},
		{"extra 1001 multibyte runes", extraParams(strings.Repeat("中", MaxExtraLen+1)), CodeInvalidParameterValue, "Extra"},
		{"extra invalid UTF-8", extraParams("ok\xc3"), CodeInvalidParameter, "Extra"},

		// RuleId
		{"rule id valid", ruleParams("2023-abc_1"), "", ""},
		// The API documents no form: the upstream decides (RuleIdNotExist).
		{"rule id 65", ruleParams(strings.Repeat("7", 65)), "", ""},
		{"rule id empty", ruleParams(""), "", ""},
		{"rule id space", ruleParams("1 2"), "", ""},
		{"rule id non-ASCII", ruleParams("规则"), "", ""},

		// Config
		{"config empty", withConfig(WebVerificationConfigIntl{}), "", ""},
		{"check mode 0", withConfig(WebVerificationConfigIntl{CheckMode: ptr(int64(0))}), CodeInvalidParameterValue, "Config.CheckMode"},
		{"check mode 4", withConfig(WebVerificationConfigIntl{CheckMode: ptr(int64(4))}), "", ""},
		{"check mode 5", withConfig(WebVerificationConfigIntl{CheckMode: ptr(int64(5))}), CodeInvalidParameterValue, "Config.CheckMode"},
		{"id card type bad", withConfig(WebVerificationConfigIntl{IDCardType: ptr("hkidcard")}), CodeInvalidParameterValue, "Config.IDCardType"},
		{"security level 0", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(0))}), CodeInvalidParameterValue, "Config.SecurityLevel"},
		{"security level 5", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(5))}), "", ""},
		{"security level 6", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(6))}), CodeInvalidParameterValue, "Config.SecurityLevel"},
		{"theme colour lower", withConfig(WebVerificationConfigIntl{ThemeColor: ptr("#abcdef")}), "", ""},
		{"theme colour short", withConfig(WebVerificationConfigIntl{ThemeColor: ptr("#abc")}), "", ""}, // the API falls back to its default
		{"theme colour no hash", withConfig(WebVerificationConfigIntl{ThemeColor: ptr("2d72f1")}), "", ""},
		{"theme colour not hex", withConfig(WebVerificationConfigIntl{ThemeColor: ptr("#2d72fg")}), "", ""},
		{"theme colour name", withConfig(WebVerificationConfigIntl{ThemeColor: ptr("blue")}), "", ""},
		{"language bad", withConfig(WebVerificationConfigIntl{Language: ptr("fr")}), CodeInvalidParameterValue, "Config.Language"},
		{"language case", withConfig(WebVerificationConfigIntl{Language: ptr("zh-CN")}), CodeInvalidParameterValue, "Config.Language"},
		{"auto downgrade 0", withConfig(WebVerificationConfigIntl{AutoDowngrade: ptr(int64(0))}), CodeInvalidParameterValue, "Config.AutoDowngrade"},
		{"auto downgrade 3", withConfig(WebVerificationConfigIntl{AutoDowngrade: ptr(int64(3))}), CodeInvalidParameterValue, "Config.AutoDowngrade"},
		{"actions with level 2", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("nod")}), "", ""},
		{"actions with level 5", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(5)), ActionList: ptr("mouth,nod")}), "", ""},
		{"actions with default level", withConfig(WebVerificationConfigIntl{ActionList: ptr("blink")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions with level 1", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(1)), ActionList: ptr("blink")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions with level 3", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(3)), ActionList: ptr("blink")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions three", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("blink,mouth,nod")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions duplicate", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("blink,blink")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions unknown", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("wink")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions empty", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions with space", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("blink, nod")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"actions trailing comma", withConfig(WebVerificationConfigIntl{SecurityLevel: ptr(int64(2)), ActionList: ptr("blink,")}), CodeInvalidParameterValue, "Config.ActionList"},
		{"retry limit 0", withConfig(WebVerificationConfigIntl{LivenessRetryLimit: ptr(int64(0))}), CodeInvalidParameterValue, "Config.LivenessRetryLimit"},
		{"retry limit 1", withConfig(WebVerificationConfigIntl{LivenessRetryLimit: ptr(int64(1))}), "", ""},
		{"retry limit 100", withConfig(WebVerificationConfigIntl{LivenessRetryLimit: ptr(int64(100))}), CodeInvalidParameterValue, "Config.LivenessRetryLimit"},
		{"timeout 0", withConfig(WebVerificationConfigIntl{LivenessTimeout: ptr(uint64(0))}), "", ""},
		{"timeout 601", withConfig(WebVerificationConfigIntl{LivenessTimeout: ptr(uint64(601))}), CodeInvalidParameterValue, "Config.LivenessTimeout"},
		{"warnings all", withConfig(WebVerificationConfigIntl{SelectedWarningCodes: ptr("")}), "", ""},
		{"warnings every code", withConfig(WebVerificationConfigIntl{SelectedWarningCodes: ptr(strings.Join(WarningCodes, ","))}), "", ""},
		// With the warnings off the API ignores the list ("will not be effective").
		{"warnings with checks off", withConfig(WebVerificationConfigIntl{DisableCheckOcrWarnings: ptr(true), SelectedWarningCodes: ptr("-9101")}), "", ""},
		{"warnings unknown with checks off", withConfig(WebVerificationConfigIntl{DisableCheckOcrWarnings: ptr(true), SelectedWarningCodes: ptr("-9105")}), "", ""},
		{"warnings with checks on", withConfig(WebVerificationConfigIntl{DisableCheckOcrWarnings: ptr(false), SelectedWarningCodes: ptr("-9101")}), "", ""},
		{"warnings unknown", withConfig(WebVerificationConfigIntl{SelectedWarningCodes: ptr("-9105")}), CodeInvalidParameterValue, "Config.SelectedWarningCodes"},
		{"warnings positive", withConfig(WebVerificationConfigIntl{SelectedWarningCodes: ptr("9101")}), CodeInvalidParameterValue, "Config.SelectedWarningCodes"},
		{"warnings duplicate", withConfig(WebVerificationConfigIntl{SelectedWarningCodes: ptr("-9101,-9101")}), CodeInvalidParameterValue, "Config.SelectedWarningCodes"},
		{"version basic", withConfig(WebVerificationConfigIntl{Version: ptr("BASIC")}), "", ""},
		{"version lower", withConfig(WebVerificationConfigIntl{Version: ptr("plus")}), CodeInvalidParameterValue, "Config.Version"},
		{"expired document without HKID", withConfig(WebVerificationConfigIntl{IDCardType: ptr("MLIDCard"), AllowExpiredDocument: ptr(false)}), "", ""},

		// order: the first problem in struct order wins
		{"order redirect before image", &ApplyWebVerificationBizTokenIntlRequestParams{CompareImageBase64: ptr("!")}, CodeMissingParameter, "RedirectURL"},
		{"order image before extra", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com"), CompareImageBase64: ptr("!"), Extra: ptr("\xff")}, CodeInvalidParameter, "CompareImageBase64"},
		{"order extra before config", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com"), Extra: ptr("\xff"), Config: &WebVerificationConfigIntl{CheckMode: ptr(int64(9))}}, CodeInvalidParameter, "Extra"},
		{"order config before rule id", &ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: ptr("https://e.com"), RuleId: ptr(""), Config: &WebVerificationConfigIntl{CheckMode: ptr(int64(9))}}, CodeInvalidParameterValue, "Config.CheckMode"},
		{"order config fields", withConfig(WebVerificationConfigIntl{CheckMode: ptr(int64(9)), Version: ptr("x")}), CodeInvalidParameterValue, "Config.CheckMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.p)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate: %v (%T), want *FieldError", err, err)
			}
			if fe.Code != tt.code || fe.Field != tt.field {
				t.Errorf("Validate: code %q field %q (%v), want code %q field %q", fe.Code, fe.Field, fe, tt.code, tt.field)
			}
			if fe.Error() != fe.Field+": "+fe.Reason || fe.Reason == "" {
				t.Errorf("Error() = %q, want Field: Reason", fe.Error())
			}
			if Classify(err) != Permanent {
				t.Errorf("Classify(FieldError) = %v, want permanent", Classify(err))
			}
		})
	}
}

func imageParams(s string) *ApplyWebVerificationBizTokenIntlRequestParams {
	p := validParams()
	p.CompareImageBase64 = &s
	return p
}

func extraParams(s string) *ApplyWebVerificationBizTokenIntlRequestParams {
	p := validParams()
	p.Extra = &s
	return p
}

func ruleParams(s string) *ApplyWebVerificationBizTokenIntlRequestParams {
	p := validParams()
	p.RuleId = &s
	return p
}

func TestValidateEveryDocumentedValue(t *testing.T) {
	sets := []struct {
		name string
		vals []string
		set  func(*WebVerificationConfigIntl, string)
	}{
		{"IDCardType", IDCardTypes, func(c *WebVerificationConfigIntl, v string) { c.IDCardType = &v }},
		{"Language", Languages, func(c *WebVerificationConfigIntl, v string) { c.Language = &v }},
		{"Version", Versions, func(c *WebVerificationConfigIntl, v string) { c.Version = &v }},
		{"ActionList", Actions, func(c *WebVerificationConfigIntl, v string) { c.ActionList = &v; c.SecurityLevel = ptr(int64(4)) }},
		{"SelectedWarningCodes", WarningCodes, func(c *WebVerificationConfigIntl, v string) { c.SelectedWarningCodes = &v }},
	}
	for _, s := range sets {
		for _, v := range s.vals {
			t.Run(s.name+"="+v, func(t *testing.T) {
				var c WebVerificationConfigIntl
				s.set(&c, v)
				if err := Validate(withConfig(c)); err != nil {
					t.Fatalf("Validate: %v", err)
				}
			})
		}
	}
	for _, n := range []int64{1, 2, 3, 4} {
		if err := Validate(withConfig(WebVerificationConfigIntl{CheckMode: &n, SecurityLevel: &n})); err != nil {
			t.Errorf("CheckMode/SecurityLevel %d: %v", n, err)
		}
	}
}

func TestValidateReasonHasNoImageBytes(t *testing.T) {
	img := strings.Repeat("QUJD", 64) + "!" // a bad character after 256 bytes of base64
	err := Validate(imageParams(img))
	if err == nil {
		t.Fatal("Validate accepted a bad image")
	}
	if strings.Contains(err.Error(), "QUJD") {
		t.Errorf("error %q contains image bytes", err)
	}
	if !strings.Contains(err.Error(), "byte 256") {
		t.Errorf("error %q does not name the offset", err)
	}
	err = Validate(imageParams("data:image/png;base64,QUJD"))
	if err == nil || !strings.Contains(err.Error(), "StripDataURI") {
		t.Errorf("data URI error %v does not say how to fix it", err)
	}
}

func TestValidateRegion(t *testing.T) {
	for _, r := range Regions {
		if err := ValidateRegion(r); err != nil {
			t.Errorf("ValidateRegion(%q) = %v", r, err)
		}
	}
	tests := []struct{ region, code string }{
		{"", CodeMissingParameter},
		{"ap-guangzhou", CodeUnsupportedRegion},
		{"AP-SINGAPORE", CodeUnsupportedRegion},
		{" ap-singapore", CodeUnsupportedRegion},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			var fe *FieldError
			err := ValidateRegion(tt.region)
			if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != "Region" {
				t.Fatalf("ValidateRegion(%q) = %#v, want code %s on Region", tt.region, err, tt.code)
			}
			for _, r := range Regions {
				if !strings.Contains(fe.Reason, r) {
					t.Errorf("reason %q does not list %s", fe.Reason, r)
				}
			}
		})
	}
}

func TestStripDataURI(t *testing.T) {
	tests := []struct {
		name, in, want string
		had            bool
	}{
		{"plain base64", "QUJD", "QUJD", false},
		{"png", "data:image/png;base64,QUJD", "QUJD", true},
		{"jpeg upper case", "DATA:IMAGE/JPEG;BASE64,QUJD", "QUJD", true},
		{"with parameters", "data:image/png;name=a.png;base64,QUJD", "QUJD", true},
		{"no media type", "data:;base64,QUJD", "QUJD", true},
		{"empty payload", "data:image/png;base64,", "", true},
		{"not base64 data URI", "data:text/plain,QUJD", "data:text/plain,QUJD", false},
		{"no comma", "data:image/png;base64", "data:image/png;base64", false},
		{"header too long", "data:" + strings.Repeat("x", 300) + ";base64,QUJD", "data:" + strings.Repeat("x", 300) + ";base64,QUJD", false},
		{"short", "data", "data", false},
		{"empty", "", "", false},
		{"prefix not at start", "QUJDdata:image/png;base64,", "QUJDdata:image/png;base64,", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, had := StripDataURI(tt.in)
			if got != tt.want || had != tt.had {
				t.Errorf("StripDataURI(%q) = %q, %v; want %q, %v", tt.in, got, had, tt.want, tt.had)
			}
		})
	}
}

// decodes reports whether s decodes as padded or unpadded standard base64.
func decodes(s string) bool {
	_, err := base64.StdEncoding.DecodeString(s)
	_, rawErr := base64.RawStdEncoding.DecodeString(s)
	return err == nil || rawErr == nil
}

func TestBase64CheckMatchesStdEncoding(t *testing.T) {
	for _, s := range []string{"", "A", "AB", "ABC", "ABCD", "AB==", "ABC=", "A===", "====", "AB=C", "ABCD====", "ABCDAB==", "AB==ABCD", "+/+/", "-_-_", "AB=", "ABCDA", "ABCDAB", "ABCDABC", "ABC==", "A=="} {
		if got := base64Invalid(s) < 0; got != decodes(s) {
			t.Errorf("%q: our check says valid=%v, the decoders say %v", s, got, decodes(s))
		}
	}
}

func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{"RedirectURL":"https://example.com/done"}`,
		`{"RedirectURL":"https://e.com","CompareImageBase64":"QUJD","Extra":"x","RuleId":"1"}`,
		`{"RedirectURL":"https://e.com","Config":{"CheckMode":1,"IDCardType":"HKIDCard","SecurityLevel":2,"ActionList":"blink,nod"}}`,
		`{"RedirectURL":"https://e.com","Config":{"ThemeColor":"#ffffff","Language":"th","SelectedWarningCodes":"-9101","LivenessTimeout":600}}`,
		`{"RedirectURL":"http://[::1]:80/x?y#z","Extra":"\u00e9\u4e2d"}`,
		`{"RedirectURL":"https://e.com","CompareImageBase64":"data:image/png;base64,QUJD"}`,
		`{"Config":null}`,
		`null`,
		`{"RedirectURL":"https://e.com","Config":{"LivenessTimeout":18446744073709551615,"CheckMode":-9223372036854775808}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p ApplyWebVerificationBizTokenIntlRequestParams
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		err := Validate(&p)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Field == "" || fe.Reason == "" {
				t.Fatalf("Validate returned %#v, want a complete *FieldError", err)
			}
			return
		}
		b, err := json.Marshal(&p)
		if err != nil {
			t.Fatalf("accepted params do not marshal: %v", err)
		}
		var q ApplyWebVerificationBizTokenIntlRequestParams
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatalf("accepted params do not unmarshal from %s: %v", b, err)
		}
		if err := Validate(&q); err != nil {
			t.Fatalf("re-marshalled %s no longer validates: %v", b, err)
		}
		b2, _ := json.Marshal(&q)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the request: %s -> %s", b, b2)
		}
	})
}

func FuzzStripDataURI(f *testing.F) {
	for _, s := range []string{"", "QUJD", "data:image/png;base64,QUJD", "DaTa:;BaSe64,", "data:text/plain,x", "data:a;base64,data:b;base64,QUJD", "data:\x00;base64,\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, had := StripDataURI(s)
		if !had {
			if got != s {
				t.Fatalf("StripDataURI(%q) changed the input without reporting it: %q", s, got)
			}
			return
		}
		if !strings.HasSuffix(s, got) || len(got) >= len(s) {
			t.Fatalf("StripDataURI(%q) = %q: not a proper suffix", s, got)
		}
		header := s[:len(s)-len(got)]
		if !strings.EqualFold(header[:5], "data:") || !strings.EqualFold(header[len(header)-8:], ";base64,") ||
			strings.Count(header, ",") != 1 || len(header) > maxDataURIHeader {
			t.Fatalf("StripDataURI(%q) removed %q, not a Data URI header", s, header)
		}
		// Stripped base64 is what Validate wants; Validate never panics on it.
		if got != "" && base64Invalid(got) < 0 && utf8.ValidString(got) {
			if err := Validate(imageParams(got)); err != nil {
				t.Fatalf("stripped valid base64 refused: %v", err)
			}
		}
	})
}

func FuzzBase64Check(f *testing.F) {
	for _, s := range []string{"", "QUJD", "QQ==", "QUI=", "Q===", "QU=D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\r\n") {
			if base64Invalid(s) < 0 {
				t.Fatalf("%q with a line break accepted", s)
			}
			return
		}
		if ok := base64Invalid(s) < 0; ok != decodes(s) {
			t.Fatalf("%q: check says valid=%v, the decoders say %v", s, ok, decodes(s))
		}
	})
}
