package httpapi

import (
	"html/template"
	"mime"
	"net/http"
	"strings"
)

// Start links and the return route are opened by people, in a browser: when one
// cannot be followed, a browser gets a small page saying what happened and what to
// do instead of the JSON envelope API clients get. The page has no script and no outside
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

// personPage is what a person reads on an address that cannot be followed.
type personPage struct {
	Title, What, Do, RequestID string
}

// startPageFor words the answer e to a start link for a person.
func startPageFor(e *apiError, rid string) personPage {
	p := personPage{RequestID: rid}
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

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
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

// returnPageFor words the answer e on the return route for a person coming back
// from the verification.
func returnPageFor(e *apiError, rid string) personPage {
	p := personPage{RequestID: rid}
	switch {
	case e.code == errNoToken.code:
		p.Title, p.What, p.Do = "Your verification is not finished", "There is no verification to return to on this address yet.", "Go back to the organisation that asked you to verify your identity and start again from there."
	case e.status == http.StatusNotFound:
		p.Title, p.What, p.Do = "This verification is not known", "This address does not match any verification, or its result has expired.", "If you were verifying your identity, go back to the organisation that asked you to and start again from there."
	case e.status >= 500:
		p.Title, p.What, p.Do = "Your verification could not be completed", "Something went wrong on our side while bringing you back from your verification.", "Please reload this page in a few minutes."
	default:
		p.Title, p.What, p.Do = "This page cannot be opened", "The address could not be followed.", "Go back to the organisation that asked you to verify your identity."
	}
	return p
}

// writeStartPage answers err to a person's browser on a start link.
func (a *API) writeStartPage(w http.ResponseWriter, r *http.Request, err error) {
	a.writePersonPage(w, r, err, startPageFor)
}

// writePersonPage answers err to a person's browser as the page words gives, with
// the status and headers the JSON answer would have.
func (a *API) writePersonPage(w http.ResponseWriter, r *http.Request, err error, words func(*apiError, string) personPage) {
	e := a.answerFor(r, err)
	writePage(w, e.status, e.header, words(e, requestID(r)))
}

// writePage writes page with status and extra headers, under a strict CSP.
func writePage(w http.ResponseWriter, status int, header http.Header, page personPage) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, page)
}
