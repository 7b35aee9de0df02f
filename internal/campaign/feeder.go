package campaign

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// FeederConfig configures a Feeder.
type FeederConfig struct {
	// Redis is the shared Redis. Required.
	Redis redis.UniversalClient
	// Producer enqueues the jobs fed (Producer.Feed). Required.
	Producer *producer.Producer
	// Batch restricts the feeder to one campaign: the importing process of a
	// campaign whose images are in its files runs such a feeder until the campaign
	// is done. Defaults to "": every active campaign, except those whose images only
	// their importing process can read (unless LoadFiles).
	Batch string
	// LoadFiles says that this process sees the files of every file import (same
	// machine or shared volume), so it also feeds campaigns whose images are in
	// files. Defaults to false.
	LoadFiles bool
	// MaxPending is the most campaign jobs fed to the batch queue and not final yet,
	// across all campaigns and feeders. Defaults to 2,000 (100 s of work at 20/s).
	MaxPending int
	// Window is the most fed jobs waiting in the batch queue or running (not those
	// waiting to retry). Its room is refilled by weighted round-robin among the
	// active campaigns (fair.go), so the queue holds a mix of campaigns by weight
	// whatever their import order; it bounds how long a campaign imported later
	// waits behind one imported before it. Defaults to 200 (10 s of work at 20/s).
	Window int
	// MaxPendingBytes is the most image bytes (base64) those jobs hold in Redis.
	// Defaults to 64 MiB (about 320 photos of 200 KB).
	MaxPendingBytes int64
	// Interval is the time between two feeding rounds. Defaults to 200ms.
	Interval time.Duration
	// LockTTL is how long the feeding lock survives a feeder that died. Defaults to 10s.
	LockTTL time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

// Feeder moves the queued jobs of active campaigns into asynq's batch queue, keeping
// at most MaxPending jobs (and MaxPendingBytes of images) fed and not final, and at
// most Window of them waiting or running, shared among campaigns by weight. Every
// worker process runs one; a Redis lock elects the one that feeds, and feeding twice
// is harmless anyway (the asynq task id is the JobId, and only queued jobs are fed).
type Feeder struct {
	cfg      FeederConfig
	rdb      redis.UniversalClient
	producer *producer.Producer
	results  *results.Store
	token    string
	round    int
	wrr      wrr
}

// NewFeeder returns a Feeder.
func NewFeeder(cfg FeederConfig) (*Feeder, error) {
	if cfg.Redis == nil {
		return nil, errors.New("campaign: FeederConfig.Redis is required")
	}
	if cfg.Producer == nil {
		return nil, errors.New("campaign: FeederConfig.Producer is required")
	}
	if cfg.Batch != "" && !tasks.ValidID("b_", cfg.Batch) {
		return nil, fmt.Errorf("campaign: FeederConfig.Batch %q is not a BatchId", cfg.Batch)
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 2000
	}
	if cfg.Window <= 0 {
		cfg.Window = 200
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 64 << 20
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var tok [12]byte
	_, _ = rand.Read(tok[:])
	return &Feeder{
		cfg: cfg, rdb: cfg.Redis,
		producer: cfg.Producer,
		results:  cfg.Producer.Results(),
		token:    hex.EncodeToString(tok[:]),
	}, nil
}

// Run feeds every Interval until ctx ends, then releases the lock. Errors of a round
// are passed to onError (which may be nil) and the next round goes on.
func (f *Feeder) Run(ctx context.Context, onError func(error)) error {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	defer f.unlock()
	for {
		if _, err := f.Tick(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (f *Feeder) lockKey() string {
	if f.cfg.Batch != "" {
		return keys.BatchFeedLock(f.cfg.Batch)
	}
	return keys.FeederLock
}

// lock takes or renews the feeding lock.
var lock = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

var unlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (f *Feeder) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = unlock.Run(ctx, f.rdb, []string{f.lockKey()}, f.token).Err()
}

// inflight is the feeder's view of the jobs fed and not final yet.
type inflight struct {
	count int
	bytes int64
	// ready counts those waiting in the batch queue or running (not those waiting
	// to retry), in all and by campaign: what the window bounds.
	ready   int
	readyBy map[string]int
}

// candidate is an active campaign of a feeding round.
type candidate struct {
	id       string
	weight   int
	feedable bool // by this feeder
}

// Tick runs one feeding round and returns the number of jobs fed. It feeds nothing
// when another feeder holds the lock. The round's budget (MaxPending and Window) is
// shared among the active campaigns by weight (see fair.go).
func (f *Feeder) Tick(ctx context.Context) (int, error) {
	held, err := lock.Run(ctx, f.rdb, []string{f.lockKey()}, f.token, f.cfg.LockTTL.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("campaign: feeder lock: %w", err)
	}
	if held != 1 {
		return 0, nil
	}
	in, err := f.prune(ctx)
	if err != nil {
		return 0, err
	}
	budget := min(f.cfg.MaxPending-in.count, f.cfg.Window-in.ready)
	if budget <= 0 {
		return 0, nil
	}
	cs, err := f.candidates(ctx)
	if err != nil || len(cs) == 0 {
		return 0, err
	}
	// The window is split by weight; the room campaigns fed by other feeders lack
	// is left to them, and a feeder of one campaign keeps to its share.
	weights := make([]int, len(cs))
	for i, c := range cs {
		weights[i] = c.weight
	}
	// The room others lack is set aside first, whatever the campaigns' order.
	var ids []string
	var idWeights []int
	sh := shares(f.cfg.Window, weights)
	for i, share := range sh {
		if !cs[i].feedable {
			budget -= max(0, share-in.readyBy[cs[i].id])
		}
	}
	for i, share := range sh {
		if !cs[i].feedable {
			continue
		}
		if f.cfg.Batch != "" {
			budget = min(budget, max(0, share-in.readyBy[cs[i].id]))
		}
		ids, idWeights = append(ids, cs[i].id), append(idWeights, cs[i].weight)
	}
	if budget <= 0 || len(ids) == 0 {
		return 0, nil
	}
	give := f.wrr.allot(budget, ids, idWeights)
	fed := 0
	f.round++
	for i := range ids {
		j := (i + f.round) % len(ids) // a different campaign first each round
		if give[j] == 0 {
			continue
		}
		n, err := f.feedBatch(ctx, ids[j], give[j], &in)
		fed += n
		if err != nil {
			return fed, err
		}
	}
	return fed, nil
}

// candidates returns the active campaigns that share the batch lane: active (not
// paused), in token mode, and fed by some feeder (a campaign whose images only its
// importing process reads counts while that process holds its feeding lock). It
// takes canceled and deleted campaigns out of the active set.
func (f *Feeder) candidates(ctx context.Context) ([]candidate, error) {
	ids, err := f.rdb.SMembers(ctx, keys.BatchesActive).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign: feeder: list campaigns: %w", err)
	}
	if f.cfg.Batch != "" && !slices.Contains(ids, f.cfg.Batch) {
		ids = append(ids, f.cfg.Batch)
	}
	slices.Sort(ids)
	pipe := f.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	locks := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, keys.Batch(id), fState, fMode, fFeeder, fWeight)
		locks[i] = pipe.Exists(ctx, keys.BatchFeedLock(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("campaign: feeder: read campaigns: %w", err)
	}
	var out []candidate
	for i, id := range ids {
		h := hs[i].Val()
		str := func(k int) string { s, _ := h[k].(string); return s }
		state, mode, local := State(str(0)), Mode(str(1)), str(2) == "local"
		if state == "" || state == StateCanceled || mode != ModeTokens {
			if err := f.rdb.SRem(ctx, keys.BatchesActive, id).Err(); err != nil {
				return nil, fmt.Errorf("campaign: feeder: %w", err)
			}
			continue
		}
		mine := f.cfg.Batch == "" || id == f.cfg.Batch
		readable := !local || f.cfg.LoadFiles || id == f.cfg.Batch
		if state != StateActive || !(readable || locks[i].Val() == 1) {
			continue
		}
		out = append(out, candidate{id: id, weight: weightOf(str(3)), feedable: mine && readable})
	}
	return out, nil
}

// prune forgets the fed jobs that are final and returns what is left.
func (f *Feeder) prune(ctx context.Context) (inflight, error) {
	var in inflight
	all, err := f.rdb.HGetAll(ctx, keys.FeedInflight).Result()
	if err != nil {
		return in, fmt.Errorf("campaign: feeder: read in-flight jobs: %w", err)
	}
	if len(all) == 0 {
		return in, nil
	}
	ids := make([]string, 0, len(all))
	pipe := f.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, 0, len(all))
	for id := range all {
		ids = append(ids, id)
		cmds = append(cmds, pipe.HGet(ctx, keys.Result(id), tasks.FieldStatus))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return in, fmt.Errorf("campaign: feeder: read in-flight states: %w", err)
	}
	var gone []string
	in.readyBy = map[string]int{}
	for i, id := range ids {
		st := tasks.Status(cmds[i].Val())
		if st == "" || st.Final() {
			gone = append(gone, id)
			continue
		}
		in.count++
		n, batchID, _ := parseInflight(all[id])
		in.bytes += n
		if st != tasks.StatusRetrying {
			in.ready++
			in.readyBy[batchID]++
		}
	}
	if len(gone) > 0 {
		if err := f.rdb.HDel(ctx, keys.FeedInflight, gone...).Err(); err != nil {
			return in, fmt.Errorf("campaign: feeder: forget final jobs: %w", err)
		}
	}
	return in, nil
}

// parseInflight reads a keys.FeedInflight value: "<image bytes> <BatchId> <image ref>".
func parseInflight(v string) (bytes int64, batchID, ref string) {
	parts := strings.SplitN(v, " ", 3)
	if len(parts) == 3 {
		bytes, _ = strconv.ParseInt(parts[0], 10, 64)
		batchID, ref = parts[1], parts[2]
		if ref == "-" {
			ref = ""
		}
	}
	return bytes, batchID, ref
}

// feedBatch feeds up to n jobs of one campaign: re-runs first, then the campaign's
// list, each from its cursor.
func (f *Feeder) feedBatch(ctx context.Context, batchID string, n int, in *inflight) (int, error) {
	h, err := f.rdb.HMGet(ctx, keys.Batch(batchID), fState, fMode, fFeeder, fFed, fRerunFed).Result()
	if err != nil {
		return 0, fmt.Errorf("campaign: feeder: read %s: %w", batchID, err)
	}
	str := func(i int) string { s, _ := h[i].(string); return s }
	state, mode, feeder := State(str(0)), Mode(str(1)), str(2)
	if state == "" || state == StateCanceled || mode != ModeTokens {
		return 0, f.rdb.SRem(ctx, keys.BatchesActive, batchID).Err()
	}
	if state != StateActive || (feeder == "local" && f.cfg.Batch == "" && !f.cfg.LoadFiles) {
		return 0, nil
	}
	fed := 0
	exhausted := 0
	for _, l := range []struct {
		list, field string
		cur         int
	}{
		{keys.BatchRerun(batchID), fRerunFed, atoi(str(4))},
		{keys.BatchJobs(batchID), fFed, atoi(str(3))},
	} {
		if fed >= n {
			break
		}
		k, done, err := f.feedList(ctx, batchID, l.list, l.field, l.cur, n-fed, in)
		fed += k
		if err != nil {
			return fed, err
		}
		if done {
			exhausted++
		}
	}
	if fed > 0 {
		if err := f.rdb.HSetNX(ctx, keys.Batch(batchID), fFirstFedAt, tasks.FormatTime(f.cfg.Now())).Err(); err != nil {
			return fed, fmt.Errorf("campaign: feeder: %w", err)
		}
	}
	if exhausted == 2 {
		// Nothing left to feed: leave the active set, and come back if an import or a
		// re-run added jobs meanwhile (they add the campaign back after writing).
		if err := f.rdb.SRem(ctx, keys.BatchesActive, batchID).Err(); err != nil {
			return fed, fmt.Errorf("campaign: feeder: %w", err)
		}
		if more, err := f.hasMore(ctx, batchID); err != nil || more {
			_ = f.rdb.SAdd(ctx, keys.BatchesActive, batchID).Err()
		}
	}
	return fed, nil
}

func (f *Feeder) hasMore(ctx context.Context, batchID string) (bool, error) {
	pipe := f.rdb.Pipeline()
	cur := pipe.HMGet(ctx, keys.Batch(batchID), fFed, fRerunFed)
	nj := pipe.LLen(ctx, keys.BatchJobs(batchID))
	nr := pipe.LLen(ctx, keys.BatchRerun(batchID))
	if _, err := pipe.Exec(ctx); err != nil {
		return false, err
	}
	v := cur.Val()
	a, _ := v[0].(string)
	b, _ := v[1].(string)
	return nj.Val() > int64(atoi(a)) || nr.Val() > int64(atoi(b)), nil
}

// feedList feeds up to n queued jobs of list from index cur, and moves the cursor
// past what it fed or skipped. done reports that the list is exhausted.
func (f *Feeder) feedList(ctx context.Context, batchID, list, field string, cur, n int, in *inflight) (fed int, done bool, err error) {
	ids, err := f.rdb.LRange(ctx, list, int64(cur), int64(cur+n-1)).Result()
	if err != nil {
		return 0, false, fmt.Errorf("campaign: feeder: read %s: %w", list, err)
	}
	if len(ids) == 0 {
		return 0, true, nil
	}
	pipe := f.rdb.Pipeline()
	recs := make([]*redis.SliceCmd, len(ids))
	srcs := make([]*redis.StringCmd, len(ids))
	fedAlready := make([]*redis.BoolCmd, len(ids))
	for i, id := range ids {
		recs[i] = pipe.HMGet(ctx, keys.Result(id), tasks.ApplyRecordFields...)
		srcs[i] = pipe.HGet(ctx, keys.BatchImages(batchID), id)
		fedAlready[i] = pipe.HExists(ctx, keys.FeedInflight, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("campaign: feeder: read jobs of %s: %w", batchID, err)
	}
	advanced := 0
	defer func() {
		if advanced > 0 {
			if serr := f.rdb.HSet(ctx, keys.Batch(batchID), field, cur+advanced).Err(); serr != nil && err == nil {
				err = fmt.Errorf("campaign: feeder: move cursor of %s: %w", batchID, serr)
			}
		}
	}()
	for i, id := range ids {
		p, st, perr := tasks.ApplyPayloadFromRecord(id, recs[i].Val())
		if st != tasks.StatusQueued || perr != nil || fedAlready[i].Val() {
			advanced++ // final, running, gone, unreadable, or fed from the other list: nothing to feed
			continue
		}
		size, err := f.feedOne(ctx, batchID, p, srcs[i].Val(), in)
		if errors.Is(err, errBudget) {
			return fed, false, nil
		}
		if err != nil {
			return fed, false, err
		}
		advanced++
		if size >= 0 {
			fed++
			in.count++
			in.bytes += size
		}
	}
	return fed, false, nil
}

// errBudget stops a round when the image byte budget is spent.
var errBudget = errors.New("campaign: image budget spent")

// feedOne loads a job's image if it is still in a file, and enqueues the job through
// the producer. It returns the image size, or -1 when the job could not be fed and
// was failed instead.
func (f *Feeder) feedOne(ctx context.Context, batchID string, p *tasks.ApplyPayload, src string, in *inflight) (size int64, err error) {
	jobID := p.JobID
	var img, ref string
	if src != "" {
		var lerr error
		img, lerr = loadImage(src)
		if lerr != nil {
			_, err := f.results.Finish(ctx, jobID, results.Final{Status: tasks.StatusFailed,
				ErrorCode: "FailedOperation.ImageUnreadable", ErrorMessage: lerr.Error()})
			if err != nil {
				return 0, fmt.Errorf("campaign: feeder: fail %s: %w", jobID, err)
			}
			return -1, nil
		}
		size = int64(len(img))
		if in.bytes+size > f.cfg.MaxPendingBytes && in.count > 0 {
			return 0, errBudget
		}
		ref = images.Ref(img)
	} else {
		ref = p.ImageRef
	}
	refField := ref
	if refField == "" {
		refField = "-"
	}
	// Counted before it is enqueued, so that a cancel finds every fed job.
	if err := f.rdb.HSet(ctx, keys.FeedInflight, jobID, fmt.Sprintf("%d %s %s", size, batchID, refField)).Err(); err != nil {
		return 0, fmt.Errorf("campaign: feeder: %w", err)
	}
	if err := f.producer.Feed(ctx, p, img); err != nil {
		return 0, fmt.Errorf("campaign: feeder: %w", err)
	}
	return size, nil
}

// loadImage reads a job's image from the source the import recorded (see
// importer.imageSource). Errors never quote image bytes.
func loadImage(src string) (string, error) {
	switch {
	case strings.HasPrefix(src, "path:"):
		b, err := os.ReadFile(strings.TrimPrefix(src, "path:"))
		if err != nil {
			return "", fmt.Errorf("the image file cannot be read: %v", errors.Unwrap(err))
		}
		if len(b) == 0 || base64.StdEncoding.EncodedLen(len(b)) > faceid.MaxImageBase64Len {
			return "", fmt.Errorf("the image file is %d bytes: empty or over 8 MB of base64", len(b))
		}
		return base64.StdEncoding.EncodeToString(b), nil
	case strings.HasPrefix(src, "row:"):
		parts := strings.SplitN(strings.TrimPrefix(src, "row:"), ":", 5)
		if len(parts) != 5 {
			return "", errors.New("malformed image source")
		}
		col, _ := strconv.Atoi(parts[1])
		off, _ := strconv.ParseInt(parts[2], 10, 64)
		n, _ := strconv.ParseInt(parts[3], 10, 64)
		if n <= 0 || n > MaxLineBytes+2 {
			return "", errors.New("malformed image source")
		}
		fh, err := os.Open(parts[4])
		if err != nil {
			return "", fmt.Errorf("the imported file cannot be read: %v", errors.Unwrap(err))
		}
		defer fh.Close()
		buf := make([]byte, n)
		if _, err := fh.ReadAt(buf, off); err != nil {
			return "", fmt.Errorf("the imported file changed or is truncated: %v", err)
		}
		var img string
		switch Format(parts[0]) {
		case FormatNDJSON:
			var l struct{ CompareImageBase64 *string }
			if err := json.Unmarshal(bytes.TrimPrefix(bytes.TrimRight(buf, "\r\n"), []byte("\ufeff")), &l); err != nil || l.CompareImageBase64 == nil {
				return "", errors.New("the imported file changed: its row has no image any more")
			}
			img = *l.CompareImageBase64
		case FormatCSV:
			rec, err := csv.NewReader(bytes.NewReader(buf)).Read()
			if err != nil || col < 0 || col >= len(rec) || rec[col] == "" {
				return "", errors.New("the imported file changed: its row has no image any more")
			}
			img = rec[col]
		default:
			return "", errors.New("malformed image source")
		}
		img, _ = faceid.StripDataURI(img)
		return img, nil
	}
	return "", errors.New("malformed image source")
}
