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

	"github.com/faceidq/faceidq/internal/asynqwire"
	"github.com/faceidq/faceidq/internal/backlog"
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
	// ErrNotReplicated matches a *ReplicationError.
	ErrNotReplicated = errors.New("producer: the write was not confirmed by enough replicas")
)

// ReplicationError is returned, with Config.AckReplicas, when fewer replicas than
// asked confirmed a write within Config.AckTimeout (an HTTP 503). The job may exist
// and run: retry with the same Idempotency-Key to get it.
type ReplicationError struct {
	Want, Got int
	Timeout   time.Duration
	// Lost reports that the write was not found on the master that answered: it went
	// to a master lost in a failover.
	Lost bool
}

// Error says how many replicas confirmed.
func (e *ReplicationError) Error() string {
	if e.Lost {
		return "producer: the write was lost in a Redis failover; retry"
	}
	return fmt.Sprintf("producer: %d of %d replicas confirmed the write within %v", e.Got, e.Want, e.Timeout)
}

// Is makes errors.Is(err, ErrNotReplicated) true.
func (e *ReplicationError) Is(target error) bool { return target == ErrNotReplicated }

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
	// AckReplicas is the number of replicas that must confirm a job (Redis WAIT)
	// before Submit returns it, and a chunk before a campaign import goes on
	// (FACEIDQ_ACK_REPLICAS). Defaults to 0: no wait. Not supported on Redis Cluster.
	AckReplicas int
	// AckTimeout bounds that wait. Defaults to 1s.
	AckTimeout time.Duration
	// ReturnBase is faceidq's public base URL (FACEIDQ_PUBLIC_URL). Set, a job with
	// FetchResult is minted with <ReturnBase>/v1/return/<JobId> as RedirectURL, and
	// its own RedirectURL is kept for the return page's redirect. Defaults to none.
	ReturnBase string
	// InteractiveMaxWait and BatchMaxWait are the MaxWait of a job of that lane that
	// names none (FACEIDQ_INTERACTIVE_MAX_WAIT, FACEIDQ_BATCH_MAX_WAIT). Defaults to
	// 0: no deadline.
	InteractiveMaxWait, BatchMaxWait time.Duration
	// Backlog gives every job its ticket when it enters its queue (Position,
	// EstimatedStartAt); its Rate is the one estimates assume. Defaults to a
	// backlog.Backlog on Redis at its default rate.
	Backlog *backlog.Backlog
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
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.InteractiveMaxWait < 0 || cfg.BatchMaxWait < 0 || cfg.InteractiveMaxWait > tasks.MaxMaxWait || cfg.BatchMaxWait > tasks.MaxMaxWait {
		return cfg, fmt.Errorf("producer: Config.InteractiveMaxWait and BatchMaxWait must be from 0 to %v", tasks.MaxMaxWait)
	}
	if cfg.Backlog == nil {
		b, err := backlog.New(backlog.Config{Redis: cfg.Redis})
		if err != nil {
			return cfg, fmt.Errorf("producer: %w", err)
		}
		cfg.Backlog = b
	}
	if cfg.AckReplicas < 0 {
		return cfg, errors.New("producer: Config.AckReplicas must not be negative")
	}
	if _, cluster := cfg.Redis.(*redis.ClusterClient); cluster && cfg.AckReplicas > 0 {
		return cfg, errors.New("producer: Config.AckReplicas is not supported on Redis Cluster (WAIT confirms one node's writes only)")
	}
	return cfg, nil
}

// Producer enqueues token-apply jobs. It is safe for concurrent use.
type Producer struct {
	cfg    Config
	rdb    redis.UniversalClient
	client *asynq.Client
	taskw  asynqwire.Writer // tasks written in a job's own pipeline
	// ordered: a pipeline's commands run in order, on one connection. Not on Redis
	// Cluster, whose pipelines go to each node at once: a task there could be
	// dequeued before its record, on another node, is written.
	ordered   bool
	inspector *asynq.Inspector
	results   *results.Store
	images    *images.Store
	commits   *committer
	acks      *committer // nil without Config.AckReplicas
}

// New returns a Producer.
func New(cfg Config) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var acks *committer
	if cfg.AckReplicas > 0 {
		acks = newCommitter(cfg.Redis, nil)
	}
	_, cluster := cfg.Redis.(*redis.ClusterClient)
	_, ring := cfg.Redis.(*redis.Ring)
	return &Producer{
		ordered:   !cluster && !ring,
		cfg:       cfg,
		rdb:       cfg.Redis,
		client:    asynq.NewClientFromRedisClient(cfg.Redis),
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis),
		results:   results.New(cfg.Redis, results.Config{TTL: cfg.ResultTTL, Now: cfg.Now}),
		images:    images.New(cfg.Redis, images.Config{TTL: cfg.ImageTTL}),
		commits:   newCommitter(cfg.Redis, cfg.Backlog),
		acks:      acks,
	}, nil
}

// Close stops the goroutines New started, after the writes queued so far are sent.
// A Submit after Close still works (it writes on its own).
func (p *Producer) Close() {
	p.commits.close()
	if p.acks != nil {
		p.acks.close()
	}
}

// Written is a write Ack checks on the master it waits on: key exists, or, with
// Field, its hash field Field equals Value.
type Written struct {
	Key, Field, Value string
}

// Ack waits until Config.AckReplicas replicas have the writes behind written (writes
// this process made), or returns a *ReplicationError: after Config.AckTimeout, or at
// once when one of those writes is missing (it went to a master lost in a failover:
// go-redis sends the WAIT to the new one). Without AckReplicas it returns nil at once.
//
// Redis WAIT confirms the writes of its own connection, so Ack checks the writes and
// writes a counter (keys.Acks) in one script on the connection of its WAIT: the
// replication stream is ordered, so a replica that has that write has every earlier
// write of this master, from any connection. Concurrent calls share one pipeline.
func (p *Producer) Ack(ctx context.Context, written ...Written) error {
	if p.acks == nil {
		return nil
	}
	ks := make([]string, 0, len(written)+1)
	argv := make([]any, 0, 2*len(written))
	ks = append(ks, keys.Acks)
	for _, w := range written {
		ks = append(ks, w.Key)
		argv = append(argv, w.Field, w.Value)
	}
	var check, wait *redis.Cmd
	p.acks.do(func(pipe redis.Pipeliner) {
		check = ackCheck.Eval(ctx, pipe, ks, argv...) // EVALSHA cannot fall back within a pipeline
		wait = pipe.Do(ctx, "WAIT", p.cfg.AckReplicas, p.cfg.AckTimeout.Milliseconds())
	})
	present, err := check.Int()
	if err != nil {
		return fmt.Errorf("producer: wait for replicas: %w", err)
	}
	n, err := wait.Int()
	if err != nil {
		return fmt.Errorf("producer: wait for replicas: %w", err)
	}
	if present != 1 {
		return &ReplicationError{Want: p.cfg.AckReplicas, Timeout: p.cfg.AckTimeout, Lost: true}
	}
	if n < p.cfg.AckReplicas {
		return &ReplicationError{Want: p.cfg.AckReplicas, Got: n, Timeout: p.cfg.AckTimeout}
	}
	return nil
}

// ackCheck returns 0 when one of the writes is missing: KEYS[i+1] with ARGV[2i-1]
// (a hash field, or "" for the key itself) and ARGV[2i] (its value). Else it
// increments KEYS[1] (a write, so that the WAIT after it covers this master's earlier
// writes) and returns 1.
var ackCheck = redis.NewScript(`
for i = 2, #KEYS do
  local f, v = ARGV[2*i-3], ARGV[2*i-2]
  if f == '' then
    if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
  elseif redis.call('HGET', KEYS[i], f) ~= v then
    return 0
  end
end
redis.call('INCR', KEYS[1])
return 1
`)

// asynqTaskKey is where asynq (v0.26, pinned by TestAsynqTaskKey) keeps task id of
// queue: Ack checks that a job's task reached the master it waits on.
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// jobWrites are the writes a job's acknowledgement depends on: its record and its task.
func jobWrites(prio tasks.Priority, jobID string) []Written {
	return []Written{{Key: keys.Result(jobID)}, {Key: asynqTaskKey(tasks.Queue(tasks.TypeApplyToken, prio), jobID)}}
}

// Backlog returns the counters that place the producer's jobs in their queues.
func (p *Producer) Backlog() *backlog.Backlog { return p.cfg.Backlog }

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
	encoded     []byte // the task's payload: the ids
	input       []any  // the record fields of the input
	image       string // CompareImageBase64 to store, "" for none
	extra       string
	fingerprint string
	opts        Options
}

// Draft is a request validated as Submit validates it, not yet written: a campaign
// import validates each row when it reads it, and writes its job later (WriteDeferred).
type Draft struct {
	req    tasks.TokenRequest // validated, data URI stripped, region set
	prio   tasks.Priority
	region string
}

// Image returns the draft's CompareImageBase64, "" when it has none.
func (d *Draft) Image() string {
	if d.req.CompareImageBase64 == nil {
		return ""
	}
	return *d.req.CompareImageBase64
}

// Request returns the validated request (its region set to the job's).
func (d *Draft) Request() tasks.TokenRequest { return d.req }

// Validate checks req as Submit does and returns it as a Draft. Nothing is written.
// Errors are *faceid.FieldError.
func (p *Producer) Validate(ctx context.Context, req *tasks.TokenRequest) (*Draft, error) {
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
	if r.Region == "" {
		r.Region = p.cfg.DefaultRegion
	}
	return &Draft{req: r, prio: prio, region: r.Region}, nil
}

// prepare validates req and builds its payload. Errors are *faceid.FieldError.
func (p *Producer) prepare(ctx context.Context, req *tasks.TokenRequest, opts Options) (*prepared, error) {
	d, err := p.Validate(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := validateIdempotencyKey(opts.IdempotencyKey); err != nil {
		return nil, err
	}
	pr, err := p.build(d, tasks.NewJobID(), d.prio, opts, false)
	if err != nil {
		return nil, err
	}
	if opts.IdempotencyKey != "" {
		pr.fingerprint = fingerprint(pr)
	}
	return pr, nil
}

// build makes the payload of job jobID from d. With deferImage, the image is left
// out of the payload (the feeder adds it when it enqueues the job).
func (p *Producer) build(d *Draft, jobID string, prio tasks.Priority, opts Options, deferImage bool) (*prepared, error) {
	pr := &prepared{jobID: jobID, opts: opts}
	in := d.req.Params()
	if in.CompareImageBase64 != nil {
		if !deferImage {
			pr.image = *in.CompareImageBase64
		}
		in.CompareImageBase64 = nil
	}
	if in.Extra != nil {
		pr.extra = *in.Extra
	}
	pr.payload = &tasks.ApplyPayload{
		JobID: jobID, Priority: prio, Region: d.region, Input: in,
		CallbackURL: d.req.CallbackURL, BatchID: opts.BatchID, CreatedAt: p.cfg.Now().UTC(),
	}
	if pr.image != "" {
		pr.payload.ImageRef = images.Ref(pr.image)
	}
	pr.payload.FetchResult = d.req.FetchResult
	p.returnPage(pr)
	if w := p.maxWait(d.req.MaxWait, prio); w > 0 {
		pr.payload.Deadline = pr.payload.CreatedAt.Add(w)
	}
	var err error
	if pr.encoded, err = pr.payload.Encode(); err != nil {
		return nil, err
	}
	if pr.input, err = pr.payload.InputFields(); err != nil {
		return nil, err
	}
	return pr, nil
}

// maxWait is a job's MaxWait: its own (seconds), else its lane's default.
func (p *Producer) maxWait(seconds int, prio tasks.Priority) time.Duration {
	if seconds > 0 {
		return time.Duration(seconds) * time.Second
	}
	if prio == tasks.PriorityBatch {
		return p.cfg.BatchMaxWait
	}
	return p.cfg.InteractiveMaxWait
}

func (pr *prepared) record() results.NewRecord {
	return results.NewRecord{
		JobID: pr.jobID, Priority: pr.payload.Priority, Region: pr.payload.Region, Extra: pr.extra,
		BatchID: pr.opts.BatchID, RowKey: pr.opts.RowKey, CallbackURL: pr.payload.CallbackURL,
		Input: pr.input, CreatedAt: pr.payload.CreatedAt, Deadline: pr.payload.Deadline,
	}
}

// WriteDeferred queues on pipe the record of a campaign job: job jobID made from d at
// batch priority, tied to opts.BatchID and opts.RowKey, queued and without a task
// (Feed enqueues it). With deferImage, d's image stays out of Redis until Feed gets
// it; without, it is stored now, as by Submit. Writing the same jobID again writes
// the same job (an interrupted import resumed).
func (p *Producer) WriteDeferred(ctx context.Context, pipe redis.Pipeliner, jobID string, d *Draft, opts Options, deferImage bool) error {
	pr, err := p.build(d, jobID, tasks.PriorityBatch, opts, deferImage)
	if err != nil {
		return err
	}
	if pr.image != "" {
		if _, err := p.images.Put(ctx, pr.image); err != nil {
			return fmt.Errorf("producer: %w", err)
		}
	}
	p.results.CreateCmd(ctx, pipe, pr.record())
	p.fetchResultCmd(ctx, pipe, pr)
	return nil
}

// Feed enqueues the task of job pl, written before by WriteDeferred (pl is its
// record, read with tasks.ApplyPayloadFromRecord). image, when not "", is the job's
// CompareImageBase64 kept out of Redis until now: it is stored and the task refers
// to it. The task id is the JobId: a task pending or running is left alone, and the
// archived or completed task of an earlier run (a re-run) is replaced.
func (p *Producer) Feed(ctx context.Context, pl *tasks.ApplyPayload, image string) error {
	jobID := pl.JobID
	var err error
	if image != "" {
		if pl.ImageRef, err = p.images.Put(ctx, image); err != nil {
			return fmt.Errorf("producer: feed %s: %w", jobID, err)
		}
	}
	payload, err := pl.Encode()
	if err != nil {
		return err
	}
	t := tasks.NewApplyTask(pl.Priority, jobID, payload, p.cfg.TaskTimeout)
	_, err = p.client.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		q := tasks.Queue(tasks.TypeApplyToken, pl.Priority)
		info, ierr := p.inspector.GetTaskInfo(q, jobID)
		if ierr != nil || (info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted) {
			return nil
		}
		_ = p.inspector.DeleteTask(q, jobID)
		_, err = p.client.EnqueueContext(ctx, t)
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("producer: feed %s: %w", jobID, err)
	}
	_, _ = p.cfg.Backlog.Ticket(ctx, pl.Priority, jobID) // no ticket: no estimate
	return nil
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
func fingerprint(pr *prepared) string {
	c := *pr.payload
	if !c.Deadline.IsZero() { // the MaxWait counts, not the time it ends
		c.Deadline = time.Unix(0, 0).UTC().Add(c.Deadline.Sub(c.CreatedAt))
	}
	c.JobID, c.CreatedAt = "", time.Time{}
	if pr.returnURL != "" { // the return page names the JobId: fingerprint the caller's RedirectURL
		u := pr.returnURL
		c.Input.RedirectURL = &u
	}
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
// ErrIdempotencyMismatch, ErrIdempotencyInFlight, a wrapped Redis error (nothing
// was enqueued; the caller may retry), or, with Config.AckReplicas, a
// *ReplicationError (the job may run; retry with the same Idempotency-Key).
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
	// The record is written before the key is claimed, so whoever finds the claim
	// also finds the record. Both go out in one pipeline shared with concurrent Submits.
	// Without an Idempotency-Key the task goes out in the same pipeline, after the
	// record (a worker that finds the task finds the record): one round trip; on
	// Redis Cluster, after it (ordered).
	// The answer's estimate comes from reads queued after every write of the pipeline:
	// they count this job.
	cmds := &submitCmds{} // one allocation for what the closure sets
	reads := p.commits.doReads(func(pipe redis.Pipeliner) { p.queueSubmit(ctx, pipe, pr, cmds) })
	write, claimed, task := cmds.write, cmds.claimed, cmds.task
	err = write.Err()
	if err == nil && claimed != nil && !errors.Is(claimed.Err(), redis.Nil) {
		err = claimed.Err()
	}
	if err != nil {
		p.undo(pr, false)
		return nil, false, fmt.Errorf("producer: write job %s: %w", pr.jobID, err)
	}
	if task != nil {
		if _, err := task.Enqueued(); err != nil { // false: the id is taken, by this very job
			p.undo(pr, false)
			return nil, false, fmt.Errorf("producer: enqueue %s: %w", pr.jobID, err)
		}
	}
	if claimed != nil {
		if existing, err := claimed.Text(); err == nil {
			p.undo(pr, false)
			job, created, err := p.existing(ctx, existing, pr.fingerprint)
			if err == nil && job.Status == tasks.StatusQueued {
				err = p.Ack(ctx, jobWrites(job.Priority, job.JobId)...) // what was read may not be on the replicas yet
			} else if err == nil {
				err = p.Ack(ctx, Written{Key: keys.Result(job.JobId)})
			}
			if err != nil {
				return nil, false, err
			}
			return job, created, nil
		}
	}
	tk, _ := cmds.ticket.Int64() // no ticket: no estimate, the job runs all the same
	_ = p.cfg.Backlog.Store(ctx, pr.jobID, tk)
	if task == nil {
		if err := p.enqueue(ctx, pr.payload.Priority, pr.jobID, pr.encoded); err != nil {
			p.undo(pr, true)
			return nil, false, err
		}
	}
	if p.acks != nil { // jobWrites only when there is a wait
		if err := p.Ack(ctx, jobWrites(pr.payload.Priority, pr.jobID)...); err != nil {
			return nil, false, err // the job stays: a retry with the same key finds it
		}
	}
	job = &tasks.Job{
		JobId: pr.jobID, Status: tasks.StatusQueued, Extra: pr.extra, CreatedAt: pr.payload.CreatedAt,
		BatchId: opts.BatchID, RowKey: opts.RowKey, Priority: pr.payload.Priority, Region: pr.payload.Region,
		Ticket: tk,
	}
	if !pr.payload.Deadline.IsZero() {
		d := pr.payload.Deadline
		job.Deadline = &d
	}
	if pr.payload.CallbackURL != "" {
		job.Webhook = &tasks.Webhook{URL: pr.payload.CallbackURL, Status: "pending"}
	}
	job.FetchResult = pr.payload.FetchResult
	if tk != 0 {
		if e, err := reads.Estimate(job.Priority, tk); err == nil {
			job.Position, job.EstimatedStartAt, job.Estimated = e.Position, e.StartAt, true
		}
	}
	return job, true, nil
}

// submitCmds are the commands of a Submit, queued by queueSubmit.
type submitCmds struct {
	write   *redis.IntCmd
	claimed *redis.Cmd        // with an Idempotency-Key
	task    *asynqwire.Result // without, where a pipeline is ordered
	ticket  *redis.Cmd
}

// queueSubmit queues on pipe the writes of Submit of pr.
func (p *Producer) queueSubmit(ctx context.Context, pipe redis.Pipeliner, pr *prepared, c *submitCmds) {
	c.write = p.results.CreateCmd(ctx, pipe, pr.record())
	c.ticket = p.cfg.Backlog.TicketCmd(ctx, pipe, pr.payload.Priority, pr.jobID)
	p.fetchResultCmd(ctx, pipe, pr)
	if k := pr.opts.IdempotencyKey; k != "" {
		c.claimed = claim.Eval(ctx, pipe, []string{idemKey(k)},
			pr.jobID+" "+pr.fingerprint, p.cfg.IdempotencyTTL.Milliseconds())
	} else if p.ordered {
		c.task = p.taskw.Enqueue(ctx, pipe, p.applyTask(pr.payload.Priority, pr.jobID, pr.encoded), p.cfg.Now())
	}
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
		// The task carries the ids only: the worker reads the input from the record.
		pl := &tasks.ApplyPayload{JobID: jobID, Priority: job.Priority, BatchID: job.BatchId, CreatedAt: job.CreatedAt}
		payload, err := pl.Encode()
		if err != nil {
			return nil, false, err
		}
		if err := p.enqueue(ctx, job.Priority, jobID, payload); err != nil {
			return nil, false, err
		}
	}
	return job, false, nil
}

// applyTask is the Apply task of job jobID as asynqwire writes it: what
// tasks.NewApplyTask gives asynq's client.
func (p *Producer) applyTask(prio tasks.Priority, jobID string, payload []byte) asynqwire.Task {
	return asynqwire.Task{Type: tasks.TypeApplyToken, Payload: payload, ID: jobID, Queue: tasks.Queue(tasks.TypeApplyToken, prio),
		MaxRetry: tasks.AsynqMaxRetry, Timeout: p.cfg.TaskTimeout}
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
