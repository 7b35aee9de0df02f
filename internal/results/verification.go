package results

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// The verification part of a job record (tasks.FieldVerification…): written by the
// fetches of GetWebVerificationResultIntl, never moved back from a final
// verification state, and kept at least as long as the record's TTL from the last
// write.

// askFetch marks a fetch as asked: VerificationStatus becomes pending unless a
// verification is recorded already. KEYS[1] record. Returns -1 when missing, 0 when
// the job has no BizToken yet, 1 otherwise.
var askFetch = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not redis.call('HGET', KEYS[1], 'BizToken') then return 0 end
redis.call('HSETNX', KEYS[1], 'VerificationStatus', 'pending')
return 1
`)

// ErrNoToken is returned when a fetch is asked of a job that has no BizToken (not
// succeeded, or canceled).
var ErrNoToken = fmt.Errorf("results: job has no BizToken")

// AskFetch records that job jobID's verification result was asked for: its
// Verification appears as pending. ErrNotFound, ErrNoToken.
func (s *Store) AskFetch(ctx context.Context, jobID string) error {
	n, err := askFetch.Run(ctx, s.rdb, []string{keys.Result(jobID)}).Int()
	if err != nil {
		return fmt.Errorf("results: ask fetch of %s: %w", jobID, err)
	}
	switch n {
	case -1:
		return ErrNotFound
	case 0:
		return ErrNoToken
	}
	return nil
}

// BeginFetch counts a fetch attempt of job jobID and returns its number.
func (s *Store) BeginFetch(ctx context.Context, jobID string) (int, error) {
	n, err := recordIfExistsIncr.Run(ctx, s.rdb, []string{keys.Result(jobID)}, tasks.FieldVerificationAttempts).Int()
	if err != nil {
		return 0, fmt.Errorf("results: begin fetch of %s: %w", jobID, err)
	}
	if n < 0 {
		return 0, ErrNotFound
	}
	return n, nil
}

var recordIfExistsIncr = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSETNX', KEYS[1], 'VerificationStatus', 'pending')
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
`)

// Verified is the outcome of one successful fetch.
type Verified struct {
	Status      tasks.VerificationStatus
	ErrorCode   *int64
	ErrorMsg    string
	Similarity  *float64
	CompletedAt time.Time
	RequestID   string
	// OCR is the OCR text (JSON), only when the operator keeps it; "" otherwise.
	OCR string
}

// recordVerification writes a fetch's outcome unless the recorded verification is
// final and the new one is not. KEYS[1] record; ARGV[1] TTL ms, ARGV[2] the new
// status, ARGV[3..] field/value pairs. Returns -1 missing, 0 kept (not written),
// 1 written with the same status, 2 written with a new status.
var recordVerification = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local st = redis.call('HGET', KEYS[1], 'VerificationStatus')
local final = (st == 'passed' or st == 'failed' or st == 'expired')
local nfinal = (ARGV[2] == 'passed' or ARGV[2] == 'failed' or ARGV[2] == 'expired')
if final and not nfinal then return 0 end
redis.call('HDEL', KEYS[1], 'VerificationErrorCode', 'VerificationErrorMsg', 'VerificationSimilarity',
  'VerificationCompletedAt', 'VerificationFetchError', 'VerificationFetchMessage', 'VerificationOCR')
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if st == ARGV[2] then return 1 end
return 2
`)

// RecordVerification writes the outcome of a fetch of job jobID. changed reports
// that the status moved (e.g. pending → passed). A final verification (passed,
// failed, expired) is never replaced by pending or incomplete. The record's TTL is
// extended to the Store's TTL when it is shorter.
func (s *Store) RecordVerification(ctx context.Context, jobID string, v Verified) (changed bool, err error) {
	now := tasks.FormatTime(s.now())
	argv := []any{s.ttl.Milliseconds(), string(v.Status),
		tasks.FieldVerificationStatus, string(v.Status), tasks.FieldVerificationFetchedAt, now,
		tasks.FieldVerificationRequestId, v.RequestID, tasks.FieldUpdatedAt, now}
	if v.ErrorCode != nil {
		argv = append(argv, tasks.FieldVerificationErrorCode, strconv.FormatInt(*v.ErrorCode, 10),
			tasks.FieldVerificationErrorMsg, v.ErrorMsg)
	}
	if v.Similarity != nil {
		argv = append(argv, tasks.FieldVerificationSimilarity, strconv.FormatFloat(*v.Similarity, 'f', -1, 64))
	}
	if !v.CompletedAt.IsZero() {
		argv = append(argv, tasks.FieldVerificationCompletedAt, tasks.FormatTime(v.CompletedAt))
	}
	if v.OCR != "" {
		argv = append(argv, tasks.FieldVerificationOCR, v.OCR)
	}
	n, err := recordVerification.Run(ctx, s.rdb, []string{keys.Result(jobID)}, argv...).Int()
	if err != nil {
		return false, fmt.Errorf("results: record verification of %s: %w", jobID, err)
	}
	if n == -1 {
		return false, ErrNotFound
	}
	s.announce(ctx, jobID)
	return n == 2, nil
}

// announce publishes jobID on keys.Done after a fetch's answer was recorded, so that
// callers waiting for it wake. The job may already be final and announced: the
// channel's subscribers re-read the record, so a repeat is harmless. A lost
// announcement only makes a waiter read the record at its deadline instead.
func (s *Store) announce(ctx context.Context, jobID string) {
	_ = s.rdb.Publish(ctx, keys.Done, jobID).Err()
}

// RecordFetchError records the last failed fetch of job jobID; a missing record is
// not an error.
func (s *Store) RecordFetchError(ctx context.Context, jobID, code, message string) error {
	err := recordIfExists.Run(ctx, s.rdb, []string{keys.Result(jobID)},
		tasks.FieldVerificationFetchError, code, tasks.FieldVerificationFetchMessage, message,
		tasks.FieldUpdatedAt, tasks.FormatTime(s.now())).Err()
	if err != nil {
		return fmt.Errorf("results: record fetch error of %s: %w", jobID, err)
	}
	s.announce(ctx, jobID)
	return nil
}

// Fields returns the named fields of job jobID's record ("" for absent ones), or
// ErrNotFound.
func (s *Store) Fields(ctx context.Context, jobID string, fields ...string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	ex := pipe.Exists(ctx, keys.Result(jobID))
	vals := pipe.HMGet(ctx, keys.Result(jobID), fields...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("results: fields of %s: %w", jobID, err)
	}
	if ex.Val() == 0 {
		return nil, ErrNotFound
	}
	out := make([]string, len(fields))
	for i, v := range vals.Val() {
		if s, ok := v.(string); ok {
			out[i] = s
		}
	}
	return out, nil
}

// extendTTL sets a record's TTL to ARGV[1] ms when it has a shorter one.
var extendTTL = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) return 1 end
return 0
`)

// KeepFor makes job jobID's final record live at least d from now (a FetchResult
// job keeps its record as long as its result can be fetched).
func (s *Store) KeepFor(ctx context.Context, jobID string, d time.Duration) error {
	if err := extendTTL.Run(ctx, s.rdb, []string{keys.Result(jobID)}, d.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("results: keep %s: %w", jobID, err)
	}
	return nil
}
