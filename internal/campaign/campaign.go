package campaign

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// Errors callers branch on.
var (
	// ErrNotFound is returned for a campaign that does not exist.
	ErrNotFound = errors.New("campaign: campaign not found")
	// ErrCanceled is returned when jobs are imported into a canceled campaign.
	ErrCanceled = errors.New("campaign: campaign is canceled")
	// ErrModeMismatch is returned when rows are imported into an existing campaign of
	// the other mode (tokens vs links).
	ErrModeMismatch = errors.New("campaign: the campaign exists in the other mode")
	// ErrImportRunning is returned when another import into the same campaign is
	// running (or died less than 30 s ago).
	ErrImportRunning = errors.New("campaign: another import into this campaign is running")
	// ErrLinkNotFound is returned for a start link that does not exist.
	ErrLinkNotFound = errors.New("campaign: link not found")
	// ErrLinkExpired is returned for a start link past its own expiry.
	ErrLinkExpired = errors.New("campaign: link expired")
	// ErrLinkRevoked is returned for a revoked start link.
	ErrLinkRevoked = errors.New("campaign: link revoked")
	// ErrMintTimeout is returned when a link's token was not minted within
	// Config.MintTimeout; opening the link again picks up the same job.
	ErrMintTimeout = errors.New("campaign: the token was not ready in time; open the link again")
)

// MintError is returned when minting a link's token failed upstream (the job is
// final and not succeeded). Opening the link again mints anew.
type MintError struct {
	JobID   string
	Code    string
	Message string
}

// Error returns the job's error.
func (e *MintError) Error() string {
	return fmt.Sprintf("campaign: minting job %s failed: %s: %s", e.JobID, e.Code, e.Message)
}

// Mode says what a campaign makes for each row.
type Mode string

// Campaign modes.
const (
	// ModeTokens makes one token-apply job per row, fed to the batch queue.
	ModeTokens Mode = "tokens"
	// ModeLinks makes one durable start link per row; the token is minted when the
	// person opens the link (deferred minting).
	ModeLinks Mode = "links"
)

// State is a campaign's control state.
type State string

// Campaign states.
const (
	// StateActive campaigns are fed to the batch queue.
	StateActive State = "active"
	// StatePaused campaigns are not fed; jobs already fed run to the end.
	StatePaused State = "paused"
	// StateCanceled campaigns are not fed; their jobs that had not started were canceled.
	StateCanceled State = "canceled"
	// StateDone is reported by Status for an active campaign whose every job is final
	// (and no import is writing into it). It is not stored: importing more rows or a
	// re-run makes the campaign active again.
	StateDone State = "done"
)

// Batch hash fields (keys.Batch).
const (
	fName       = "Name"
	fMode       = "Mode"
	fState      = "State"
	fCreatedAt  = "CreatedAt"
	fTotal      = "Total"
	fFed        = "Fed"
	fRerunFed   = "RerunFed"
	fFirstFedAt = "FirstFedAt"
	fFeeder     = "Feeder" // "local": fed by its importing process only
	fOpened     = "Opened"
	fMinted     = "Minted"
	fMints      = "Mints"
	fWeight     = "Weight" // share of the batch lane (absent: DefaultWeight)
)

// Weights of a campaign in the batch lane: active campaigns share it in proportion
// to their weights (see Feeder).
const (
	// DefaultWeight is the weight of a campaign imported without one.
	DefaultWeight = 1
	// MaxWeight is the largest weight.
	MaxWeight = 1000
)

// checkWeight returns the error of a weight out of range (0 is not a weight: it
// means "unchanged" or "the default" where it is allowed).
func checkWeight(w int) error {
	if w < 1 || w > MaxWeight {
		return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "weight",
			Reason: fmt.Sprintf("must be an integer from 1 to %d", MaxWeight)}
	}
	return nil
}

// weightOf reads a stored weight (DefaultWeight when absent or malformed).
func weightOf(s string) int {
	if w := atoi(s); checkWeight(w) == nil {
		return w
	}
	return DefaultWeight
}

// Config configures a Manager.
type Config struct {
	// Redis is the shared Redis. Required.
	Redis redis.UniversalClient
	// Producer validates rows and writes their jobs, as for every job. Required. Its
	// DefaultRegion, CheckCallbackURL, TaskTimeout and ResultTTL apply to campaigns.
	Producer *producer.Producer
	// ImageTTL is the longest the image of a re-run job waits for it. Defaults to
	// images.DefaultTTL.
	ImageTTL time.Duration
	// LinkTTL is how long a start link stays valid when the import names no expiry.
	// Defaults to 30 days.
	LinkTTL time.Duration
	// TokenMargin is how long before its ExpiresAt a minted token stops being reused
	// by its link (the person needs time to finish the check). Defaults to 2 minutes.
	TokenMargin time.Duration
	// MintTimeout bounds how long opening a link waits for its token. Defaults to 20s.
	MintTimeout time.Duration
	// MintMaxWait is the MaxWait of the job minting a link's token: the person is
	// waiting on the redirect, so a job that cannot start soon expires instead of
	// minting a token nobody collects. Defaults to 60s.
	MintMaxWait time.Duration
	// Mint submits the interactive job that mints a link's token and returns it (final
	// or not; Start waits for it to be final). The same idempotency key must return
	// the same job. Defaults to MintWithProducer(Producer).
	Mint MintFunc
	// Waiter waits for a minting job to be final (a *jobwait.Waiter, shared with the
	// API). Required with Mint.
	Waiter JobWaiter
	// PublicURL is the base of start links in exports, e.g. "https://kyc.example.com"
	// (the link is PublicURL + "/v1/start/" + LinkId). Defaults to "" (exports list
	// the LinkId only).
	PublicURL string
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

// MintFunc submits the job minting a link's token (see Config.Mint).
type MintFunc func(ctx context.Context, req *tasks.TokenRequest, idempotencyKey string) (*tasks.Job, error)

func (c Config) withDefaults() Config {
	c.ImageTTL = cmp.Or(c.ImageTTL, images.DefaultTTL)
	c.LinkTTL = cmp.Or(c.LinkTTL, 30*24*time.Hour)
	c.TokenMargin = cmp.Or(c.TokenMargin, 2*time.Minute)
	c.MintTimeout = cmp.Or(c.MintTimeout, 20*time.Second)
	c.MintMaxWait = cmp.Or(c.MintMaxWait, time.Minute)
	if c.Mint == nil && c.Producer != nil {
		c.Mint = MintWithProducer(c.Producer)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Redis == nil:
		return errors.New("campaign: Config.Redis is required")
	case c.Producer == nil:
		return errors.New("campaign: Config.Producer is required")
	case c.ImageTTL < 0 || c.LinkTTL < 0 || c.TokenMargin < 0 || c.MintTimeout < 0 || c.MintMaxWait < 0:
		return errors.New("campaign: durations in Config must not be negative")
	}
	return nil
}

// Manager imports, controls, observes and exports campaigns, and serves their start
// links. It is safe for concurrent use.
type Manager struct {
	cfg       Config
	rdb       redis.UniversalClient
	producer  *producer.Producer
	results   *results.Store
	images    *images.Store
	inspector *asynq.Inspector

	mu    sync.Mutex
	cache map[string]cachedProgress
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Manager{
		cfg:       cfg,
		rdb:       cfg.Redis,
		producer:  cfg.Producer,
		results:   cfg.Producer.Results(),
		images:    images.New(cfg.Redis, images.Config{TTL: cfg.ImageTTL}),
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis),
		cache:     map[string]cachedProgress{},
	}, nil
}

// Info describes a campaign (without its progress).
type Info struct {
	BatchId string `json:"BatchId"`
	Name    string `json:"Name"`
	Mode    Mode   `json:"Mode"`
	State   State  `json:"State"`
	Total   int    `json:"Total"`
	// Weight is the campaign's share of the batch lane relative to the other
	// active campaigns (1 to MaxWeight).
	Weight    int       `json:"Weight"`
	CreatedAt time.Time `json:"CreatedAt"`
	// LocalImages reports that images of the campaign are in its importing process's
	// files: only a Feeder with FeederConfig.Batch (the importing CLI) or LoadFiles
	// feeds it.
	LocalImages bool `json:"LocalImages,omitempty"`
}

// Lookup returns the BatchId of a campaign given its BatchId or its name.
func (m *Manager) Lookup(ctx context.Context, idOrName string) (string, error) {
	if tasks.ValidID("b_", idOrName) {
		n, err := m.rdb.Exists(ctx, keys.Batch(idOrName)).Result()
		if err != nil {
			return "", fmt.Errorf("campaign: lookup %s: %w", idOrName, err)
		}
		if n == 1 {
			return idOrName, nil
		}
	}
	id, err := m.rdb.Get(ctx, keys.BatchName(idOrName)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("campaign: lookup %q: %w", idOrName, err)
	}
	return id, nil
}

// Info returns campaign batchID's description.
func (m *Manager) Info(ctx context.Context, batchID string) (*Info, error) {
	if !tasks.ValidID("b_", batchID) {
		return nil, ErrNotFound
	}
	h, err := m.rdb.HGetAll(ctx, keys.Batch(batchID)).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign: read %s: %w", batchID, err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	return infoFrom(batchID, h), nil
}

func infoFrom(batchID string, h map[string]string) *Info {
	in := &Info{BatchId: batchID, Name: h[fName], Mode: Mode(h[fMode]), State: State(h[fState]), Total: atoi(h[fTotal]),
		Weight: weightOf(h[fWeight]), LocalImages: h[fFeeder] == "local"}
	in.CreatedAt, _ = time.Parse(time.RFC3339Nano, h[fCreatedAt])
	return in
}

// List returns every campaign, oldest first.
func (m *Manager) List(ctx context.Context) ([]*Info, error) {
	ids, err := m.rdb.ZRange(ctx, keys.Batches, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign: list: %w", err)
	}
	pipe := m.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, keys.Batch(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && len(ids) > 0 {
		return nil, fmt.Errorf("campaign: list: %w", err)
	}
	out := make([]*Info, 0, len(ids))
	for i, id := range ids {
		if h := cmds[i].Val(); len(h) > 0 {
			out = append(out, infoFrom(id, h))
		}
	}
	return out, nil
}

// open returns the BatchId to import into: opts.BatchID, the campaign named
// opts.Name, or a new campaign (named opts.Name, or its BatchId when unnamed). A
// weight other than 0 is set on the campaign (a new one gets DefaultWeight).
func (m *Manager) open(ctx context.Context, batchID, name string, mode Mode, feeder string, weight int) (string, *Info, error) {
	if weight != 0 {
		if err := checkWeight(weight); err != nil {
			return "", nil, err
		}
	}
	if batchID == "" && name != "" {
		id, err := m.rdb.Get(ctx, keys.BatchName(name)).Result()
		switch {
		case err == nil:
			batchID = id
		case !errors.Is(err, redis.Nil):
			return "", nil, fmt.Errorf("campaign: lookup %q: %w", name, err)
		}
	}
	if batchID != "" {
		in, err := m.Info(ctx, batchID)
		if err != nil {
			return "", nil, err
		}
		if in.State == StateCanceled {
			return "", nil, ErrCanceled
		}
		if in.Mode != mode {
			return "", nil, fmt.Errorf("%w: %s is a %s campaign", ErrModeMismatch, batchID, in.Mode)
		}
		if feeder != "" {
			if err := m.rdb.HSet(ctx, keys.Batch(batchID), fFeeder, feeder).Err(); err != nil {
				return "", nil, fmt.Errorf("campaign: open %s: %w", batchID, err)
			}
		}
		if weight != 0 {
			if err := m.rdb.HSet(ctx, keys.Batch(batchID), fWeight, weight).Err(); err != nil {
				return "", nil, fmt.Errorf("campaign: open %s: %w", batchID, err)
			}
			in.Weight = weight
		}
		if err := m.list(ctx, batchID, in.CreatedAt); err != nil {
			return "", nil, err
		}
		return batchID, in, nil
	}
	id := tasks.NewBatchID()
	if name == "" {
		name = id
	}
	if len(name) > 200 {
		return "", nil, &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "name", Reason: "is longer than 200 bytes"}
	}
	// Three keys in three slots, one command each: the campaign first, then its name
	// (the race to create a name is decided there), then the list of campaigns. A crash
	// leaves at worst a campaign without a name (invisible) or one not listed yet
	// (listed by the next import into it).
	now := m.cfg.Now().UTC()
	weight = cmp.Or(weight, DefaultWeight)
	fields := []any{fName, name, fMode, string(mode), fState, string(StateActive),
		fCreatedAt, tasks.FormatTime(now), fTotal, 0, fFed, 0, fRerunFed, 0, fWeight, weight}
	if feeder != "" {
		fields = append(fields, fFeeder, feeder)
	}
	if err := m.rdb.HSet(ctx, keys.Batch(id), fields...).Err(); err != nil {
		return "", nil, fmt.Errorf("campaign: create %q: %w", name, err)
	}
	ok, err := m.rdb.SetNX(ctx, keys.BatchName(name), id, 0).Result()
	if err != nil {
		return "", nil, fmt.Errorf("campaign: create %q: %w", name, err)
	}
	if !ok { // created concurrently under the same name
		_ = m.rdb.Del(ctx, keys.Batch(id)).Err()
		return m.open(ctx, "", name, mode, feeder, weight)
	}
	if err := m.list(ctx, id, now); err != nil {
		return "", nil, err
	}
	return id, &Info{BatchId: id, Name: name, Mode: mode, State: StateActive, Weight: weight, CreatedAt: now}, nil
}

// list adds campaign id to keys.Batches, unless it is there.
func (m *Manager) list(ctx context.Context, id string, createdAt time.Time) error {
	err := m.rdb.ZAddNX(ctx, keys.Batches, redis.Z{Score: float64(createdAt.UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("campaign: list %s: %w", id, err)
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
