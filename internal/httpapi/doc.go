// Package httpapi is faceidq's one HTTP edge (`faceidq serve` and `faceidq api`; NewOps
// for a worker's health and metrics): every route, the token and campaign routes
// included, is a row of one route table (Routes; the README's table is checked
// against it), mounted behind one bearer-token check, and answers JSON in Tencent's
// PascalCase.
//
// Invariants:
//   - Every error is one envelope, {"Error":{"Code","Message"},"RequestId"}, the
//     RequestId also in X-Request-Id; messages name the field and never carry a stack,
//     a secret or image bytes (internal detail goes to the log only).
//   - A request body is read with tasks.DecodeTokenRequest's strictness, and a refused
//     request creates nothing.
//   - Waiting for a final job (Prefer: wait) goes through the process's one
//     jobwait.Waiter; campaign logic stays in package campaign, without HTTP.
//   - Only GET /healthz and GET /v1/start/{LinkId} (a person's link, whose LinkId is
//     the capability) are served without a token when tokens are configured.
package httpapi
