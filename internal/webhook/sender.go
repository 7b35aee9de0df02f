package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Webhook delivery states, as recorded in tasks.Webhook.Status.
const (
	StatusPending   = "pending"   // enqueued, not tried yet (or replayed)
	StatusRetrying  = "retrying"  // an attempt failed; another is scheduled
	StatusDelivered = "delivered" // a 2xx answered
	StatusExhausted = "exhausted" // no attempt left, or the destination was refused; replayable
	StatusGone      = "gone"      // the receiver answered 410 Gone: never retried
)

// Outcomes reported to an Observer, one per attempt.
const (
	OutcomeSuccess   = "success"   // 2xx
	OutcomeFailure   = "failure"   // failed; will be retried
	OutcomeGone      = "gone"      // 410
	OutcomeExhausted = "exhausted" // failed on the last attempt
	OutcomeRefused   = "refused"   // destination refused by the policy, or a bad URL
)

// Store records the delivery state of a job's webhook. The results store implements it;
// the API shows it as the job's Webhook.
type Store interface {
	RecordWebhook(ctx context.Context, jobID string, w tasks.Webhook) error
}

// Observer is told the outcome and duration of every attempt (for metrics). It must not
// block. Outcomes carry no URL and no secret.
type Observer interface {
	Delivered(outcome string, d time.Duration)
}

// Enqueuer enqueues tasks; *asynq.Client implements it.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Config configures a Sender.
type Config struct {
	// Secrets sign every webhook (ParseSecrets of FACEIDQ_WEBHOOK_SECRET); with several,
	// each request carries every signature. Required: New fails with ErrNoSecret.
	Secrets []Secret
	// Policy says which destinations are allowed. Defaults to public https only.
	Policy Policy
	// DefaultURL receives the webhooks of jobs without a callback URL. Defaults to none.
	DefaultURL string
	// Timeout bounds one attempt, from dial to the end of the (limited) response body;
	// at most one minute. Defaults to 15 seconds.
	Timeout time.Duration
	// ConnectTimeout bounds resolution, connect and TLS handshake. Defaults to 5 seconds.
	ConnectTimeout time.Duration
	// TLSConfig is used for https. Defaults to the system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
	// Schedule is the delay before each retry; its length is the number of retries
	// (asynq MaxRetry of TaskFor). Defaults to DefaultSchedule.
	Schedule []time.Duration
	// RandomizationFactor is the jitter of each scheduled delay, in [0, 1). Defaults to
	// DefaultRandomizationFactor; a negative value disables jitter.
	RandomizationFactor float64
	// MaxRetryAfter caps a receiver's Retry-After. Defaults to the longest step of the
	// schedule.
	MaxRetryAfter time.Duration
	// ResponseLimit is how much of a response body is read, for the last-error text.
	// Defaults to 4 KiB.
	ResponseLimit int64
	// UserAgent is sent with every request. Defaults to "faceidq-webhook/1".
	UserAgent string
	// Redis holds the set of exhausted deliveries (keys.WebhookDead). Required.
	Redis redis.UniversalClient
	// Enqueuer enqueues replays. Defaults to none: Replay fails with ErrNoEnqueuer.
	Enqueuer Enqueuer
	// ErrorHandler receives errors that do not fail a task: the state of a delivered
	// webhook that could not be recorded. Defaults to ignoring them.
	ErrorHandler func(jobID string, err error)
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	if c.RandomizationFactor == 0 {
		c.RandomizationFactor = DefaultRandomizationFactor
	} else if c.RandomizationFactor < 0 {
		c.RandomizationFactor = 0
	}
	if c.MaxRetryAfter == 0 {
		for _, d := range c.Schedule {
			c.MaxRetryAfter = max(c.MaxRetryAfter, d)
		}
	}
	if c.ResponseLimit == 0 {
		c.ResponseLimit = 4 << 10
	}
	if c.UserAgent == "" {
		c.UserAgent = "faceidq-webhook/1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.Secrets) == 0:
		return ErrNoSecret
	case c.Redis == nil:
		return errors.New("webhook: Config.Redis is required")
	case c.Timeout < 0 || c.Timeout > time.Minute:
		return errors.New("webhook: Config.Timeout must be within (0, 1m]")
	case c.ConnectTimeout < 0 || c.ConnectTimeout > c.Timeout:
		return errors.New("webhook: Config.ConnectTimeout must be within (0, Timeout]")
	case len(c.Schedule) == 0:
		return errors.New("webhook: Config.Schedule is empty")
	case c.RandomizationFactor >= 1:
		return errors.New("webhook: Config.RandomizationFactor must be below 1")
	case c.MaxRetryAfter < 0 || c.ResponseLimit < 0:
		return errors.New("webhook: Config.MaxRetryAfter and ResponseLimit must not be negative")
	}
	for i, s := range c.Secrets {
		if len(s.key) == 0 {
			return fmt.Errorf("webhook: Config.Secrets[%d] is empty (use ParseSecrets)", i)
		}
	}
	for i, d := range c.Schedule {
		if d <= 0 {
			return fmt.Errorf("webhook: Config.Schedule[%d] is not positive", i)
		}
	}
	if c.DefaultURL != "" {
		u, lit, err := parseURL(c.DefaultURL)
		if err == nil && lit.IsValid() {
			err = c.Policy.checkLiteral(u.Scheme, lit)
		}
		if err != nil {
			return fmt.Errorf("webhook: Config.DefaultURL: %w", err)
		}
	}
	return nil
}

// Sender delivers webhooks: it is the asynq handler of TypeDeliverWebhook tasks.
type Sender struct {
	secrets       []Secret
	client        *http.Client
	defaultURL    string
	schedule      []time.Duration
	factor        float64
	maxRetryAfter time.Duration
	limit         int64
	userAgent     string
	rdb           redis.UniversalClient
	enq           Enqueuer
	store         Store
	obs           Observer
	onError       func(string, error)
	now           func() time.Time
}

// New returns a Sender. store records each attempt's outcome on the job and may be nil
// (nothing recorded); obs is told every outcome and may be nil.
func New(cfg Config, store Store, obs Observer) (*Sender, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Sender{
		secrets: cfg.Secrets,
		client: NewClient(cfg.Policy, ClientOptions{
			ConnectTimeout: cfg.ConnectTimeout,
			Timeout:        cfg.Timeout,
			TLSConfig:      cfg.TLSConfig,
		}),
		defaultURL:    cfg.DefaultURL,
		schedule:      cfg.Schedule,
		factor:        cfg.RandomizationFactor,
		maxRetryAfter: cfg.MaxRetryAfter,
		limit:         cfg.ResponseLimit,
		userAgent:     cfg.UserAgent,
		rdb:           cfg.Redis,
		enq:           cfg.Enqueuer,
		store:         store,
		obs:           obs,
		onError:       cfg.ErrorHandler,
		now:           cfg.Now,
	}, nil
}

// DeliveryError is a failed attempt: an HTTP status other than 2xx, or a transport
// error (Err; StatusCode 0). Its text names neither the URL nor any secret.
type DeliveryError struct {
	// StatusCode is the receiver's HTTP status, or 0 when no response came.
	StatusCode int
	// Body is the start of the response body, sanitised and shortened.
	Body string
	// RetryAfter is the receiver's Retry-After on a 429 or 503, or 0.
	RetryAfter time.Duration
	// Err is the transport error (without the request URL), when StatusCode is 0.
	Err error
}

// Error returns "HTTP <status>[: <body start>]" or the transport error's text.
func (e *DeliveryError) Error() string {
	if e.StatusCode == 0 {
		if e.Err == nil {
			return "webhook: delivery failed"
		}
		return e.Err.Error()
	}
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap returns the transport error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// ProcessTask delivers one TypeDeliverWebhook task: it posts the body with fresh
// Standard Webhooks headers, records the attempt on the job, and tells asynq what to do
// next: nil on a 2xx; asynq.SkipRetry on 410 Gone, on a refused destination and on a bad
// payload; otherwise the *DeliveryError, which RetryDelay turns into the next delay.
// On the last attempt (asynq's retry count has reached MaxRetry) a failure is recorded
// as exhausted and kept for Replay.
func (s *Sender) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := decodePayload(t.Payload())
	if err != nil {
		s.observe(OutcomeRefused, 0)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, hasMax := asynq.GetMaxRetry(ctx)
	last := hasMax && retried >= maxRetry
	attempt := p.PriorAttempts + retried + 1

	start := time.Now()
	derr := s.deliver(ctx, p)
	elapsed := time.Since(start)
	at := s.now().UTC()
	w := tasks.Webhook{URL: p.URL, Attempts: attempt, LastAt: &at}
	if derr != nil {
		w.LastError = derr.Error()
	}
	// Bookkeeping outlives a cancelled delivery (shutdown), briefly.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	failed := func(outcome, status string, dead bool, control error) error {
		s.observe(outcome, elapsed)
		w.Status = status
		errs := []error{fmt.Errorf("webhook: deliver %s of %s, attempt %d: %w", p.ID, p.JobID, attempt, derr)}
		if err := s.record(bctx, p.JobID, w); err != nil {
			errs = append(errs, err)
		}
		if dead {
			if err := s.markExhausted(bctx, p, attempt, w.LastError); err != nil {
				errs = append(errs, err)
			}
		}
		if control != nil {
			errs = append(errs, control)
		}
		return errors.Join(errs...)
	}
	var de *DeliveryError
	switch {
	case derr == nil:
		s.observe(OutcomeSuccess, elapsed)
		w.Status = StatusDelivered
		if err := s.record(bctx, p.JobID, w); err != nil && s.onError != nil {
			s.onError(p.JobID, err)
		}
		return nil
	case errors.As(derr, &de) && de.StatusCode == http.StatusGone:
		return failed(OutcomeGone, StatusGone, false, asynq.SkipRetry)
	case errors.Is(derr, ErrForbidden) || errors.Is(derr, ErrInvalidURL):
		return failed(OutcomeRefused, StatusExhausted, true, asynq.SkipRetry)
	case last:
		return failed(OutcomeExhausted, StatusExhausted, true, nil)
	default:
		return failed(OutcomeFailure, StatusRetrying, false, nil)
	}
}

// deliver makes one attempt. It returns nil on a 2xx and a *DeliveryError otherwise.
func (s *Sender) deliver(ctx context.Context, p *payload) error {
	if _, _, err := parseURL(p.URL); err != nil {
		return &DeliveryError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return &DeliveryError{Err: fmt.Errorf("%w: does not parse", ErrInvalidURL)}
	}
	ts := s.now()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.userAgent)
	h.Set("webhook-id", p.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", Sign(s.secrets, p.ID, ts, p.Body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text would repeat the URL
		}
		return &DeliveryError{Err: err}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, s.limit))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	de := &DeliveryError{StatusCode: resp.StatusCode, Body: sanitize(head, 200)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		de.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	return de
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date. It returns 0
// when the value is missing, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(365*24*3600))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// sanitize turns the start of a response body into one printable line of at most n bytes.
func sanitize(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func (s *Sender) observe(outcome string, d time.Duration) {
	if s.obs != nil {
		s.obs.Delivered(outcome, d)
	}
}

func (s *Sender) record(ctx context.Context, jobID string, w tasks.Webhook) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.RecordWebhook(ctx, jobID, w); err != nil {
		return fmt.Errorf("webhook: record %s state of %s: %w", w.Status, jobID, err)
	}
	return nil
}
