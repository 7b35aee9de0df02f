package tasks_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/tasks"
)

func TestDecodeTokenRequest(t *testing.T) {
	good := []struct {
		name string
		body string
		want tasks.TokenRequest
	}{
		{"minimal", `{"RedirectURL":"https://example.com/done"}`, tasks.TokenRequest{RedirectURL: ptr("https://example.com/done")}},
		{"white space around", " \n{ \"RedirectURL\" : \"u\" }\n\t", tasks.TokenRequest{RedirectURL: ptr("u")}},
		{"all fields", `{"RedirectURL":"u","CompareImageBase64":"QUJD","Extra":"x","RuleId":"1","Region":"ap-jakarta",
			"CallbackURL":"https://cb","Priority":"batch","Config":{"CheckMode":1,"AutoSkip":true,"IDCardType":"HKIDCard","LivenessTimeout":45}}`,
			tasks.TokenRequest{RedirectURL: ptr("u"), CompareImageBase64: ptr("QUJD"), Extra: ptr("x"), RuleId: ptr("1"),
				Region: "ap-jakarta", CallbackURL: "https://cb", Priority: tasks.PriorityBatch,
				Config: &faceid.WebVerificationConfigIntl{CheckMode: ptr(int64(1)), AutoSkip: ptr(true), IDCardType: ptr("HKIDCard"), LivenessTimeout: ptr(uint64(45))}}},
		{"nulls are absent", `{"RedirectURL":"u","Extra":null,"Config":null,"Region":null}`, tasks.TokenRequest{RedirectURL: ptr("u")}},
		{"empty object", `{}`, tasks.TokenRequest{}},
		{"empty config", `{"Config":{}}`, tasks.TokenRequest{Config: &faceid.WebVerificationConfigIntl{}}},
		{"max wait", `{"MaxWait":30}`, tasks.TokenRequest{MaxWait: 30}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tasks.DecodeTokenRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeTokenRequest: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}

	bad := []struct {
		name, body, field, reason string
	}{
		{"empty", ``, "body", "is empty"},
		{"blank", " \n ", "body", "is empty"},
		{"array", `[{"RedirectURL":"u"}]`, "body", "JSON object, not an array"},
		{"string", `"https://x"`, "body", "not a string"},
		{"null", `null`, "body", "not null"},
		{"number", `42`, "body", "not a number"},
		{"not json", `RedirectURL=https://x`, "body", "not valid JSON"},
		{"truncated", `{"RedirectURL":"u"`, "body", "not valid JSON"},
		{"truncated value", `{"RedirectURL":"u`, "RedirectURL", "not valid JSON"},
		{"trailing object", `{"RedirectURL":"u"}{}`, "body", "data after"},
		{"trailing garbage", `{"RedirectURL":"u"} x`, "body", "data after"},
		{"trailing comma", `{"RedirectURL":"u",}`, "body", "not valid JSON"},
		{"unknown field", `{"RedirectURL":"u","Foo":1}`, "Foo", "unknown field"},
		{"wrong case", `{"redirecturl":"u"}`, "redirecturl", "did you mean RedirectURL"},
		{"sdk deprecated name", `{"RedirectURL":"u","VerificationUrl":"x"}`, "VerificationUrl", "unknown field"},
		{"unknown config field", `{"RedirectURL":"u","Config":{"IdCardType":"HKIDCard"}}`, "Config.IdCardType", "did you mean Config.IDCardType"},
		{"unknown config field listed", `{"Config":{"Colour":"red"}}`, "Config.Colour", "Config accepts"},
		{"duplicate", `{"RedirectURL":"u","RedirectURL":"v"}`, "RedirectURL", "more than once"},
		{"duplicate in config", `{"Config":{"AutoSkip":true,"AutoSkip":false}}`, "Config.AutoSkip", "more than once"},
		{"url number", `{"RedirectURL":5}`, "RedirectURL", "must be a string, not number"},
		{"url object", `{"RedirectURL":{}}`, "RedirectURL", "must be a string, not object"},
		{"url array", `{"RedirectURL":["u"]}`, "RedirectURL", "must be a string, not array"},
		{"image bool", `{"CompareImageBase64":true}`, "CompareImageBase64", "must be a string, not bool"},
		{"extra number", `{"Extra":1}`, "Extra", "must be a string"},
		{"priority number", `{"Priority":1}`, "Priority", "must be a string"},
		{"max wait string", `{"MaxWait":"30s"}`, "MaxWait", "must be an integer, not string"},
		{"max wait fraction", `{"MaxWait":1.5}`, "MaxWait", "must be an integer"},
		{"config string", `{"Config":"{}"}`, "Config", "must be a JSON object, not a string"},
		{"config array", `{"Config":[]}`, "Config", "not an array"},
		{"check mode string", `{"Config":{"CheckMode":"1"}}`, "Config.CheckMode", "must be an integer, not string"},
		{"check mode float", `{"Config":{"CheckMode":1.5}}`, "Config.CheckMode", "must be an integer, not number 1.5"},
		{"timeout negative", `{"Config":{"LivenessTimeout":-1}}`, "Config.LivenessTimeout", "non-negative integer"},
		{"auto skip string", `{"Config":{"AutoSkip":"true"}}`, "Config.AutoSkip", "true or false"},
		{"bad value syntax", `{"RedirectURL":tru}`, "RedirectURL", "not valid JSON"},
		{"invalid UTF-8", "{\"Extra\":\"\xff\"}", "body", "not valid UTF-8"},
		{"truncated config", `{"Config":{"AutoSkip":true`, "Config", "not valid JSON"},
		{"long number clipped", `{"Config":{"CheckMode":1` + strings.Repeat("1", 500) + `}}`, "Config.CheckMode", "…"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tasks.DecodeTokenRequest([]byte(tt.body))
			var fe *faceid.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeTokenRequest(%s) = %v, want a FieldError", tt.body, err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) || fe.Code != faceid.CodeInvalidParameter {
				t.Fatalf("error = %s %q, want InvalidParameter on %q with %q", fe.Code, fe.Error(), tt.field, tt.reason)
			}
			if len(fe.Error()) > 600 {
				t.Fatalf("message is %d bytes long", len(fe.Error()))
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	c, err := tasks.DecodeConfig([]byte(`{"CheckMode":1}`))
	if err != nil || c.CheckMode == nil || *c.CheckMode != 1 {
		t.Fatalf("DecodeConfig = %+v, %v", c, err)
	}
	for _, tt := range []struct{ in, field, reason string }{
		{`{"IdCardType":"x"}`, "Config.IdCardType", "did you mean Config.IDCardType"},
		{`{} , "RedirectURL":"x"`, "Config", "data after"},
		{`[]`, "Config", "must be a JSON object"},
		{"", "Config", "is empty"},
	} {
		_, err := tasks.DecodeConfig([]byte(tt.in))
		var fe *faceid.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("DecodeConfig(%q) = %v, want %s %q", tt.in, err, tt.field, tt.reason)
		}
	}
}

func TestDecodeStrictEmbedded(t *testing.T) {
	var l struct {
		tasks.TokenRequest
		RowKey string `json:"RowKey,omitempty"`
	}
	if err := tasks.DecodeStrict([]byte(`{"RedirectURL":"u","RowKey":"k"}`), &l); err != nil || *l.RedirectURL != "u" || l.RowKey != "k" {
		t.Fatalf("DecodeStrict = %+v, %v", l, err)
	}
	err := tasks.DecodeStrict([]byte(`{"RowKey":"k","Rowkey":"x"}`), &l)
	var fe *faceid.FieldError
	if !errors.As(err, &fe) || fe.Field != "Rowkey" || !strings.Contains(fe.Reason, "did you mean RowKey") {
		t.Fatalf("DecodeStrict misspelt = %v", err)
	}
}

func FuzzDecodeTokenRequest(f *testing.F) {
	for _, s := range []string{
		`{"RedirectURL":"https://example.com/done"}`,
		`{"RedirectURL":"u","Config":{"CheckMode":1,"LivenessTimeout":2},"Priority":"batch"}`,
		`{"Config":{"IdCardType":"x"}}`, `[]`, `{"a":1}{}`, `{"RedirectURL":null}`, ``, `{"Extra":"\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := tasks.DecodeTokenRequest(body)
		if err != nil {
			var fe *faceid.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
				t.Fatalf("error %v is not a FieldError naming a field", err)
			}
			if len(fe.Error()) > 1000 {
				t.Fatalf("message is %d bytes long", len(fe.Error()))
			}
			return
		}
		// What the strict decoder accepts, the standard decoder reads the same way.
		var std tasks.TokenRequest
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("strict decoder accepted %q that encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(*req, std) {
			t.Fatalf("strict %+v != standard %+v", *req, std)
		}
		// And it round-trips.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := tasks.DecodeTokenRequest(b)
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestJobTimesInMilliseconds(t *testing.T) {
	created := time.Date(2026, 12, 3, 10, 18, 28, 232456789, time.FixedZone("x", 3600))
	fin := created.Add(time.Second)
	j := tasks.Job{JobId: "j_x", CreatedAt: created, FinishedAt: &fin,
		Webhook: &tasks.Webhook{URL: "https://cb", LastAt: &fin}}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"CreatedAt":"2026-12-03T09:18:28.232Z"`, `"FinishedAt":"2026-12-03T09:18:29.232Z"`,
		`"ExpiresAt":null`, `"LastAt":"2026-12-03T09:18:29.232Z"`, `"JobId":"j_x"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if strings.Count(string(b), `"CreatedAt"`) != 1 {
		t.Errorf("CreatedAt twice: %s", b)
	}
	var back tasks.Job
	if err := json.Unmarshal(b, &back); err != nil || !back.CreatedAt.Equal(created.Truncate(time.Millisecond)) {
		t.Fatalf("round trip: %v %v", back.CreatedAt, err)
	}
}

func TestValidateMaxWait(t *testing.T) {
	for _, tt := range []struct {
		seconds int
		ok      bool
	}{{0, true}, {1, true}, {30, true}, {7 * 24 * 3600, true}, {7*24*3600 + 1, false}, {-1, false}} {
		req := tasks.TokenRequest{RedirectURL: ptr("https://example.com/done"), MaxWait: tt.seconds}
		err := req.Validate()
		var fe *faceid.FieldError
		switch {
		case tt.ok && err != nil:
			t.Errorf("MaxWait %d: %v", tt.seconds, err)
		case !tt.ok && (!errors.As(err, &fe) || fe.Field != "MaxWait"):
			t.Errorf("MaxWait %d: got %v, want a FieldError naming MaxWait", tt.seconds, err)
		}
	}
}
