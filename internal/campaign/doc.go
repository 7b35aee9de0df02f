// Package campaign runs batch onboarding campaigns: many token-apply jobs (or start
// links) imported at once from a CSV or NDJSON file or an HTTP body, fed to the
// batch queue under backpressure, observed (counts, rate, ETA), controlled (pause,
// resume, cancel, re-run) and exported.
//
// # Import
//
// Manager.Import (an io.Reader: the body of POST /v1/batches) and Manager.ImportFile
// (a file: the CLI) read rows one at a time and write them in pipelined chunks of 500
// (ImportOptions.ChunkSize), so an import runs at tens of thousands of rows a second
// and its memory does not grow with the input. Every row is validated as the
// producer validates a request (tasks.TokenRequest.Validate, the CallbackURL check);
// a bad row is reported with its line number and a faceid.FieldError code and
// message, and never stops the good ones.
//
// NDJSON rows are the JSON body of POST /v1/tokens plus an optional "RowKey" (and,
// in file imports, "ImagePath"). CSV files need a header row; CSVColumns documents
// the columns (redirect_url, extra, image_path, image_base64, config as JSON,
// callback_url, region, rule_id, row_key). A row's Priority is ignored: campaign jobs
// run in the batch lane; links mint in the interactive lane.
//
// For each good row the import writes, in one MULTI per chunk, the job's record
// (results.CreateCmd: status queued, BatchId, RowKey, the encoded payload), its
// JobId at the end of the campaign's list (keys.BatchJobs) and the campaign's Total.
// Nothing reaches asynq at import: the Feeder does that.
//
// # No duplicates
//
// Every row has a row key: its row_key column (or "RowKey"), or else
// "L<line>:<first 16 hex digits of the SHA-256 of the row>". A campaign maps row keys
// to JobIds (keys.BatchRows); a row key it has already creates nothing. The map is
// written in two steps, HSETNX row key -> "?JobId" and then, with the job, row key ->
// JobId, so that an import killed between the two is completed, with the same
// JobId, by the next run. Running the same import again (same campaign: same name,
// or ImportFile's default name "<file name>@<digest of the file>") therefore creates
// only what is missing; and importing a corrected file under the campaign's name
// adds the corrected rows (a row without row_key is new when its line changed). A
// row key repeated within the input counts as Existing. A lock (keys.BatchImportLock) keeps two imports of one
// campaign from running at once: the second answers ErrImportRunning.
//
// # Feeding and backpressure
//
// A Feeder (run in every worker process; a Redis lock elects the one feeding, and
// feeding twice is harmless) moves queued jobs from the lists of active campaigns
// (keys.BatchesActive) to asynq's batch queue, with TaskID = JobId, keeping at most
// FeederConfig.MaxPending jobs (2,000) and MaxPendingBytes of images (64 MiB) fed
// and not final (keys.FeedInflight), taking campaigns in turn. Re-runs are fed
// first.
//
// Images stay out of Redis until their job is fed. ImportFile records where each
// image is (an image_path file, or the bytes of the row holding image_base64 or
// CompareImageBase64 in the imported file) and the Feeder reads it when it feeds the
// job. Such a campaign is marked as fed by its importing process: worker feeders
// leave it alone, and the importing process (the CLI) runs a Feeder with
// FeederConfig.Batch set until the campaign is done; a worker that sees the same
// files may feed it with FeederConfig.LoadFiles. Images sent inline to Import (HTTP)
// are stored at import, as by the producer. A 10,000-job campaign of 200 KB photos
// peaked at 31 MB of Redis instead of 2.7 GB.
//
// # Progress
//
// Manager.Status reads every job's state (pipelined, about 2 s per million jobs) and
// returns a Progress: Total, Counts by status, Rate (jobs of the campaign that became
// final per second over the last minute: the share of the upstream budget it
// actually gets), ETA (remaining jobs at that Rate; null when nothing finished in the
// window or the campaign is paused) and, for links, Opened and Minted.
// Progress.Bar and Progress.Line render it for a terminal or a log.
//
// # Control
//
// Pause stops feeding (fed jobs finish), Resume feeds again, Cancel makes every job
// that has not started canceled (results.Store.Finish; the pending tasks are
// deleted from asynq) while running jobs finish, and Rerun reopens failed (and,
// optionally, canceled) jobs (results.Store.Reopen) and feeds them again, replacing
// their archived asynq tasks. Export streams every job as NDJSON (tasks.Job) or CSV
// (ExportColumns) with its row key, so results join back to the input.
//
// # Start links (deferred minting)
//
// A campaign imported with ModeLinks makes, for each row, a durable start link
// (tasks.NewLinkID: 128 random bits) instead of a job. GET /v1/start/{LinkId}
// (Manager.Start) mints a BizToken when the person opens it, through Config.Mint (the
// producer at interactive priority, with the Idempotency-Key "link:<LinkId>:<gen>"
// so that concurrent opens share one job), waits for it on keys.Done, and redirects
// to its VerificationURL. Reopening while the token is valid for longer than
// Config.TokenMargin reuses it; after that a new generation mints a new one. Links
// expire (ImportOptions.LinkTTL, default 30 days) and can be revoked; canceling a
// link campaign revokes its links. A link keeps its request, and its image if any,
// in Redis until it expires.
//
// This package has no HTTP: the campaign routes are in package httpapi.
package campaign
