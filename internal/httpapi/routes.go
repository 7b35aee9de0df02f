package httpapi

import (
	"mime"
	"net/http"
	"slices"
	"strings"
)

// Route is one route of the API. The table (routes, Routes) is the one list of them:
// the API mounts it, and a test checks the README's route table against it. A new
// route (the console's /ui, a new action) is one row here.
type Route struct {
	// Method and Path, as in an http.ServeMux pattern ("GET", "/v1/tokens/{JobId}").
	Method, Path string
	// Open routes are served without a bearer token.
	Open bool
	// Long routes stream a whole campaign: their deadlines are Config.LongRequestTimeout.
	Long bool
	// body is the request body the route accepts, by content type (checkBody).
	body bodyKind
	// need is what the route needs of the API to be mounted.
	need need
	// serve returns the handler.
	serve func(a *API) http.HandlerFunc
}

type need int

const (
	needNothing   need = iota // every API, NewOps included
	needProducer              // New only
	needMetrics               // Config.Metrics
	needCampaigns             // Config.Campaigns
	needOperator              // New only: the operator's routes and console
)

// routes is the route table.
var routes = []Route{
	{Method: "POST", Path: "/v1/tokens", body: bodyJSON, need: needProducer, serve: func(a *API) http.HandlerFunc { return a.postToken }},
	{Method: "GET", Path: "/v1/tokens/{JobId}", need: needProducer, serve: func(a *API) http.HandlerFunc { return a.getToken }},
	{Method: "POST", Path: "/v1/tokens/{JobId}/verification", body: bodyNone, need: needProducer, serve: func(a *API) http.HandlerFunc { return a.postVerification }},
	{Method: "GET", Path: "/v1/return/{JobId}", Open: true, need: needProducer, serve: func(a *API) http.HandlerFunc { return a.getReturn }},
	{Method: "GET", Path: "/v1/pipeline", need: needProducer, serve: func(a *API) http.HandlerFunc { return a.getPipeline }},
	{Method: "POST", Path: "/v1/pipeline/pause", body: bodyNone, need: needProducer, serve: func(a *API) http.HandlerFunc { return a.pausePipeline }},
	{Method: "POST", Path: "/v1/pipeline/resume", body: bodyNone, need: needProducer, serve: func(a *API) http.HandlerFunc { return a.resumePipeline }},
	{Method: "GET", Path: "/healthz", Open: true, serve: func(a *API) http.HandlerFunc { return a.healthz }},
	{Method: "GET", Path: "/readyz", serve: func(a *API) http.HandlerFunc { return a.readyz }},
	{Method: "GET", Path: "/metrics", need: needMetrics, serve: func(a *API) http.HandlerFunc { return a.serveMetrics }},
	{Method: "POST", Path: "/v1/batches", Long: true, body: bodyImport, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.importCampaign }},
	{Method: "GET", Path: "/v1/batches", need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.listCampaigns }},
	{Method: "GET", Path: "/v1/batches/{BatchId}", need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignStatus }},
	{Method: "GET", Path: "/v1/batches/{BatchId}/results", Long: true, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignResults }},
	{Method: "POST", Path: "/v1/batches/{BatchId}/pause", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignControl("pause") }},
	{Method: "POST", Path: "/v1/batches/{BatchId}/resume", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignControl("resume") }},
	{Method: "POST", Path: "/v1/batches/{BatchId}/weight", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignControl("weight") }},
	{Method: "POST", Path: "/v1/batches/{BatchId}/cancel", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignControl("cancel") }},
	{Method: "POST", Path: "/v1/batches/{BatchId}/rerun", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.campaignControl("rerun") }},
	{Method: "GET", Path: "/v1/links/{LinkId}", need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.getLink }},
	{Method: "POST", Path: "/v1/links/{LinkId}/revoke", body: bodyNone, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.revokeLink }},
	{Method: "GET", Path: "/v1/start/{LinkId}", Open: true, need: needCampaigns, serve: func(a *API) http.HandlerFunc { return a.startLink }},
	{Method: "GET", Path: "/v1/webhooks/failed", need: needOperator, serve: func(a *API) http.HandlerFunc { return a.listDeadWebhooks }},
	{Method: "POST", Path: "/v1/webhooks/failed/replay", body: bodyNone, need: needOperator, serve: func(a *API) http.HandlerFunc { return a.replayDeadWebhooks }},
	{Method: "POST", Path: "/v1/webhooks/failed/{JobId}/replay", body: bodyNone, need: needOperator, serve: func(a *API) http.HandlerFunc { return a.replayDeadWebhook }},
	{Method: "GET", Path: "/v1/budgets", need: needOperator, serve: func(a *API) http.HandlerFunc { return a.getBudgets }},
	{Method: "GET", Path: "/ui", Open: true, need: needOperator, serve: func(a *API) http.HandlerFunc { return a.serveConsole }},
	{Method: "GET", Path: "/ui/", Open: true, need: needOperator, serve: func(a *API) http.HandlerFunc { return a.serveConsole }},
}

// Routes returns the route table: every route the API can serve.
func Routes() []Route { return append([]Route(nil), routes...) }

// has reports whether the API serves routes needing n.
func (a *API) has(n need) bool {
	switch n {
	case needProducer:
		return a.cfg.Producer != nil && a.full
	case needMetrics:
		return a.cfg.Metrics != nil
	case needCampaigns:
		return a.cfg.Campaigns != nil && a.full
	case needOperator:
		return a.full
	}
	return true
}

// mount registers the routes of the table this API serves, each behind the one auth
// check (unless Open), its content-type check and, for Long ones, long deadlines;
// every path also answers its other methods 405 with Allow, and every other path 404.
func (a *API) mount() {
	a.campaignPattern = map[string]bool{}
	allow := map[string][]string{}
	open := map[string]bool{}
	var paths []string
	for _, rt := range routes {
		if !a.has(rt.need) {
			continue
		}
		h := a.checkBody(rt.body, rt.serve(a))
		if rt.Long {
			h = a.longRequest(h)
		}
		if !rt.Open {
			h = a.authed(h)
		}
		a.mux.Handle(rt.Method+" "+rt.Path, h)
		if rt.need == needCampaigns {
			a.campaignPattern[rt.Method+" "+rt.Path] = true
		}
		if _, ok := allow[rt.Path]; !ok {
			paths = append(paths, rt.Path)
			open[rt.Path] = true
		}
		allow[rt.Path] = append(allow[rt.Path], rt.Method)
		if rt.Method == http.MethodGet {
			allow[rt.Path] = append(allow[rt.Path], http.MethodHead)
		}
		open[rt.Path] = open[rt.Path] && rt.Open
	}
	for _, p := range paths {
		slices.Sort(allow[p])
		h := a.notAllowed(strings.Join(allow[p], ", "))
		if !open[p] {
			h = a.authed(h)
		}
		a.mux.Handle(p, h)
	}
	a.mux.Handle("/", a.authed(func(w http.ResponseWriter, r *http.Request) { a.writeError(w, r, notFoundRoute(r)) }))
}

// bodyKind is what a route accepts as a request body.
type bodyKind int

const (
	bodyAny    bodyKind = iota // GET routes: not read
	bodyJSON                   // a JSON object
	bodyNone                   // nothing, or JSON (ignored)
	bodyImport                 // a campaign: NDJSON or CSV
)

// checkBody checks the content type of a request's body for kind (product spec,
// "Content types"): a web page can send text/plain, form and header-less bodies
// cross-site without a preflight, so a JSON route takes only a JSON content type,
// and an import only NDJSON or CSV. A route without a body takes an empty body with
// no Content-Type, or JSON.
func (a *API) checkBody(kind bodyKind, h http.HandlerFunc) http.HandlerFunc {
	if kind == bodyAny {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		mt := ct // what mime.ParseMediaType returns for the common type, at no cost
		if ct != "application/json" {
			mt, _, _ = mime.ParseMediaType(ct)
		}
		var ok bool
		var want string
		switch kind {
		case bodyJSON:
			ok, want = isJSON(mt), jsonTypes
		case bodyNone:
			ok, want = isJSON(mt) || ct == "" && r.ContentLength == 0, "no body, or "+jsonTypes
		case bodyImport:
			ok, want = mt == "application/x-ndjson" || mt == "text/csv", "application/x-ndjson (one JSON request a line) or text/csv"
		}
		if !ok {
			a.writeError(w, r, unsupportedMediaType(ct, want))
			return
		}
		h(w, r)
	}
}

const jsonTypes = "application/json (or application/*+json)"

// isJSON reports whether the media type mt (lower case, without parameters) is JSON.
func isJSON(mt string) bool {
	if mt == "application/json" {
		return true
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	return ok && strings.HasSuffix(sub, "+json") && len(sub) > len("+json")
}
