package tasks

import (
	"fmt"
	"strconv"
	"time"
)

// TimeFormat is the RFC 3339 layout of every time in a job record.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Job is a job as callers see it (HTTP API, CLI, webhooks). It never contains the image.
type Job struct {
	JobId           string     `json:"JobId"`
	Status          Status     `json:"Status"`
	BizToken        string     `json:"BizToken"`
	VerificationURL string     `json:"VerificationURL"`
	ExpiresAt       *time.Time `json:"ExpiresAt"`
	Extra           string     `json:"Extra"`
	RequestId       string     `json:"RequestId"`
	Error           *JobError  `json:"Error"`
	Attempts        int        `json:"Attempts"`
	CreatedAt       time.Time  `json:"CreatedAt"`
	FinishedAt      *time.Time `json:"FinishedAt"`
	BatchId         string     `json:"BatchId,omitempty"`
	RowKey          string     `json:"RowKey,omitempty"`
	Priority        Priority   `json:"Priority,omitempty"`
	Region          string     `json:"Region,omitempty"`
	// Account is the SecretId that minted BizToken, its middle masked (AKID…3f9a).
	Account string   `json:"Account,omitempty"`
	Webhook *Webhook `json:"Webhook,omitempty"`
	// FetchResult: faceidq fetches the person's verification result.
	FetchResult bool `json:"FetchResult,omitempty"`
	// Verification is the person's result, absent until a fetch was asked for.
	Verification *Verification `json:"Verification,omitempty"`
	// Deadline is when the job expires unless it has reached the upstream (its
	// creation plus MaxWait); absent without one.
	Deadline *time.Time `json:"Deadline,omitempty"`
	// Position is the number of jobs ahead of a job that is not final, for its budget
	// and lane. It and EstimatedStartAt are written only for a job that is not final.
	Position int `json:"Position,omitempty"`
	// EstimatedStartAt is when the job should reach the upstream; nil while the
	// pipeline is paused (no honest estimate exists) or when it was not estimated.
	EstimatedStartAt *time.Time `json:"EstimatedStartAt,omitempty"`
	// Ticket is the job's place in its lane's arrival order (record only; see
	// internal/backlog).
	Ticket int64 `json:"-"`
	// Estimated reports that Position and EstimatedStartAt were computed with the
	// job's own writes (a Submit's answer), so that no second read is needed.
	Estimated bool `json:"-"`
}

// JobError is the last error of a job: the upstream's code and message, or faceidq's.
type JobError struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// Webhook is the delivery state of a job's webhook.
type Webhook struct {
	URL       string     `json:"URL"`
	Status    string     `json:"Status"` // pending, delivered, retrying, exhausted, gone
	Attempts  int        `json:"Attempts"`
	LastError string     `json:"LastError,omitempty"`
	LastAt    *time.Time `json:"LastAt,omitempty"`
}

// Record field names of the result hash (keys.Result). The first ten are the public
// contract of the product spec; the rest are faceidq's own.
const (
	FieldStatus          = "Status"
	FieldBizToken        = "BizToken"
	FieldVerificationURL = "VerificationURL"
	FieldExpiresAt       = "ExpiresAt"
	FieldExtra           = "Extra"
	FieldRequestId       = "RequestId"
	FieldErrorCode       = "ErrorCode"
	FieldErrorMessage    = "ErrorMessage"
	FieldAttempts        = "Attempts"
	FieldUpdatedAt       = "UpdatedAt"

	FieldJobId            = "JobId"
	FieldCreatedAt        = "CreatedAt"
	FieldFinishedAt       = "FinishedAt"
	FieldBatchId          = "BatchId"
	FieldRowKey           = "RowKey"
	FieldPriority         = "Priority"
	FieldRegion           = "Region"
	FieldPayload          = "Payload" // the task payload with the input, in records written before the input moved to its own fields
	FieldCallbackURL      = "CallbackURL"
	FieldWebhookStatus    = "WebhookStatus"
	FieldWebhookAttempts  = "WebhookAttempts"
	FieldWebhookLastError = "WebhookLastError"
	FieldWebhookLastAt    = "WebhookLastAt"
	// FieldAccount is the masked SecretId that minted the BizToken (Job.Account);
	// FieldAccountKey the key of its credential set (a digest of the SecretId), by
	// which the worker fetches the result with the same set.
	FieldAccount    = "Account"
	FieldAccountKey = "AccountKey"
	FieldDeadline   = "Deadline"
	FieldTicket     = "Ticket"
)

// FormatTime renders t as a record time.
func FormatTime(t time.Time) string {
	var b [len(TimeFormat) + 8]byte
	return string(appendTime(b[:0], t))
}

// appendTime appends t.UTC().Format(TimeFormat) without parsing the layout: every
// job answer and record carries such times (TestAppendTime holds it to Format).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// CreatedAtValue is the record value of a job's CreatedAt (not a public field): Unix
// milliseconds, which Redis keeps as an integer (10 bytes of listpack, against 26 for
// RFC 3339). Records written before it have RFC 3339: both are read.
func CreatedAtValue(t time.Time) int64 { return t.UnixMilli() }

// parseCreatedAt reads a record's CreatedAt (CreatedAtValue, or RFC 3339).
func parseCreatedAt(rec map[string]string) (time.Time, error) {
	s := rec[FieldCreatedAt]
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("tasks: record field %s: %w", FieldCreatedAt, err)
	}
	return t, nil
}

// JobFromRecord builds a Job from the fields of its result hash. It returns an error
// when the record is empty or a field is malformed.
func JobFromRecord(jobID string, rec map[string]string) (*Job, error) {
	if len(rec) == 0 {
		return nil, fmt.Errorf("tasks: job %s: empty record", jobID)
	}
	j := &Job{
		JobId:           jobID,
		Status:          Status(rec[FieldStatus]),
		BizToken:        rec[FieldBizToken],
		VerificationURL: rec[FieldVerificationURL],
		Extra:           rec[FieldExtra],
		RequestId:       rec[FieldRequestId],
		BatchId:         rec[FieldBatchId],
		RowKey:          rec[FieldRowKey],
		Priority:        Priority(rec[FieldPriority]),
		Region:          rec[FieldRegion],
		Account:         rec[FieldAccount],
	}
	if j.Priority == "" {
		j.Priority = PriorityInteractive // not written for the default lane
	}
	var err error
	if j.ExpiresAt, err = parseOptTime(rec, FieldExpiresAt); err != nil {
		return nil, err
	}
	if j.FinishedAt, err = parseOptTime(rec, FieldFinishedAt); err != nil {
		return nil, err
	}
	if j.CreatedAt, err = parseCreatedAt(rec); err != nil {
		return nil, err
	}
	if j.Attempts, err = parseOptInt(rec, FieldAttempts); err != nil {
		return nil, err
	}
	if j.Deadline, err = parseOptTime(rec, FieldDeadline); err != nil {
		return nil, err
	}
	if s := rec[FieldTicket]; s != "" {
		if j.Ticket, err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, fmt.Errorf("tasks: record field %s: %w", FieldTicket, err)
		}
	}
	j.FetchResult = rec[FieldFetchResult] == "1"
	if j.Verification, err = VerificationFromRecord(rec); err != nil {
		return nil, err
	}
	if code := rec[FieldErrorCode]; code != "" {
		j.Error = &JobError{Code: code, Message: rec[FieldErrorMessage]}
	}
	if url := rec[FieldCallbackURL]; url != "" {
		w := &Webhook{URL: url, Status: rec[FieldWebhookStatus], LastError: rec[FieldWebhookLastError]}
		if w.Status == "" {
			w.Status = "pending"
		}
		if w.Attempts, err = parseOptInt(rec, FieldWebhookAttempts); err != nil {
			return nil, err
		}
		if w.LastAt, err = parseOptTime(rec, FieldWebhookLastAt); err != nil {
			return nil, err
		}
		j.Webhook = w
	}
	return j, nil
}

func parseOptTime(rec map[string]string, field string) (*time.Time, error) {
	s := rec[field]
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("tasks: record field %s: %w", field, err)
	}
	return &t, nil
}

func parseOptInt(rec map[string]string, field string) (int, error) {
	s := rec[field]
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("tasks: record field %s: %w", field, err)
	}
	return n, nil
}
