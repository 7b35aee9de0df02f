// Package console is the operator console served at /ui: one page and its script and
// style sheet, embedded in the binary (no build step, no CDN).
//
// The page holds no data: it asks for an API bearer token once, keeps it in
// sessionStorage and sends it as Authorization on every call to /v1/…, so no cookie is
// involved and no cross-site request can act with it. Every answer of Handler carries
// ContentSecurityPolicy, which allows only the page's own script, style and API.
package console

import (
	"embed"
	"net/http"
	"path"
)

// ContentSecurityPolicy is sent with every answer of Handler.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

//go:embed assets
var assets embed.FS

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler serves GET /ui (the page) and GET /ui/<asset>, to anyone: the assets are
// public and every data call of the page needs a token.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := path.Base(r.URL.Path)
		if r.URL.Path == "/ui" || r.URL.Path == "/ui/" {
			name = "index.html"
		} else if r.URL.Path != "/ui/"+name {
			name = "" // a deeper path: not an asset
		}
		b, err := assets.ReadFile("assets/" + name)
		ct, known := types[path.Ext(name)]
		if name == "" || err != nil || !known {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", ct)
		_, _ = w.Write(b)
	})
}
