package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// Upstream is the upstream client as the worker uses it (faceid.Client): one method
// per action.
type Upstream interface {
	Apply(ctx context.Context, region string, p *faceid.ApplyWebVerificationBizTokenIntlRequestParams) (*faceid.ApplyWebVerificationBizTokenIntlResponseParams, error)
	Get(ctx context.Context, region, bizToken string) (*faceid.GetWebVerificationResultIntlResponseParams, error)
}

// Limiter is one action's global rate limiter as the worker uses it (ratelimit.Limiter).
type Limiter interface {
	WaitBefore(ctx context.Context, lane ratelimit.Lane, deadline time.Time) (ratelimit.Reservation, error)
	Observe(res ratelimit.Reservation, done time.Time)
	Penalize(ctx context.Context, res ratelimit.Reservation) error
	Interval() time.Duration
}

// LimiterFunc returns the global limiter of one upstream action (faceid.Action…): the
// budget of the account, that action and the endpoint, i.e. a ratelimit.Limiter on
// keys.Limiter(account, action, endpoint).
type LimiterFunc func(action string) (Limiter, error)

// Webhooks is the webhook sender as the worker uses it (webhook.Sender): it makes
// the delivery task of a final job and processes delivery tasks.
type Webhooks interface {
	asynq.Handler
	// TaskFor returns the delivery task of a final job, or an error wrapping
	// webhook.ErrNoURL when the job has no webhook.
	TaskFor(job *tasks.Job, opts ...asynq.Option) (*asynq.Task, error)
	// VerificationTaskFor returns the delivery task of a job's
	// verification.completed event, or an error wrapping webhook.ErrNoURL.
	VerificationTaskFor(job *tasks.Job, opts ...asynq.Option) (*asynq.Task, error)
	// RetryDelay is the delivery retry schedule.
	RetryDelay(n int, err error, t *asynq.Task) time.Duration
}

// Config configures a Worker.
type Config struct {
	// Redis is the shared Redis. Required.
	Redis redis.UniversalClient
	// Upstream calls the API. Required unless Budgets is set.
	Upstream Upstream
	// Limiters gives each action its budget; New calls it once per action the worker
	// runs. Required unless Limiter or Budgets is set.
	Limiters LimiterFunc
	// Budgets, when set, are several credential sets used as one pool (see Budget);
	// Upstream, Limiters and Limiter are then unused. Defaults to the one set of
	// Upstream and Limiters.
	Budgets []Budget
	// Limiter, when Limiters is nil, paces every action with this one limiter (a
	// worker that runs one action, or tests).
	Limiter Limiter
	// Webhooks delivers final jobs to their CallbackURL. Nil: no webhooks.
	Webhooks Webhooks

	// Concurrency is the number of Apply tasks (tasks.TypeApplyToken) of each lane
	// handled at once by this process: interactive and batch tasks have slots of
	// their own, so a person's job never waits for a slot held by a campaign's.
	// Defaults to 32 (enough for 20 calls/s at 1.5 s of upstream latency).
	Concurrency int
	// VerifyConcurrency is the number of Get tasks (tasks.TypeGetResult, fetches of
	// verification results) handled at once by this process, in slots of their own:
	// an Apply backlog never holds them, nor a Get backlog Apply's. Defaults to 32.
	VerifyConcurrency int
	// WebhookConcurrency is the number of webhook deliveries at once. Defaults to 16.
	WebhookConcurrency int
	// MaxRetries is how many times a job is retried after transient errors before it
	// fails. Rate limiting, pauses and shutdowns do not count. Defaults to 15 (with
	// the default backoff, about ten minutes of retrying).
	MaxRetries int
	// Backoff shapes the delays between those retries.
	Backoff BackoffConfig
	// ResultTTL is how long a final job's record is kept. Defaults to results.DefaultTTL.
	ResultTTL time.Duration
	// TokenValidity is how long a BizToken is valid after it is issued, for ExpiresAt.
	// Defaults to 10 minutes.
	TokenValidity time.Duration
	// CallTimeout bounds one upstream call. Defaults to 10s.
	CallTimeout time.Duration
	// MaxSlotWait is the longest a batch job holds a worker while waiting for a rate
	// slot before it goes back to its queue. Defaults to 5s.
	MaxSlotWait time.Duration
	// RateLimitedDelay is the delay before a rate-limited job runs again. Defaults to 250ms.
	RateLimitedDelay time.Duration
	// PausedDelay is the delay before a job deferred by a pause runs again (asynq keeps
	// paused queues' tasks anyway). Defaults to 2s.
	PausedDelay time.Duration
	// PollInterval is how often an idle worker looks for new jobs. Defaults to 10ms
	// (asynq's 1s would add half a second to an interactive job).
	PollInterval time.Duration
	// BackgroundPollInterval is how often an idle worker looks for new verification
	// fetches (nobody waits on a page for them). Defaults to 50ms: each idle queue's polling costs CPU on
	// every worker and a script on Redis, and CPU stolen on a small machine delays
	// the calls at their slots.
	BackgroundPollInterval time.Duration
	// DelayedCheckInterval is how often retries that are due are moved back to their
	// queue. Defaults to 100ms (asynq's 5s would slow every first retry).
	DelayedCheckInterval time.Duration
	// ShutdownTimeout bounds a graceful shutdown: in-flight calls finish within it.
	// Defaults to CallTimeout + 5s.
	ShutdownTimeout time.Duration
	// DefaultRegion is used by the activation probe. Defaults to faceid.DefaultRegion.
	DefaultRegion string
	// ProbeInterval is how often a paused pipeline whose reason clears by itself is
	// probed. Defaults to 30s.
	ProbeInterval time.Duration
	// ProbeRedirectURL is the RedirectURL of probe calls. Defaults to
	// https://example.com/faceidq-probe.
	ProbeRedirectURL string
	// RecoverInterval is how often the worker looks for tasks of crashed workers
	// (see recover.go). Defaults to 2s.
	RecoverInterval time.Duration
	// RecoverSkew is how long after its lease expired a task is taken back; it
	// allows for clock differences between machines. Defaults to 3s.
	RecoverSkew time.Duration
	// VerifySweep is how long after its BizToken was minted a FetchResult job's
	// result is fetched once more when the person never came back; a verification
	// still unfinished then ends incomplete. Defaults to 30 minutes.
	VerifySweep time.Duration
	// VerifyWindow is how long the upstream keeps a result after the mint; a
	// FetchResult job's record is kept at least that long. Defaults to 72 hours.
	VerifyWindow time.Duration
	// VerifyKeepOCR keeps the OCR text of a verification (names, document
	// numbers) in the job's record. Images are never kept. Defaults to false.
	VerifyKeepOCR bool
	// Logger receives the worker's log lines. Defaults to a disabled logger.
	Logger *zerolog.Logger
	// Metrics records metrics. Nil records nothing.
	Metrics *metrics.Metrics
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, 32)
	c.VerifyConcurrency = cmp.Or(c.VerifyConcurrency, 32)
	c.WebhookConcurrency = cmp.Or(c.WebhookConcurrency, 16)
	c.MaxRetries = cmp.Or(c.MaxRetries, 15)
	c.Backoff = c.Backoff.withDefaults()
	c.ResultTTL = cmp.Or(c.ResultTTL, results.DefaultTTL)
	c.TokenValidity = cmp.Or(c.TokenValidity, 10*time.Minute)
	c.CallTimeout = cmp.Or(c.CallTimeout, 10*time.Second)
	c.MaxSlotWait = cmp.Or(c.MaxSlotWait, 5*time.Second)
	c.RateLimitedDelay = cmp.Or(c.RateLimitedDelay, 250*time.Millisecond)
	c.PausedDelay = cmp.Or(c.PausedDelay, 2*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 10*time.Millisecond)
	c.BackgroundPollInterval = cmp.Or(c.BackgroundPollInterval, 50*time.Millisecond)
	c.DelayedCheckInterval = cmp.Or(c.DelayedCheckInterval, 100*time.Millisecond)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, c.CallTimeout+5*time.Second)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, 30*time.Second)
	c.RecoverInterval = cmp.Or(c.RecoverInterval, 2*time.Second)
	c.RecoverSkew = cmp.Or(c.RecoverSkew, 3*time.Second)
	c.VerifySweep = cmp.Or(c.VerifySweep, 30*time.Minute)
	c.VerifyWindow = cmp.Or(c.VerifyWindow, 72*time.Hour)
	c.DefaultRegion = cmp.Or(c.DefaultRegion, faceid.DefaultRegion)
	c.ProbeRedirectURL = cmp.Or(c.ProbeRedirectURL, "https://example.com/faceidq-probe")
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Redis == nil:
		return errors.New("worker: Config.Redis is required")
	case len(c.Budgets) > 0:
		if err := validateBudgets(c.Budgets); err != nil {
			return err
		}
	case c.Upstream == nil:
		return errors.New("worker: Config.Upstream is required")
	case c.Limiters == nil && c.Limiter == nil:
		return errors.New("worker: Config.Limiters (or Limiter) is required")
	}
	switch {
	case c.Concurrency < 0, c.VerifyConcurrency < 0, c.WebhookConcurrency < 0, c.MaxRetries < 0:
		return errors.New("worker: Config.Concurrency, VerifyConcurrency, WebhookConcurrency and MaxRetries must not be negative")
	}
	for name, d := range map[string]time.Duration{
		"ResultTTL": c.ResultTTL, "TokenValidity": c.TokenValidity, "CallTimeout": c.CallTimeout,
		"MaxSlotWait": c.MaxSlotWait, "RateLimitedDelay": c.RateLimitedDelay, "PausedDelay": c.PausedDelay,
		"PollInterval": c.PollInterval, "BackgroundPollInterval": c.BackgroundPollInterval, "DelayedCheckInterval": c.DelayedCheckInterval,
		"ShutdownTimeout": c.ShutdownTimeout, "ProbeInterval": c.ProbeInterval,
		"RecoverInterval": c.RecoverInterval, "RecoverSkew": c.RecoverSkew,
		"VerifySweep": c.VerifySweep, "VerifyWindow": c.VerifyWindow,
	} {
		if d < 0 {
			return fmt.Errorf("worker: Config.%s must not be negative, got %v", name, d)
		}
	}
	return nil
}

// limiter returns the budget of one action.
func (c Config) limiter(action string) (Limiter, error) {
	if c.Limiters == nil {
		return c.Limiter, nil
	}
	return c.Limiters(action)
}

// concurrency returns the slots of one action's server.
func (c Config) concurrency(action string) int {
	if action == faceid.ActionGet {
		return c.VerifyConcurrency
	}
	return c.Concurrency
}

// Worker drains the tasks of every action (upstream calls) and webhook deliveries.
// Each action has its own asynq server over its own queues (tasks.Queue), so a
// backlog of one action holds neither the queue position nor the slots of another.
type Worker struct {
	cfg      Config
	log      zerolog.Logger
	results  *results.Store
	images   *images.Store
	switch_  *pipeline.Switch
	watcher  *pipeline.Watcher
	client   *asynq.Client
	servers  []*actionServer // one per action's queues, in registration order
	webhooks *asynq.Server
	alog     asynqLogger
	budgets  []*budget // the credential sets (budget.go); one unless Config.Budgets
	rotor    atomic.Uint64

	stopCtx  context.Context // done when shutdown begins: no new upstream call starts
	stop     context.CancelFunc
	bg       context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New returns a Worker; Start runs it.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sw := pipeline.New(cfg.Redis)
	w := &Worker{
		cfg:     cfg,
		log:     *cfg.Logger,
		results: results.New(cfg.Redis, results.Config{TTL: cfg.ResultTTL, Now: cfg.Now}),
		images:  images.New(cfg.Redis, images.Config{}),
		switch_: sw,
		watcher: pipeline.NewWatcher(sw),
		client:  asynq.NewClientFromRedisClient(cfg.Redis),
		alog:    asynqLogger{l: cfg.Logger.With().Str("component", "asynq").Logger()},
		budgets: newBudgets(cfg),
	}
	if err := actionsOf(w); err != nil {
		return nil, err
	}
	w.stopCtx, w.stop = context.WithCancel(context.Background())
	alog := w.alog
	if cfg.Webhooks != nil {
		w.webhooks = asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
			Concurrency:              cfg.WebhookConcurrency,
			Queues:                   map[string]int{tasks.QueueWebhooks: 1},
			TaskCheckInterval:        100 * time.Millisecond,
			DelayedTaskCheckInterval: time.Second,
			RetryDelayFunc:           cfg.Webhooks.RetryDelay,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			Logger:                   alog,
			LogLevel:                 asynq.WarnLevel,
		})
	}
	return w, nil
}

// Start starts the worker's servers and background loops.
func (w *Worker) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	w.bg = cancel
	if err := w.watcher.Refresh(ctx); err != nil {
		cancel()
		return fmt.Errorf("worker: read pipeline switch: %w", err)
	}
	for i, s := range w.servers {
		if err := s.srv.Start(s.mux); err != nil {
			w.shutdownServers(w.servers[:i])
			cancel()
			return fmt.Errorf("worker: start the server of %v: %w", s.queues, err)
		}
	}
	if w.webhooks != nil {
		wmux := asynq.NewServeMux()
		wmux.Handle(tasks.TypeDeliverWebhook, w.cfg.Webhooks)
		if err := w.webhooks.Start(wmux); err != nil {
			w.shutdownServers(w.servers)
			cancel()
			return fmt.Errorf("worker: start webhook server: %w", err)
		}
	}
	w.wg.Add(3)
	go func() { defer w.wg.Done(); w.watcher.Run(ctx, time.Second) }()
	go func() { defer w.wg.Done(); w.recoverLoop(ctx) }()
	go func() { defer w.wg.Done(); w.probeLoop(ctx) }()
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Int("verify_concurrency", w.cfg.VerifyConcurrency).
		Bool("webhooks", w.webhooks != nil).Msg("worker started")
	return nil
}

// Shutdown stops taking jobs, lets in-flight upstream calls finish (within
// Config.ShutdownTimeout), sends jobs that were only waiting for a slot back to their
// queue, and stops. It is safe to call more than once.
func (w *Worker) Shutdown() {
	w.stopOnce.Do(func() {
		w.stop()
		w.shutdownServers(w.servers)
		if w.webhooks != nil {
			w.webhooks.Shutdown()
		}
		if w.bg != nil {
			w.bg()
		}
		w.wg.Wait()
		w.log.Info().Msg("worker stopped")
	})
}

// Run starts the worker and shuts it down when ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Shutdown()
	return nil
}

// Pipeline returns the pipeline switch.
func (w *Worker) Pipeline() *pipeline.Switch { return w.switch_ }
