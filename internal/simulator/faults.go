package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OutageMode is how the simulator behaves during an outage.
type OutageMode string

// The outage modes.
const (
	// OutageNone: no outage.
	OutageNone OutageMode = ""
	// OutageRefuse: connections are refused. Under Serve or ListenAndServe the
	// listener is closed (open connections too) and re-opened on the same address when
	// the outage ends; a Server used as a plain http.Handler closes each connection
	// without an answer instead.
	OutageRefuse OutageMode = "refuse"
	// OutageHTML502: every API request is answered 502 Bad Gateway with an HTML page,
	// as a gateway in front of a dead backend does.
	OutageHTML502 OutageMode = "html502"
)

// Faults are the faults a simulator injects. The zero Faults injects none.
type Faults struct {
	// InternalErrorRate is the probability (0 to 1) that an admitted, valid request is
	// answered InternalError instead of a BizToken.
	InternalErrorRate float64
	// Latency delays every API answer (errors included) by Latency ± Jitter, drawn
	// uniformly and never below zero. The delay runs after the request was counted
	// and admitted or refused, i.e. it models a slow backend, not a slow network on
	// the way in.
	Latency time.Duration
	// Jitter is the half-width of the uniform spread around Latency. Latency and
	// Jitter are each at most 24 hours.
	Jitter time.Duration
	// Outage is the current outage mode.
	Outage OutageMode
	// OutageFor ends the outage by itself that long after it was set; 0 means it lasts
	// until the faults are changed.
	OutageFor time.Duration
	// AccountError, when set, is the code every correctly signed request is answered
	// with, e.g. "UnauthorizedOperation.Arrears" (the account ran out of credit).
	AccountError string
}

// maxDelay bounds Latency and Jitter.
const maxDelay = 24 * time.Hour

// validate checks the values every setter must respect.
func (f Faults) validate() error {
	switch {
	case !(f.InternalErrorRate >= 0 && f.InternalErrorRate <= 1): // also refuses NaN
		return fmt.Errorf("faults: InternalErrorRate %v is not a probability between 0 and 1", f.InternalErrorRate)
	case f.Latency < 0 || f.Latency > maxDelay:
		return fmt.Errorf("faults: Latency %v is not between 0 and %v", f.Latency, maxDelay)
	case f.Jitter < 0 || f.Jitter > maxDelay:
		return fmt.Errorf("faults: Jitter %v is not between 0 and %v", f.Jitter, maxDelay)
	case f.OutageFor < 0:
		return fmt.Errorf("faults: OutageFor %v is negative", f.OutageFor)
	case f.Outage == OutageNone && f.OutageFor != 0:
		return errors.New("faults: OutageFor is set without an Outage mode")
	}
	switch f.Outage {
	case OutageNone, OutageRefuse, OutageHTML502:
	default:
		return fmt.Errorf("faults: Outage %q is not one of \"\", %q, %q", f.Outage, OutageRefuse, OutageHTML502)
	}
	if f.AccountError != "" && !isErrorCode(f.AccountError) {
		return fmt.Errorf("faults: AccountError %q is not an error code such as UnauthorizedOperation.Arrears", f.AccountError)
	}
	return nil
}

// isErrorCode reports whether s looks like a Tencent Cloud error code: dot-separated
// words of letters and digits, the first starting with an upper-case letter.
func isErrorCode(s string) bool {
	if len(s) > 128 || s == "" || s[0] < 'A' || s[0] > 'Z' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' && s[i-1] != '.'
		if !ok {
			return false
		}
	}
	return true
}

// faultState is what the request path reads: the faults and when the outage ends.
type faultState struct {
	Faults
	until time.Time // zero: the outage (if any) has no end
}

// outage returns the outage mode in force at now.
func (f *faultState) outage(now time.Time) OutageMode {
	if f.Outage == OutageNone || !f.until.IsZero() && !now.Before(f.until) {
		return OutageNone
	}
	return f.Outage
}

// faultsJSON is the wire form of Faults on /_sim/faults: snake_case names, durations
// as Go duration strings ("250ms", "1m30s").
type faultsJSON struct {
	InternalErrorRate float64    `json:"internal_error_rate"`
	Latency           jsonDur    `json:"latency"`
	Jitter            jsonDur    `json:"jitter"`
	Outage            OutageMode `json:"outage"`
	OutageFor         jsonDur    `json:"outage_for"`
	AccountError      string     `json:"account_error"`
	// Read-only, on GET: when the current outage ends by itself.
	OutageUntil time.Time `json:"outage_until,omitzero"`
}

func toJSON(f Faults, until time.Time) faultsJSON {
	return faultsJSON{
		InternalErrorRate: f.InternalErrorRate, Latency: jsonDur(f.Latency), Jitter: jsonDur(f.Jitter),
		Outage: f.Outage, OutageFor: jsonDur(f.OutageFor), AccountError: f.AccountError, OutageUntil: until,
	}
}

func (j faultsJSON) faults() Faults {
	return Faults{
		InternalErrorRate: j.InternalErrorRate, Latency: time.Duration(j.Latency), Jitter: time.Duration(j.Jitter),
		Outage: j.Outage, OutageFor: time.Duration(j.OutageFor), AccountError: j.AccountError,
	}
}

// jsonDur is a time.Duration written and read as a Go duration string.
type jsonDur time.Duration

func (d jsonDur) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDur) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration must be a string such as "250ms" or "1m30s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: use a string such as \"250ms\" or \"1m30s\"", s)
	}
	*d = jsonDur(v)
	return nil
}
