package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
)

// The parameter names the action accepts, taken from the SDK-shaped types so they
// cannot drift apart.
var (
	paramNames  = jsonNames(reflect.TypeFor[faceid.ApplyWebVerificationBizTokenIntlRequestParams]())
	configNames = jsonNames(reflect.TypeFor[faceid.WebVerificationConfigIntl]())
)

func jsonNames(t reflect.Type) map[string]bool {
	m := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = true
		}
	}
	return m
}

// decodeParams reads the action's JSON body into p. It answers InvalidParameter for a
// body that is not JSON or has a value of the wrong type, and UnknownParameter for a
// name the action does not have, at the top level or in Config. Names match exactly:
// encoding/json alone would accept "redirecturl" for RedirectURL, the API does not.
func decodeParams(body []byte, p *faceid.ApplyWebVerificationBizTokenIntlRequestParams) (code, msg string) {
	if err := json.Unmarshal(body, p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return "InvalidParameter", "The type of parameter `" + te.Field + "` is wrong: it must be a JSON " + jsonKind(te.Type) + "."
		}
		return "InvalidParameter", "The request body is not a valid JSON object."
	}
	if name, ok := unknownKey(body); ok {
		return "UnknownParameter", "The parameter `" + name + "` is not recognized."
	}
	return "", ""
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "number in range"
	}
}

// unknownKey returns the first member name of data's top-level object, or of its
// Config object, that the action does not have. data must be valid JSON.
func unknownKey(data []byte) (string, bool) {
	s := scanner{b: data}
	return s.object(paramNames, "")
}

// scanner walks valid JSON without building values. It only looks at member names;
// string values, even 8 MB of base64, are skipped with bytes.IndexByte.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object checks the member names of the object at s.i against allowed (a non-object
// value is skipped) and descends into Config at the top level.
func (s *scanner) object(allowed map[string]bool, prefix string) (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		s.value()
		return "", false
	}
	s.i++
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == '}' {
			s.i++
			return "", false
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		name := s.name()
		s.ws()
		s.i++ // ':'
		if !allowed[name] {
			return prefix + name, true
		}
		if prefix == "" && name == "Config" {
			if n, bad := s.object(configNames, "Config."); bad {
				return n, true
			}
		} else {
			s.value()
		}
	}
}

// name reads the member name at s.i (a string), unescaping it (and replacing invalid
// UTF-8, as encoding/json does) when needed.
func (s *scanner) name() string {
	start := s.i
	s.str()
	raw := s.b[start:s.i]
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return v
}

// str skips the string at s.i (its opening quote).
func (s *scanner) str() {
	s.i++
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = len(s.b)
			return
		}
		end := s.i + j
		bs := 0
		for k := end - 1; k >= s.i && s.b[k] == '\\'; k-- {
			bs++
		}
		s.i = end + 1
		if bs%2 == 0 {
			return
		}
	}
}

// value skips the value at s.i.
func (s *scanner) value() {
	s.ws()
	if s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return
			}
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}
