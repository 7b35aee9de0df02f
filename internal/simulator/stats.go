package simulator

import (
	"maps"

	"github.com/faceidq/faceidq/internal/faceid"
	"time"
)

// Stats are the simulator's counters, as GET /_sim/stats returns them.
type Stats struct {
	// Requests counts the API requests received (every arrival on "/", refused,
	// invalid and html502 ones included; not the connections of a refuse outage).
	Requests int64 `json:"requests"`
	// Admitted counts the requests that passed the rate limiter.
	Admitted int64 `json:"admitted"`
	// ByCode counts answers by error code, with "OK" for successes, "HTTP502" for the
	// pages of an html502 outage and "Canceled" for callers gone before the answer.
	// Once no request is in flight, the counts add up to Requests.
	ByCode map[string]int64 `json:"by_code"`
	// MaxInAnySecond is the most requests received within any sliding 1 s window: it
	// shows how well the caller paces itself.
	MaxInAnySecond int `json:"max_in_any_second"`
	// MaxAdmittedInAnySecond is the most requests admitted within any sliding 1 s
	// window; it never exceeds Rate.
	MaxAdmittedInAnySecond int `json:"max_admitted_in_any_second"`
	// Rate is the limit in force (requests per sliding second), 0 for none.
	Rate int `json:"rate"`
	// RefusedConnections counts connections a refuse outage dropped when the Server
	// runs as a plain handler (under Serve they are refused by the OS, uncounted).
	RefusedConnections int64 `json:"refused_connections"`
	// InFlight is the number of API requests being handled (e.g. in a latency delay).
	InFlight int64 `json:"in_flight"`
	// Since is when counting started: New or the last reset.
	Since time.Time `json:"since"`
	// ByAction counts each action on its own: ApplyWebVerificationBizTokenIntl (the
	// fields above) and GetWebVerificationResultIntl (which the fields above do not
	// count), each under its own limit of Rate.
	ByAction map[string]ActionStats `json:"by_action"`
	// Budgets breaks the admitted requests down by SecretId, Host and action, the
	// keys of the limit (all sharing one with Config.SharedLimit).
	Budgets []BudgetStats `json:"budgets"`
	// FirstAt and LastAt are the arrival times of the first and last request counted.
	FirstAt time.Time `json:"first_at,omitzero"`
	LastAt  time.Time `json:"last_at,omitzero"`
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	get, bs := s.fl().stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	bs = s.limits.appendStats(bs, faceid.Action)
	sortBudgetStats(bs)
	return Stats{
		Budgets: bs,
		ByAction: map[string]ActionStats{
			faceid.Action: {Requests: s.st.requests, Admitted: s.st.admitted, ByCode: maps.Clone(s.st.byCode),
				MaxInAnySecond: s.st.maxReceived, MaxAdmittedInAnySecond: s.st.maxAdmitted},
			faceid.ActionGet: get,
		},
		Requests:               s.st.requests,
		Admitted:               s.st.admitted,
		ByCode:                 maps.Clone(s.st.byCode),
		MaxInAnySecond:         s.st.maxReceived,
		MaxAdmittedInAnySecond: s.st.maxAdmitted,
		Rate:                   s.Rate(),
		RefusedConnections:     s.st.refused,
		InFlight:               s.inFlight.Load(),
		Since:                  s.st.since,
		FirstAt:                s.st.first,
		LastAt:                 s.st.last,
	}
}

// ResetStats zeroes the counters and the statistics windows. The rate limiter keeps
// its state: a reset does not grant a fresh second of quota.
func (s *Server) ResetStats() {
	now := s.cfg.Now()
	s.fl().reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = counters{byCode: map[string]int64{}, since: now}
	s.received.clear()
	s.admittedW.clear()
	s.limits.resetStats()
}
