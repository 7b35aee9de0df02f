package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
)

// The campaign routes: thin HTTP over campaign.Manager (Config.Campaigns).

// campaignError maps the errors of campaign.Manager to their answers; nil for
// errors it does not know.
func campaignError(err error) *apiError {
	var me *campaign.MintError
	switch {
	case errors.Is(err, campaign.ErrHeader):
		return &apiError{status: http.StatusBadRequest, code: faceid.CodeInvalidParameter, message: err.Error()}
	case errors.Is(err, campaign.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "ResourceNotFound.Batch", message: "no campaign with this BatchId or name"}
	case errors.Is(err, campaign.ErrLinkNotFound):
		return &apiError{status: http.StatusNotFound, code: "ResourceNotFound.Link", message: "no such link"}
	case errors.Is(err, campaign.ErrLinkExpired):
		return &apiError{status: http.StatusGone, code: "FailedOperation.LinkExpired", message: "this link has expired"}
	case errors.Is(err, campaign.ErrLinkRevoked):
		return &apiError{status: http.StatusGone, code: "FailedOperation.LinkRevoked", message: "this link was revoked"}
	case errors.Is(err, campaign.ErrCanceled):
		return &apiError{status: http.StatusConflict, code: "FailedOperation.BatchCanceled", message: err.Error()}
	case errors.Is(err, campaign.ErrImportRunning):
		return &apiError{status: http.StatusConflict, code: "FailedOperation.ImportRunning", message: err.Error(),
			header: http.Header{"Retry-After": {"30"}}}
	case errors.Is(err, campaign.ErrModeMismatch):
		return &apiError{status: http.StatusConflict, code: "FailedOperation.BatchMode", message: err.Error()}
	case errors.Is(err, campaign.ErrMintTimeout):
		return &apiError{status: http.StatusServiceUnavailable, code: "FailedOperation.NotReady", message: err.Error(),
			header: http.Header{"Retry-After": {"2"}}}
	case errors.As(err, &me):
		return &apiError{status: http.StatusBadGateway, code: me.Code, message: "the verification could not be started; open the link again"}
	}
	return nil
}

// errCampaignInternal answers an unexpected error of a campaign route (logged with
// its detail).
var errCampaignInternal = &apiError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error; try again"}

// importCampaign is POST /v1/batches.
func (a *API) importCampaign(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := campaign.ImportOptions{Name: q.Get("name"), BatchID: q.Get("batch"), Mode: campaign.Mode(q.Get("mode")), KeepRejected: a.cfg.MaxRejected}
	switch opts.Mode {
	case "", campaign.ModeTokens, campaign.ModeLinks:
	default:
		a.writeError(w, r, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "mode", Reason: `must be "tokens" or "links"`})
		return
	}
	if q.Has("weight") {
		n, err := parseWeight(q.Get("weight"))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		opts.Weight = n
	}
	if v := q.Get("link_ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			a.writeError(w, r, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "link_ttl", Reason: `must be a positive duration such as "720h"`})
			return
		}
		opts.LinkTTL = d
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "text/csv" {
		opts.Format = campaign.FormatCSV
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxImportBytes)
	sum, err := a.cfg.Campaigns.Import(r.Context(), body, opts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, sum)
}

// parseWeight reads a campaign's ?weight=: an integer from 1 to campaign.MaxWeight.
func parseWeight(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > campaign.MaxWeight {
		return 0, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "weight",
			Reason: fmt.Sprintf("must be an integer from 1 to %d", campaign.MaxWeight)}
	}
	return n, nil
}

// lookupCampaign resolves {BatchId} (a BatchId or a name), answering the error.
func (a *API) lookupCampaign(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := a.cfg.Campaigns.Lookup(r.Context(), r.PathValue("BatchId"))
	if err != nil {
		a.writeError(w, r, err)
		return "", false
	}
	return id, true
}

// listCampaigns is GET /v1/batches.
func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request) {
	all, err := a.cfg.Campaigns.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, all)
}

// campaignStatus is GET /v1/batches/{BatchId}.
func (a *API) campaignStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := a.lookupCampaign(w, r)
	if !ok {
		return
	}
	p, err := a.cfg.Campaigns.Status(r.Context(), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// campaignResults is GET /v1/batches/{BatchId}/results, streamed.
func (a *API) campaignResults(w http.ResponseWriter, r *http.Request) {
	id, ok := a.lookupCampaign(w, r)
	if !ok {
		return
	}
	if _, err := a.cfg.Campaigns.Info(r.Context(), id); err != nil {
		a.writeError(w, r, err)
		return
	}
	format := campaign.FormatNDJSON
	w.Header().Set("Content-Type", "application/x-ndjson")
	if r.URL.Query().Get("format") == "csv" {
		format = campaign.FormatCSV
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	// Once streaming has begun the status is sent; an error can only cut the body.
	_ = a.cfg.Campaigns.Export(r.Context(), id, w, format)
}

// campaignControl is POST /v1/batches/{BatchId}/{pause,resume,weight,cancel,rerun}.
func (a *API) campaignControl(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.lookupCampaign(w, r)
		if !ok {
			return
		}
		m, ctx := a.cfg.Campaigns, r.Context()
		var v any
		var err error
		switch action {
		case "pause":
			v, err = m.Pause(ctx, id)
		case "resume":
			v, err = m.Resume(ctx, id)
		case "weight":
			var n int
			if n, err = parseWeight(r.URL.Query().Get("weight")); err == nil {
				v, err = m.SetWeight(ctx, id, n)
			}
		case "cancel":
			v, err = m.Cancel(ctx, id)
		case "rerun":
			c := r.URL.Query().Get("canceled")
			v, err = m.Rerun(ctx, id, campaign.RerunOptions{IncludeCanceled: c == "1" || c == "true"})
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// startLink is GET /v1/start/{LinkId}: 302 to the link's verification.
func (a *API) startLink(w http.ResponseWriter, r *http.Request) {
	job, err := a.cfg.Campaigns.Start(r.Context(), r.PathValue("LinkId"))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	if err != nil {
		if wantsHTML(r) {
			a.writeStartPage(w, r, err)
			return
		}
		a.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, job.VerificationURL, http.StatusFound)
}

// getLink is GET /v1/links/{LinkId}.
func (a *API) getLink(w http.ResponseWriter, r *http.Request) {
	l, err := a.cfg.Campaigns.GetLink(r.Context(), r.PathValue("LinkId"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// revokeLink is POST /v1/links/{LinkId}/revoke.
func (a *API) revokeLink(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Campaigns.RevokeLink(r.Context(), r.PathValue("LinkId")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
