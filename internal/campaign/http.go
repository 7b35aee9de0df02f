package campaign

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Manager serves the requests. Required.
	Manager *Manager
	// MaxBodyBytes bounds the body of POST /v1/batches. Defaults to 512 MiB (the body
	// is streamed: memory does not grow with it).
	MaxBodyBytes int64
	// MaxRejected is how many rejected lines a POST /v1/batches answer lists (all are
	// counted in RejectedCount). Defaults to 10,000.
	MaxRejected int
	// OnError receives the errors answered with a 5xx status (the API logs them);
	// their messages are not shown to callers. Defaults to nil.
	OnError func(r *http.Request, err error)
}

// NewHandler returns the campaign routes of the HTTP API, to be mounted by the API
// server behind its authentication:
//
//	POST /v1/batches                     import an NDJSON body (text/csv: a CSV body); ?name= names
//	                                     the campaign (an existing name imports into it, without
//	                                     duplicates), ?batch= imports into a BatchId, ?mode=links
//	                                     makes start links valid for ?link_ttl= (e.g. 720h); 202 with
//	                                     {"BatchId","Name","Mode","Accepted","Created","Existing",
//	                                     "Rejected":[{"Line","Error":{"Code","Message"}}],"RejectedCount","Lines"}
//	GET  /v1/batches                     every campaign (Info objects)
//	GET  /v1/batches/{BatchId}           Progress: Total, Counts, Rate, ETA, …
//	GET  /v1/batches/{BatchId}/results   every job as NDJSON job objects (?format=csv: CSV), streamed
//	POST /v1/batches/{BatchId}/pause     stop feeding (jobs already fed finish); Info
//	POST /v1/batches/{BatchId}/resume    feed again; Info
//	POST /v1/batches/{BatchId}/cancel    cancel the jobs not started; {"Canceled","Running"}
//	POST /v1/batches/{BatchId}/rerun     re-run failed jobs (?canceled=1: canceled ones too); {"Reopened","Skipped"}
//	GET  /v1/start/{LinkId}              302 to a valid VerificationURL (minted on demand)
//	GET  /v1/links/{LinkId}              the link (Link object)
//	POST /v1/links/{LinkId}/revoke       revoke the link; 204
//
// {BatchId} also accepts a campaign's name. Errors are {"Error":{"Code","Message"}}.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Manager == nil {
		return nil, errors.New("campaign: HandlerConfig.Manager is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 512 << 20
	}
	if cfg.MaxRejected <= 0 {
		cfg.MaxRejected = 10000
	}
	h := &handler{cfg: cfg, m: cfg.Manager}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/batches", h.create)
	mux.HandleFunc("GET /v1/batches", h.list)
	mux.HandleFunc("GET /v1/batches/{BatchId}", h.status)
	mux.HandleFunc("GET /v1/batches/{BatchId}/results", h.results)
	mux.HandleFunc("POST /v1/batches/{BatchId}/{action}", h.control)
	mux.HandleFunc("GET /v1/start/{LinkId}", h.start)
	mux.HandleFunc("GET /v1/links/{LinkId}", h.link)
	mux.HandleFunc("POST /v1/links/{LinkId}/revoke", h.revoke)
	return mux, nil
}

type handler struct {
	cfg HandlerConfig
	m   *Manager
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps an error to its status and the {"Error":{…}} body. Messages of
// unexpected errors are not shown (they may name internal addresses).
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusInternalServerError, "InternalError", "internal error; try again"
	var fe *faceid.FieldError
	var me *MintError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		status, code, msg = http.StatusBadRequest, fe.Code, fe.Error()
	case errors.Is(err, ErrHeader):
		status, code, msg = http.StatusBadRequest, faceid.CodeInvalidParameter, err.Error()
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, "RequestSizeLimitExceeded", err.Error()
	case errors.Is(err, ErrNotFound):
		status, code, msg = http.StatusNotFound, "ResourceNotFound.Batch", "no campaign with this BatchId or name"
	case errors.Is(err, ErrLinkNotFound):
		status, code, msg = http.StatusNotFound, "ResourceNotFound.Link", "no such link"
	case errors.Is(err, ErrLinkExpired):
		status, code, msg = http.StatusGone, "FailedOperation.LinkExpired", "this link has expired"
	case errors.Is(err, ErrLinkRevoked):
		status, code, msg = http.StatusGone, "FailedOperation.LinkRevoked", "this link was revoked"
	case errors.Is(err, ErrCanceled):
		status, code, msg = http.StatusConflict, "FailedOperation.BatchCanceled", err.Error()
	case errors.Is(err, ErrImportRunning):
		w.Header().Set("Retry-After", "30")
		status, code, msg = http.StatusConflict, "FailedOperation.ImportRunning", err.Error()
	case errors.Is(err, ErrModeMismatch):
		status, code, msg = http.StatusConflict, "FailedOperation.BatchMode", err.Error()
	case errors.Is(err, ErrMintTimeout):
		w.Header().Set("Retry-After", "2")
		status, code, msg = http.StatusServiceUnavailable, "FailedOperation.NotReady", err.Error()
	case errors.As(err, &me):
		status, code, msg = http.StatusBadGateway, me.Code, "the verification could not be started; open the link again"
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusBadGateway && h.cfg.OnError != nil {
		h.cfg.OnError(r, err)
	}
	writeJSON(w, status, map[string]any{"Error": map[string]string{"Code": code, "Message": msg}})
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ImportOptions{Name: q.Get("name"), BatchID: q.Get("batch"), Mode: Mode(q.Get("mode")), KeepRejected: h.cfg.MaxRejected}
	switch opts.Mode {
	case "", ModeTokens, ModeLinks:
	default:
		h.writeError(w, r, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "mode", Reason: `must be "tokens" or "links"`})
		return
	}
	if v := q.Get("link_ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			h.writeError(w, r, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "link_ttl", Reason: `must be a positive duration such as "720h"`})
			return
		}
		opts.LinkTTL = d
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "text/csv" {
		opts.Format = FormatCSV
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	sum, err := h.m.Import(r.Context(), body, opts)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, sum)
}

func (h *handler) lookup(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := h.m.Lookup(r.Context(), r.PathValue("BatchId"))
	if err != nil {
		h.writeError(w, r, err)
		return "", false
	}
	return id, true
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	all, err := h.m.List(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, all)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	id, ok := h.lookup(w, r)
	if !ok {
		return
	}
	p, err := h.m.Status(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *handler) results(w http.ResponseWriter, r *http.Request) {
	id, ok := h.lookup(w, r)
	if !ok {
		return
	}
	if _, err := h.m.Info(r.Context(), id); err != nil {
		h.writeError(w, r, err)
		return
	}
	format := FormatNDJSON
	w.Header().Set("Content-Type", "application/x-ndjson")
	if r.URL.Query().Get("format") == "csv" {
		format = FormatCSV
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	// Once streaming has begun the status is sent; an error can only cut the body.
	_ = h.m.Export(r.Context(), id, w, format)
}

func (h *handler) control(w http.ResponseWriter, r *http.Request) {
	id, ok := h.lookup(w, r)
	if !ok {
		return
	}
	var v any
	var err error
	switch r.PathValue("action") {
	case "pause":
		v, err = h.m.Pause(r.Context(), id)
	case "resume":
		v, err = h.m.Resume(r.Context(), id)
	case "cancel":
		v, err = h.m.Cancel(r.Context(), id)
	case "rerun":
		c := r.URL.Query().Get("canceled")
		v, err = h.m.Rerun(r.Context(), id, RerunOptions{IncludeCanceled: c == "1" || c == "true"})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) start(w http.ResponseWriter, r *http.Request) {
	job, err := h.m.Start(r.Context(), r.PathValue("LinkId"))
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, job.VerificationURL, http.StatusFound)
}

func (h *handler) link(w http.ResponseWriter, r *http.Request) {
	l, err := h.m.GetLink(r.Context(), r.PathValue("LinkId"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	if err := h.m.RevokeLink(r.Context(), r.PathValue("LinkId")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
