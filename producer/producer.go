package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// Errors callers branch on.
var (
	// ErrIdempotencyMismatch is returned when an Idempotency-Key is reused with a
	// different request.
	ErrIdempotencyMismatch = errors.New("producer: Idempotency-Key was used with a different request")
	// ErrIdempotencyInFlight is returned when the first request with an
	// Idempotency-Key has not finished enqueueing its job yet; retry shortly.
	ErrIdempotencyInFlight = errors.New("producer: a request with this Idempotency-Key is still being processed")
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLen = 255

// Config configures a Producer.
type Config struct {
	// Redis is the connection to enqueue on. Required.
	Redis redis.UniversalClient
	// ResultTTL is how long a final job's record is kept. Defaults to results.DefaultTTL (24h).
	ResultTTL time.Duration
	// ImageTTL is the longest an image waits for its job. Defaults to images.DefaultTTL (24h).
	ImageTTL time.Duration
	// IdempotencyTTL is how long an Idempotency-Key maps to its job. Defaults to ResultTTL.
	IdempotencyTTL time.Duration
	// DefaultRegion is the region of a job that names none. Defaults to faceid.DefaultRegion.
	DefaultRegion string
	// TaskTimeout bounds one run of a task (rate-limit wait and upstream call).
	// Defaults to 2 minutes.
	TaskTimeout time.Duration
	// CheckCallbackURL validates a job's CallbackURL. When nil, webhooks are off and a
	// job with a CallbackURL is refused with an error that says so.
	CheckCallbackURL func(ctx context.Context, url string) error
	// ReturnBase is faceidq's public base URL (FACEIDQ_PUBLIC_URL). Set, a job with
	// FetchResult is minted with <ReturnBase>/v1/return/<JobId> as RedirectURL, and
	// its own RedirectURL is kept for the return page's redirect. Defaults to none.
	ReturnBase string
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Redis == nil {
		return cfg, errors.New("producer: Config.Redis is required")
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = results.DefaultTTL
	}
	if cfg.ImageTTL <= 0 {
		cfg.ImageTTL = images.DefaultTTL
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = cfg.ResultTTL
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = faceid.DefaultRegion
	}
	if err := faceid.ValidateRegion(cfg.DefaultRegion); err != nil {
		return cfg, fmt.Errorf("producer: DefaultRegion: %w", err)
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Producer enqueues token-apply jobs. It is safe for concurrent use.
type Producer struct {
	cfg     Config
	rdb     redis.UniversalClient
	client  *asynq.Client
	results *results.Store
	images  *images.Store
	commits *committer
}

// New returns a Producer.
func New(cfg Config) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Producer{
		cfg:     cfg,
		rdb:     cfg.Redis,
		client:  asynq.NewClientFromRedisClient(cfg.Redis),
		results: results.New(cfg.Redis, results.Config{TTL: cfg.ResultTTL, Now: cfg.Now}),
		images:  images.New(cfg.Redis, images.Config{TTL: cfg.ImageTTL}),
		commits: newCommitter(cfg.Redis),
	}, nil
}

// Results returns the producer's view of job records.
func (p *Producer) Results() *results.Store { return p.results }

// Options are the per-request options of Submit.
type Options struct {
	// IdempotencyKey makes Submit return the job first created with the same key.
	IdempotencyKey string
	// BatchID ties the job to a campaign.
	BatchID string
	// RowKey is the campaign row the job came from.
	RowKey string
}

// prepared is a validated request ready to be written.
type prepared struct {
	returnURL   string // the caller's RedirectURL of a FetchResult job, when replaced
	jobID       string
	payload     *tasks.ApplyPayload
	encoded     []byte
	image       string // CompareImageBase64 to store, "" for none
	extra       string
	fingerprint string
	opts        Options
}

// prepare validates req and builds its payload. Errors are *faceid.FieldError.
func (p *Producer) prepare(ctx context.Context, req *tasks.TokenRequest, opts Options) (*prepared, error) {
	if req == nil {
		req = &tasks.TokenRequest{}
	}
	r := *req
	if r.CompareImageBase64 != nil {
		stripped, _ := faceid.StripDataURI(*r.CompareImageBase64)
		r.CompareImageBase64 = &stripped
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := validateIdempotencyKey(opts.IdempotencyKey); err != nil {
		return nil, err
	}
	if r.CallbackURL != "" {
		if p.cfg.CheckCallbackURL == nil {
			return nil, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "CallbackURL",
				Reason: "webhooks are off on this server (no FACEIDQ_WEBHOOK_SECRET is configured); omit CallbackURL and poll the job instead"}
		}
		if err := p.cfg.CheckCallbackURL(ctx, r.CallbackURL); err != nil {
			return nil, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "CallbackURL", Reason: err.Error()}
		}
	}
	prio, _ := tasks.ParsePriority(string(r.Priority))
	region := r.Region
	if region == "" {
		region = p.cfg.DefaultRegion
	}
	pr := &prepared{jobID: tasks.NewJobID(), opts: opts}
	in := r.Params()
	if in.CompareImageBase64 != nil {
		pr.image = *in.CompareImageBase64
		in.CompareImageBase64 = nil
	}
	if in.Extra != nil {
		pr.extra = *in.Extra
	}
	pr.payload = &tasks.ApplyPayload{
		JobID: pr.jobID, Priority: prio, Region: region, Input: in,
		CallbackURL: r.CallbackURL, BatchID: opts.BatchID, CreatedAt: p.cfg.Now().UTC(),
	}
	if pr.image != "" {
		pr.payload.ImageRef = images.Ref(pr.image)
	}
	pr.payload.FetchResult = r.FetchResult
	var err error
	if pr.encoded, err = pr.payload.Encode(); err != nil {
		return nil, err
	}
	if opts.IdempotencyKey != "" {
		pr.fingerprint = fingerprint(pr.payload)
	}
	p.returnPage(pr)
	return pr, nil
}

func validateIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKeyLen {
		return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "Idempotency-Key",
			Reason: fmt.Sprintf("is %d bytes long; at most %d", len(k), MaxIdempotencyKeyLen)}
	}
	for _, c := range k {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: "Idempotency-Key",
				Reason: "must be printable ASCII"}
		}
	}
	return nil
}

// fingerprint identifies the request behind a payload, ignoring what Submit chose
// (JobId, time), so that a reused Idempotency-Key can be told apart from a retry.
func fingerprint(pl *tasks.ApplyPayload) string {
	c := *pl
	c.JobID, c.CreatedAt = "", time.Time{}
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func idemKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return keys.Idempotency(hex.EncodeToString(sum[:]))
}

// claim maps an Idempotency-Key to a job unless it maps to one already; it returns
// the existing value, or nil when it claimed the key.
var claim = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// unclaim deletes an Idempotency-Key only if it still maps to our job.
var unclaim = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Submit validates req and enqueues it as a new job, or, when opts.IdempotencyKey
// was used before with the same request, returns that job with created=false.
//
// Errors: *faceid.FieldError for bad input (nothing was written),
// ErrIdempotencyMismatch, ErrIdempotencyInFlight, or a wrapped Redis error (nothing
// was enqueued; the caller may retry).
func (p *Producer) Submit(ctx context.Context, req *tasks.TokenRequest, opts Options) (job *tasks.Job, created bool, err error) {
	pr, err := p.prepare(ctx, req, opts)
	if err != nil {
		return nil, false, err
	}
	if pr.image != "" {
		if _, err := p.images.Put(ctx, pr.image); err != nil {
			return nil, false, fmt.Errorf("producer: %w", err)
		}
	}
	rec := results.NewRecord{
		JobID: pr.jobID, Priority: pr.payload.Priority, Region: pr.payload.Region, Extra: pr.extra,
		BatchID: opts.BatchID, RowKey: opts.RowKey, CallbackURL: pr.payload.CallbackURL,
		Payload: pr.encoded, CreatedAt: pr.payload.CreatedAt,
	}
	// The record is written before the key is claimed, so whoever finds the claim
	// also finds the record. Both go out in one pipeline shared with concurrent Submits.
	var write *redis.IntCmd
	var claimed *redis.Cmd
	p.commits.do(func(pipe redis.Pipeliner) {
		write = p.results.CreateCmd(ctx, pipe, rec)
		p.fetchResultCmd(ctx, pipe, pr)
		if opts.IdempotencyKey != "" {
			claimed = claim.Eval(ctx, pipe, []string{idemKey(opts.IdempotencyKey)},
				pr.jobID+" "+pr.fingerprint, p.cfg.IdempotencyTTL.Milliseconds())
		}
	})
	err = write.Err()
	if err == nil && claimed != nil && !errors.Is(claimed.Err(), redis.Nil) {
		err = claimed.Err()
	}
	if err != nil {
		p.undo(pr, false)
		return nil, false, fmt.Errorf("producer: write job %s: %w", pr.jobID, err)
	}
	if claimed != nil {
		if existing, err := claimed.Text(); err == nil {
			p.undo(pr, false)
			return p.existing(ctx, existing, pr.fingerprint)
		}
	}
	if err := p.enqueue(ctx, pr.payload.Priority, pr.jobID, pr.encoded); err != nil {
		p.undo(pr, true)
		return nil, false, err
	}
	job = &tasks.Job{
		JobId: pr.jobID, Status: tasks.StatusQueued, Extra: pr.extra, CreatedAt: pr.payload.CreatedAt,
		BatchId: opts.BatchID, RowKey: opts.RowKey, Priority: pr.payload.Priority, Region: pr.payload.Region,
	}
	if pr.payload.CallbackURL != "" {
		job.Webhook = &tasks.Webhook{URL: pr.payload.CallbackURL, Status: "pending"}
	}
	job.FetchResult = pr.payload.FetchResult
	return job, true, nil
}

// undo removes what a failed or duplicate Submit wrote. It uses a fresh context: the
// request's may be what ended it.
func (p *Producer) undo(pr *prepared, claimed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.results.Delete(ctx, pr.jobID)
	if pr.image != "" {
		_ = p.images.Release(ctx, pr.payload.ImageRef)
	}
	if claimed && pr.opts.IdempotencyKey != "" {
		_ = unclaim.Run(ctx, p.rdb, []string{idemKey(pr.opts.IdempotencyKey)}, pr.jobID+" "+pr.fingerprint).Err()
	}
}

// existing returns the job an Idempotency-Key maps to, making sure a job that is
// still queued has its task (the first request may have died before enqueueing it).
func (p *Producer) existing(ctx context.Context, value, fp string) (*tasks.Job, bool, error) {
	var jobID, oldFP string
	if n, _ := fmt.Sscanf(value, "%s %s", &jobID, &oldFP); n != 2 {
		return nil, false, fmt.Errorf("producer: malformed idempotency record %q", value)
	}
	if oldFP != fp {
		return nil, false, ErrIdempotencyMismatch
	}
	job, err := p.results.Get(ctx, jobID)
	if errors.Is(err, results.ErrNotFound) {
		return nil, false, ErrIdempotencyInFlight
	}
	if err != nil {
		return nil, false, fmt.Errorf("producer: %w", err)
	}
	if job.Status == tasks.StatusQueued {
		payload, err := p.results.Payload(ctx, jobID)
		if err != nil {
			return nil, false, fmt.Errorf("producer: %w", err)
		}
		if err := p.enqueue(ctx, job.Priority, jobID, payload); err != nil {
			return nil, false, err
		}
	}
	return job, false, nil
}

// enqueue puts a job's task on its lane. The task id is the JobId, so a second
// enqueue of the same job is a no-op.
func (p *Producer) enqueue(ctx context.Context, prio tasks.Priority, jobID string, payload []byte) error {
	_, err := p.client.EnqueueContext(ctx, tasks.NewApplyTask(prio, jobID, payload, p.cfg.TaskTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("producer: enqueue %s: %w", jobID, err)
	}
	return nil
}

// Get returns job jobID (results.ErrNotFound when unknown or expired).
func (p *Producer) Get(ctx context.Context, jobID string) (*tasks.Job, error) {
	return p.results.Get(ctx, jobID)
}
