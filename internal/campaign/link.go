package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// scanLinks counts the links of a link-mode campaign by state.
func (m *Manager) scanLinks(ctx context.Context, batchID string, p *Progress, now time.Time) error {
	for _, k := range []string{"unopened", "opened", "revoked", "expired"} {
		p.Counts[k] = 0
	}
	nowS := tasks.FormatTime(now)
	list := keys.BatchLinks(batchID)
	err := m.eachChunk(ctx, list, func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HMGet(ctx, keys.Link(id), lRevoked, lExpiresAt, lOpenedAt)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i := range ids {
			v := cmds[i].Val()
			rev, _ := v[0].(string)
			exp, _ := v[1].(string)
			opened, _ := v[2].(string)
			switch {
			case rev != "":
				p.Counts["revoked"]++
			case exp == "" || exp <= nowS:
				p.Counts["expired"]++
			case opened != "":
				p.Counts["opened"]++
			default:
				p.Counts["unopened"]++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: scan %s: %w", list, err)
	}
	return nil
}

// Link is a durable start link of a link-mode campaign (GET /v1/start/{LinkId}).
type Link struct {
	LinkId    string     `json:"LinkId"`
	BatchId   string     `json:"BatchId"`
	RowKey    string     `json:"RowKey"`
	URL       string     `json:"URL,omitempty"` // Config.PublicURL + "/v1/start/" + LinkId
	ExpiresAt time.Time  `json:"ExpiresAt"`
	Revoked   bool       `json:"Revoked"`
	OpenedAt  *time.Time `json:"OpenedAt"`
	// Mints is the number of tokens minted for the link.
	Mints int `json:"Mints"`
	// Job is the link's current minting job, if any.
	Job       *tasks.Job `json:"Job,omitempty"`
	CreatedAt time.Time  `json:"CreatedAt"`
}

// StartPath is the path of a start link on the HTTP API.
func StartPath(linkID string) string { return "/v1/start/" + linkID }

func (m *Manager) linkFrom(id string, h map[string]string) *Link {
	l := &Link{LinkId: id, BatchId: h[lBatchID], RowKey: h[lRowKey], Revoked: h[lRevoked] != "", Mints: atoi(h[lMints])}
	if m.cfg.PublicURL != "" {
		l.URL = strings.TrimRight(m.cfg.PublicURL, "/") + StartPath(id)
	}
	l.ExpiresAt, _ = time.Parse(time.RFC3339Nano, h[lExpiresAt])
	l.CreatedAt, _ = time.Parse(time.RFC3339Nano, h[lCreatedAt])
	if t, err := time.Parse(time.RFC3339Nano, h[lOpenedAt]); err == nil {
		l.OpenedAt = &t
	}
	return l
}

// GetLink returns link linkID with its current job.
func (m *Manager) GetLink(ctx context.Context, linkID string) (*Link, error) {
	if !tasks.ValidID("l_", linkID) {
		return nil, ErrLinkNotFound
	}
	h, err := m.rdb.HGetAll(ctx, keys.Link(linkID)).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
	}
	if len(h) == 0 {
		return nil, ErrLinkNotFound
	}
	l := m.linkFrom(linkID, h)
	if id := h[lJobID]; id != "" {
		if job, err := m.results.Get(ctx, id); err == nil {
			l.Job = job
		}
	}
	return l, nil
}

// RevokeLink revokes link linkID: opening it answers ErrLinkRevoked from now on.
func (m *Manager) RevokeLink(ctx context.Context, linkID string) error {
	if !tasks.ValidID("l_", linkID) {
		return ErrLinkNotFound
	}
	n, err := revokeLink.Run(ctx, m.rdb, []string{keys.Link(linkID)}, tasks.FormatTime(m.cfg.Now())).Int()
	if err != nil {
		return fmt.Errorf("campaign: revoke %s: %w", linkID, err)
	}
	if n == -1 {
		return ErrLinkNotFound
	}
	return nil
}

var revokeLink = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'Revoked', ARGV[1])
`)

// revokeAll revokes every link of a link-mode campaign.
func (m *Manager) revokeAll(ctx context.Context, batchID string, sum *CancelSummary) error {
	now := tasks.FormatTime(m.cfg.Now())
	err := m.eachChunk(ctx, keys.BatchLinks(batchID), func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(ids))
		for i, id := range ids {
			cmds[i] = revokeLink.Run(ctx, pipe, []string{keys.Link(id)}, now)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for _, c := range cmds {
			if n, _ := c.Int(); n == 1 {
				sum.Canceled++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: cancel %s: %w", batchID, err)
	}
	return nil
}

// bumpGen starts a new minting generation if the link is still at generation
// ARGV[1]: the link forgets its job, and the next mint uses a new idempotency key.
var bumpGen = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'Gen') ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'Gen', 1)
redis.call('HDEL', KEYS[1], 'JobId')
return 1
`)

// setJob records the job of generation ARGV[1]: 1 when recorded now, 0 when it was
// already, -1 when the link moved to another generation.
var setJob = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'Gen') ~= ARGV[1] then return -1 end
if redis.call('HSETNX', KEYS[1], 'JobId', ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'Mints', 1)
  return 1
end
return 0
`)

// Start serves a start link: it returns the link's current job while its token is
// valid (ExpiresAt later than now + Config.TokenMargin), and otherwise mints a new
// token at interactive priority (Config.Mint) and waits, at most
// Config.MintTimeout, for it. Concurrent opens of one link share one mint.
//
// Errors: ErrLinkNotFound, ErrLinkExpired, ErrLinkRevoked, ErrMintTimeout, a
// *MintError when the minting job failed, or a wrapped Redis or Mint error.
func (m *Manager) Start(ctx context.Context, linkID string) (*tasks.Job, error) {
	if !tasks.ValidID("l_", linkID) {
		return nil, ErrLinkNotFound
	}
	if m.cfg.Mint == nil {
		return nil, errors.New("campaign: this server cannot mint link tokens (Config.Mint is not set)")
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.MintTimeout)
	defer cancel()
	key := keys.Link(linkID)
	for range 5 {
		h, err := m.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
		}
		if len(h) == 0 {
			return nil, ErrLinkNotFound
		}
		if h[lRevoked] != "" {
			return nil, ErrLinkRevoked
		}
		now := m.cfg.Now()
		if exp, err := time.Parse(time.RFC3339Nano, h[lExpiresAt]); err != nil || !now.Before(exp) {
			return nil, ErrLinkExpired
		}
		if h[lOpenedAt] == "" {
			first, err := m.rdb.HSetNX(ctx, key, lOpenedAt, tasks.FormatTime(now)).Result()
			if err != nil {
				return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
			}
			if first {
				_ = m.rdb.HIncrBy(ctx, keys.Batch(h[lBatchID]), fOpened, 1).Err()
			}
		}
		gen := h[lGen]
		if jobID := h[lJobID]; jobID != "" {
			job, err := m.results.Get(ctx, jobID)
			if err != nil && !errors.Is(err, results.ErrNotFound) {
				return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
			}
			if err == nil && !job.Status.Final() {
				if job, err = m.waitFinal(ctx, jobID); err != nil {
					return nil, err
				}
				if job.Status != tasks.StatusSucceeded {
					return nil, &MintError{JobID: jobID, Code: errCode(job), Message: errMessage(job)}
				}
			}
			if err == nil && m.usable(job, m.cfg.Now()) {
				return job, nil
			}
			// Gone, failed, canceled or expiring: a new generation mints anew.
			if err := bumpGen.Run(ctx, m.rdb, []string{key}, gen).Err(); err != nil {
				return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
			}
			continue
		}
		var req tasks.TokenRequest
		if err := json.Unmarshal([]byte(h[lRequest]), &req); err != nil {
			return nil, fmt.Errorf("campaign: link %s: stored request: %w", linkID, err)
		}
		if img := h[lImage]; img != "" {
			req.CompareImageBase64 = &img
		}
		req.Priority = tasks.PriorityInteractive
		req.FetchResult = true // a start link's person is followed to their result
		if req.MaxWait == 0 {
			req.MaxWait = max(1, int(m.cfg.MintMaxWait/time.Second))
		}
		job, err := m.cfg.Mint(ctx, &req, "link:"+linkID+":"+gen)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrMintTimeout
			}
			return nil, fmt.Errorf("campaign: mint for link %s: %w", linkID, err)
		}
		set, err := setJob.Run(ctx, m.rdb, []string{key}, gen, job.JobId).Int()
		if err != nil {
			return nil, fmt.Errorf("campaign: link %s: %w", linkID, err)
		}
		if set == -1 {
			continue
		}
		if set == 1 {
			_ = m.rdb.HIncrBy(ctx, keys.Batch(h[lBatchID]), fMinted, 1).Err()
		}
		if !job.Status.Final() {
			if job, err = m.waitFinal(ctx, job.JobId); err != nil {
				return nil, err
			}
		}
		if job.Status != tasks.StatusSucceeded {
			return nil, &MintError{JobID: job.JobId, Code: errCode(job), Message: errMessage(job)}
		}
		return job, nil
	}
	return nil, ErrMintTimeout
}

func errCode(j *tasks.Job) string {
	if j.Error != nil {
		return j.Error.Code
	}
	return string(j.Status)
}

func errMessage(j *tasks.Job) string {
	if j.Error != nil {
		return j.Error.Message
	}
	return "the minting job ended " + string(j.Status)
}

// usable reports whether job's token can be handed out at now.
func (m *Manager) usable(job *tasks.Job, now time.Time) bool {
	return job.Status == tasks.StatusSucceeded && job.VerificationURL != "" &&
		job.ExpiresAt != nil && job.ExpiresAt.After(now.Add(m.cfg.TokenMargin))
}

// JobWaiter waits for a job to be final (jobwait.Waiter: the process's one
// subscription to keys.Done).
type JobWaiter interface {
	Wait(ctx context.Context, jobID string) (*tasks.Job, error)
}

// waitFinal waits for job jobID to be final through Config.Waiter; ErrMintTimeout
// when ctx ends first or the waiter closes.
func (m *Manager) waitFinal(ctx context.Context, jobID string) (*tasks.Job, error) {
	if m.cfg.Waiter == nil {
		return nil, errors.New("campaign: Config.Waiter is not set: links cannot wait for their token")
	}
	job, err := m.cfg.Waiter.Wait(ctx, jobID)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, jobwait.ErrClosed) {
			return nil, ErrMintTimeout
		}
		return nil, fmt.Errorf("campaign: wait for %s: %w", jobID, err)
	}
	return job, nil
}
