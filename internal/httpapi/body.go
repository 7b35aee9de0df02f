package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
)

// readBody reads a whole request body of at most limit bytes. A body over the limit
// is a *http.MaxBytesError (413); a body that cannot be read (broken chunked framing,
// a client that went away) is a *faceid.FieldError on "body" (400). The bytes are
// then decoded by tasks.DecodeTokenRequest, which also refuses invalid UTF-8.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, err
	}
	if err != nil {
		return nil, malformed("body", "could not be read (malformed framing or an interrupted upload)")
	}
	return b, nil
}

func malformed(field, format string, args ...any) *faceid.FieldError {
	return &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: field, Reason: fmt.Sprintf(format, args...)}
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
