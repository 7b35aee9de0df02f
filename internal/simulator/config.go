package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The development credentials a simulator accepts when its Config names none. They are
// public: `faceidq serve` signs with them when it runs the embedded simulator.
const (
	DevSecretID  = "AKIDfaceidqSimulatorDevSecretId0000"
	DevSecretKey = "faceidqSimulatorDevSecretKey0000"
)

// Defaults applied by New.
const (
	// DefaultRate is the upstream's documented limit: 20 requests in any sliding second.
	DefaultRate = 20
)

// MaxBodyBytes is the largest request body accepted (API 3.0 POST limit, 10 MB);
// a larger one is answered RequestSizeLimitExceeded.
const MaxBodyBytes = 10 << 20

// Config configures a Server. The zero Config is a simulator with the development
// credentials, the real limit of 20 per second, a random seed, no faults and the real
// clock.
type Config struct {
	// SecretID and SecretKey are the only credentials the simulator accepts: another
	// SecretId is answered AuthFailure.SecretIdNotFound, a wrong key
	// AuthFailure.SignatureFailure. Both empty default to DevSecretID and DevSecretKey;
	// setting only one of them is an error.
	SecretID  string
	SecretKey string
	// Credentials are more credential sets accepted besides SecretID and SecretKey
	// (several budgets, FACEIDQ_CREDENTIALS). Defaults to none.
	Credentials []Credential

	// Rate is how many requests are admitted in any sliding second (see the package
	// doc for the exact window), per action, SecretId and Host (the endpoint a
	// request was sent to), as Tencent limits per action, endpoint and sub-account.
	// Defaults to DefaultRate (20) when 0; a negative Rate disables the limit
	// (benchmarks, load generators measuring the caller).
	Rate int
	// SharedLimit makes every SecretId and Host share one limit of Rate per action:
	// the test of a caller that believes it has several budgets when the upstream
	// enforces one. Defaults to false.
	SharedLimit bool

	// Seed seeds every random choice: the InternalError draw, the latency jitter and
	// the BizToken and RequestId values, so a run with the same seed and the same
	// order of requests repeats exactly. Defaults, when 0, to a seed drawn from a
	// random source, so that two simulators (two runs of `faceidq serve` on one
	// persistent Redis) never issue the same BizTokens; Server.Seed reports it.
	Seed uint64

	// Faults are the faults injected from the start; they can be changed at run time
	// with SetFaults or PUT /_sim/faults. Defaults to none.
	Faults Faults

	// PublicURL is the simulator's base URL as a person's browser reaches it, e.g.
	// http://127.0.0.1:9000: set, a VerificationURL points at the simulator's own
	// page (<PublicURL>/verify?token=…), which completes the flow. Defaults to none:
	// VerificationURLs have Tencent's shape.
	PublicURL string
	// FlowTimeout is how long after the mint a person can complete a flow.
	// Defaults to DefaultFlowTimeout (10 minutes).
	FlowTimeout time.Duration
	// ResultWindow is how long after the mint GetWebVerificationResultIntl answers
	// for a token. Defaults to DefaultResultWindow (three days).
	ResultWindow time.Duration
	// FlowNow is the clock of the flows alone (mint, completion, FlowTimeout,
	// ResultWindow), so a test can move days ahead while requests stay signed with
	// the real time. Defaults to Now.
	FlowNow func() time.Time
	// MaxFlows bounds the flows kept in memory. Defaults to DefaultMaxFlows.
	MaxFlows int

	// Now is the clock used for signature expiry, the rate-limit window, outage
	// durations and statistics. Defaults to time.Now. Latency is always real time.
	Now func() time.Time
}

// withDefaults returns c with its defaults applied, or an error naming the bad field.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.SecretID == "" && c.SecretKey == "":
		c.SecretID, c.SecretKey = DevSecretID, DevSecretKey
	case c.SecretID == "" || c.SecretKey == "":
		return c, errors.New("simulator: config: SecretID and SecretKey must be set together")
	}
	seen := map[string]bool{c.SecretID: true}
	for i, cr := range c.Credentials {
		switch {
		case cr.SecretID == "" || cr.SecretKey == "":
			return c, fmt.Errorf("simulator: config: Credentials[%d]: SecretID and SecretKey are required", i)
		case seen[cr.SecretID]:
			return c, fmt.Errorf("simulator: config: Credentials[%d]: SecretID given twice", i)
		}
		seen[cr.SecretID] = true
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	for c.Seed == 0 {
		c.Seed = rand.Uint64() // math/rand/v2's generator is seeded from the OS
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := c.Faults.validate(); err != nil {
		return c, fmt.Errorf("simulator: config: %w", err)
	}
	return c, nil
}
