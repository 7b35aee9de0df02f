// Package campaign runs batch onboarding campaigns: many token-apply jobs (or start
// links) imported at once from CSV or NDJSON, fed to the batch lane under
// backpressure, observed, controlled (pause, resume, cancel, re-run) and exported.
//
// Invariants:
//   - every job is made and enqueued through the producer (Producer.Validate,
//     WriteDeferred at import, Feed by the Feeder, Submit when a start link is
//     opened), and every state change goes through results.Store;
//   - a row key creates at most one job or link per campaign, and an import
//     interrupted at any point can be run again without losing or duplicating a row;
//   - every key of one campaign shares the hash tag {BatchId}; job records, links and
//     global keys are never combined with them in one MULTI or script (Redis Cluster);
//   - at most FeederConfig.MaxPending campaign jobs are fed and not final at once.
//   - active campaigns are fed in proportion to their weights, not in import order, and
//     at most FeederConfig.Window fed jobs wait or run at once (fair.go).
//
// docs/campaigns.md describes the design (row keys, feeding, images, links). This
// package has no HTTP: the campaign routes are in package httpapi.
package campaign
