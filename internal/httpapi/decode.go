package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/tasks"
)

// DecodeTokenRequest reads the body of POST /v1/tokens strictly: exactly one JSON
// object whose names are those of tasks.TokenRequest (and, under Config, of
// faceid.WebVerificationConfigIntl), matched case-sensitively, each at most once, with
// values of the right JSON type (null means absent), and nothing but white space after
// it. It does not validate values: producer.Submit does.
//
// Every problem is a *faceid.FieldError (Code InvalidParameter) whose Field names the
// field ("Config.CheckMode", or "body" for the body as a whole) and whose Reason says
// why; an error of r (such as *http.MaxBytesError) is returned as it is. Messages
// never quote a value longer than a few characters, so image bytes never reach them.
func DecodeTokenRequest(r io.Reader) (*tasks.TokenRequest, error) {
	dec := json.NewDecoder(r)
	var req tasks.TokenRequest
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, bodyErr("is empty: send a JSON object such as {\"RedirectURL\":\"https://example.com/done\"}")
	}
	if err != nil {
		return nil, syntaxErr("body", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bodyErr("must be a JSON object, not %s", tokenKind(tok))
	}
	if err := decodeObject(dec, reflect.ValueOf(&req).Elem(), ""); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil && !isSyntax(err) {
			return nil, err
		}
		return nil, bodyErr("has data after the JSON object; send exactly one object")
	}
	return &req, nil
}

// readBody reads a whole request body of at most limit bytes. A body over the limit
// is a *http.MaxBytesError (413); a body that cannot be read (broken chunked framing,
// a client that went away) or is not valid UTF-8 is a *faceid.FieldError on "body"
// (400): encoding/json would silently turn invalid bytes into U+FFFD and run the job
// with altered data.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, err
	}
	if err != nil {
		return nil, bodyErr("could not be read (malformed framing or an interrupted upload)")
	}
	if !utf8.Valid(b) {
		return nil, bodyErr("is not valid UTF-8")
	}
	return b, nil
}

// decodeObject decodes the members of an object whose '{' was read into the struct
// v, up to and including the closing '}'.
func decodeObject(dec *json.Decoder, v reflect.Value, prefix string) error {
	fs := fieldsOf(v.Type())
	seen := make(map[string]bool, len(fs.byName))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(strings.TrimSuffix(prefix, ".")+"body", err)
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
		if err := decodeValue(dec, v.Field(idx), path); err != nil {
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
	byName map[string]int // JSON name → field index
	names  []string       // in declaration order
}

var fieldCache sync.Map // reflect.Type → *fields

func fieldsOf(t reflect.Type) *fields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fields)
	}
	fs := &fields{byName: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fs.byName[name] = i
		fs.names = append(fs.names, name)
	}
	fieldCache.Store(t, fs)
	return fs
}

func malformed(field, format string, args ...any) *faceid.FieldError {
	return &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func bodyErr(format string, args ...any) *faceid.FieldError {
	return malformed("body", format, args...)
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

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

// syntaxErr reports malformed JSON at field (or "body"), passing reader errors
// (*http.MaxBytesError, a broken connection) through.
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
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
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
