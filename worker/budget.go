package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// Budget is one credential set of the pool (FACEIDQ_CREDENTIALS): its upstream
// client and the budgets of its actions. A job goes to the set with the soonest slot
// among those serving its region, and its result is fetched with the set that minted
// its BizToken.
type Budget struct {
	// Account identifies the set in job records: faceid.Client.Account, a digest
	// of the SecretId (never the SecretId or its key). Required when there are
	// several sets; sets sharing it (one SecretId at several endpoints) are one
	// account to Get.
	Account string
	// Masked is the SecretId with its middle masked (ratelimit.MaskAccount): the
	// job answer's Account. Defaults to none.
	Masked string
	// Regions are the regions the set serves. Defaults to every region.
	Regions []string
	// Upstream calls the API with the set's credentials. Required.
	Upstream Upstream
	// Limiters gives each action the set's budget (RateLimiters). Required.
	Limiters LimiterFunc
}

// ErrNoBudget is matched by the error of a job no configured credential set can
// run: its region is served by none, or its result must be fetched with an account
// no longer configured. The job fails with CodeNoBudget.
var ErrNoBudget = errors.New("worker: no credential set for the job")

// noBudgetError is an ErrNoBudget with the reason the job's record shows.
type noBudgetError struct{ reason string }

func (e *noBudgetError) Error() string        { return "worker: " + e.reason }
func (e *noBudgetError) Is(target error) bool { return target == ErrNoBudget }

// CodeNoBudget is the error code recorded for ErrNoBudget.
const CodeNoBudget = "FailedOperation.AccountNotConfigured"

// budget is a Budget with its actions' limiters.
type budget struct {
	Budget
	limiters map[string]Limiter // by upstream action
}

// serves reports whether b serves region ("" is faceid.DefaultRegion).
func (b *budget) serves(region string) bool {
	if region == "" {
		region = faceid.DefaultRegion
	}
	return len(b.Regions) == 0 || slices.Contains(b.Regions, region)
}

// route is what chooses a job's budget: its region and, for a result fetch, the
// account that minted its BizToken ("" : any).
type route struct{ region, account string }

// nextFreer is a Limiter that can tell when its next slot is free
// (ratelimit.Limiter.NextFree); a Limiter without it counts as free now.
type nextFreer interface {
	NextFree(ctx context.Context) (time.Duration, error)
}

// newBudgets returns the pool of cfg: Config.Budgets, or the one set of
// Config.Upstream and Config.Limiters (or Limiter). Each action's register asks every
// set for its limiter.
func newBudgets(cfg Config) []*budget {
	sets := cfg.Budgets
	if len(sets) == 0 {
		sets = []Budget{{Upstream: cfg.Upstream, Limiters: cfg.limiter}}
	}
	out := make([]*budget, 0, len(sets))
	for _, s := range sets {
		out = append(out, &budget{Budget: s, limiters: map[string]Limiter{}})
	}
	return out
}

// pick returns the budget a job of action runs on: with one set, that set at no
// cost; otherwise, among the sets that serve r, the one whose limiter offers the
// soonest slot (each asked once, at the same time). A set whose limiter cannot be
// read counts as the latest. The choice is a forecast: another process may take
// that slot first, and the job then simply waits its turn there.
func (w *Worker) pick(ctx context.Context, action string, r route) (*budget, error) {
	if len(w.budgets) == 1 && r.account == "" {
		b := w.budgets[0]
		if !b.serves(r.region) {
			return nil, &noBudgetError{"no configured credential set serves region " + r.region}
		}
		return b, nil
	}
	var cands []*budget
	for _, b := range w.budgets {
		if r.account == "" || b.Account == r.account {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return nil, &noBudgetError{"the credential set that minted the BizToken is no longer configured " +
			"(FACEIDQ_CREDENTIALS); its result can only be fetched with that set"}
	}
	if r.account == "" {
		cands = slices.DeleteFunc(cands, func(b *budget) bool { return !b.serves(r.region) })
		if len(cands) == 0 {
			return nil, &noBudgetError{"no configured credential set serves region " + r.region}
		}
	} else if serving := slices.DeleteFunc(slices.Clone(cands), func(b *budget) bool { return !b.serves(r.region) }); len(serving) > 0 {
		cands = serving // the minting account at an endpoint of the job's region, if any
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	waits := make([]time.Duration, len(cands))
	start := int(w.rotor.Add(1) % uint64(len(cands))) // ties go round the sets
	var wg sync.WaitGroup
	for i, b := range cands {
		nf, ok := b.limiters[action].(nextFreer)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := nf.NextFree(ctx)
			if err != nil {
				d = time.Duration(1<<63 - 1)
			}
			waits[i] = d
		}()
	}
	wg.Wait()
	best := start
	for k := range cands {
		if i := (start + k) % len(cands); waits[i] < waits[best] {
			best = i
		}
	}
	return cands[best], nil
}

// validateBudgets checks Config.Budgets.
func validateBudgets(sets []Budget) error {
	for i, s := range sets {
		switch {
		case s.Upstream == nil || s.Limiters == nil:
			return fmt.Errorf("worker: Config.Budgets[%d]: Upstream and Limiters are required", i)
		case s.Account == "" && len(sets) > 1:
			return fmt.Errorf("worker: Config.Budgets[%d]: Account is required when there are several sets", i)
		}
		for _, r := range s.Regions {
			if !faceid.ValidRegion(r) {
				return fmt.Errorf("worker: Config.Budgets[%d]: %q is not a region (one of %v)", i, r, faceid.Regions)
			}
		}
	}
	return nil
}
