package tasks

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
)

// FuzzDecodeFast checks that decodeFast and decodeWalk accept exactly the same
// inputs, with the same result: the fast path is only faster.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"RedirectURL":"https://example.com/done"}`,
		` { "RedirectURL" : "u" , "Config" : { "CheckMode" : 1 , "LivenessTimeout":2 } ,"Priority":"batch"} `,
		`{"Config":{"IdCardType":"x"}}`, `[]`, `{"a":1}{}`, `{"RedirectURL":null}`, ``, `{"Extra":"\u00e9"}`,
		`{"Config":null}`, `{"Config":{}}`, `{"RuleId":"1","RuleId":"2"}`, `{"Redirect\u0055RL":"x"}`,
		`{"Config":{"CheckMode":1e400}}`, `{"Config":{"SelectedWarningCodes":[1,2,3]}}`, `{"Extra":"a\"b"}`,
		`{"Config":{"CheckMode":"1"}}`, `{}`, `{"Extra":123}`, `{"Config":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) { // decodeStrict refuses it before either path
			return
		}
		for _, typ := range []reflect.Type{reflect.TypeFor[TokenRequest](), reflect.TypeFor[faceid.WebVerificationConfigIntl]()} {
			fast, walk := reflect.New(typ).Elem(), reflect.New(typ).Elem()
			fastOK := decodeFast(body, fast)
			err := decodeWalk(body, walk, "")
			if fastOK != (err == nil) {
				t.Fatalf("%v: fast path accepts=%v, walk error=%v, for %q", typ, fastOK, err, body)
			}
			if fastOK && !reflect.DeepEqual(fast.Interface(), walk.Interface()) {
				t.Fatalf("%v: fast %+v != walk %+v for %q", typ, fast.Interface(), walk.Interface(), body)
			}
		}
	})
}
