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

// adminMux routes the /_sim/ endpoints (documented in the package doc).
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
