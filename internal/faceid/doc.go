// Package faceid is faceidq's client for Tencent Cloud FaceID's
// ApplyWebVerificationBizTokenIntl action, built on the official SDK's
// tencentcloud/common module (signing and transport).
//
// It provides the SDK-shaped request and response types, input validation used by
// producers and the simulator alike (Validate), the typed APIError, the one table
// that sorts every upstream error code into a Class the worker acts on (ClassOf,
// Classify), and Client, which makes one signed call per Apply with the SDK's own
// retries and region breaker off (the worker owns retries and pacing).
package faceid
