package simulator

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
)

// Credential is one more credential set a simulator accepts (Config.Credentials).
type Credential struct {
	SecretID  string
	SecretKey string
}

// budgetKey names one limit of an action: Tencent's is per action, access endpoint
// and sub-account, so the simulator's is per action, Host and SecretId.
type budgetKey struct{ secretID, host string }

// BudgetStats are the counters of one (SecretId, Host, action) (Stats.Budgets).
type BudgetStats struct {
	SecretID string `json:"secret_id"`
	Host     string `json:"host"`
	Action   string `json:"action"`
	// Requests counts the signed requests that reached the limiter.
	Requests int64 `json:"requests"`
	// Admitted counts those it admitted.
	Admitted int64 `json:"admitted"`
	// MaxAdmittedInAnySecond is the most admitted within any sliding second.
	MaxAdmittedInAnySecond int `json:"max_admitted_in_any_second"`
}

type budgetCounters struct {
	requests, admitted int64
	admittedW          window
	maxAdmitted        int
}

// budgets are the limits of one action, one sliding-second window per budgetKey
// (one for every key with Config.SharedLimit), and each key's counters. The caller
// holds the lock of the action's state.
type budgets struct {
	shared bool
	limits map[budgetKey]*window
	stats  map[budgetKey]*budgetCounters
}

func newBudgets(shared bool) budgets {
	return budgets{shared: shared, limits: map[budgetKey]*window{}, stats: map[budgetKey]*budgetCounters{}}
}

// admit records an arrival of k at t and decides it under rate (negative: no
// limit); when refused, inWindow is the number admitted in k's window.
func (b *budgets) admit(k budgetKey, t int64, rate int) (ok bool, inWindow int) {
	c := b.stats[k]
	if c == nil {
		c = &budgetCounters{admittedW: newWindow(second)}
		b.stats[k] = c
	}
	c.requests++
	if rate >= 0 {
		lk := k
		if b.shared {
			lk = budgetKey{}
		}
		w := b.limits[lk]
		if w == nil {
			nw := newWindow(second)
			w = &nw
			b.limits[lk] = w
		}
		w.advance(t)
		if w.total >= rate {
			return false, w.total
		}
		w.add(t)
	}
	c.admitted++
	c.admittedW.advance(t)
	c.admittedW.add(t)
	c.maxAdmitted = max(c.maxAdmitted, c.admittedW.total)
	return true, 0
}

// appendStats appends the counters of every key, for action.
func (b *budgets) appendStats(out []BudgetStats, action string) []BudgetStats {
	for k, c := range b.stats {
		out = append(out, BudgetStats{SecretID: k.secretID, Host: k.host, Action: action,
			Requests: c.requests, Admitted: c.admitted, MaxAdmittedInAnySecond: c.maxAdmitted})
	}
	return out
}

// resetStats zeroes the counters; the limits keep their state.
func (b *budgets) resetStats() { clear(b.stats) }

func sortBudgetStats(s []BudgetStats) {
	slices.SortFunc(s, func(a, b BudgetStats) int {
		return cmp.Or(cmp.Compare(a.SecretID, b.SecretID), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Action, b.Action))
	})
}

// budgetOf is the budget of a request whose signature was verified: the SecretId of
// its Authorization header's credential scope and the Host it was sent to.
func budgetOf(r *http.Request) budgetKey {
	return budgetKey{secretID: secretIDOf(r.Header.Get("Authorization")), host: cmp.Or(r.Host, r.URL.Host)}
}

// secretIDOf returns the SecretId of a TC3 Authorization header
// ("… Credential=<SecretId>/<date>/<service>/tc3_request, …").
func secretIDOf(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}
