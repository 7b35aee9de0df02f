package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxAdminBody bounds a PUT /_sim/faults body.
const maxAdminBody = 64 << 10

// adminMux routes the /_sim/ endpoints (documented on AdminHandler).
func (s *Server) adminMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, s.Stats())
	})
	m.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		writeAdminJSON(w, http.StatusOK, s.Stats())
	})
	m.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, s.faultsView())
	})
	m.HandleFunc("PUT /_sim/faults", s.putFaults)
	m.HandleFunc("POST /_sim/complete", s.postComplete)
	return m
}

// AdminHandler returns a handler for the /_sim/ endpoints alone, for a caller that
// wants them on a separate listener (one a refuse outage leaves open).
//
// Under /_sim/, JSON in and out, never counted as requests and never signed:
//
//	GET  /_sim/stats   the Stats: requests, admitted, by_code ("OK" for successes),
//	                   max_in_any_second, max_admitted_in_any_second, rate,
//	                   refused_connections, in_flight, since, first_at, last_at,
//	                   by_action, and budgets (per secret_id, host and action).
//	POST /_sim/reset   zero the stats (not the rate limiter); answers the zeroed stats.
//	GET  /_sim/faults  the faults in force, plus outage_until while a timed outage lasts.
//	PUT  /_sim/faults  replace all the faults (absent fields become zero); answers the
//	                   new state, or 400 {"error": "..."} for a bad value:
//
//	{"internal_error_rate": 0.1, "latency": "200ms", "jitter": "50ms",
//	 "outage": "html502", "outage_for": "30s", "account_error": "UnauthorizedOperation.Arrears"}
//
// outage is "", "refuse" or "html502". Over HTTP a refuse outage needs an outage_for,
// since it refuses the admin endpoint as well (AdminHandler can serve /_sim/ on a
// listener of its own; SetFaults has no such restriction).
func (s *Server) AdminHandler() http.Handler { return s.admin }

// faultsView is the wire form of the faults in force, with when the outage ends.
func (s *Server) faultsView() faultsJSON {
	f := s.faults.Load()
	if f.outage(s.cfg.Now()) == OutageNone {
		return toJSON(s.Faults(), time.Time{})
	}
	return toJSON(f.Faults, f.until)
}

func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	var in faultsJSON
	if err := dec.Decode(&in); err != nil {
		writeAdminError(w, fmt.Errorf("simulator: PUT /_sim/faults: %w", err))
		return
	}
	f := in.faults()
	if f.Outage == OutageRefuse && f.OutageFor <= 0 {
		writeAdminError(w, errors.New(`simulator: PUT /_sim/faults: outage "refuse" needs an outage_for: `+
			"the admin endpoint is refused too while the outage lasts"))
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeAdminError(w, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, s.faultsView())
}

func writeAdminError(w http.ResponseWriter, err error) {
	writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the caller is gone if this fails; nothing to do
}
