package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/backlog"
	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// Defaults of Config.
const (
	// DefaultMaxWait is the longest Prefer: wait honoured.
	DefaultMaxWait = 30 * time.Second
	// DefaultMaxBodyBytes bounds a POST /v1/tokens body: an 8 MiB CompareImageBase64
	// even with every "/" escaped as "\/" (8.125 MiB), a Data URI header, a 1,000
	// character Extra fully \u-escaped, and the other fields, rounded up to 9 MiB.
	DefaultMaxBodyBytes = 9 << 20
	// DefaultReadyTimeout bounds the Redis check of /readyz.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultLongRequestTimeout bounds a campaign import or export.
	DefaultLongRequestTimeout = time.Hour
	// DefaultMaxImportBytes bounds a POST /v1/batches body.
	DefaultMaxImportBytes = 512 << 20
	// DefaultMaxRejected is how many rejected lines an import answer lists.
	DefaultMaxRejected = 10000
)

// Config configures the API.
type Config struct {
	// Producer submits jobs. Required by New; unused by NewOps.
	Producer *producer.Producer
	// Results reads jobs. Defaults to Producer.Results().
	Results *results.Store
	// Switch is the pipeline switch. Defaults to pipeline.New(Redis).
	Switch *pipeline.Switch
	// Redis is checked by /readyz and carries the subscription to keys.Done. Required.
	Redis redis.UniversalClient
	// Tokens are the accepted bearer tokens (FACEIDQ_API_TOKENS). Empty: no
	// authentication. When set, every route but /healthz requires one.
	Tokens []string
	// Hosts are the Host headers served while no Tokens are set (LoopbackHosts);
	// other requests are answered 421. Empty: any Host.
	Hosts []string
	// Metrics records requests and serves /metrics. Nil: no /metrics, nothing recorded.
	Metrics *metrics.Metrics
	// Logger receives internal errors (with detail) and, at debug level, one line per
	// request. Defaults to a disabled logger.
	Logger *zerolog.Logger
	// MaxWait caps Prefer: wait. Defaults to DefaultMaxWait (30s).
	MaxWait time.Duration
	// MaxBodyBytes bounds a POST /v1/tokens body (413 beyond). Defaults to
	// DefaultMaxBodyBytes (9 MiB).
	MaxBodyBytes int64
	// ReadyTimeout bounds the Redis check of /readyz. Defaults to DefaultReadyTimeout (2s).
	ReadyTimeout time.Duration
	// Waiter waits for final jobs (Prefer: wait): the process's one subscription to
	// keys.Done, shared with the campaign manager's start links. Nil: New makes one
	// and Close closes it.
	Waiter *jobwait.Waiter
	// OwnWaiter makes Close close a given Waiter too.
	OwnWaiter bool
	// Campaigns serves the campaign routes. Nil: no campaign routes. They are behind
	// the authentication but GET /v1/start/{LinkId}: end users open start links from
	// an email, and the unguessable LinkId (128 random bits) is the capability.
	Campaigns *campaign.Manager
	// MaxImportBytes bounds the body of POST /v1/batches (streamed: memory does not
	// grow with it). Defaults to DefaultMaxImportBytes (512 MiB).
	MaxImportBytes int64
	// MaxRejected is how many rejected lines a POST /v1/batches answer lists (all are
	// counted in RejectedCount). Defaults to DefaultMaxRejected (10,000).
	MaxRejected int
	// Backlog estimates the Position and EstimatedStartAt of a job that is not final.
	// Defaults to Producer.Backlog().
	Backlog *backlog.Backlog
	// MaxInteractiveWait is admission control (FACEIDQ_MAX_INTERACTIVE_WAIT): a new
	// interactive job whose estimated start is further away is refused with a 503
	// and Retry-After, nothing enqueued. Needs Backlog. Defaults to 0: every request
	// is accepted.
	MaxInteractiveWait time.Duration
	// LongRequestTimeout is the read and write deadline of the campaign routes that
	// stream a whole campaign (POST /v1/batches, GET /v1/batches/{BatchId}/results),
	// which NewServer's timeouts would cut. It is set once the caller is
	// authenticated. Defaults to DefaultLongRequestTimeout (1h).
	LongRequestTimeout time.Duration
}

func (c Config) withDefaults(full bool) (Config, error) {
	if c.Redis == nil {
		return c, errors.New("httpapi: Config.Redis is required")
	}
	if full && c.Producer == nil {
		return c, errors.New("httpapi: Config.Producer is required")
	}
	if c.Results == nil && c.Producer != nil {
		c.Results = c.Producer.Results()
	}
	if c.Switch == nil {
		c.Switch = pipeline.New(c.Redis)
	}
	if c.Backlog == nil && c.Producer != nil {
		c.Backlog = c.Producer.Backlog()
	}
	for i, t := range c.Tokens {
		if t == "" {
			return c, fmt.Errorf("httpapi: Config.Tokens[%d] is empty", i)
		}
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.LongRequestTimeout <= 0 {
		c.LongRequestTimeout = DefaultLongRequestTimeout
	}
	if c.MaxImportBytes <= 0 {
		c.MaxImportBytes = DefaultMaxImportBytes
	}
	if c.MaxRejected <= 0 {
		c.MaxRejected = DefaultMaxRejected
	}
	return c, nil
}

// API is the HTTP API: an http.Handler. Close it when done.
type API struct {
	cfg     Config
	log     zerolog.Logger
	auth    *authenticator
	mux     *http.ServeMux
	waiter  *jobwait.Waiter
	ownWait bool // waiter was made by New: Close closes it
	metrics http.Handler
	full    bool                 // New, not NewOps
	dead    *webhook.DeadLetters // exhausted webhook deliveries (New only)
	// campaignPattern holds the patterns of the campaign routes, whose internal
	// errors are 500 (an operation may be partly done), not 503.
	campaignPattern map[string]bool
}

// New returns the HTTP API of `faceidq serve` and `faceidq api` (routes in the
// package doc).
func New(cfg Config) (*API, error) {
	a, err := newAPI(cfg, true)
	if err != nil {
		return nil, err
	}
	a.ownWait = cfg.OwnWaiter
	if a.waiter = cfg.Waiter; a.waiter == nil {
		if a.waiter, err = jobwait.New(jobwait.Config{Redis: a.cfg.Redis, Results: a.cfg.Results}); err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
		a.ownWait = true
	}
	if a.dead, err = webhook.NewDeadLetters(webhook.DeadConfig{Redis: a.cfg.Redis, Store: a.cfg.Results,
		Enqueuer: asynq.NewClientFromRedisClient(a.cfg.Redis)}); err != nil {
		a.Close()
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	a.mount()
	return a, nil
}

// NewOps returns the small handler a worker serves on FACEIDQ_METRICS_LISTEN:
// /healthz, /readyz and /metrics, with the same authentication rule as New. Only
// cfg.Redis is required.
func NewOps(cfg Config) (http.Handler, error) {
	a, err := newAPI(cfg, false)
	if err != nil {
		return nil, err
	}
	a.mount()
	return a, nil
}

func newAPI(cfg Config, full bool) (*API, error) {
	cfg, err := cfg.withDefaults(full)
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, log: *cfg.Logger, auth: newAuthenticator(cfg.Tokens), mux: http.NewServeMux(), full: full}
	if cfg.Metrics != nil {
		a.metrics = promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{})
	}
	return a, nil
}

func (a *API) notAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { a.writeError(w, r, methodNotAllowed(r, allow)) }
}

// authed requires a bearer token when tokens are configured.
func (a *API) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.auth.allow(r) {
			a.writeError(w, r, errUnauthorized)
			return
		}
		h(w, r)
	}
}

// Close closes the Waiter (one given in Config.Waiter only with Config.OwnWaiter):
// requests still waiting (Prefer: wait) are answered at once with the job as it
// stands, and later ones do not wait. Call it before http.Server.Shutdown so that
// shutdown does not wait for them.
func (a *API) Close() error {
	if a.ownWait {
		return a.waiter.Close()
	}
	return nil
}

// AuthEnabled reports whether bearer tokens are required.
func (a *API) AuthEnabled() bool { return a.auth.enabled() }

type ctxKey struct{}

// requestID returns the id the API gave r (its X-Request-Id answer header).
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxKey{}).(string)
	return id
}

var (
	ridPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return "r" + hex.EncodeToString(b[:]) + "-"
	}()
	ridCounter atomic.Uint64
)

// ServeHTTP routes r, with a request id (X-Request-Id), panic recovery, metrics and
// a debug log line.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := ridPrefix + strconv.FormatUint(ridCounter.Add(1), 10)
	w.Header().Set("X-Request-Id", rid)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rid))
	sw := &statusWriter{ResponseWriter: w}
	if !a.hostAllowed(r) {
		a.writeError(sw, r, hostNotAllowed(r.Host))
		a.cfg.Metrics.ObserveHTTP("unmatched", sw.status, time.Since(start))
		return
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.Error().Str("request_id", rid).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("handler panicked")
			if sw.status == 0 {
				writeEnvelope(sw, rid, &apiError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error; see the server log for " + rid})
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		d := time.Since(start)
		a.cfg.Metrics.ObserveHTTP(route, status, d)
		if e := a.log.Debug(); e.Enabled() {
			e.Str("request_id", rid).Str("method", r.Method).Str("route", route).Int("status", status).Dur("duration", d).Msg("request")
		}
	}()
	a.mux.ServeHTTP(sw, r)
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// postToken is POST /v1/tokens.
func (a *API) postToken(w http.ResponseWriter, r *http.Request) {
	wait, waitGiven, err := parseWait(r.Header, a.cfg.MaxWait)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	idem, err := idempotencyKey(r.Header)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if r.ContentLength > a.cfg.MaxBodyBytes {
		a.writeError(w, r, &http.MaxBytesError{Limit: a.cfg.MaxBodyBytes})
		return
	}
	body, err := readBody(w, r, a.cfg.MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	req, err := tasks.DecodeTokenRequest(body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.admit(r.Context(), req); err != nil {
		a.writeError(w, r, err)
		return
	}
	job, created, err := a.cfg.Producer.Submit(r.Context(), req, producer.Options{IdempotencyKey: idem})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if created {
		a.cfg.Metrics.ObserveSubmitted(string(job.Priority))
	}
	a.answerJob(w, r, job, wait, waitGiven, true)
}

// admit is admission control: with MaxInteractiveWait, a new interactive job whose
// estimated start is further away is refused. Without an estimate (paused) or on a
// Redis error, it is accepted: the default is to accept.
func (a *API) admit(ctx context.Context, req *tasks.TokenRequest) error {
	if a.cfg.MaxInteractiveWait <= 0 || a.cfg.Backlog == nil || req.Priority == tasks.PriorityBatch {
		return nil
	}
	e, err := a.cfg.Backlog.Estimate(ctx, tasks.PriorityInteractive, 0)
	if err != nil || e.StartAt == nil {
		return nil
	}
	if wait := e.Wait(time.Now()); wait > a.cfg.MaxInteractiveWait {
		return waitTooLong(wait, a.cfg.MaxInteractiveWait, *e.StartAt)
	}
	return nil
}

// idempotencyKey returns the Idempotency-Key header ("" when absent or empty).
func idempotencyKey(h http.Header) (string, error) {
	vs := h.Values("Idempotency-Key")
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", malformed("Idempotency-Key", "is given %d times; send it once", len(vs))
}

// getToken is GET /v1/tokens/{JobId}.
func (a *API) getToken(w http.ResponseWriter, r *http.Request) {
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
	job, err := a.cfg.Results.Get(r.Context(), id)
	if errors.Is(err, results.ErrNotFound) {
		err = errJobNotFound
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.answerJob(w, r, job, wait, waitGiven, false)
}

// answerJob waits for job per the Prefer header, then answers it: 200 when final
// (or for a GET), 202 otherwise.
func (a *API) answerJob(w http.ResponseWriter, r *http.Request, job *tasks.Job, wait time.Duration, waitGiven, post bool) {
	w.Header().Set("Location", "/v1/tokens/"+job.JobId) // every job answer
	if waitGiven {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	if !job.Status.Final() && wait > 0 {
		j, err := a.waiter.WaitFor(r.Context(), job.JobId, wait)
		if errors.Is(err, results.ErrNotFound) {
			err = errJobNotFound
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		job = j
	}
	if a.cfg.Backlog != nil && !job.Status.Final() && !job.Estimated {
		_ = a.cfg.Backlog.Fill(r.Context(), job) // no estimate: Position 0, EstimatedStartAt null
	}
	status := http.StatusOK
	if post && !job.Status.Final() {
		status = http.StatusAccepted
		// Poll again when the job should have started; while paused, in 5 s.
		wait := 5 * time.Second
		if job.EstimatedStartAt != nil {
			wait = time.Until(*job.EstimatedStartAt)
		}
		w.Header().Set("Retry-After", retryAfter(wait))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, job)
}

// getPipeline is GET /v1/pipeline.
func (a *API) getPipeline(w http.ResponseWriter, r *http.Request) {
	a.answerPipeline(w, r)
}

func (a *API) answerPipeline(w http.ResponseWriter, r *http.Request) {
	st, err := a.cfg.Switch.State(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.cfg.Metrics.SetPaused(st.Paused)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

// pausePipeline is POST /v1/pipeline/pause: the operator's hand.
func (a *API) pausePipeline(w http.ResponseWriter, r *http.Request) {
	changed, err := a.cfg.Switch.Pause(r.Context(), pipeline.ReasonOperator)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if changed {
		a.log.Warn().Str("request_id", requestID(r)).Msg("pipeline paused by an operator (POST /v1/pipeline/pause)")
	}
	a.answerPipeline(w, r)
}

// resumePipeline is POST /v1/pipeline/resume.
func (a *API) resumePipeline(w http.ResponseWriter, r *http.Request) {
	changed, err := a.cfg.Switch.Resume(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if changed {
		a.log.Info().Str("request_id", requestID(r)).Msg("pipeline resumed by an operator (POST /v1/pipeline/resume)")
	}
	a.answerPipeline(w, r)
}

// healthz is GET /healthz: the process is up.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"Status": "ok"})
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Ready is true when Redis answers.
	Ready bool `json:"Ready"`
	// Redis is "ok" or "unreachable".
	Redis string `json:"Redis"`
	// Paused is the pipeline switch: a paused pipeline does not make the API unready,
	// since jobs are still accepted (they wait).
	Paused bool `json:"Paused"`
	// Pipeline is the switch in full, when it could be read.
	Pipeline *pipeline.State `json:"Pipeline,omitempty"`
}

// readyz is GET /readyz: Redis is reachable.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ReadyTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := a.cfg.Redis.Ping(ctx).Err(); err != nil {
		a.log.Warn().Err(err).Str("request_id", requestID(r)).Msg("not ready: Redis does not answer")
		writeJSON(w, http.StatusServiceUnavailable, Readiness{Redis: "unreachable"})
		return
	}
	rd := Readiness{Ready: true, Redis: "ok"}
	if st, err := a.cfg.Switch.State(ctx); err == nil {
		rd.Paused, rd.Pipeline = st.Paused, &st
		a.cfg.Metrics.SetPaused(st.Paused)
	}
	writeJSON(w, http.StatusOK, rd)
}

// serveMetrics is GET /metrics, with the pipeline gauge read fresh.
func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ReadyTimeout)
	if st, err := a.cfg.Switch.State(ctx); err == nil {
		a.cfg.Metrics.SetPaused(st.Paused)
	}
	cancel()
	a.metrics.ServeHTTP(w, r)
}
