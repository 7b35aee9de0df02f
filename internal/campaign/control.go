package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// Pause stops feeding campaign batchID: jobs already fed (at most the feeder's
// MaxPending across all campaigns) run to the end; the others wait. Pausing a paused
// campaign is a no-op; a canceled one answers ErrCanceled.
func (m *Manager) Pause(ctx context.Context, batchID string) (*Info, error) {
	return m.setState(ctx, batchID, StatePaused)
}

// Resume feeds a paused campaign again. Resuming an active campaign is a no-op; a
// canceled one answers ErrCanceled (re-run its jobs with Rerun instead).
func (m *Manager) Resume(ctx context.Context, batchID string) (*Info, error) {
	in, err := m.setState(ctx, batchID, StateActive)
	if err != nil {
		return nil, err
	}
	if err := m.rdb.SAdd(ctx, keys.BatchesActive, batchID).Err(); err != nil {
		return nil, fmt.Errorf("campaign: resume %s: %w", batchID, err)
	}
	return in, nil
}

// SetWeight sets campaign batchID's weight (1 to MaxWeight): its share of the batch
// lane relative to the other active campaigns. Feeders apply it from their next
// round. A canceled campaign answers ErrCanceled.
func (m *Manager) SetWeight(ctx context.Context, batchID string, weight int) (*Info, error) {
	if err := checkWeight(weight); err != nil {
		return nil, err
	}
	in, err := m.Info(ctx, batchID)
	if err != nil {
		return nil, err
	}
	if in.State == StateCanceled {
		return nil, ErrCanceled
	}
	if err := m.rdb.HSet(ctx, keys.Batch(batchID), fWeight, weight).Err(); err != nil {
		return nil, fmt.Errorf("campaign: set the weight of %s: %w", batchID, err)
	}
	in.Weight = weight
	return in, nil
}

func (m *Manager) setState(ctx context.Context, batchID string, to State) (*Info, error) {
	defer m.forget(batchID)
	in, err := m.Info(ctx, batchID)
	if err != nil {
		return nil, err
	}
	if in.State == StateCanceled {
		return nil, ErrCanceled
	}
	if err := m.rdb.HSet(ctx, keys.Batch(batchID), fState, string(to)).Err(); err != nil {
		return nil, fmt.Errorf("campaign: set %s %s: %w", batchID, to, err)
	}
	in.State = to
	return in, nil
}

// CancelSummary is the outcome of Cancel.
type CancelSummary struct {
	// Canceled is the number of jobs canceled (never fed, or removed from the queue).
	Canceled int `json:"Canceled"`
	// Running is the number of jobs left to finish: they had started.
	Running int `json:"Running"`
}

// Cancel stops campaign batchID for good: it is fed no more, every job that has not
// started is made final with status canceled (its pending task removed from the
// batch queue), and the jobs that have started finish. Link mode: every link is
// revoked. Canceling again cancels what is left.
func (m *Manager) Cancel(ctx context.Context, batchID string) (*CancelSummary, error) {
	defer m.forget(batchID)
	in, err := m.Info(ctx, batchID)
	if err != nil {
		return nil, err
	}
	if err := m.rdb.HSet(ctx, keys.Batch(batchID), fState, string(StateCanceled)).Err(); err != nil {
		return nil, fmt.Errorf("campaign: cancel %s: %w", batchID, err)
	}
	sum := &CancelSummary{}
	if in.Mode == ModeLinks {
		return sum, m.revokeAll(ctx, batchID, sum)
	}
	var mu sync.Mutex
	var firstErr error
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				canceled, running, err := m.cancelJob(ctx, id)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if canceled {
					sum.Canceled++
				}
				if running {
					sum.Running++
				}
				mu.Unlock()
			}
		}()
	}
	err = m.scanJobs(ctx, keys.BatchJobs(batchID), []string{tasks.FieldStatus}, func(id string, v []any) error {
		if st, _ := v[0].(string); st != "" && !tasks.Status(st).Final() {
			work <- id
		}
		return nil
	})
	close(work)
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	_ = m.rdb.SRem(ctx, keys.BatchesActive, batchID).Err()
	return sum, err
}

// cancelJob cancels one job that is not final, unless it has started.
func (m *Manager) cancelJob(ctx context.Context, jobID string) (canceled, running bool, err error) {
	fedAs, err := m.rdb.HGet(ctx, keys.FeedInflight, jobID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, false, fmt.Errorf("campaign: cancel %s: %w", jobID, err)
	}
	deleted := false
	if fedAs != "" {
		// An active task (a worker holds it) cannot be deleted: the record decides.
		err := m.inspector.DeleteTask(tasks.QueueBatch, jobID)
		deleted = err == nil
	}
	out, err := m.results.Cancel(ctx, jobID, "the campaign was canceled")
	if errors.Is(err, results.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("campaign: cancel %s: %w", jobID, err)
	}
	if out == results.Canceled && fedAs != "" {
		// A fed job held a place in the batch queue (internal/backlog): it is gone.
		_ = m.producer.Backlog().Served(ctx, tasks.PriorityBatch)
		// The image of a deleted task is released here; that of a task a worker
		// holds is left to its TTL (the worker may release it too).
		if _, _, ref := parseInflight(fedAs); ref != "" && deleted {
			_ = m.images.Release(ctx, ref)
		}
		_ = m.rdb.HDel(ctx, keys.FeedInflight, jobID).Err()
	}
	return out == results.Canceled, out == results.Running, nil
}

// RerunOptions configure Rerun.
type RerunOptions struct {
	// IncludeCanceled re-runs canceled jobs too. Defaults to false: failed jobs only.
	IncludeCanceled bool
}

// RerunSummary is the outcome of Rerun.
type RerunSummary struct {
	// Reopened is the number of jobs put back to queued and handed to the feeder
	// (with those an interrupted Rerun had reopened).
	Reopened int `json:"Reopened"`
	// Skipped is the number of failed jobs that cannot run again: their image was
	// sent inline over HTTP and is gone (import them again).
	Skipped int `json:"Skipped"`
}

// Rerun puts the failed jobs of campaign batchID (and its canceled ones, with
// IncludeCanceled) back to queued and feeds them again, before the rest of the
// campaign. A canceled campaign becomes active again. Running it again after it was
// interrupted also feeds the jobs it had reopened and not handed to the feeder.
func (m *Manager) Rerun(ctx context.Context, batchID string, opts RerunOptions) (*RerunSummary, error) {
	defer m.forget(batchID)
	in, err := m.Info(ctx, batchID)
	if err != nil {
		return nil, err
	}
	if in.Mode != ModeTokens {
		return nil, fmt.Errorf("%w: links are minted when opened; nothing to re-run", ErrModeMismatch)
	}
	sum := &RerunSummary{}
	var ids []string
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		vals := make([]any, len(ids))
		for i, id := range ids {
			vals[i] = id
		}
		// Their feeding entries (if the feeder has not pruned them yet) are stale. Three
		// keys in three slots: one command each, the campaign made active last.
		if err := m.rdb.HDel(ctx, keys.FeedInflight, ids...).Err(); err != nil {
			return fmt.Errorf("campaign: rerun %s: %w", batchID, err)
		}
		if err := m.rdb.RPush(ctx, keys.BatchRerun(batchID), vals...).Err(); err != nil {
			return fmt.Errorf("campaign: rerun %s: %w", batchID, err)
		}
		if err := m.rdb.SAdd(ctx, keys.BatchesActive, batchID).Err(); err != nil {
			return fmt.Errorf("campaign: rerun %s: %w", batchID, err)
		}
		ids = ids[:0]
		return nil
	}
	if in.State == StateCanceled {
		if err := m.rdb.HSet(ctx, keys.Batch(batchID), fState, string(StateActive)).Err(); err != nil {
			return nil, fmt.Errorf("campaign: rerun %s: %w", batchID, err)
		}
	}
	fed, err := m.rdb.HGet(ctx, keys.Batch(batchID), fFed).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("campaign: rerun %s: %w", batchID, err)
	}
	index := -1
	err = m.scanJobs(ctx, keys.BatchJobs(batchID), tasks.ApplyRecordFields, func(id string, v []any) error {
		index++
		st, _ := v[0].(string)
		if st == string(tasks.StatusQueued) && index < fed {
			// Passed by the feeder and queued, yet not fed: reopened by a re-run that
			// was interrupted before it handed the job to the feeder. Handed now.
			if inflight, err := m.rdb.HExists(ctx, keys.FeedInflight, id).Result(); err != nil || inflight {
				return err
			}
			sum.Reopened++
			if ids = append(ids, id); len(ids) == 500 {
				return flush()
			}
			return nil
		}
		if st != string(tasks.StatusFailed) && !(opts.IncludeCanceled && st == string(tasks.StatusCanceled)) {
			return nil
		}
		if ok, err := m.rerunnable(ctx, id, v); err != nil {
			return err
		} else if !ok {
			sum.Skipped++
			return nil
		}
		ok, err := m.results.Reopen(ctx, id)
		if err != nil || !ok {
			return err
		}
		sum.Reopened++
		if ids = append(ids, id); len(ids) == 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return sum, err
}

// rerunnable reports whether a job's image (if any) can still be found; an image
// sent inline over HTTP gets one more reference for the new run.
func (m *Manager) rerunnable(ctx context.Context, jobID string, rec []any) (bool, error) {
	p, _, err := tasks.ApplyPayloadFromRecord(jobID, rec)
	if err != nil || p == nil || p.ImageRef == "" {
		return err == nil, nil
	}
	img, err := m.images.Get(ctx, p.ImageRef)
	if errors.Is(err, images.ErrNotFound) {
		return false, nil
	}
	if err == nil {
		_, err = m.images.Put(ctx, img)
	}
	if err != nil {
		return false, fmt.Errorf("campaign: rerun %s: %w", jobID, err)
	}
	return true, nil
}
