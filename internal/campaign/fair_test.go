package campaign

import (
	"slices"
	"testing"
)

func TestShares(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  int
		weights []int
		want    []int
	}{
		{"one campaign takes the window", 200, []int{5}, []int{200}},
		{"1:1 split evenly", 40, []int{1, 1}, []int{20, 20}},
		{"1:1 odd window, within 1", 41, []int{1, 1}, []int{21, 20}},
		{"1:3", 40, []int{1, 3}, []int{10, 30}},
		{"1:1:2", 40, []int{1, 1, 2}, []int{10, 10, 20}},
		{"largest remainder", 10, []int{1, 1, 1}, []int{4, 3, 3}},
		{"never starved", 10, []int{1, 1000}, []int{1, 10}},
		{"none", 10, nil, []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shares(tc.window, tc.weights); !slices.Equal(got, tc.want) {
				t.Fatalf("shares(%d, %v) = %v, want %v", tc.window, tc.weights, got, tc.want)
			}
		})
	}
}

func TestWRR(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
		budgets []int
	}{
		{"1:1", []int{1, 1}, []int{5, 1, 1, 7, 40, 3}},
		{"1:3", []int{1, 3}, []int{8, 1, 2, 5, 40, 3}},
		{"2:3:5", []int{2, 3, 5}, []int{10, 1, 9, 4, 40, 3}},
		{"one", []int{7}, []int{5, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := []string{"a", "b", "c"}[:len(tc.weights)]
			var w wrr
			got := make([]int, len(ids))
			total, wsum := 0, 0
			for _, wt := range tc.weights {
				wsum += wt
			}
			for _, budget := range tc.budgets {
				give := w.allot(budget, ids, tc.weights)
				sum := 0
				for i, n := range give {
					got[i] += n
					sum += n
				}
				if sum != budget {
					t.Fatalf("allot(%d) gave %v", budget, give)
				}
				total += budget
				// After every round, each campaign's count is within one of its share.
				for i, n := range got {
					want := float64(total) * float64(tc.weights[i]) / float64(wsum)
					if d := float64(n) - want; d >= 1 || d <= -1 {
						t.Fatalf("after %d jobs: counts %v, campaign %d (weight %d) has %d, want %.2f within 1", total, got, i, tc.weights[i], n, want)
					}
				}
			}
		})
	}
	t.Run("a campaign that left starts afresh", func(t *testing.T) {
		var w wrr
		w.allot(3, []string{"a", "b"}, []int{1, 1})
		w.allot(1, []string{"a"}, []int{1})
		if _, ok := w.credit["b"]; ok {
			t.Fatal("credit of a campaign that left is kept")
		}
	})
}

// TestWRRRounds runs rounds of a queue drained in order of arrival, as the worker
// does: whatever the start, the campaigns finish jobs at the rate of their weights
// (within a few jobs: those in the queue when the count begins).
func TestWRRRounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
	}{
		{"1:1", []int{1, 1}},
		{"1:3", []int{1, 3}},
		{"2:3:5", []int{2, 3, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const window, perRound, rounds = 40, 7, 400
			ids := []string{"a", "b", "c"}[:len(tc.weights)]
			var w wrr
			var queue []int // campaign of each job, in feeding order
			for range window {
				queue = append(queue, 0) // campaign 0 came first and filled the window
			}
			done := make([]int, len(tc.weights))
			for r := range rounds {
				for _, c := range queue[:perRound] {
					if r >= rounds/2 {
						done[c]++
					}
				}
				queue = queue[perRound:]
				give := w.allot(window-len(queue), ids, tc.weights)
				for i := range give {
					c := (i + r) % len(give) // as Feeder.Tick: a different campaign first each round
					for range give[c] {
						queue = append(queue, c)
					}
				}
			}
			total, wsum := 0, 0
			for i := range done {
				total += done[i]
				wsum += tc.weights[i]
			}
			for i, n := range done {
				want := float64(total) * float64(tc.weights[i]) / float64(wsum)
				if d := float64(n) - want; d > 3 || d < -3 {
					t.Errorf("campaign %d (weight %d) finished %d jobs, want %.1f within 3; all: %v", i, tc.weights[i], n, want, done)
				}
			}
		})
	}
}
