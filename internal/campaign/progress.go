package campaign

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// RateWindow is the window over which a campaign's Rate is measured.
const RateWindow = time.Minute

// scanChunk is the number of jobs read per round trip when a campaign is scanned.
const scanChunk = 1000

// Progress is a campaign's progress (GET /v1/batches/{BatchId}).
type Progress struct {
	BatchId string `json:"BatchId"`
	Name    string `json:"Name"`
	Mode    Mode   `json:"Mode"`
	State   State  `json:"State"`
	// Total is the number of jobs (links in link mode) of the campaign.
	Total int `json:"Total"`
	// Counts are the jobs by status (every status is present). In link mode: links
	// by state, "unopened", "opened", "revoked" and "expired".
	Counts map[string]int `json:"Counts"`
	// Verification counts the jobs' verification outcomes (passed, failed,
	// incomplete, pending, expired; token mode), for jobs whose result was asked for.
	Verification map[string]int `json:"Verification,omitempty"`
	// Expired counts jobs whose record is gone (final for longer than the result TTL).
	Expired int `json:"Expired,omitempty"`
	// Fed is how many of the campaign's jobs the feeder has moved to the batch queue.
	Fed int `json:"Fed"`
	// Rate is the number of the campaign's jobs that became final per second over
	// the last minute (or since feeding began, when that is less): the share of the
	// upstream budget the campaign actually gets, not an assumption.
	Rate float64 `json:"Rate"`
	// ETA is the number of seconds until every job is final at Rate; null when it
	// cannot be told honestly (nothing finished in the window, or paused).
	ETA *float64 `json:"ETA"`
	// ETAAt is the time at which the campaign should be done; null with ETA.
	ETAAt *time.Time `json:"ETAAt"`
	// Opened is the number of links opened at least once (link mode).
	Opened int `json:"Opened,omitempty"`
	// Minted is the number of tokens minted for links (link mode).
	Minted int `json:"Minted,omitempty"`
	// Done reports that every job is final (link mode: never).
	Done      bool      `json:"Done"`
	CreatedAt time.Time `json:"CreatedAt"`
	// At is the time the progress was measured.
	At time.Time `json:"At"`
}

// Remaining is the number of jobs not final yet.
func (p *Progress) Remaining() int {
	return p.Counts[string(tasks.StatusQueued)] + p.Counts[string(tasks.StatusRunning)] + p.Counts[string(tasks.StatusRetrying)]
}

// Finished is the number of jobs that are final (or expired).
func (p *Progress) Finished() int {
	return p.Counts[string(tasks.StatusSucceeded)] + p.Counts[string(tasks.StatusFailed)] + p.Counts[string(tasks.StatusCanceled)] +
		p.Counts[string(tasks.StatusExpired)] + p.Expired
}

// Status returns campaign batchID's progress. It reads the state of every job (in
// pipelined chunks of 1,000): about 2 s per million jobs on a local Redis. When a
// scan takes longer than 100 ms, its result is reused for twice as long as it took,
// so that many pollers of a large campaign do not multiply the load.
func (m *Manager) Status(ctx context.Context, batchID string) (*Progress, error) {
	if !tasks.ValidID("b_", batchID) {
		return nil, ErrNotFound
	}
	m.mu.Lock()
	c, ok := m.cache[batchID]
	m.mu.Unlock()
	if ok && time.Since(c.at) < 2*c.cost {
		cp := *c.p
		return &cp, nil
	}
	start := time.Now()
	p, err := m.status(ctx, batchID)
	if err != nil {
		return nil, err
	}
	if cost := time.Since(start); cost > 100*time.Millisecond {
		m.mu.Lock()
		m.cache[batchID] = cachedProgress{p: p, at: time.Now(), cost: cost}
		m.mu.Unlock()
	}
	return p, nil
}

// forget drops the cached progress of a campaign whose state changed.
func (m *Manager) forget(batchID string) {
	m.mu.Lock()
	delete(m.cache, batchID)
	m.mu.Unlock()
}

// cachedProgress is the last Progress of a campaign that was slow to measure.
type cachedProgress struct {
	p    *Progress
	at   time.Time
	cost time.Duration
}

func (m *Manager) status(ctx context.Context, batchID string) (*Progress, error) {
	pipe := m.rdb.Pipeline()
	hc := pipe.HGetAll(ctx, keys.Batch(batchID))
	importing := pipe.Exists(ctx, keys.BatchImportLock(batchID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("campaign: status of %s: %w", batchID, err)
	}
	h := hc.Val()
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	in := infoFrom(batchID, h)
	now := m.cfg.Now().UTC()
	p := &Progress{BatchId: batchID, Name: in.Name, Mode: in.Mode, State: in.State, Total: in.Total,
		Counts: map[string]int{}, Fed: atoi(h[fFed]), CreatedAt: in.CreatedAt, At: now,
		Opened: atoi(h[fOpened]), Minted: atoi(h[fMinted])}
	if in.Mode == ModeLinks {
		return p, m.scanLinks(ctx, batchID, p, now)
	}
	for _, s := range tasks.Statuses {
		p.Counts[string(s)] = 0
	}
	window := RateWindow
	if first, err := time.Parse(time.RFC3339Nano, h[fFirstFedAt]); err == nil && now.Sub(first) < window {
		window = max(now.Sub(first), 5*time.Second)
	}
	cutoff := tasks.FormatTime(now.Add(-window))
	recent := 0
	err := m.scanJobs(ctx, keys.BatchJobs(batchID), []string{tasks.FieldStatus, tasks.FieldFinishedAt, tasks.FieldVerificationStatus}, func(_ string, v []any) error {
		st, _ := v[0].(string)
		if st == "" {
			p.Expired++
			return nil
		}
		p.Counts[st]++
		countVerification(p, v[2])
		// Record times are fixed-width UTC, so they compare as strings.
		if fin, _ := v[1].(string); fin != "" && fin >= cutoff {
			recent++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.Rate = math.Round(float64(recent)/window.Seconds()*100) / 100
	rem := p.Remaining()
	// An import still writing may add jobs: not done yet, even with none so far.
	p.Done = rem == 0 && importing.Val() == 0
	if p.Done && p.State == StateActive {
		p.State = StateDone
	}
	switch {
	case rem == 0:
		z := 0.0
		p.ETA, p.ETAAt = &z, &now
	case recent > 0 && p.State == StateActive:
		eta := math.Ceil(float64(rem) / (float64(recent) / window.Seconds()))
		at := now.Add(time.Duration(eta) * time.Second)
		p.ETA, p.ETAAt = &eta, &at
	}
	return p, nil
}

// eachChunk calls fn with the ids of list, scanChunk at a time, in list order.
func (m *Manager) eachChunk(ctx context.Context, list string, fn func(ids []string) error) error {
	for start := int64(0); ; start += scanChunk {
		ids, err := m.rdb.LRange(ctx, list, start, start+scanChunk-1).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", list, err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := fn(ids); err != nil {
			return err
		}
		if len(ids) < scanChunk {
			return nil
		}
	}
}

// scanJobs calls fn with each id of list and the values of fields of its record.
func (m *Manager) scanJobs(ctx context.Context, list string, fields []string, fn func(id string, vals []any) error) error {
	err := m.eachChunk(ctx, list, func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HMGet(ctx, keys.Result(id), fields...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, id := range ids {
			if err := fn(id, cmds[i].Val()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: scan %s: %w", list, err)
	}
	return nil
}

// Bar renders p as one line for a terminal: a bar of width cells, the share of final
// jobs, the counts, the rate and the ETA.
func (p *Progress) Bar(width int) string {
	if width < 1 {
		width = 30
	}
	if p.Mode == ModeLinks {
		return fmt.Sprintf("%s links: %d | opened %d | minted %d | revoked %d | expired %d",
			p.Name, p.Total, p.Opened, p.Minted, p.Counts["revoked"], p.Counts["expired"])
	}
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Finished()) / float64(p.Total)
	}
	full := int(frac * float64(width))
	bar := strings.Repeat("#", full) + strings.Repeat(".", width-full)
	c := p.Counts
	state := ""
	if p.State != StateActive && p.State != StateDone {
		state = " " + strings.ToUpper(string(p.State))
	}
	return fmt.Sprintf("[%s] %5.1f%% %d/%d | ok %d failed %d canceled %d expired %d | running %d retrying %d queued %d | %s | ETA %s%s",
		bar, frac*100, p.Finished(), p.Total,
		c[string(tasks.StatusSucceeded)], c[string(tasks.StatusFailed)], c[string(tasks.StatusCanceled)], c[string(tasks.StatusExpired)],
		c[string(tasks.StatusRunning)], c[string(tasks.StatusRetrying)], c[string(tasks.StatusQueued)],
		formatRate(p.Rate), formatETA(p.ETA), state)
}

// Line renders p as a plain log line, for periodic output when not on a terminal.
func (p *Progress) Line() string {
	if p.Mode == ModeLinks {
		return fmt.Sprintf("%s campaign %s (%s) %s: %d links, opened %d, minted %d, revoked %d, expired %d",
			tasks.FormatTime(p.At), p.Name, p.BatchId, p.State, p.Total, p.Opened, p.Minted, p.Counts["revoked"], p.Counts["expired"])
	}
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Finished()) / float64(p.Total) * 100
	}
	c := p.Counts
	return fmt.Sprintf("%s campaign %s (%s) %s: %d/%d final (%.1f%%): succeeded %d, failed %d, canceled %d, expired %d, running %d, retrying %d, queued %d; %s; ETA %s",
		tasks.FormatTime(p.At), p.Name, p.BatchId, p.State, p.Finished(), p.Total, frac,
		c[string(tasks.StatusSucceeded)], c[string(tasks.StatusFailed)], c[string(tasks.StatusCanceled)], c[string(tasks.StatusExpired)],
		c[string(tasks.StatusRunning)], c[string(tasks.StatusRetrying)], c[string(tasks.StatusQueued)],
		formatRate(p.Rate), formatETA(p.ETA))
}

func formatRate(r float64) string { return fmt.Sprintf("%.1f jobs/s", r) }

func formatETA(eta *float64) string {
	if eta == nil {
		return "unknown"
	}
	return (time.Duration(*eta) * time.Second).String()
}

// Watch calls fn with campaign batchID's progress every interval (and once at once)
// until the campaign is done (Progress.Done; fn has then seen the final progress),
// it is canceled and its started jobs have finished, or ctx ends. The CLI draws its progress bar with it.
func (m *Manager) Watch(ctx context.Context, batchID string, interval time.Duration, fn func(*Progress)) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := m.Status(ctx, batchID)
		if err != nil {
			return err
		}
		fn(p)
		if p.Done || p.State == StateCanceled && p.Remaining() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
