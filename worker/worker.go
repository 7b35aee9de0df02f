package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// Upstream is the upstream client as the worker uses it (faceid.Client).
type Upstream interface {
	Apply(ctx context.Context, region string, p *faceid.ApplyWebVerificationBizTokenIntlRequestParams) (*faceid.ApplyWebVerificationBizTokenIntlResponseParams, error)
}

// Limiter is the global rate limiter as the worker uses it (ratelimit.Limiter).
type Limiter interface {
	WaitBefore(ctx context.Context, lane ratelimit.Lane, deadline time.Time) (ratelimit.Reservation, error)
	Observe(res ratelimit.Reservation, done time.Time)
	Penalize(ctx context.Context, res ratelimit.Reservation) error
	Interval() time.Duration
}

// Webhooks is the webhook sender as the worker uses it (webhook.Sender): it makes
// the delivery task of a final job and processes delivery tasks.
type Webhooks interface {
	asynq.Handler
	// TaskFor returns the delivery task of a final job, or an error wrapping
	// webhook.ErrNoURL when the job has no webhook.
	TaskFor(job *tasks.Job, opts ...asynq.Option) (*asynq.Task, error)
	// RetryDelay is the delivery retry schedule.
	RetryDelay(n int, err error, t *asynq.Task) time.Duration
}

// Config configures a Worker.
type Config struct {
	// Redis is the shared Redis. Required.
	Redis redis.UniversalClient
	// Upstream calls the API. Required.
	Upstream Upstream
	// Limiter paces upstream calls globally. Required.
	Limiter Limiter
	// Webhooks delivers final jobs to their CallbackURL. Nil: no webhooks.
	Webhooks Webhooks

	// Concurrency is the number of token jobs handled at once by this process.
	// Defaults to 32 (enough for 20 calls/s at 1.5 s of upstream latency).
	Concurrency int
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
	// Logger receives the worker's log lines. Defaults to a disabled logger.
	Logger *zerolog.Logger
	// Metrics records metrics. Nil records nothing.
	Metrics *metrics.Metrics
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Redis == nil:
		return c, errors.New("worker: Config.Redis is required")
	case c.Upstream == nil:
		return c, errors.New("worker: Config.Upstream is required")
	case c.Limiter == nil:
		return c, errors.New("worker: Config.Limiter is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.WebhookConcurrency <= 0 {
		c.WebhookConcurrency = 16
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 15
	}
	c.Backoff = c.Backoff.withDefaults()
	def(&c.ResultTTL, results.DefaultTTL)
	def(&c.TokenValidity, 10*time.Minute)
	def(&c.CallTimeout, 10*time.Second)
	def(&c.MaxSlotWait, 5*time.Second)
	def(&c.RateLimitedDelay, 250*time.Millisecond)
	def(&c.PausedDelay, 2*time.Second)
	def(&c.PollInterval, 10*time.Millisecond)
	def(&c.DelayedCheckInterval, 100*time.Millisecond)
	def(&c.ShutdownTimeout, c.CallTimeout+5*time.Second)
	def(&c.ProbeInterval, 30*time.Second)
	def(&c.RecoverInterval, 2*time.Second)
	def(&c.RecoverSkew, 3*time.Second)
	if c.DefaultRegion == "" {
		c.DefaultRegion = faceid.DefaultRegion
	}
	if c.ProbeRedirectURL == "" {
		c.ProbeRedirectURL = "https://example.com/faceidq-probe"
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Worker drains token-apply jobs and webhook deliveries.
type Worker struct {
	cfg      Config
	log      zerolog.Logger
	results  *results.Store
	images   *images.Store
	switch_  *pipeline.Switch
	watcher  *pipeline.Watcher
	client   *asynq.Client
	tokens   *asynq.Server
	webhooks *asynq.Server

	stopCtx  context.Context // done when shutdown begins: no new upstream call starts
	stop     context.CancelFunc
	bg       context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New returns a Worker; Start runs it.
func New(cfg Config) (*Worker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
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
	}
	w.stopCtx, w.stop = context.WithCancel(context.Background())
	alog := asynqLogger{w.log.With().Str("component", "asynq").Logger()}
	w.tokens = asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{tasks.QueueInteractive: 2, tasks.QueueBatch: 1},
		StrictPriority:           true,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.DelayedCheckInterval,
		RetryDelayFunc:           cfg.Backoff.retryDelay,
		IsFailure:                isFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   alog,
		LogLevel:                 asynq.WarnLevel,
	})
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
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeApplyToken, w.handleApply)
	if err := w.tokens.Start(mux); err != nil {
		cancel()
		return fmt.Errorf("worker: start token server: %w", err)
	}
	if w.webhooks != nil {
		wmux := asynq.NewServeMux()
		wmux.Handle(tasks.TypeDeliverWebhook, w.cfg.Webhooks)
		if err := w.webhooks.Start(wmux); err != nil {
			w.tokens.Shutdown()
			cancel()
			return fmt.Errorf("worker: start webhook server: %w", err)
		}
	}
	w.wg.Add(3)
	go func() { defer w.wg.Done(); w.watcher.Run(ctx, time.Second) }()
	go func() { defer w.wg.Done(); w.recoverLoop(ctx) }()
	go func() { defer w.wg.Done(); w.probeLoop(ctx) }()
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Bool("webhooks", w.webhooks != nil).Msg("worker started")
	return nil
}

// Shutdown stops taking jobs, lets in-flight upstream calls finish (within
// Config.ShutdownTimeout), sends jobs that were only waiting for a slot back to their
// queue, and stops. It is safe to call more than once.
func (w *Worker) Shutdown() {
	w.stopOnce.Do(func() {
		w.stop()
		w.tokens.Shutdown()
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
