package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/faceidq/faceidq/internal/console"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/tasks"
)

// CodeWebhookNotFound answers a replay of a job without an exhausted delivery.
const CodeWebhookNotFound = "ResourceNotFound.Webhook"

// DefaultBudgetSeconds is how many seconds GET /v1/budgets returns without ?seconds=.
const DefaultBudgetSeconds = 120

// The operator routes (rows of the route table in routes.go): exhausted webhook
// deliveries with replay, each budget's recent use, and the console's page and assets
// (open: they hold no data; every call the page makes sends the bearer token).

// listDeadWebhooks is GET /v1/webhooks/failed: exhausted deliveries, oldest first.
func (a *API) listDeadWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := a.dead.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, list)
}

// replayDeadWebhooks is POST /v1/webhooks/failed/replay: {"Replayed":n}.
func (a *API) replayDeadWebhooks(w http.ResponseWriter, r *http.Request) {
	n, err := a.dead.ReplayAll(r.Context())
	if err != nil && n == 0 {
		a.writeError(w, r, err)
		return
	}
	if err != nil { // some were replayed: say how many, log the rest
		a.log.Error().Err(err).Str("request_id", requestID(r)).Msg("webhook replay all: some replays failed")
	}
	writeJSON(w, http.StatusOK, map[string]int{"Replayed": n})
}

// replayDeadWebhook is POST /v1/webhooks/failed/{JobId}/replay: {"Replayed":1}.
func (a *API) replayDeadWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("JobId")
	var err error = errNoDeadWebhook
	if tasks.ValidID("j_", id) {
		err = a.dead.Replay(r.Context(), id)
	}
	if errors.Is(err, webhook.ErrNotExhausted) {
		err = errNoDeadWebhook
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"Replayed": 1})
}

// console serves GET /ui and /ui/…: the operator console's page and assets.
var consoleHandler = console.Handler()

func (a *API) serveConsole(w http.ResponseWriter, r *http.Request) { consoleHandler.ServeHTTP(w, r) }

var errNoDeadWebhook = &apiError{status: http.StatusNotFound, code: CodeWebhookNotFound,
	message: "this JobId has no exhausted webhook delivery; see GET /v1/webhooks/failed"}

// BudgetUse is one budget in the answer of GET /v1/budgets.
type BudgetUse struct {
	ratelimit.Budget
	// Seconds is the budget's use per second, oldest first, ending now.
	Seconds []ratelimit.Second `json:"Seconds"`
}

// getBudgets is GET /v1/budgets[?seconds=N]: every budget a worker announced, with
// its use over the last N seconds (DefaultBudgetSeconds; at most ratelimit.UsageSeconds).
func (a *API) getBudgets(w http.ResponseWriter, r *http.Request) {
	n := DefaultBudgetSeconds
	if v := r.URL.Query().Get("seconds"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > ratelimit.UsageSeconds {
			a.writeError(w, r, &apiError{status: http.StatusBadRequest, code: faceid.CodeInvalidParameterValue,
				message: "seconds must be a whole number from 1 to " + strconv.Itoa(ratelimit.UsageSeconds)})
			return
		}
	}
	budgets, err := ratelimit.Budgets(r.Context(), a.cfg.Redis)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]BudgetUse, 0, len(budgets))
	for _, b := range budgets {
		secs, err := ratelimit.ReadUsage(r.Context(), a.cfg.Redis, b.Key, n)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out = append(out, BudgetUse{Budget: b, Seconds: secs})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"Budgets": out})
}
