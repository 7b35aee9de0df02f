package campaign

// Fair sharing of the batch lane among active campaigns (Feeder.Tick): the feeder's
// window (FeederConfig.Window) is split among the active campaigns in proportion to
// their weights, and each round a campaign is fed up to its share minus its jobs
// already waiting or running. The queue then holds a mix of campaigns in proportion
// to their weights whatever their import order, and the state is all in Redis (the
// campaigns' weights and the fed jobs), so any feeder reaches the same split.

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

// allot hands out budget jobs among campaigns of the given shares and jobs already
// waiting or running (ready); only those with feedable set are given any. Each next
// job goes to the campaign furthest below its share relative to the share, so that
// a budget smaller than the shortfall is split in proportion too.
func allot(budget int, share, ready []int, feedable []bool) []int {
	out := make([]int, len(share))
	for ; budget > 0; budget-- {
		best := -1
		var bestGap, bestShare int
		for i := range share {
			gap := share[i] - ready[i] - out[i]
			if !feedable[i] || gap <= 0 {
				continue
			}
			// gap/share > bestGap/bestShare, without division.
			if best < 0 || gap*bestShare > bestGap*share[i] {
				best, bestGap, bestShare = i, gap, share[i]
			}
		}
		if best < 0 {
			break
		}
		out[best]++
	}
	return out
}
