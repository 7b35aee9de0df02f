package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/backlog"
	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/httpapi"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/redisconn"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
	"github.com/faceidq/faceidq/worker"
)

// nodeOpts are the options of serve, api and worker (some only for some modes: nil
// when absent).
type nodeOpts struct {
	log                                       *logOpts
	redisURL                                  *option
	secretID, secretKey, endpoint, rate       *option // serve, worker
	credentials                               *option // serve, worker
	region, tokens, webhookSecret, webhookAll *option
	resultTTL                                 *option
	listen, publicURL, ackReplicas            *option // serve, api
	metricsListen, concurrency, callTimeout   *option // serve, worker
	embeddedRedis, simulatorSeed              *option // serve
	verifySweep, verifyKeepOCR                *option // serve, worker
	verifyConcurrency                         *option // serve, worker
	interactiveMaxWait, batchMaxWait          *option // serve, api
	maxInteractiveWait                        *option // serve, api
}

func nodeFlags(mode string) (*flags, *nodeOpts) {
	f := newFlags(mode)
	o := &nodeOpts{log: addLog(f)}
	redisDefault := "none: refuse to start"
	if mode == "serve" {
		redisDefault = "none: embedded in-process Redis"
	}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", redisURLUsage+" ("+redisDefault+")")
	if mode == "serve" {
		o.embeddedRedis = f.opt("embedded-redis-listen", "FACEIDQ_EMBEDDED_REDIS_LISTEN", defaultEmbeddedRedis,
			"loopback address of the embedded Redis (REDIS_URL unset); other faceidq commands reach it with REDIS_URL=redis://<address>/0, logged at start (the default falls back to a free port when taken)")
		o.simulatorSeed = f.opt("simulator-seed", "FACEIDQ_SIMULATOR_SEED", "", "seed of the embedded simulator's random choices (its BizTokens), to repeat a run (default: random, logged at start)")
	}
	o.rate = f.opt("rate", "FACEIDQ_RATE", "20", "global upstream calls per second, shared by every worker (the API's estimates assume it)").as("number")
	if mode != "api" {
		fallback := "none: embedded simulator"
		if mode == "worker" {
			fallback = "required unless --endpoint points at a simulator"
		}
		o.secretID = f.secretOpt("secret-id", "TENCENTCLOUD_SECRET_ID", "Tencent Cloud SecretId ("+fallback+"); prefer the environment over a flag")
		o.secretKey = f.secretOpt("secret-key", "TENCENTCLOUD_SECRET_KEY", "Tencent Cloud SecretKey; prefer the environment over a flag")
		o.credentials = f.opt("credentials", "FACEIDQ_CREDENTIALS", "", "path of a JSON file (mode 0600) of several credential sets used as one pool, instead of TENCENTCLOUD_SECRET_ID/KEY: "+
			`[{"SecretId":"AKID…","SecretKey":"…" or "SecretKeyFile":"/path","Endpoint":"…","Regions":["ap-singapore"]}]; each set is a budget of FACEIDQ_RATE per action (default none)`)
		o.endpoint = f.opt("endpoint", "FACEIDQ_ENDPOINT", "", "upstream host, or URL with scheme such as http://127.0.0.1:9000 (default "+faceid.DefaultEndpoint+")")
		o.metricsListen = f.opt("metrics-listen", "FACEIDQ_METRICS_LISTEN", "", "address serving /healthz, /readyz and /metrics for this worker (default none)")
		o.concurrency = f.opt("concurrency", "FACEIDQ_CONCURRENCY", "32", "token jobs (Apply calls) handled at once by this process, in each lane")
		o.verifyConcurrency = f.opt("verify-concurrency", "FACEIDQ_VERIFY_CONCURRENCY", "32", "verification fetches (Get calls) handled at once by this process, in slots apart from the token jobs'")
		o.callTimeout = f.opt("call-timeout", "FACEIDQ_CALL_TIMEOUT", "10s", "bound of one upstream call; a call cut by it is retried with backoff")
		o.verifySweep = f.opt("verify-sweep", "FACEIDQ_VERIFY_SWEEP", "30m", "after this long, a FetchResult job whose person never came back is fetched once more (then incomplete if unfinished)")
		o.verifyKeepOCR = f.opt("verify-keep-ocr", "FACEIDQ_VERIFY_KEEP_OCR", "", "1: keep the OCR text (names, document numbers) of verifications in the job (default none; images are never kept)")
	}
	if mode != "worker" {
		o.listen = f.opt("listen", "FACEIDQ_LISTEN", "127.0.0.1:8080", "HTTP API listen address")
		o.publicURL = f.opt("public-url", "FACEIDQ_PUBLIC_URL", "", "base URL of campaign start links (<url>/v1/start/<LinkId>), as end users reach the API, e.g. https://kyc.example.com (default http://<listen address>)")
		o.interactiveMaxWait = f.opt("interactive-max-wait", "FACEIDQ_INTERACTIVE_MAX_WAIT", "", "MaxWait of an interactive job that names none: not at the upstream by then, it ends expired with no call (default none)")
		o.batchMaxWait = f.opt("batch-max-wait", "FACEIDQ_BATCH_MAX_WAIT", "", "MaxWait of a batch job that names none (default none)")
		o.maxInteractiveWait = f.opt("max-interactive-wait", "FACEIDQ_MAX_INTERACTIVE_WAIT", "", "admission control: a new interactive job whose estimated start is further away is answered 503 with Retry-After, nothing enqueued (default none: accept every request)")
		o.ackReplicas = f.opt("ack-replicas", "FACEIDQ_ACK_REPLICAS", "0", "replicas that must confirm a job (Redis WAIT) before it is acknowledged; 503 when they do not within 1s (not on Redis Cluster)")
	}
	o.region = f.opt("region", "FACEIDQ_REGION", faceid.DefaultRegion, "default region of a job")
	o.tokens = f.secretOpt("api-tokens", "FACEIDQ_API_TOKENS", "comma-separated bearer tokens required on every route but /healthz (default none: no auth)")
	o.webhookSecret = f.secretOpt("webhook-secret", "FACEIDQ_WEBHOOK_SECRET", "whsec_… secret(s), comma-separated during a rotation, signing webhooks (default none: webhooks off, CallbackURL refused)")
	o.webhookAll = f.opt("webhook-allow", "FACEIDQ_WEBHOOK_ALLOW", "", "comma-separated CIDRs webhooks may reach over http or https despite the private-address guard")
	o.resultTTL = f.opt("result-ttl", "FACEIDQ_RESULT_TTL", "24h", "how long a final job's result is kept")
	return f, o
}

// nodeConfig is the validated configuration of serve, api or worker.
type nodeConfig struct {
	mode     string
	log      zerolog.Logger
	redis    *redisconn.Spec // nil: embedded
	redisURL string

	embeddedRedis      string // serve without REDIS_URL: the embedded Redis's address
	embeddedRedisFixed bool   // given explicitly: no fallback to a free port
	simulatorSeed      uint64 // the embedded simulator's seed; 0: random

	upstream      *faceid.Config // nil: embedded simulator (serve), or sets
	sets          []upstreamSet  // FACEIDQ_CREDENTIALS: several credential sets
	devCreds      bool           // signing with the simulator's development credentials
	rate          float64
	region        string
	listen        string
	publicURL     string // "" : http://<bound listen address>
	ackReplicas   int
	metricsListen string
	tokens        []string
	secrets       []webhook.Secret
	allow         webhook.Policy
	resultTTL     time.Duration
	// interactiveMaxWait, batchMaxWait: a lane's default MaxWait; maxInteractiveWait:
	// admission control. 0: none.
	interactiveMaxWait, batchMaxWait, maxInteractiveWait time.Duration
	concurrency                                          int
	verifyConc                                           int // Get calls at once (worker.Config.VerifyConcurrency)
	callTimeout                                          time.Duration
	verifySweep                                          time.Duration
	verifyKeepOCR                                        bool
}

func (c *nodeConfig) runsAPI() bool    { return c.mode != "worker" }
func (c *nodeConfig) runsWorker() bool { return c.mode != "api" }

// loadNodeConfig parses and validates everything before anything starts: any problem
// is a usageError.
func loadNodeConfig(mode string, args []string, getenv func(string) string, e *env) (*nodeConfig, error) {
	f, o := nodeFlags(mode)
	pos, err := f.parse(args, getenv)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	c := &nodeConfig{mode: mode}
	if c.log, err = o.log.logger(e.stderr); err != nil {
		return nil, err
	}
	if o.redisURL.set() {
		if c.redis, err = redisconn.Parse(o.redisURL.value); err != nil {
			return nil, usagef("%s: %v", o.redisURL.name(), err)
		}
		c.redisURL = redisconn.Redact(o.redisURL.value)
	} else if mode != "serve" {
		return nil, usagef("REDIS_URL (--redis-url) is required: `faceidq %s` must share one Redis with the other processes (only `faceidq serve` embeds one)", mode)
	}
	if o.embeddedRedis != nil {
		if c.embeddedRedis, err = loopbackAddress(o.embeddedRedis); err != nil {
			return nil, err
		}
		c.embeddedRedisFixed = o.embeddedRedis.set()
		if c.simulatorSeed, err = parseSeed(o.simulatorSeed); err != nil {
			return nil, err
		}
	}
	if o.region.value != "" {
		if err := faceid.ValidateRegion(o.region.value); err != nil {
			return nil, o.region.bad(fmt.Sprintf("not a region: one of %v", faceid.Regions))
		}
	}
	c.region = o.region.value
	if c.resultTTL, err = o.resultTTL.duration(); err != nil {
		return nil, err
	}
	if o.verifySweep != nil {
		if c.verifySweep, err = o.verifySweep.duration(); err != nil {
			return nil, err
		}
		c.verifyKeepOCR = o.verifyKeepOCR.value == "1" || o.verifyKeepOCR.value == "true"
	}
	if o.tokens.set() {
		if c.tokens = o.tokens.list(); len(c.tokens) == 0 {
			return nil, usagef("%s is set but holds no token", o.tokens.name())
		}
	}
	if c.secrets, err = webhook.ParseSecrets(o.webhookSecret.value); err != nil {
		return nil, usagef("%s: %v", o.webhookSecret.name(), err)
	}
	if c.allow.Allow, err = webhook.ParseAllow(o.webhookAll.value); err != nil {
		return nil, usagef("%s: %v", o.webhookAll.name(), err)
	}
	if o.listen != nil {
		if c.listen, err = o.listen.address(); err != nil {
			return nil, err
		}
		if o.publicURL.set() {
			if c.publicURL, err = publicURL(o.publicURL); err != nil {
				return nil, err
			}
		}
		if c.ackReplicas, err = strconv.Atoi(o.ackReplicas.value); err != nil || c.ackReplicas < 0 {
			return nil, o.ackReplicas.bad("not a whole number of replicas (0: do not wait)")
		}
		for _, w := range []struct {
			o *option
			d *time.Duration
		}{{o.interactiveMaxWait, &c.interactiveMaxWait}, {o.batchMaxWait, &c.batchMaxWait}, {o.maxInteractiveWait, &c.maxInteractiveWait}} {
			if !w.o.set() {
				continue
			}
			if *w.d, err = w.o.duration(); err != nil {
				return nil, err
			}
			if w.o != o.maxInteractiveWait && (*w.d < time.Second || *w.d > tasks.MaxMaxWait) {
				return nil, w.o.bad("not a duration from 1s to 168h")
			}
		}
	}
	if c.rate, err = o.rate.positiveFloat(); err != nil {
		return nil, err
	}
	if o.secretID == nil {
		return c, nil
	}
	if o.metricsListen.set() {
		if c.metricsListen, err = o.metricsListen.address(); err != nil {
			return nil, err
		}
	}
	if c.concurrency, err = o.concurrency.positiveInt(); err != nil {
		return nil, err
	}
	if c.verifyConc, err = o.verifyConcurrency.positiveInt(); err != nil {
		return nil, err
	}
	concurrencySet := o.concurrency.set()
	if c.callTimeout, err = o.callTimeout.duration(); err != nil {
		return nil, err
	}
	id, key := o.secretID.value, o.secretKey.value
	if o.credentials.set() {
		if id != "" || key != "" {
			return nil, usagef("%s and TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY are both set: give the credentials one way", o.credentials.name())
		}
		if c.sets, err = loadCredentials(o.credentials.value, o.endpoint.value); err != nil {
			return nil, usagef("%s: %v", o.credentials.env, err)
		}
		if !concurrencySet {
			c.concurrency *= len(c.sets) // each set's calls are in flight at once
		}
		if !o.verifyConcurrency.set() {
			c.verifyConc *= len(c.sets)
		}
		return c, nil
	}
	switch {
	case (id == "") != (key == ""):
		return nil, usagef("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY (--secret-id, --secret-key) must be set together")
	case id == "" && !o.endpoint.set():
		if mode == "worker" {
			return nil, usagef("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are required (or FACEIDQ_ENDPOINT pointing at `faceidq simulate`, whose development credentials are then used)")
		}
		return c, nil // serve: embedded simulator
	case id == "":
		id, key, c.devCreds = simulator.DevSecretID, simulator.DevSecretKey, true
	}
	c.upstream = &faceid.Config{Endpoint: o.endpoint.value, SecretID: id, SecretKey: key}
	if _, err := faceid.New(*c.upstream); err != nil {
		return nil, usagef("%s: %v", o.endpoint.name(), err)
	}
	return c, nil
}

func runServe(ctx context.Context, e *env, args []string) error {
	return runNode(ctx, e, "serve", args)
}
func runAPI(ctx context.Context, e *env, args []string) error { return runNode(ctx, e, "api", args) }
func runWorker(ctx context.Context, e *env, args []string) error {
	return runNode(ctx, e, "worker", args)
}

// stack runs clean-up functions in reverse order.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }
func (s *stack) run() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
}

func runNode(ctx context.Context, e *env, mode string, args []string) error {
	c, err := loadNodeConfig(mode, args, e.getenv, e)
	if err != nil {
		return err
	}
	log := c.log.With().Str("cmd", mode).Logger()
	var cleanup stack
	defer cleanup.run()
	m := metrics.New()

	// Redis.
	var rdb redis.UniversalClient
	if c.redis == nil {
		mr, err := startEmbeddedRedis(log, c.embeddedRedis, c.embeddedRedisFixed)
		if err != nil {
			return err
		}
		cleanup.push(mr.Close)
		url := "redis://" + mr.Addr() + "/0"
		log.Warn().Str("redis_addr", mr.Addr()).Str("redis_url", url).Msg("REDIS_URL is unset: using an embedded in-process Redis; other faceidq commands (enqueue, batch, export, status) reach it with REDIS_URL=" +
			url + " while this process runs; nothing survives a restart (set REDIS_URL for production)")
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	} else {
		rdb = c.redis.NewClient()
		log.Info().Str("redis", c.redisURL).Str("kind", string(c.redis.Kind)).Msg("connecting to Redis")
	}
	cleanup.push(func() { _ = rdb.Close() })
	if c.redis == nil {
		// Runs after the servers, the feeder and the workers have stopped.
		cleanup.push(func() { reportEmbeddedLoss(log, rdb) })
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("Redis at %s does not answer: %w", c.redisURL, err)
	}
	if c.redis != nil {
		checkEviction(ctx, log, rdb)
	}

	// Workers (and their upstream).
	var w *worker.Worker
	if c.runsWorker() {
		up := c.upstream
		if up == nil && len(c.sets) == 0 {
			addr, seed, stop, err := startEmbeddedSimulator(log, c.simulatorSeed)
			if err != nil {
				return err
			}
			cleanup.push(stop)
			up = &faceid.Config{Endpoint: "http://" + addr, SecretID: simulator.DevSecretID, SecretKey: simulator.DevSecretKey}
			log.Warn().Str("endpoint", up.Endpoint).Uint64("simulator_seed", seed).Msg("TENCENTCLOUD_SECRET_ID is unset: calling the embedded upstream simulator at " + up.Endpoint +
				" with its development credentials; tokens are not real (set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY for the real API); --simulator-seed " +
				strconv.FormatUint(seed, 10) + " repeats its BizTokens")
		} else if c.devCreds {
			log.Warn().Str("endpoint", up.Endpoint).Msg("TENCENTCLOUD_SECRET_ID is unset: signing with the simulator's development credentials for FACEIDQ_ENDPOINT")
		}
		sets := c.sets
		if up != nil {
			sets = []upstreamSet{{Config: *up}}
		}
		if w, err = newWorker(c, log, rdb, m, sets); err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return err
		}
		cleanup.push(w.Shutdown)
		fp, err := producer.New(producer.Config{Redis: rdb, ResultTTL: c.resultTTL, DefaultRegion: c.region})
		if err != nil {
			return err
		}
		cleanup.push(fp.Close)
		stop, err := startFeeder(log, rdb, campaign.FeederConfig{Redis: rdb, Producer: fp})
		if err != nil {
			return err
		}
		cleanup.push(stop) // runs before the worker's shutdown
	}

	// Servers.
	errc := make(chan error, 2)
	var servers sync.WaitGroup
	listen := func(name, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s for %s: %w", addr, name, err)
		}
		return ln, nil
	}
	serve := func(name string, ln net.Listener, h http.Handler, msg string) {
		srv := httpapi.NewServer(h, httpapi.DefaultMaxWait, &log)
		announce(ctx, log, name, ln.Addr().String(), msg)
		servers.Add(1)
		go func() {
			defer servers.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
		cleanup.push(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			servers.Wait()
		})
	}
	if len(c.tokens) == 0 && (c.runsAPI() || c.metricsListen != "") {
		log.Warn().Msg("FACEIDQ_API_TOKENS is unset: the HTTP API accepts requests without authentication")
	}
	if c.runsAPI() || c.metricsListen != "" {
		// Every process serving /metrics exports the queues (the same values from
		// each: aggregate with max by (queue)).
		if err := m.Register(metrics.NewQueueCollector(asynq.NewInspectorFromRedisClient(rdb))); err != nil {
			return fmt.Errorf("register the queue metrics: %w", err)
		}
	}
	if c.runsAPI() {
		ln, err := listen("api", c.listen)
		if err != nil {
			return err
		}
		pub := defaultPublicURL(c, log, ln.Addr())
		api, p, err := newAPI(c, log, rdb, m, pub, httpapi.LoopbackHosts(ln.Addr(), pub))
		if err != nil {
			_ = ln.Close()
			return err
		}
		cleanup.push(p.Close) // runs after the server's shutdown
		serve("api", ln, api, "HTTP API listening")
		// Registered after the server: runs before its shutdown, so that waiting
		// requests answer at once.
		cleanup.push(func() { _ = api.Close() })
	}
	if c.metricsListen != "" {
		ops, err := httpapi.NewOps(httpapi.Config{Redis: rdb, Metrics: m, Tokens: c.tokens, Logger: &log})
		if err != nil {
			return err
		}
		ln, err := listen("metrics", c.metricsListen)
		if err != nil {
			return err
		}
		serve("metrics", ln, ops, "health and metrics listening")
	}
	log.Info().Msg("faceidq " + mode + " started")
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
		return nil
	case err := <-errc:
		return err
	}
}

// checkEviction warns unless Redis keeps every key under memory pressure.
func checkEviction(ctx context.Context, log zerolog.Logger, rdb redis.UniversalClient) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	policy, err := redisconn.MaxmemoryPolicy(cctx, rdb)
	switch {
	case err != nil:
		log.Debug().Err(err).Msg("cannot read Redis's maxmemory-policy (CONFIG refused?); not checked")
	case policy != redisconn.NoEviction:
		log.Warn().Str("maxmemory_policy", policy).Msg("Redis's maxmemory-policy is " + policy +
			": under memory pressure it may evict queued jobs and results; set maxmemory-policy noeviction")
	}
}

// startEmbeddedSimulator serves an in-process simulator on a loopback port. seed 0
// draws a random seed; the seed in use is returned.
func startEmbeddedSimulator(log zerolog.Logger, seed uint64) (addr string, used uint64, stop func(), err error) {
	sim, err := simulator.New(simulator.Config{Seed: seed})
	if err != nil {
		return "", 0, nil, fmt.Errorf("embedded simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, fmt.Errorf("embedded simulator: listen: %w", err)
	}
	sim.SetPublicURL("http://" + ln.Addr().String()) // its VerificationURLs complete the flow
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sim.Serve(ctx, ln); err != nil {
			log.Error().Err(err).Msg("embedded simulator stopped")
		}
	}()
	return ln.Addr().String(), sim.Seed(), func() { cancel(); <-done }, nil
}

func newWorker(c *nodeConfig, log zerolog.Logger, rdb redis.UniversalClient, m *metrics.Metrics, sets []upstreamSet) (*worker.Worker, error) {
	budgets := make([]worker.Budget, 0, len(sets))
	for _, s := range sets {
		up := s.Config
		up.Timeout = c.callTimeout
		client, err := faceid.New(up)
		if err != nil {
			return nil, err
		}
		budgets = append(budgets, worker.Budget{Account: client.Account(), Masked: ratelimit.MaskAccount(up.SecretID),
			Regions: s.Regions, Upstream: client,
			Limiters: worker.RateLimiters(rdb, client.Account(), client.Endpoint(), ratelimit.Config{Rate: c.rate}, func(err error) {
				log.Warn().Err(err).Msg("budget not announced to the operator console")
			})})
	}
	wlog := log.With().Str("component", "worker").Logger()
	if len(budgets) > 1 {
		for _, b := range budgets {
			wlog.Info().Str("account", b.Masked).Strs("regions", b.Regions).Msg("credential set in the pool")
		}
	}
	if c.resultTTL < 72*time.Hour {
		wlog.Warn().Dur("result_ttl", c.resultTTL).Msg("FACEIDQ_RESULT_TTL is shorter than the three days a verification result can be fetched: " +
			"jobs submitted with FetchResult keep their record for three days after their BizToken anyway")
	}
	cfg := worker.Config{
		Redis: rdb, Budgets: budgets, Concurrency: c.concurrency, VerifyConcurrency: c.verifyConc, ResultTTL: c.resultTTL, CallTimeout: c.callTimeout,
		DefaultRegion: c.region, Logger: &wlog, Metrics: m, VerifySweep: c.verifySweep, VerifyKeepOCR: c.verifyKeepOCR,
	}
	if len(c.secrets) > 0 {
		sender, err := webhook.New(webhook.Config{Secrets: c.secrets, Policy: c.allow, Redis: rdb,
			Enqueuer: asynq.NewClientFromRedisClient(rdb),
			ErrorHandler: func(jobID string, err error) {
				wlog.Warn().Err(err).Str("job_id", jobID).Msg("webhook state not recorded")
			}}, resultsStore(rdb, c), m)
		if err != nil {
			return nil, err
		}
		cfg.Webhooks = sender
	}
	return worker.New(cfg)
}

// newAPI returns the API and its producer (closed by the caller after the API).
func newAPI(c *nodeConfig, log zerolog.Logger, rdb redis.UniversalClient, m *metrics.Metrics, publicURL string, hosts []string) (*httpapi.API, *producer.Producer, error) {
	bl, err := backlog.New(backlog.Config{Redis: rdb, Rate: c.rate})
	if err != nil {
		return nil, nil, err
	}
	pcfg := producer.Config{Redis: rdb, ResultTTL: c.resultTTL, DefaultRegion: c.region, AckReplicas: c.ackReplicas, ReturnBase: publicURL,
		InteractiveMaxWait: c.interactiveMaxWait, BatchMaxWait: c.batchMaxWait, Backlog: bl}
	if len(c.secrets) > 0 {
		policy := c.allow
		pcfg.CheckCallbackURL = func(ctx context.Context, url string) error { return webhook.ValidateURL(ctx, url, policy) }
	}
	p, err := producer.New(pcfg)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*httpapi.API, *producer.Producer, error) {
		p.Close()
		return nil, nil, err
	}
	alog := log.With().Str("component", "api").Logger()
	// The process's one waiter for final jobs: Prefer: wait and start links.
	w, err := jobwait.New(jobwait.Config{Redis: rdb, Results: p.Results()})
	if err != nil {
		return fail(err)
	}
	cm, err := campaign.New(campaign.Config{Redis: rdb, Producer: p, Waiter: w, PublicURL: publicURL})
	if err != nil {
		_ = w.Close()
		return fail(err)
	}
	api, err := httpapi.New(httpapi.Config{Producer: p, Redis: rdb, Tokens: c.tokens, Metrics: m, Logger: &alog,
		Hosts: hosts, Waiter: w, OwnWaiter: true, Campaigns: cm, MaxInteractiveWait: c.maxInteractiveWait})
	if err != nil {
		_ = w.Close()
		return fail(err)
	}
	return api, p, nil
}

// publicURL validates FACEIDQ_PUBLIC_URL: an absolute http or https URL without
// query, fragment or credentials; returned without a trailing slash.
func publicURL(o *option) (string, error) {
	u, err := url.Parse(o.value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o.value, " \t\r\n") {
		return "", o.bad("not an http:// or https:// base URL such as https://kyc.example.com")
	}
	return strings.TrimRight(o.value, "/"), nil
}

// defaultPublicURL returns FACEIDQ_PUBLIC_URL, or http://<addr> when unset (with a
// warning when addr is not a loopback address: other machines cannot use the links).
func defaultPublicURL(c *nodeConfig, log zerolog.Logger, addr net.Addr) string {
	if c.publicURL != "" {
		return c.publicURL
	}
	host, port, _ := net.SplitHostPort(addr.String())
	ip := net.ParseIP(host)
	if ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	u := "http://" + net.JoinHostPort(host, port)
	if ip == nil || !ip.IsLoopback() {
		log.Warn().Str("public_url", u).Msg("FACEIDQ_PUBLIC_URL is unset: campaign start links point at " + u +
			"; set it to the address end users reach (e.g. https://kyc.example.com)")
	}
	return u
}

// startFeeder runs the campaign feeder in the background until the returned stop
// is called (stop waits for it to release its lock). A failed round is logged, at
// most once a minute while failures repeat.
func startFeeder(log zerolog.Logger, rdb redis.UniversalClient, cfg campaign.FeederConfig) (stop func(), err error) {
	f, err := campaign.NewFeeder(cfg)
	if err != nil {
		return nil, err
	}
	flog := log.With().Str("component", "feeder").Logger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last time.Time
		suppressed := 0
		_ = f.Run(ctx, func(err error) {
			if time.Since(last) < time.Minute {
				suppressed++
				return
			}
			flog.Warn().Err(err).Int("suppressed", suppressed).Msg("campaign feeding round failed")
			last, suppressed = time.Now(), 0
		})
	}()
	return func() { cancel(); <-done }, nil
}
