package campaign

import "slices"

// Fair sharing of the batch lane among active campaigns (Feeder.Tick). A feeder
// hands out each round's budget one job at a time by smooth weighted round-robin
// over the campaigns it feeds, so that what it feeds, and then what the batch queue
// (first in, first out) runs, is a mix in proportion to the weights whatever the
// campaigns' import order. The budget is the room left in the window
// (FeederConfig.Window): a campaign imported later waits at most for the jobs
// already in it. Campaigns fed by another feeder (those whose images only their
// importing process reads) keep their share of the window: the weights split it,
// and each feeder leaves the other campaigns the room they lack.

// shares splits window among campaigns of the given weights, in proportion to the
// weights (largest remainder first, ties to the earlier campaign), and at least 1
// each so that no campaign starves.
func shares(window int, weights []int) []int {
	out := make([]int, len(weights))
	total := 0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return out
	}
	given := 0
	rems := make([]int, len(weights))
	for i, w := range weights {
		out[i] = window * w / total
		rems[i] = window * w % total
		given += out[i]
	}
	for ; given < window; given++ {
		best := -1
		for i := range rems {
			if rems[i] >= 0 && (best < 0 || rems[i] > rems[best]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out[best]++
		rems[best] = -1
	}
	for i := range out {
		out[i] = max(out[i], 1)
	}
	return out
}

// wrr is a smooth weighted round-robin (as nginx's upstream balancing): each job
// goes to the campaign of the highest credit, after every campaign's credit grew by
// its weight; the chosen one's credit then drops by the sum of the weights. Over any
// run of jobs, each campaign's count stays within one of its weighted share. The
// credits carry over from round to round.
type wrr struct {
	credit map[string]int
}

// allot hands out budget jobs among the campaigns ids of the given weights.
func (w *wrr) allot(budget int, ids []string, weights []int) []int {
	if w.credit == nil {
		w.credit = map[string]int{}
	}
	for id := range w.credit {
		if !slices.Contains(ids, id) {
			delete(w.credit, id) // a campaign that left starts afresh when it comes back
		}
	}
	out := make([]int, len(ids))
	total := 0
	for _, wt := range weights {
		total += wt
	}
	if total == 0 {
		return out
	}
	for ; budget > 0; budget-- {
		best := 0
		for i, id := range ids {
			w.credit[id] += weights[i]
			if w.credit[id] > w.credit[ids[best]] {
				best = i
			}
		}
		w.credit[ids[best]] -= total
		out[best]++
	}
	return out
}
