// Package results keeps every job's state and result in Redis: the hash
// keys.Result(JobId) whose layout is part of the public contract (tasks.Field*), and the
// keys.Done channel on which the JobId of every final job is published (again, harmlessly,
// each time a verification fetch's answer is recorded).
//
// Store is the only place a job changes state (running, retrying, final, canceled,
// reopened for a re-run): atomic one-key Lua scripts that never move a final job back
// (a duplicate run after a crash cannot overwrite a result), except Reopen. A final
// record expires after the configured TTL; a record that is not final never expires,
// so no accepted job is lost.
package results

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// ErrNotFound is returned for a job that does not exist (or whose result expired).
var ErrNotFound = errors.New("results: job not found")

// DefaultTTL is how long a final job's result is kept when Config.TTL is zero.
const DefaultTTL = 24 * time.Hour

// Config configures a Store.
type Config struct {
	// TTL is how long a final job's record is kept. Defaults to DefaultTTL (24h).
	TTL time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

// Store reads and writes job records.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
	now func() time.Time
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, ttl: cfg.TTL, now: cfg.Now}
}

// TTL is the time a final record is kept.
func (s *Store) TTL() time.Duration { return s.ttl }

// NewRecord describes a job at creation.
type NewRecord struct {
	JobID       string
	Priority    tasks.Priority
	Region      string
	Extra       string
	BatchID     string
	RowKey      string
	CallbackURL string
	// Input are more field/value pairs: the job's input (tasks.ApplyPayload.InputFields),
	// kept once, here, for every run of the job.
	Input []any
	// Status is the initial state. Defaults to tasks.StatusQueued.
	Status    tasks.Status
	CreatedAt time.Time
	// Deadline is when the job expires unless it reached the upstream (zero: never).
	Deadline time.Time
}

// CreateCmd queues the command that creates rec's record on pipe, so that producers
// writing many jobs pay one round trip for all of them, and returns it.
func (s *Store) CreateCmd(ctx context.Context, pipe redis.Pipeliner, rec NewRecord) *redis.IntCmd {
	if rec.Status == "" {
		rec.Status = tasks.StatusQueued
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = s.now()
	}
	// The JobId is the key's own. Every value is kept short: one longer than Redis's
	// hash-max-listpack-value (64 bytes) turns the whole record from a listpack into a
	// hashtable, about 3x the memory (producer's TestRedisMemoryPerPendingJob keeps the
	// budget of a pending job). A new field: add it here or in NewRecord.Input.
	// The HSET's arguments are built in one slice (what pipe.HSet would copy again).
	args := make([]any, 0, 14+2+len(rec.Input)+8)
	args = append(args, "hset", keys.Result(rec.JobID),
		tasks.FieldStatus, string(rec.Status),
		tasks.FieldAttempts, 0,
		tasks.FieldCreatedAt, tasks.CreatedAtValue(rec.CreatedAt),
		tasks.FieldUpdatedAt, tasks.FormatTime(rec.CreatedAt),
		tasks.FieldRegion, rec.Region,
		tasks.FieldExtra, rec.Extra,
	)
	if rec.Priority != "" && rec.Priority != tasks.PriorityInteractive { // none: interactive
		args = append(args, tasks.FieldPriority, string(rec.Priority))
	}
	args = append(args, rec.Input...)
	if rec.BatchID != "" {
		args = append(args, tasks.FieldBatchId, rec.BatchID)
	}
	if rec.RowKey != "" {
		args = append(args, tasks.FieldRowKey, rec.RowKey)
	}
	if rec.CallbackURL != "" {
		args = append(args, tasks.FieldCallbackURL, rec.CallbackURL, tasks.FieldWebhookStatus, "pending")
	}
	if !rec.Deadline.IsZero() {
		args = append(args, tasks.FieldDeadline, tasks.FormatTime(rec.Deadline))
	}
	cmd := redis.NewIntCmd(ctx, args...)
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// Create writes a new job record.
func (s *Store) Create(ctx context.Context, rec NewRecord) error {
	pipe := s.rdb.Pipeline()
	s.CreateCmd(ctx, pipe, rec)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("results: create %s: %w", rec.JobID, err)
	}
	return nil
}

// Delete removes a record (used to undo a creation whose enqueue failed).
func (s *Store) Delete(ctx context.Context, jobID string) error {
	if err := s.rdb.Del(ctx, keys.Result(jobID)).Err(); err != nil {
		return fmt.Errorf("results: delete %s: %w", jobID, err)
	}
	return nil
}

// Get returns job jobID, or ErrNotFound.
func (s *Store) Get(ctx context.Context, jobID string) (*tasks.Job, error) {
	rec, err := s.rdb.HGetAll(ctx, keys.Result(jobID)).Result()
	if err != nil {
		return nil, fmt.Errorf("results: get %s: %w", jobID, err)
	}
	if len(rec) == 0 {
		return nil, ErrNotFound
	}
	return tasks.JobFromRecord(jobID, rec)
}

// ApplyInput returns job jobID as its worker runs it, read from its record (its task
// carries the ids only), and its state; ErrNotFound when the record is gone.
func (s *Store) ApplyInput(ctx context.Context, jobID string) (*tasks.ApplyPayload, tasks.Status, error) {
	vals, err := s.rdb.HMGet(ctx, keys.Result(jobID), tasks.ApplyRecordFields...).Result()
	if err != nil {
		return nil, "", fmt.Errorf("results: input of %s: %w", jobID, err)
	}
	p, st, err := tasks.ApplyPayloadFromRecord(jobID, vals)
	if err != nil {
		return nil, "", fmt.Errorf("results: input of %s: %w", jobID, err)
	}
	if st == "" {
		return nil, "", ErrNotFound
	}
	return p, st, nil
}

// Status returns job jobID's state, or ErrNotFound.
func (s *Store) Status(ctx context.Context, jobID string) (tasks.Status, error) {
	st, err := s.rdb.HGet(ctx, keys.Result(jobID), tasks.FieldStatus).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("results: status of %s: %w", jobID, err)
	}
	return tasks.Status(st), nil
}

// transition sets fields on a record that exists and is not final. KEYS[1] the
// record; ARGV[1] 1 to count an attempt; ARGV[2..] field/value pairs. Returns the
// attempt count, -1 when the record is missing, -2 when it is final.
var transition = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'Status')
if not st then return -1 end
if st == 'succeeded' or st == 'failed' or st == 'canceled' or st == 'expired' then return -2 end
local n
if ARGV[1] == '1' then
  n = redis.call('HINCRBY', KEYS[1], 'Attempts', 1)
else
  n = tonumber(redis.call('HGET', KEYS[1], 'Attempts') or '0')
end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return n
`)

// ErrFinal is returned when a change is asked of a job that is already final.
var ErrFinal = errors.New("results: job is already final")

func (s *Store) transition(ctx context.Context, jobID string, countAttempt bool, fields ...any) (int, error) {
	argv := make([]any, 0, len(fields)+1)
	if countAttempt {
		argv = append(argv, "1")
	} else {
		argv = append(argv, "0")
	}
	argv = append(argv, fields...)
	n, err := transition.Run(ctx, s.rdb, []string{keys.Result(jobID)}, argv...).Int()
	if err != nil {
		return 0, fmt.Errorf("results: update %s: %w", jobID, err)
	}
	switch n {
	case -1:
		return 0, ErrNotFound
	case -2:
		return 0, ErrFinal
	}
	return n, nil
}

// MarkRunning records that an upstream call for job jobID is about to start, counts it
// as an attempt, and returns the attempt number.
func (s *Store) MarkRunning(ctx context.Context, jobID string) (int, error) {
	return s.transition(ctx, jobID, true,
		tasks.FieldStatus, string(tasks.StatusRunning), tasks.FieldUpdatedAt, tasks.FormatTime(s.now()))
}

// MarkRetrying records that job jobID will be tried again, with the last error.
func (s *Store) MarkRetrying(ctx context.Context, jobID, code, message string) error {
	_, err := s.transition(ctx, jobID, false,
		tasks.FieldStatus, string(tasks.StatusRetrying), tasks.FieldErrorCode, code,
		tasks.FieldErrorMessage, message, tasks.FieldUpdatedAt, tasks.FormatTime(s.now()))
	return err
}

// MarkQueued puts a job that is not final back to queued (re-run, resume).
func (s *Store) MarkQueued(ctx context.Context, jobID string) error {
	_, err := s.transition(ctx, jobID, false,
		tasks.FieldStatus, string(tasks.StatusQueued), tasks.FieldUpdatedAt, tasks.FormatTime(s.now()))
	return err
}

// Final is the outcome of a job.
type Final struct {
	Status          tasks.Status // succeeded, failed, canceled or expired
	BizToken        string
	VerificationURL string
	ExpiresAt       time.Time
	RequestID       string
	ErrorCode       string
	ErrorMessage    string
	// Account and AccountMasked name the credential set that minted BizToken
	// (worker.Budget): its key, by which the result is fetched with the same set,
	// and its masked SecretId, which the job answer shows. Empty: not recorded.
	Account       string
	AccountMasked string
}

// finish makes a record final, sets its TTL and publishes its JobId, atomically.
// KEYS[1] record; ARGV[1] TTL ms, ARGV[2] JobId, ARGV[3] the done channel (a channel
// is not a key: passing it in KEYS would break Redis Cluster), ARGV[4] "1" to leave a
// running job alone (cancel), ARGV[5..] field/value pairs. Returns 1 when it changed
// the record, 0 when it was final already, 2 when it is running and ARGV[4] is "1",
// -1 when missing.
var finish = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'Status')
if not st then return -1 end
if st == 'succeeded' or st == 'failed' or st == 'canceled' or st == 'expired' then return 0 end
if ARGV[4] == '1' and st == 'running' then return 2 end
redis.call('HDEL', KEYS[1], 'BizToken', 'VerificationURL', 'ExpiresAt', 'ErrorCode', 'ErrorMessage', 'RequestId')
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
`)

// Finish makes job jobID final with outcome f, starts its TTL and publishes its JobId
// on keys.Done. It returns changed=false, without error, when the job was final
// already (a duplicate run), and ErrNotFound when the record is missing.
func (s *Store) Finish(ctx context.Context, jobID string, f Final) (changed bool, err error) {
	n, err := s.finish(ctx, jobID, f, false)
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// CodeDeadlineExceeded is the ErrorCode of a job that expired before it reached the
// upstream.
const CodeDeadlineExceeded = "FailedOperation.DeadlineExceeded"

// Expire makes job jobID final with status expired, as Finish does. Only the worker
// that holds the job's task calls it, before any call of that run (a job left running
// by a crashed run expires too). It returns changed=false when the job was final
// already.
func (s *Store) Expire(ctx context.Context, jobID, reason string) (changed bool, err error) {
	n, err := s.finish(ctx, jobID, Final{Status: tasks.StatusExpired, ErrorCode: CodeDeadlineExceeded, ErrorMessage: reason}, false)
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// CancelOutcome says what Cancel did.
type CancelOutcome int

// Cancel outcomes.
const (
	// Canceled: the job had not started and is now final with status canceled.
	Canceled CancelOutcome = iota + 1
	// Running: the job has started; it finishes on its own.
	Running
	// AlreadyFinal: the job was final already; nothing changed.
	AlreadyFinal
)

// CodeCanceled is the ErrorCode of a job canceled before it started.
const CodeCanceled = "FailedOperation.Canceled"

// Cancel makes job jobID final with status canceled if it has not started (queued, or
// retrying between attempts), as Finish does (TTL, keys.Done). A worker already
// holding a rate slot for it finds the job final when it marks it running and drops
// its answer: the canceled outcome stands. ErrNotFound when the record is missing.
func (s *Store) Cancel(ctx context.Context, jobID, reason string) (CancelOutcome, error) {
	n, err := s.finish(ctx, jobID, Final{Status: tasks.StatusCanceled, ErrorCode: CodeCanceled, ErrorMessage: reason}, true)
	switch {
	case err != nil:
		return 0, err
	case n == 1:
		return Canceled, nil
	case n == 2:
		return Running, nil
	}
	return AlreadyFinal, nil
}

func (s *Store) finish(ctx context.Context, jobID string, f Final, notStarted bool) (int, error) {
	if !f.Status.Final() {
		return 0, fmt.Errorf("results: finish %s: %q is not a final state", jobID, f.Status)
	}
	now := tasks.FormatTime(s.now())
	flag := "0"
	if notStarted {
		flag = "1"
	}
	argv := []any{s.ttl.Milliseconds(), jobID, keys.Done, flag,
		tasks.FieldStatus, string(f.Status), tasks.FieldUpdatedAt, now, tasks.FieldFinishedAt, now}
	if f.BizToken != "" {
		argv = append(argv, tasks.FieldBizToken, f.BizToken)
	}
	if f.VerificationURL != "" {
		argv = append(argv, tasks.FieldVerificationURL, f.VerificationURL)
	}
	if !f.ExpiresAt.IsZero() {
		argv = append(argv, tasks.FieldExpiresAt, tasks.FormatTime(f.ExpiresAt))
	}
	if f.RequestID != "" {
		argv = append(argv, tasks.FieldRequestId, f.RequestID)
	}
	if f.ErrorCode != "" {
		argv = append(argv, tasks.FieldErrorCode, f.ErrorCode, tasks.FieldErrorMessage, f.ErrorMessage)
	}
	if f.Account != "" {
		argv = append(argv, tasks.FieldAccountKey, f.Account, tasks.FieldAccount, f.AccountMasked)
	}
	n, err := finish.Run(ctx, s.rdb, []string{keys.Result(jobID)}, argv...).Int()
	if err != nil {
		return 0, fmt.Errorf("results: finish %s: %w", jobID, err)
	}
	if n == -1 {
		return 0, ErrNotFound
	}
	return n, nil
}

// reopen puts a failed or canceled job back to queued for a re-run and removes its TTL.
var reopen = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'Status')
if not st then return -1 end
if st ~= 'failed' and st ~= 'canceled' then return 0 end
redis.call('HSET', KEYS[1], 'Status', 'queued', 'UpdatedAt', ARGV[1])
redis.call('HDEL', KEYS[1], 'FinishedAt', 'ErrorCode', 'ErrorMessage')
redis.call('PERSIST', KEYS[1])
return 1
`)

// Reopen puts a failed or canceled job back to queued so it can be run again. It
// returns false when the job is not failed or canceled.
func (s *Store) Reopen(ctx context.Context, jobID string) (bool, error) {
	n, err := reopen.Run(ctx, s.rdb, []string{keys.Result(jobID)}, tasks.FormatTime(s.now())).Int()
	if err != nil {
		return false, fmt.Errorf("results: reopen %s: %w", jobID, err)
	}
	if n == -1 {
		return false, ErrNotFound
	}
	return n == 1, nil
}

// RecordWebhook records the delivery state of job jobID's webhook. A missing record
// (expired) is not an error: there is nothing left to show it on.
func (s *Store) RecordWebhook(ctx context.Context, jobID string, w tasks.Webhook) error {
	fields := []any{
		tasks.FieldWebhookStatus, w.Status,
		tasks.FieldWebhookAttempts, strconv.Itoa(w.Attempts),
		tasks.FieldWebhookLastError, w.LastError,
	}
	if w.URL != "" {
		fields = append(fields, tasks.FieldCallbackURL, w.URL)
	}
	if w.LastAt != nil {
		fields = append(fields, tasks.FieldWebhookLastAt, tasks.FormatTime(*w.LastAt))
	}
	if err := recordIfExists.Run(ctx, s.rdb, []string{keys.Result(jobID)}, fields...).Err(); err != nil {
		return fmt.Errorf("results: record webhook of %s: %w", jobID, err)
	}
	return nil
}

var recordIfExists = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)
