package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/redisconn"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// connect opens the Redis of a one-shot command (REDIS_URL required) and pings it.
func connect(ctx context.Context, url *option) (redis.UniversalClient, error) {
	if !url.set() {
		return nil, usagef("REDIS_URL (--redis-url) is required: the Redis your `faceidq api` and workers use")
	}
	spec, err := redisconn.Parse(url.value)
	if err != nil {
		return nil, usagef("%s: %v", url.name(), err)
	}
	rdb := spec.NewClient()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("Redis at %s does not answer: %w", redisconn.Redact(url.value), err)
	}
	return rdb, nil
}

func resultsStore(rdb redis.UniversalClient, c *nodeConfig) *results.Store {
	return results.New(rdb, results.Config{TTL: c.resultTTL})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// waitFinal waits up to wait for job jobID to be final (through a jobwait.Waiter:
// the one way faceidq waits for a job) and returns it as it then stands.
func waitFinal(ctx context.Context, rdb redis.UniversalClient, store *results.Store, jobID string, wait time.Duration) (*tasks.Job, error) {
	if wait <= 0 {
		return store.Get(ctx, jobID)
	}
	w, err := jobwait.New(jobwait.Config{Redis: rdb, Results: store})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.WaitFor(ctx, jobID, wait)
}

// enqueueOpts are the options of `faceidq enqueue`.
type enqueueOpts struct {
	log                                                  *logOpts
	redisURL, region, resultTTL, webhookSecret, allow    *option
	redirectURL, extra, ruleID, priority, callback, conf *option
	image, idemKey, wait, file                           *option
	maxWait                                              *option
	batch, linkTTL, weight                               *option // with --file
	links, noWait                                        *bool   // with --file
	fetchResult                                          *bool
}

func enqueueFlags() (*flags, *enqueueOpts) {
	f := newFlags("enqueue")
	o := &enqueueOpts{log: addLog(f)}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.region = f.opt("region", "FACEIDQ_REGION", faceid.DefaultRegion, "region of the job")
	o.resultTTL = f.opt("result-ttl", "FACEIDQ_RESULT_TTL", "24h", "how long the final result is kept")
	o.webhookSecret = f.secretOpt("webhook-secret", "FACEIDQ_WEBHOOK_SECRET", "set when the workers sign webhooks: allows --callback-url")
	o.allow = f.opt("webhook-allow", "FACEIDQ_WEBHOOK_ALLOW", "", "CIDRs webhooks may reach despite the private-address guard")
	o.redirectURL = f.opt("redirect-url", "", "", "RedirectURL: where the person lands after verification (required)")
	o.extra = f.opt("extra", "", "", "Extra: pass-through data, at most 1,000 characters")
	o.ruleID = f.opt("rule-id", "", "", "RuleId: the console's business-flow id")
	o.priority = f.opt("priority", "", "interactive", "interactive or batch")
	o.callback = f.opt("callback-url", "", "", "CallbackURL: webhook for this job (needs --webhook-secret)")
	o.conf = f.opt("config", "", "", `Config as JSON, e.g. '{"CheckMode":1,"IDCardType":"HKIDCard"}'`)
	o.image = f.opt("image", "", "", "file holding the photo to compare (JPEG or PNG bytes; - reads stdin)")
	o.idemKey = f.opt("idempotency-key", "", "", "Idempotency-Key: enqueueing again with it returns the same job")
	o.wait = f.opt("wait", "", "0s", "wait this long for the job to be final before printing it")
	o.maxWait = f.opt("max-wait", "", "", "MaxWait: the job's deadline, whole seconds or a duration such as 30s or 5m; not at the upstream by then, it ends expired with no call (default the lane's)")
	o.file = f.opt("file", "", "", "import a campaign from a CSV (.csv) or NDJSON file, then feed it and draw its progress until it is done")
	o.batch = f.opt("batch", "", "", "with --file: the campaign's name (an existing one is resumed without duplicates) or BatchId (default <file name>@<digest of the file>)")
	o.links = f.boolFlag("links", "with --file: make a start link per row instead of a job; the token is minted when the person opens it")
	o.linkTTL = f.opt("link-ttl", "", "720h", "with --links: how long the start links stay valid")
	o.weight = f.opt("weight", "", "", fmt.Sprintf("with --file: the campaign's share of the batch lane against the other active campaigns, 1 to %d (default 1; an existing campaign keeps its own)", campaign.MaxWeight)).as("int")
	o.fetchResult = f.boolFlag("fetch-result", "FetchResult: fetch the person's verification result once they finish (swept after FACEIDQ_VERIFY_SWEEP)")
	o.noWait = f.boolFlag("no-wait", "with --file: return after the import and leave the feeding to the workers (ignored when images are in local files)")
	return f, o
}

func runEnqueue(ctx context.Context, e *env, args []string) error {
	f, o := enqueueFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if o.file.set() {
		return runEnqueueFile(ctx, e, o)
	}
	for _, opt := range []*option{o.batch, o.linkTTL, o.weight} {
		if opt.set() {
			return usagef("--%s needs --file", opt.flag)
		}
	}
	if *o.links || *o.noWait {
		return usagef("--links and --no-wait need --file")
	}
	if _, err := o.log.logger(e.stderr); err != nil {
		return err
	}
	req, err := o.request(e)
	if err != nil {
		return err
	}
	ttl, err := o.resultTTL.duration()
	if err != nil {
		return err
	}
	var wait time.Duration
	if o.wait.value != "0s" && o.wait.value != "0" {
		if wait, err = o.wait.duration(); err != nil {
			return err
		}
	}
	secrets, err := webhook.ParseSecrets(o.webhookSecret.value)
	if err != nil {
		return usagef("%s: %v", o.webhookSecret.name(), err)
	}
	allow, err := webhook.ParseAllow(o.allow.value)
	if err != nil {
		return usagef("%s: %v", o.allow.name(), err)
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	pcfg := producer.Config{Redis: rdb, ResultTTL: ttl, DefaultRegion: o.region.value}
	if len(secrets) > 0 {
		policy := webhook.Policy{Allow: allow}
		pcfg.CheckCallbackURL = func(ctx context.Context, url string) error { return webhook.ValidateURL(ctx, url, policy) }
	}
	p, err := producer.New(pcfg)
	if err != nil {
		return usagef("%v", err)
	}
	defer p.Close()
	job, _, err := p.Submit(ctx, req, producer.Options{IdempotencyKey: o.idemKey.value})
	var fe *faceid.FieldError
	if errors.As(err, &fe) {
		return usagef("%s", flagName(fe))
	}
	if err != nil {
		return err
	}
	if wait > 0 {
		if job, err = waitFinal(ctx, rdb, p.Results(), job.JobId, wait); err != nil {
			return err
		}
	}
	return printJSON(e.stdout, job)
}

// flagName rewrites a FieldError's message with the flag that gave the field.
func flagName(fe *faceid.FieldError) string {
	flags := map[string]string{"RedirectURL": "--redirect-url", "Extra": "--extra", "RuleId": "--rule-id",
		"Priority": "--priority", "CallbackURL": "--callback-url", "CompareImageBase64": "--image",
		"Region": "--region", "Idempotency-Key": "--idempotency-key", "MaxWait": "--max-wait"}
	top, _, _ := strings.Cut(fe.Field, ".")
	if fl, ok := flags[top]; ok {
		return fmt.Sprintf("%s (%s): %s", fl, fe.Field, fe.Reason)
	}
	if top == "Config" {
		return fmt.Sprintf("--config (%s): %s", fe.Field, fe.Reason)
	}
	return fe.Error()
}

// request builds the token request of the flags.
func (o *enqueueOpts) request(e *env) (*tasks.TokenRequest, error) {
	req := &tasks.TokenRequest{Region: o.region.value, CallbackURL: o.callback.value, Priority: tasks.Priority(o.priority.value),
		FetchResult: *o.fetchResult}
	if o.conf.set() {
		c, err := tasks.DecodeConfig([]byte(o.conf.value))
		var fe *faceid.FieldError
		if errors.As(err, &fe) {
			return nil, usagef("--config: %s", fe.Error())
		}
		if err != nil {
			return nil, usagef("--config: %v", err)
		}
		req.Config = c
	}
	str := func(opt *option) *string {
		if !opt.set() {
			return nil
		}
		v := opt.value
		return &v
	}
	req.RedirectURL, req.Extra, req.RuleId = str(o.redirectURL), str(o.extra), str(o.ruleID)
	if o.maxWait.set() {
		n, err := strconv.Atoi(o.maxWait.value)
		if err != nil {
			d, derr := time.ParseDuration(o.maxWait.value)
			if derr != nil || d%time.Second != 0 || d < time.Second {
				return nil, o.maxWait.bad("not a whole number of seconds such as 30, 30s or 5m")
			}
			n = int(d / time.Second)
		}
		if n < 1 {
			return nil, o.maxWait.bad("not a whole number of seconds such as 30, 30s or 5m")
		}
		req.MaxWait = n
	}
	if req.RedirectURL == nil {
		return nil, usagef("--redirect-url is required (or --file to import a campaign)")
	}
	if o.image.set() {
		var b []byte
		var err error
		if o.image.value == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, faceid.MaxImageBase64Len))
		} else {
			b, err = os.ReadFile(o.image.value)
		}
		if err != nil {
			return nil, usagef("--image: %v", err)
		}
		s := base64.StdEncoding.EncodeToString(b)
		req.CompareImageBase64 = &s
	}
	// The same checks as a POST /v1/tokens body gets, before Redis is reached.
	for _, opt := range []*option{o.redirectURL, o.extra, o.ruleID, o.callback, o.region, o.priority} {
		if !utf8.ValidString(opt.value) {
			return nil, usagef("--%s: is not valid UTF-8", opt.flag)
		}
	}
	var fe *faceid.FieldError
	if err := req.Validate(); errors.As(err, &fe) {
		return nil, usagef("%s", flagName(fe))
	}
	return req, nil
}

// statusOpts are the options of `faceidq status`.
type statusOpts struct {
	log            *logOpts
	redisURL, wait *option
}

func statusFlags() (*flags, *statusOpts) {
	f := newFlags("status")
	o := &statusOpts{log: addLog(f)}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.wait = f.opt("wait", "", "0s", "wait this long for the job to be final")
	return f, o
}

func runStatus(ctx context.Context, e *env, args []string) error {
	f, o := statusFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	id, wait, err := jobArgs("status", pos, o.wait)
	if err != nil {
		return err
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	job, err := waitFinal(ctx, rdb, results.New(rdb, results.Config{}), id, wait)
	if errors.Is(err, results.ErrNotFound) {
		return fmt.Errorf("no job %s (unknown, or its result expired)", id)
	}
	if err != nil {
		return err
	}
	return printJSON(e.stdout, job)
}

// jobArgs reads the one JobId argument of `faceidq cmd <JobId>` and its --wait
// (0 when not given).
func jobArgs(cmd string, pos []string, waitOpt *option) (id string, wait time.Duration, err error) {
	if len(pos) != 1 {
		return "", 0, usagef("want exactly one JobId (faceidq %s <JobId>)", cmd)
	}
	if id = pos[0]; !tasks.ValidID("j_", id) {
		return "", 0, usagef("%q is not a JobId (j_ and 26 characters)", clipArg(id))
	}
	if waitOpt.value != "0s" && waitOpt.value != "0" {
		if wait, err = waitOpt.duration(); err != nil {
			return "", 0, err
		}
	}
	return id, wait, nil
}

func clipArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// switchFlags are the options of pipeline, pause and resume.
func switchFlags(name string) (*flags, *option) {
	f := newFlags(name)
	addLog(f)
	return f, f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
}

func runSwitch(ctx context.Context, e *env, args []string, act func(context.Context, *pipeline.Switch) error) error {
	f, url := switchFlags(e.name)
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	rdb, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	sw := pipeline.New(rdb)
	if act != nil {
		if err := act(ctx, sw); err != nil {
			return err
		}
	}
	st, err := sw.State(ctx)
	if err != nil {
		return err
	}
	return printJSON(e.stdout, st)
}

func runPipeline(ctx context.Context, e *env, args []string) error {
	return runSwitch(ctx, e, args, nil)
}

func runPause(ctx context.Context, e *env, args []string) error {
	return runSwitch(ctx, e, args, func(ctx context.Context, sw *pipeline.Switch) error {
		_, err := sw.Pause(ctx, pipeline.ReasonOperator)
		return err
	})
}

func runResume(ctx context.Context, e *env, args []string) error {
	return runSwitch(ctx, e, args, func(ctx context.Context, sw *pipeline.Switch) error {
		_, err := sw.Resume(ctx)
		return err
	})
}
