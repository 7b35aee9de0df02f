package faceid

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// mediaMarker is a recognizable base64 pattern standing for the person's media.
var mediaMarker = strings.Repeat("TUVESUFNQVJLRVI", 20) // "MEDIAMARKER" in base64, repeated

func getAnswer(marker string) string {
	return `{"Response":{"ErrorCode":0,"ErrorMsg":"Success","Extra":"x",` +
		`"VideoBase64":"` + marker + `","BestFrameBase64":"` + marker + `",` +
		`"VerificationDetailList":[{"ErrorCode":0,"Similarity":93.5,"ReqTimestamp":1700000000000}],` +
		`"OCRResult":[{"IsPass":true,"CardImageBase64":"` + marker + `","CardCutImageBase64":"` + marker + `",` +
		`"CardBackImageBase64":"` + marker + `","CardBackCutImageBase64":"` + marker + `","HeadImageBase64":"` + marker + `",` +
		`"CardInfo":"{\"Name\":\"CHAN TAI MAN\"}","WarnCardInfos":[9101],` +
		`"NormalCardInfo":{"HKIDCard":{"CnName":"陳大文","EnName":"CHAN TAI MAN","Portrait":"` + marker + `","HeadImage":"x","Other":"` + marker + `"}}}],` +
		`"RequestId":"rid-get"}}`
}

func TestGetDropsMedia(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, getAnswer(mediaMarker))
	})
	c := mustClient(t, Config{Endpoint: up.srv.URL})
	got, err := c.Get(context.Background(), "", "TOKEN-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	reqs := up.requests()
	if len(reqs) != 1 || reqs[0].header.Get("X-TC-Action") != ActionGet || !strings.Contains(string(reqs[0].body), `"BizToken":"TOKEN-1"`) {
		t.Fatalf("request = %+v", reqs)
	}
	if got.ErrorCode == nil || *got.ErrorCode != 0 || got.Similarity() == nil || *got.Similarity() != 93.5 || deref(got.RequestId) != "rid-get" {
		t.Fatalf("decoded = %+v", got)
	}
	b, _ := json.Marshal(got)
	dump := string(b) + fmt.Sprintf("%#v %+v", got, got)
	for _, o := range got.OCRResult {
		dump += fmt.Sprintf("%+v %s", *o, o.NormalCardInfo)
	}
	if strings.Contains(dump, mediaMarker[:40]) {
		t.Fatalf("media bytes survived the decode: %s", b)
	}
	if !strings.Contains(string(b), "CHAN TAI MAN") || strings.Contains(string(b), "HeadImage") {
		t.Fatalf("OCR text not kept or image key kept: %s", b)
	}
	stripped, _ := json.Marshal(got.WithoutOCRText())
	if strings.Contains(string(stripped), "CHAN") {
		t.Fatalf("WithoutOCRText kept text: %s", stripped)
	}
}

func TestGetUnfinishedAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name, answer, code string
		ended              bool
	}{
		{"unfinished", `{"Response":{"ErrorCode":null,"ErrorMsg":null,"VerificationDetailList":[],"RequestId":"r"}}`, "", false},
		{"expired", `{"Response":{"Error":{"Code":"InvalidParameterValue.BizTokenExpired","Message":"BizToken expired."},"RequestId":"r"}}`, "InvalidParameterValue.BizTokenExpired", true},
		{"illegal", `{"Response":{"Error":{"Code":"InvalidParameterValue.BizTokenIllegal","Message":"Invalid BizToken."},"RequestId":"r"}}`, "InvalidParameterValue.BizTokenIllegal", true},
		{"not found", `{"Response":{"Error":{"Code":"FailedOperation.InvalidTokenParameter","Message":"no"},"RequestId":"r"}}`, "FailedOperation.InvalidTokenParameter", true},
		{"internal", `{"Response":{"Error":{"Code":"InternalError","Message":"x"},"RequestId":"r"}}`, "InternalError", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tc.answer)
			})
			c := mustClient(t, Config{Endpoint: up.srv.URL})
			got, err := c.Get(context.Background(), "ap-jakarta", "T")
			if tc.code == "" {
				if err != nil || got.ErrorCode != nil {
					t.Fatalf("Get = %+v, %v", got, err)
				}
				return
			}
			ae, ok := err.(*APIError)
			if !ok || ae.Code != tc.code {
				t.Fatalf("err = %v", err)
			}
			if TokenEnded(ae.Code) != tc.ended {
				t.Fatalf("TokenEnded(%s) = %v", ae.Code, !tc.ended)
			}
			// The token-ending codes are Permanent rows of the one code table
			// (FailedOperation.InvalidTokenParameter's row lands with the
			// table's fidelity fixes); InternalError retries.
			if want := Retryable; !tc.ended && ClassOf(ae.Code) != want {
				t.Fatalf("ClassOf(%s) = %v", ae.Code, ClassOf(ae.Code))
			}
			if strings.HasPrefix(ae.Code, "InvalidParameterValue.") && ClassOf(ae.Code) != Permanent {
				t.Fatalf("ClassOf(%s) = %v", ae.Code, ClassOf(ae.Code))
			}
		})
	}
}

func FuzzOCRResultDecode(f *testing.F) {
	f.Add([]byte(`{"IsPass":true,"NormalCardInfo":{"A":{"Name":"x","Photo":"` + mediaMarker + `"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o OCRResult
		if json.Unmarshal(b, &o) != nil {
			return
		}
		if hasBase64Run(string(o.NormalCardInfo), 100) {
			t.Fatalf("a long base64 run survived: %s", o.NormalCardInfo)
		}
	})
}
