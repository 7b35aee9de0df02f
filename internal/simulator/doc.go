// Package simulator is a faithful, fast stand-in for Tencent Cloud FaceID's
// ApplyWebVerificationBizTokenIntl endpoint: `faceidq simulate` runs it as a real HTTP
// server (ListenAndServe or Serve), `faceidq serve` embeds it in-process, and every
// test, demo and benchmark of faceidq talks to it.
//
// # The action
//
// POST / with the API 3.0 headers (X-TC-Action, X-TC-Version, X-TC-Region,
// X-TC-Timestamp, Authorization, Content-Type: application/json), exactly what the
// official SDK sends with HttpProfile.Scheme "HTTP" and Endpoint "127.0.0.1:port".
// Every answer is HTTP 200 with the real envelope, as the gateway does:
//
//	{"Response":{"BizToken":"81EEF678-…","VerificationURL":"https://intl.faceid.qq.com/reflect/?token=81EEF678-…","RequestId":"b16194cd-…"}}
//	{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"…"},"RequestId":"…"}}
//
// except during an html502 outage (502 with an HTML page) or a refuse outage (no
// answer). BizToken and RequestId are version 4 UUIDs drawn from the seeded generator.
//
// # Order of the checks
//
// A request to "/" is checked in this order; the first failure is the answer:
//
//  1. Outage: refuse drops the connection (uncounted); html502 answers the page.
//  2. Method: anything but POST is UnsupportedProtocol.
//  3. Size: a body over MaxBodyBytes (10 MB) is RequestSizeLimitExceeded.
//  4. Signature (package tc3, service faceid, ±300 s): MissingParameter,
//     InvalidParameter (timestamp), AuthFailure.InvalidAuthorization,
//     AuthFailure.SecretIdNotFound, AuthFailure.SignatureExpire,
//     AuthFailure.SignatureFailure.
//  5. Account fault: with Faults.AccountError set, every correctly signed request is
//     answered that code (e.g. UnauthorizedOperation.Arrears), without using quota.
//  6. Action and Version: MissingParameter, InvalidAction, NoSuchVersion.
//  7. Rate limit: RequestLimitExceeded (below).
//  8. Region (X-TC-Region, one of faceid.Regions): MissingParameter, UnsupportedRegion.
//  9. Content-Type application/json, JSON body: InvalidParameter for bad JSON or a
//     value of the wrong type, UnknownParameter for a name the action does not have
//     (names match exactly, in the body and in Config).
//  10. faceid.Validate: MissingParameter, InvalidParameter, InvalidParameterValue.
//  11. InternalError fault: with probability Faults.InternalErrorRate.
//  12. Success: a new BizToken.
//
// Every request to "/" is counted as an arrival at the time it was received
// (Config.Now when the handler starts), except the connections a refuse outage drops.
// The rate limiter, like the real gateway's frequency limit, applies to signed
// requests of this action: those that pass steps 1 to 6. A request it admits uses
// quota even if a later step fails; a request it refuses uses none. The latency fault
// then delays the answer, whatever it is: the arrival was counted and admitted (or
// not) before the delay. A caller that goes away during the delay gets no answer and
// is counted as Canceled.
//
// # Rate limit
//
// A window is a half-open interval of one second, (t−1s, t]. A request arriving at t
// is admitted when fewer than Rate requests were admitted in (t−1s, t]; a request
// admitted at 0 s no longer counts at exactly 1 s. Hence no window of one second, at
// any position, ever holds more than Rate admitted requests, and a caller pacing one
// request every 1/Rate s is never refused. Only admitted requests fill the window:
// refused ones do not extend the penalty. Times come from Config.Now; arrivals recorded
// out of order by a few microseconds (concurrent handlers) are clamped to the latest
// recorded time. Stats.MaxInAnySecond and Stats.MaxAdmittedInAnySecond are the exact
// maxima over all such windows, computed on the same definition.
//
// # Admin endpoints
//
// Under /_sim/, JSON in and out, never counted as requests and never signed:
//
//	GET  /_sim/stats   the Stats: requests, admitted, by_code ("OK" for successes),
//	                   max_in_any_second, max_admitted_in_any_second, rate,
//	                   refused_connections, in_flight, since, first_at, last_at.
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
//
// # Determinism
//
// Config.Seed seeds two math/rand/v2 PCG generators: one for the InternalError draws
// and the jitter, one for BizToken and RequestId. Draws are made under the same lock
// as the arrival is recorded, so a run with the same seed, the same faults and the same
// order of requests gives the same answers.
package simulator
