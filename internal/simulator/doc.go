// Package simulator is a faithful, fast stand-in for Tencent Cloud FaceID's
// ApplyWebVerificationBizTokenIntl endpoint: `faceidq simulate` runs it as a real HTTP
// server, `faceidq serve` embeds it, and every test, demo and benchmark of faceidq
// talks to it (Server.ServeHTTP gives the checks and their order).
//
// Invariants: it checks what the API checks, in the API's order, and answers with the
// API's envelope and codes, using the same TC3 verification (package tc3) and input
// validation (faceid.Validate) as the rest of faceidq; no window of one second ever
// holds more than Config.Rate admitted requests of one action, SecretId and Host (see
// Server.Rate); a BizToken's result answers only the SecretId that minted it; with
// the same Config.Seed, faults and order of requests, a run repeats exactly.
package simulator
