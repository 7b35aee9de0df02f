package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tt := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/ui", 200, "text/html"},
		{"GET", "/ui/", 200, "text/html"},
		{"HEAD", "/ui/app.js", 200, "text/javascript"},
		{"GET", "/ui/app.css", 200, "text/css"},
		{"GET", "/ui/index.html", 200, "text/html"},
		{"GET", "/ui/missing.js", 404, ""},
		{"GET", "/ui/a/app.js", 404, ""},
		{"POST", "/ui", 405, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.ctype) ||
			w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("%s %s = %d %v", tt.method, tt.path, w.Code, w.Header())
		}
	}
}

// TestNoInlineScriptOrStyle keeps the page within its CSP: no inline script, no
// style attribute, no event handler attribute.
func TestNoInlineScriptOrStyle(t *testing.T) {
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ui", nil))
	page := w.Body.String()
	for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", " onsubmit=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
}
