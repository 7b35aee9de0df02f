package httpapi

import (
	"html/template"
	"mime"
	"net/http"
	"strings"
)

// Start links are opened by people, from an email, in a browser: when a link cannot
// be followed, a browser gets a small page saying what happened and what to do
// instead of the JSON envelope API clients get. The page has no script and no outside
// asset, and every value in it is escaped (html/template).

// wantsHTML reports whether r prefers HTML to JSON: its Accept names text/html and
// does not rank application/json above it (a browser's navigation does; API clients
// send application/json or nothing).
func wantsHTML(r *http.Request) bool {
	htmlQ, jsonQ := -1.0, -1.0
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			q = parseQ(v)
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			htmlQ = max(htmlQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	return htmlQ > 0 && htmlQ >= jsonQ
}

// parseQ parses a quality value (0 to 1, at most three decimals); 0 when malformed.
func parseQ(v string) float64 {
	if v == "1" || strings.HasPrefix(v, "1.") {
		return 1
	}
	if !strings.HasPrefix(v, "0") {
		return 0
	}
	q, scale := 0.0, 0.1
	for _, c := range strings.TrimPrefix(strings.TrimPrefix(v, "0"), ".") {
		if c < '0' || c > '9' {
			return 0
		}
		q += float64(c-'0') * scale
		scale /= 10
	}
	return q
}

// startPage is what a person reads on a link that cannot be followed.
type startPage struct {
	Title, What, Do, RequestID string
}

// startPageFor words the answer e to a start link for a person.
func startPageFor(e *apiError, rid string) startPage {
	p := startPage{RequestID: rid}
	switch e.code {
	case "FailedOperation.LinkRevoked":
		p.Title, p.What, p.Do = "This link was withdrawn", "The organisation that sent you this link has withdrawn it, so it no longer starts a verification.", "If you still need to verify your identity, ask them for a new link."
	case "FailedOperation.LinkExpired":
		p.Title, p.What, p.Do = "This link has expired", "Links to verify your identity are valid for a limited time, and this one's time is over.", "Ask the organisation that sent it to you for a new link."
	case "ResourceNotFound.Link":
		p.Title, p.What, p.Do = "This link is not valid", "This address does not match any verification link.", "Check that you opened the whole address from your message (long links are sometimes cut in two), or ask the sender for a new link."
	case "FailedOperation.NotReady":
		p.Title, p.What, p.Do = "The verification is not ready yet", "Starting your verification is taking longer than usual.", "Please wait a minute, then open the link again. Your link is still valid."
	default:
		if e.status >= 500 {
			p.Title, p.What, p.Do = "The verification could not be started", "Something went wrong on our side while starting your verification.", "Please open the link again in a few minutes. Your link is still valid."
		} else {
			p.Title, p.What, p.Do = "This link cannot be opened", "The link could not be followed.", "Ask the organisation that sent it to you for a new link."
		}
	}
	return p
}

var startTmpl = template.Must(template.New("start").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#222}h1{font-size:1.4em}small{color:#666}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.What}}</p>
<p>{{.Do}}</p>
{{if .RequestID}}<p><small>Reference: {{.RequestID}}</small></p>{{end}}
</body>
</html>
`))

// writeStartPage answers err to a person's browser as a page, with the status and
// headers the JSON answer would have.
func (a *API) writeStartPage(w http.ResponseWriter, r *http.Request, err error) {
	e := a.answerFor(r, err)
	rid := requestID(r)
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(e.status)
	_ = startTmpl.Execute(w, startPageFor(e, rid))
}
