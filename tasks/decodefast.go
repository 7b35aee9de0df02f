package tasks

import (
	"encoding"
	"encoding/json"
	"reflect"
)

// decodeFast is decodeStrict's path for input it accepts: it checks b is one valid
// JSON object, splits its members itself and decodes each value on its own, so that
// no value is read through json.Decoder's token stream (which builds and drops a
// syntax error at the end of every value). It reports false, having perhaps written
// part of v, for anything it would refuse (bad JSON, an unknown or repeated name, a
// value of the wrong type): decodeStrict then walks the input again to word the
// error. The two paths accept exactly the same inputs with the same result
// (FuzzDecodeTokenRequest checks it).
func decodeFast(b []byte, v reflect.Value) bool {
	if !json.Valid(b) {
		return false
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	_, ok := fastObject(b, i, v)
	return ok
}

// fastObject decodes the object starting at b[i] ('{') into the struct v and returns
// the index after its '}'. b is valid JSON.
func fastObject(b []byte, i int, v reflect.Value) (int, bool) {
	fs := fieldsOf(v.Type())
	var seen [4]uint64 // by field order; structs of up to 256 fields
	if len(fs.names) > 256 {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return i + 1, true
	}
	for {
		// b[i] is the '"' of a name.
		end := skipString(b, i)
		raw := b[i+1 : end-1]
		var name string
		if hasEscape(raw) {
			if json.Unmarshal(b[i:end], &name) != nil {
				return 0, false
			}
		} else {
			name = string(raw) // map lookups below do not keep it
		}
		ord, known := fs.ord[name]
		if !known || seen[ord/64]&(1<<(ord%64)) != 0 {
			return 0, false
		}
		seen[ord/64] |= 1 << (ord % 64)
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the ':'
		vend := skipValue(b, i)
		if !fastValue(b[i:vend], v.FieldByIndex(fs.byName[name])) {
			return 0, false
		}
		i = skipSpace(b, vend)
		if b[i] == '}' {
			return i + 1, true
		}
		i = skipSpace(b, i+1) // the ','
	}
}

// fastValue decodes one member's value, valid JSON, into f.
func fastValue(raw []byte, f reflect.Value) bool {
	t := f.Type()
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	switch {
	case st.Kind() == reflect.Struct: // a nested object (Config), as strictly
		if raw[0] == 'n' { // null: absent
			f.Set(reflect.Zero(t))
			return true
		}
		if raw[0] != '{' {
			return false
		}
		sv := reflect.New(st)
		if _, ok := fastObject(raw, 0, sv.Elem()); !ok {
			return false
		}
		if t.Kind() == reflect.Pointer {
			f.Set(sv)
		} else {
			f.Set(sv.Elem())
		}
		return true
	case t.Kind() == reflect.String && raw[0] == '"' && !hasEscape(raw[1:len(raw)-1]) && !customDecoded(f):
		f.SetString(string(raw[1 : len(raw)-1])) // the common case, without a decoder
		return true
	case t.Kind() == reflect.Pointer && st.Kind() == reflect.String && raw[0] == '"' &&
		!hasEscape(raw[1:len(raw)-1]) && !customDecoded(f) && !customDecodedPointer(t):
		// A *string (RedirectURL, Extra): as encoding/json, into the string f points
		// to, else a new one.
		if f.IsNil() {
			f.Set(reflect.New(st))
		}
		f.Elem().SetString(string(raw[1 : len(raw)-1]))
		return true
	}
	return json.Unmarshal(raw, f.Addr().Interface()) == nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// customDecoded reports whether encoding/json decodes f with the field's own method.
func customDecoded(f reflect.Value) bool {
	pt := f.Addr().Type()
	return pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType)
}

// customDecodedPointer reports whether encoding/json decodes into a pointer of type
// t with the pointee's own method.
func customDecodedPointer(t reflect.Type) bool {
	return t.Implements(unmarshalerType) || t.Implements(textUnmarshalerType)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i) - 1
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the enclosing object
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}
