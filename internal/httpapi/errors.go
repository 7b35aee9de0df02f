package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// Error codes of the envelope beyond the faceid.FieldError codes (MissingParameter,
// InvalidParameter, InvalidParameterValue, UnsupportedRegion), in Tencent's style.
const (
	CodeUnauthorized        = "AuthFailure.UnauthorizedOperation"
	CodeNotFound            = "ResourceNotFound"
	CodeJobNotFound         = "ResourceNotFound.Job"
	CodeMethodNotAllowed    = "UnsupportedOperation.MethodNotAllowed"
	CodeBodyTooLarge        = "RequestSizeLimitExceeded"
	CodeIdempotencyMismatch = "InvalidParameterValue.IdempotencyKeyReused"
	CodeIdempotencyInFlight = "FailedOperation.IdempotencyKeyInFlight"
	CodeUnavailable         = "InternalError.Unavailable"
	// CodeNotReplicated answers a job written but not confirmed by FACEIDQ_ACK_REPLICAS replicas in time.
	CodeNotReplicated    = "InternalError.NotReplicated"
	CodeUnsupportedMedia = "UnsupportedMediaType"
	CodeHostNotAllowed   = "AuthFailure.HostNotAllowed"
	CodeInternal         = "InternalError"
	// CodeWaitTooLong answers a new interactive job refused by admission control
	// (FACEIDQ_MAX_INTERACTIVE_WAIT): its estimated start is too far away.
	CodeWaitTooLong = "LimitExceeded.EstimatedWait"
)

// retryAfter is the Retry-After of a wait d: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// waitTooLong is the answer of admission control: the job would start after wait,
// beyond limit; nothing was enqueued.
func waitTooLong(wait, limit time.Duration, startAt time.Time) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: CodeWaitTooLong,
		message: fmt.Sprintf("a new interactive job would start in about %s (EstimatedStartAt %s), beyond this server's %s (FACEIDQ_MAX_INTERACTIVE_WAIT); nothing was enqueued: retry after Retry-After",
			wait.Round(time.Second), tasks.FormatTime(startAt), limit),
		header: http.Header{"Retry-After": {retryAfter(wait)}}}
}

// Envelope is the body of every error answer:
// {"Error":{"Code":…,"Message":…},"RequestId":…}.
type Envelope struct {
	Error     ErrorBody `json:"Error"`
	RequestId string    `json:"RequestId,omitempty"`
}

// ErrorBody is the error of an Envelope.
type ErrorBody struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// apiError is an error with its answer decided: status, code and a message safe to
// show the caller.
type apiError struct {
	status  int
	code    string
	message string
	header  http.Header
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

var (
	errUnauthorized = &apiError{status: http.StatusUnauthorized, code: CodeUnauthorized,
		message: "Authorization: a valid bearer token is required (Authorization: Bearer <token>)",
		header:  http.Header{"Www-Authenticate": {`Bearer realm="faceidq"`}}}
	errJobNotFound = &apiError{status: http.StatusNotFound, code: CodeJobNotFound,
		message: "JobId: no such job (unknown, malformed, or its result expired)"}
)

func notFoundRoute(r *http.Request) *apiError {
	return &apiError{status: http.StatusNotFound, code: CodeNotFound,
		message: fmt.Sprintf("no route %s %s; see the HTTP API in the README", r.Method, clip(r.URL.Path, 100))}
}

func unsupportedMediaType(got, want string) *apiError {
	given := "is missing"
	if got != "" {
		given = fmt.Sprintf("%q is not accepted", clip(got, 100))
	}
	return &apiError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMedia,
		message: fmt.Sprintf("Content-Type: %s here; send %s", given, want)}
}

func hostNotAllowed(host string) *apiError {
	return &apiError{status: http.StatusMisdirectedRequest, code: CodeHostNotAllowed,
		message: fmt.Sprintf("Host: %q is not an address of this API; without FACEIDQ_API_TOKENS only its listen address and FACEIDQ_PUBLIC_URL's host are served (DNS rebinding)", clip(host, 100))}
}

func methodNotAllowed(r *http.Request, allow string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
		message: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, clip(r.URL.Path, 100), allow),
		header:  http.Header{"Allow": {allow}}}
}

// classify maps an error to its answer. Internal errors get a generic message: the
// detail goes to the log only.
func classify(err error, maxBody int64) (e *apiError, internal bool) {
	var ae *apiError
	var fe *faceid.FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &fe):
		return &apiError{status: http.StatusBadRequest, code: fe.Code, message: fe.Error()}, false
	case errors.As(err, &mbe) && mbe.Limit == maxBody:
		return &apiError{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
			message: fmt.Sprintf("body: larger than %d bytes (room for an 8 MB CompareImageBase64 and the other fields)", maxBody)}, false
	case errors.As(err, &mbe): // a campaign import
		return &apiError{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge, message: err.Error()}, false
	case errors.Is(err, producer.ErrIdempotencyMismatch):
		return &apiError{status: http.StatusUnprocessableEntity, code: CodeIdempotencyMismatch,
			message: "Idempotency-Key: was used before with a different request; use a new key for a new request"}, false
	case campaignError(err) != nil:
		return campaignError(err), false
	case errors.Is(err, producer.ErrNotReplicated):
		// The job exists on the master and may run; it is only not known to be durable.
		return &apiError{status: http.StatusServiceUnavailable, code: CodeNotReplicated,
			message: "the job was written but not confirmed by enough replicas (FACEIDQ_ACK_REPLICAS) in time; " +
				"it may still run: retry with the same Idempotency-Key to get it, never a second one",
			header: http.Header{"Retry-After": {"1"}}}, true
	case errors.Is(err, producer.ErrIdempotencyInFlight):
		return &apiError{status: http.StatusConflict, code: CodeIdempotencyInFlight,
			message: "Idempotency-Key: the first request with this key is still being processed; retry in a second",
			header:  http.Header{"Retry-After": {"1"}}}, false
	}
	return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
		message: "the service cannot reach its queue right now; nothing was done, retry shortly",
		header:  http.Header{"Retry-After": {"1"}}}, true
}

// writeError answers err in the envelope and logs internal errors with their detail.
// An internal error is a 503 (Redis unreachable: nothing was done), or a 500 on the
// campaign routes, whose operations may have been partly done.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeEnvelope(w, requestID(r), a.answerFor(r, err))
}

// answerFor classifies err for r, logging an internal error with its detail.
func (a *API) answerFor(r *http.Request, err error) *apiError {
	e, internal := classify(err, a.cfg.MaxBodyBytes)
	if internal {
		if a.campaignPattern[r.Pattern] {
			e = errCampaignInternal
		}
		ev := a.log.Error()
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			ev = a.log.Debug() // the caller went away
		}
		ev.Err(err).Str("request_id", requestID(r)).Str("method", r.Method).Str("path", clip(r.URL.Path, 100)).Msg("request failed")
	}
	return e
}

func writeEnvelope(w http.ResponseWriter, rid string, e *apiError) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	writeJSON(w, e.status, &Envelope{Error: ErrorBody{Code: e.code, Message: e.message}, RequestId: rid})
}

// jobBuffers hold the buffers writeJSON writes a job into.
var jobBuffers = sync.Pool{New: func() any { return &[]byte{} }}

// maxPooledJob is the largest buffer kept in jobBuffers.
const maxPooledJob = 16 << 10

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if j, ok := v.(*tasks.Job); ok && j != nil {
		// What json.Marshal writes, without its second pass over the bytes, in a
		// buffer used again (Write does not keep it).
		buf := jobBuffers.Get().(*[]byte)
		defer func() {
			if cap(b) <= maxPooledJob {
				*buf = b[:0]
				jobBuffers.Put(buf)
			}
		}()
		b, err = j.AppendJSON((*buf)[:0])
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil { // only our own types are written: cannot happen
		b = []byte(`{"Error":{"Code":"InternalError","Message":"cannot encode the answer"}}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
