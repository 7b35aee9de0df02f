package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// The verification routes (rows of the route table in routes.go):
// POST /v1/tokens/{JobId}/verification fetches the person's result now; GET
// /v1/return/{JobId} is the person's way back from Tencent (no token: the JobId is
// the capability).

var errNoToken = &apiError{status: http.StatusConflict, code: "FailedOperation.NoBizToken",
	message: "JobId: the job has no BizToken (not succeeded yet, failed or canceled): there is no verification to fetch"}

// postVerification enqueues a fetch at interactive priority and answers the job:
// 200 once the upstream answered within Prefer: wait, 202 while the fetch is queued
// or running.
func (a *API) postVerification(w http.ResponseWriter, r *http.Request) {
	wait, waitGiven, err := parseWait(r.Header, a.cfg.MaxWait)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id := r.PathValue("JobId")
	if !tasks.ValidID("j_", id) {
		a.writeError(w, r, errJobNotFound)
		return
	}
	asked := time.Now()
	switch err := a.cfg.Producer.Fetch(r.Context(), id, tasks.TriggerNow, tasks.PriorityInteractive); {
	case errors.Is(err, results.ErrNotFound):
		a.writeError(w, r, errJobNotFound)
		return
	case errors.Is(err, results.ErrNoToken):
		a.writeError(w, r, errNoToken)
		return
	case err != nil:
		a.writeError(w, r, err)
		return
	}
	if waitGiven {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	job, fetched, err := a.waitFetched(r.Context(), id, asked, wait)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusAccepted
	if fetched {
		status = http.StatusOK
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, job)
}

// waitFetched waits up to wait for a fetch answered after asked (the worker
// announces each answer on keys.Done), and returns the job as it then stands.
func (a *API) waitFetched(ctx context.Context, id string, asked time.Time, wait time.Duration) (*tasks.Job, bool, error) {
	since := asked.Truncate(time.Millisecond)
	fetched := func(j *tasks.Job) bool {
		v := j.Verification
		return v != nil && v.FetchedAt != nil && !v.FetchedAt.Before(since)
	}
	job, err := a.waiter.WaitUntil(ctx, id, wait, func(j *tasks.Job) bool {
		v := j.Verification
		return fetched(j) || (v != nil && v.Status.Final() && v.Error != nil)
	})
	if errors.Is(err, results.ErrNotFound) {
		return nil, false, errJobNotFound
	}
	if err != nil {
		return nil, false, err
	}
	return job, fetched(job), nil
}

// getReturn is where Tencent sends the person back: it enqueues the fetch at
// interactive priority and redirects to the job's own RedirectURL with
// token=<BizToken> appended, as Tencent does. When it cannot redirect (unknown or
// malformed JobId, no BizToken), a browser gets a page and API clients the JSON error.
func (a *API) getReturn(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) {
		if wantsHTML(r) {
			a.writePersonPage(w, r, err, returnPageFor)
			return
		}
		a.writeError(w, r, err)
	}
	id := r.PathValue("JobId")
	if !tasks.ValidID("j_", id) {
		fail(errJobNotFound)
		return
	}
	f, err := a.cfg.Results.Fields(r.Context(), id, tasks.FieldReturnURL, tasks.FieldBizToken)
	if errors.Is(err, results.ErrNotFound) {
		fail(errJobNotFound)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if err := a.cfg.Producer.Fetch(r.Context(), id, tasks.TriggerReturn, tasks.PriorityInteractive); err != nil {
		a.log.Warn().Err(err).Str("job_id", id).Msg("could not enqueue the fetch of a returning person")
	}
	if f[0] == "" {
		if wantsHTML(r) {
			writePage(w, http.StatusOK, nil, personPage{Title: "Thank you", What: "Your verification was received.",
				Do: "You can close this page and go back to the organisation that asked you to verify your identity.", RequestID: requestID(r)})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Thank you: your verification was received.\n"))
		return
	}
	if f[1] == "" && r.URL.Query().Get("token") == "" {
		fail(errNoToken)
		return
	}
	http.Redirect(w, r, appendToken(f[0], r.URL.Query().Get("token"), f[1]), http.StatusFound)
}

// appendToken appends token=<BizToken> to u: the job's own token (the one Tencent
// appended to the return page is the same one).
func appendToken(u, fromQuery, own string) string {
	tok := own
	if tok == "" {
		tok = fromQuery
	}
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set("token", tok)
	p.RawQuery = q.Encode()
	return p.String()
}
