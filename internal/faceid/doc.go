// Package faceid is faceidq's client for Tencent Cloud FaceID's
// ApplyWebVerificationBizTokenIntl action, built on the official SDK's
// tencentcloud/common module (signing and transport): the SDK-shaped request and
// response types, input validation (Validate), the typed APIError, the one table
// that sorts every upstream code into a Class (ClassOf, Classify), and Client, which
// makes one signed call per Apply with the SDK's own retries off (the worker owns
// retries and pacing).
//
// Invariants: Validate refuses only what Tencent's documentation (or the RFC a
// field names) states, so producers and the simulator, which share it, never refuse
// what the API accepts; every code of the SDKs' published lists has its own row in
// the table; an APIError never holds a secret or image bytes.
package faceid
