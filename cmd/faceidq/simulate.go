package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/faceidq/faceidq/internal/simulator"
)

// simulateOpts are the options of `faceidq simulate`.
type simulateOpts struct {
	log                                  *logOpts
	listen, secretID, secretKey          *option
	rate, seed, errRate, latency, jitter *option
	accountError, credentials, shared    *option
}

func simulateFlags() (*flags, *simulateOpts) {
	f := newFlags("simulate")
	o := &simulateOpts{log: addLog(f)}
	o.listen = f.opt("listen", "FACEIDQ_LISTEN", "127.0.0.1:9000", "listen address of the simulator")
	o.secretID = f.secretOpt("secret-id", "TENCENTCLOUD_SECRET_ID", "the only SecretId accepted (default: the development credentials "+simulator.DevSecretID+")")
	o.secretKey = f.secretOpt("secret-key", "TENCENTCLOUD_SECRET_KEY", "its SecretKey")
	o.credentials = f.opt("credentials", "FACEIDQ_CREDENTIALS", "", "also accept every credential set of this file (the workers' FACEIDQ_CREDENTIALS), each with its own limit per action and host (default none)")
	o.shared = f.opt("shared-limit", "", "", "1: every SecretId and host share one limit per action, to test a caller's slowdown when the upstream enforces one (default none: a limit each)")
	o.rate = f.opt("rate", "", strconv.Itoa(simulator.DefaultRate), "requests admitted in any sliding second (negative: no limit)")
	o.seed = f.opt("seed", "", "", "seed of every random choice, to repeat a run (default: random, logged at start)")
	o.errRate = f.opt("internal-error-rate", "", "0", "probability of answering InternalError").as("number")
	o.latency = f.opt("latency", "", "0s", "added latency of every answer")
	o.jitter = f.opt("jitter", "", "0s", "half-width of a uniform random spread around --latency")
	o.accountError = f.opt("account-error", "", "", "answer every signed request with this account-level code, e.g. UnauthorizedOperation.Arrears")
	return f, o
}

func runSimulate(ctx context.Context, e *env, args []string) error {
	f, o := simulateFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	log, err := o.log.logger(e.stderr)
	if err != nil {
		return err
	}
	cfg := simulator.Config{SecretID: o.secretID.value, SecretKey: o.secretKey.value}
	addr, err := o.listen.address()
	if err != nil {
		return err
	}
	if cfg.Rate, err = strconv.Atoi(o.rate.value); err != nil || cfg.Rate == 0 {
		return o.rate.bad("not a whole number other than 0")
	}
	if cfg.Seed, err = parseSeed(o.seed); err != nil {
		return err
	}
	if cfg.Faults.InternalErrorRate, err = strconv.ParseFloat(o.errRate.value, 64); err != nil {
		return o.errRate.bad("not a probability between 0 and 1")
	}
	if cfg.Faults.Latency, err = time.ParseDuration(o.latency.value); err != nil {
		return o.latency.bad("not a duration")
	}
	if cfg.Faults.Jitter, err = time.ParseDuration(o.jitter.value); err != nil {
		return o.jitter.bad("not a duration")
	}
	cfg.Faults.AccountError = o.accountError.value
	cfg.SharedLimit = o.shared.value == "1" || o.shared.value == "true"
	if o.credentials.set() {
		sets, err := loadCredentials(o.credentials.value, "")
		if err != nil {
			return usagef("%s: %v", o.credentials.name(), err)
		}
		seen := map[string]bool{cmp.Or(cfg.SecretID, simulator.DevSecretID): true}
		for _, s := range sets { // one SecretId at several endpoints is one credential
			if !seen[s.SecretID] {
				seen[s.SecretID] = true
				cfg.Credentials = append(cfg.Credentials, simulator.Credential{SecretID: s.SecretID, SecretKey: s.SecretKey})
			}
		}
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		sim.SetPublicURL("http://" + ln.Addr().String()) // its VerificationURLs complete the flow
	}
	id, _ := sim.Credential()
	announce(ctx, log.With().Str("cmd", "simulate").Uint64("seed", sim.Seed()).Logger(), "simulator", ln.Addr().String(),
		fmt.Sprintf("upstream simulator listening: FACEIDQ_ENDPOINT=http://%s with SecretId %s; stats at /_sim/stats; --seed %d repeats this run", ln.Addr(), id, sim.Seed()))
	return sim.Serve(ctx, ln)
}

// parseSeed reads a simulator seed: "" (not given) is 0, a random seed.
func parseSeed(o *option) (uint64, error) {
	if o.value == "" {
		return 0, nil
	}
	seed, err := strconv.ParseUint(o.value, 10, 64)
	if err != nil || seed == 0 {
		return 0, o.bad("not a whole number from 1 to 18446744073709551615")
	}
	return seed, nil
}
