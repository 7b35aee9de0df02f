// Package campaign runs batch onboarding campaigns: many token-apply jobs (or start
// links) imported at once from a CSV or NDJSON file or an HTTP body, fed to the
// batch queue under backpressure, observed (counts, rate, ETA), controlled (pause,
// resume, cancel, re-run) and exported.
package campaign
