package httpapi

import (
	"net/http"
	"strings"
	"time"
)

// campaignRoutes are the routes of campaign.NewHandler, by path: the methods it
// serves there, and whether a request may stream a whole campaign (long deadlines).
var campaignRoutes = []struct {
	path    string
	methods []string
	long    bool
	open    bool // served without authentication
}{
	{"/v1/batches", []string{http.MethodGet, http.MethodPost}, true, false},
	{"/v1/batches/{BatchId}", []string{http.MethodGet}, false, false},
	{"/v1/batches/{BatchId}/results", []string{http.MethodGet}, true, false},
	{"/v1/batches/{BatchId}/pause", []string{http.MethodPost}, false, false},
	{"/v1/batches/{BatchId}/resume", []string{http.MethodPost}, false, false},
	{"/v1/batches/{BatchId}/cancel", []string{http.MethodPost}, false, false},
	{"/v1/batches/{BatchId}/rerun", []string{http.MethodPost}, false, false},
	{"/v1/links/{LinkId}", []string{http.MethodGet}, false, false},
	{"/v1/links/{LinkId}/revoke", []string{http.MethodPost}, false, false},
	{"/v1/start/{LinkId}", []string{http.MethodGet}, false, true},
}

// mountCampaigns routes the campaign paths to h. Each route is registered here by
// its pattern (so that metrics are labelled by route and unknown paths and methods
// get the API's own 404 and 405), and h routes it again.
func (a *API) mountCampaigns(h http.Handler) {
	for _, rt := range campaignRoutes {
		serve := h.ServeHTTP
		if rt.long {
			serve = a.longRequest(h)
		}
		wrap := a.authed
		if rt.open {
			wrap = func(h http.HandlerFunc) http.HandlerFunc { return h }
		}
		allow := make([]string, 0, len(rt.methods)+1)
		for _, m := range rt.methods {
			a.mux.Handle(m+" "+rt.path, wrap(serve))
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		a.mux.Handle(rt.path, wrap(a.notAllowed(strings.Join(allow, ", "))))
	}
}

// longRequest lifts the server's read and write deadlines for a request that
// streams a campaign in or out, up to Config.LongRequestTimeout.
func (a *API) longRequest(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(a.cfg.LongRequestTimeout)
		_ = rc.SetReadDeadline(deadline) // unsupported writers (tests) keep their own
		_ = rc.SetWriteDeadline(deadline)
		h.ServeHTTP(w, r)
	}
}
