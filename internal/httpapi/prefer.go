package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// parseWait reads the wait preference of the Prefer headers (RFC 7240 §4.3,
// "Prefer: wait=N" with N in whole seconds, possibly among other preferences such as
// "respond-async, wait=10"). It returns given=false when no wait preference is
// present. As the RFC says, only the first wait counts and other preferences are
// ignored; a wait above max is honoured as max. A wait that is not a whole number
// of seconds is a *faceid.FieldError on "Prefer".
func parseWait(h http.Header, max time.Duration) (wait time.Duration, given bool, err error) {
	for _, line := range h.Values("Prefer") {
		for _, pref := range splitQuoted(line, ',') {
			name, value, hasValue := strings.Cut(pref, "=")
			if i := strings.IndexByte(name, ';'); i >= 0 { // "wait;param" has no value
				name, hasValue = name[:i], false
			}
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			value, _, _ = strings.Cut(value, ";") // preference parameters are ignored
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if !hasValue || value == "" || strings.Trim(value, "0123456789") != "" {
				return 0, false, &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: "Prefer",
					Reason: "wait must be a whole number of seconds, e.g. \"Prefer: wait=10\", not " + strconv.Quote(clip(value, 20))}
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || time.Duration(n) > max/time.Second {
				return max, true, nil
			}
			return time.Duration(n) * time.Second, true, nil
		}
	}
	return 0, false, nil
}

// splitQuoted splits s on sep outside double-quoted strings and trims each part,
// dropping empty ones.
func splitQuoted(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch {
			case s[i] == '\\' && quoted:
				i++
				continue
			case s[i] == '"':
				quoted = !quoted
				continue
			case s[i] != sep || quoted:
				continue
			}
		}
		if p := strings.TrimSpace(s[start:min(i, len(s))]); p != "" {
			parts = append(parts, p)
		}
		start = i + 1
	}
	return parts
}
