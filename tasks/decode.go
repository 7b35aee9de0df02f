package tasks

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
)

// DecodeTokenRequest reads a token request strictly: the body of POST /v1/tokens,
// one line of an NDJSON campaign, and the CLI's --config all go through it. It wants
// exactly one JSON object whose names are those of TokenRequest (and, under Config, of
// faceid.WebVerificationConfigIntl), matched case-sensitively, each at most once, with
// values of the right JSON type (null means absent), valid UTF-8, and nothing but
// white space after it. It does not validate values: TokenRequest.Validate does.
//
// Every problem is a *faceid.FieldError (Code InvalidParameter) whose Field names the
// field ("Config.CheckMode", or "body" for the input as a whole) and whose Reason says
// why. Messages never quote a value longer than a few characters, so image bytes
// never reach them.
func DecodeTokenRequest(b []byte) (*TokenRequest, error) {
	var req TokenRequest
	if err := DecodeStrict(b, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// DecodeConfig reads a Config object alone (the CLI's --config, a CSV config cell)
// as strictly as DecodeTokenRequest reads it inside a request; errors name
// "Config.<field>", or "Config" for the input as a whole.
func DecodeConfig(b []byte) (*faceid.WebVerificationConfigIntl, error) {
	var c faceid.WebVerificationConfigIntl
	if err := decodeStrict(b, reflect.ValueOf(&c).Elem(), "Config."); err != nil {
		return nil, err
	}
	return &c, nil
}

// DecodeStrict decodes b into the struct dst points to with DecodeTokenRequest's
// strictness. The accepted names are the JSON names of dst's fields; the fields of an
// embedded struct count as dst's own (an NDJSON line is a TokenRequest plus its own
// fields).
func DecodeStrict(b []byte, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("tasks: DecodeStrict wants a pointer to a struct, not %T", dst)
	}
	return decodeStrict(b, v.Elem(), "")
}

func decodeStrict(b []byte, v reflect.Value, prefix string) error {
	whole := wholeName(prefix)
	if !utf8.Valid(b) { // encoding/json would turn bad bytes into U+FFFD silently
		return malformed(whole, "is not valid UTF-8")
	}
	if decodeFast(b, v) {
		return nil
	}
	v.Set(reflect.Zero(v.Type())) // the walk words the error from scratch
	return decodeWalk(b, v, prefix)
}

// decodeWalk is decodeStrict's path for input decodeFast refuses: it walks the
// tokens and stops at the first problem, which it names.
func decodeWalk(b []byte, v reflect.Value, prefix string) error {
	whole := wholeName(prefix)
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return malformed(whole, "is empty: send a JSON object such as {\"RedirectURL\":\"https://example.com/done\"}")
	}
	if err != nil {
		return syntaxErr(whole, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return malformed(whole, "must be a JSON object, not %s", tokenKind(tok))
	}
	if err := decodeObject(dec, v, prefix); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed(whole, "has data after the JSON object; send exactly one object")
	}
	return nil
}

// wholeName names the input as a whole in errors: "body" at the top, "Config" for
// a Config read alone.
func wholeName(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return strings.TrimSuffix(prefix, ".")
}

// decodeObject decodes the members of an object whose '{' was read into the struct
// v, up to and including the closing '}'.
func decodeObject(dec *json.Decoder, v reflect.Value, prefix string) error {
	fs := fieldsOf(v.Type())
	seen := make(map[string]bool, len(fs.byName))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(wholeName(prefix), err)
		}
		name, _ := tok.(string) // dec.More and Token guarantee a name here
		path := prefix + displayName(name)
		idx, ok := fs.byName[name]
		if !ok {
			return unknownErr(path, name, prefix, fs)
		}
		if seen[name] {
			return malformed(path, "appears more than once")
		}
		seen[name] = true
		if err := decodeValue(dec, v.FieldByIndex(idx), path); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return syntaxErr(strings.TrimSuffix(prefix, "."), err)
	}
	return nil
}

// decodeValue decodes one member's value into f.
func decodeValue(dec *json.Decoder, f reflect.Value, path string) error {
	t := f.Type()
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		if err := dec.Decode(f.Addr().Interface()); err != nil {
			return valueErr(path, t, err)
		}
		return nil
	}
	// A nested object (Config): walk it with the same strictness.
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(path, err)
	}
	if tok == nil { // null: absent
		f.Set(reflect.Zero(t))
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return malformed(path, "must be a JSON object, not %s", tokenKind(tok))
	}
	sv := reflect.New(st)
	if err := decodeObject(dec, sv.Elem(), path+"."); err != nil {
		return err
	}
	if t.Kind() == reflect.Pointer {
		f.Set(sv)
	} else {
		f.Set(sv.Elem())
	}
	return nil
}

// fields is the JSON view of a struct type.
type fields struct {
	byName map[string][]int // JSON name → field index path (embedded structs flattened)
	ord    map[string]int   // JSON name → its place in names
	names  []string         // in declaration order
}

var fieldCache sync.Map // reflect.Type → *fields

func fieldsOf(t reflect.Type) *fields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fields)
	}
	fs := &fields{byName: map[string][]int{}, ord: map[string]int{}}
	fs.add(t, nil)
	fieldCache.Store(t, fs)
	return fs
}

// add adds the fields of t, whose index path is at; an outer name wins over an
// embedded one, as in encoding/json.
func (fs *fields) add(t reflect.Type, at []int) {
	var embedded []reflect.StructField
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			embedded = append(embedded, sf)
			continue
		}
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name := cmp.Or(tag, sf.Name)
		if _, dup := fs.byName[name]; dup {
			continue
		}
		fs.byName[name] = append(append([]int(nil), at...), i)
		fs.ord[name] = len(fs.names)
		fs.names = append(fs.names, name)
	}
	for _, sf := range embedded {
		fs.add(sf.Type, append(append([]int(nil), at...), sf.Index...))
	}
}

func malformed(field, format string, args ...any) *faceid.FieldError {
	return &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func unknownErr(path, name, prefix string, fs *fields) *faceid.FieldError {
	for _, n := range fs.names {
		if strings.EqualFold(n, name) {
			return malformed(path, "unknown field; names are case-sensitive: did you mean %s%s?", prefix, n)
		}
	}
	where := "the body"
	if prefix != "" {
		where = strings.TrimSuffix(prefix, ".")
	}
	names := append([]string(nil), fs.names...)
	sort.Strings(names)
	return malformed(path, "unknown field; %s accepts %s", where, strings.Join(names, ", "))
}

// syntaxErr reports malformed JSON at field (or "body"), passing other errors through.
func syntaxErr(field string, err error) error {
	if field == "" {
		field = "body"
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError // json.Decoder.Token on a number beyond float64
	switch {
	case errors.As(err, &te):
		return malformed(field, "must be a JSON object, not %s", clip(te.Value, 40))
	case errors.As(err, &se):
		return malformed(field, "is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return malformed(field, "is not valid JSON: the body ends too early")
	}
	return err
}

// valueErr turns a json.Decoder.Decode error for one value into a FieldError.
func valueErr(path string, t reflect.Type, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return malformed(path, "must be %s, not %s", kindOf(t), clip(te.Value, 40))
	}
	return syntaxErr(path, err)
}

// kindOf describes the JSON a Go type takes.
func kindOf(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a " + t.Kind().String()
}

// tokenKind names the JSON kind of a token read by json.Decoder.Token.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// clip shortens s to at most n bytes (whole runes), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// displayName shows a member name in a message: as it is when it is a plain
// identifier of reasonable length, quoted and clipped otherwise.
func displayName(name string) string {
	plain := name != "" && len(name) <= 64
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return strconv.Quote(clip(name, 64))
}
