package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// TypeGetResult fetches a job's verification result (GetWebVerificationResultIntl).
const TypeGetResult = "faceid:get_result"

// VerificationStatus is where a person's verification stands.
type VerificationStatus string

// Verification states. Passed, failed and expired are final: nothing fetched later
// changes them. Pending is fetched again; incomplete is the sweep's verdict on a
// flow still unfinished (a later explicit fetch may still find it finished).
const (
	VerificationPending    VerificationStatus = "pending"
	VerificationPassed     VerificationStatus = "passed"
	VerificationFailed     VerificationStatus = "failed"
	VerificationIncomplete VerificationStatus = "incomplete"
	VerificationExpired    VerificationStatus = "expired"
)

// Final reports whether no later fetch changes a verification in state s.
func (s VerificationStatus) Final() bool {
	return s == VerificationPassed || s == VerificationFailed || s == VerificationExpired
}

// Verification is the person's verification result as callers see it (the job's
// Verification object). It never holds the person's video, best frame or document
// images; OCR text only when the operator keeps it (FACEIDQ_VERIFY_KEEP_OCR).
type Verification struct {
	Status      VerificationStatus `json:"Status"`
	ErrorCode   *int64             `json:"ErrorCode"`
	ErrorMsg    string             `json:"ErrorMsg"`
	Similarity  *float64           `json:"Similarity"`
	Attempts    int                `json:"Attempts"`
	CompletedAt *time.Time         `json:"CompletedAt"`
	FetchedAt   *time.Time         `json:"FetchedAt"`
	RequestId   string             `json:"RequestId"`
	// Error is the last failed fetch (an upstream or faceidq code), if any.
	Error *JobError `json:"Error,omitempty"`
	// OCRResult is the upstream's OCRResult text, only with FACEIDQ_VERIFY_KEEP_OCR.
	OCRResult json.RawMessage `json:"OCRResult,omitempty"`
}

// Record fields of the verification (the first four are the spec's).
const (
	FieldVerificationStatus       = "VerificationStatus"
	FieldVerificationErrorCode    = "VerificationErrorCode"
	FieldVerificationSimilarity   = "VerificationSimilarity"
	FieldVerificationFetchedAt    = "VerificationFetchedAt"
	FieldVerificationErrorMsg     = "VerificationErrorMsg"
	FieldVerificationAttempts     = "VerificationAttempts"
	FieldVerificationCompletedAt  = "VerificationCompletedAt"
	FieldVerificationRequestId    = "VerificationRequestId"
	FieldVerificationFetchError   = "VerificationFetchError"
	FieldVerificationFetchMessage = "VerificationFetchMessage"
	FieldVerificationOCR          = "VerificationOCR"
	// FieldFetchResult is "1" on a job submitted with FetchResult.
	FieldFetchResult = "FetchResult"
	// FieldReturnURL is the caller's own RedirectURL of a FetchResult job whose
	// upstream RedirectURL is faceidq's return page.
	FieldReturnURL = "ReturnURL"
)

// VerificationFromRecord returns the Verification of a result hash, nil when no
// fetch was asked for.
func VerificationFromRecord(rec map[string]string) (*Verification, error) {
	st := rec[FieldVerificationStatus]
	if st == "" {
		return nil, nil
	}
	v := &Verification{
		Status:    VerificationStatus(st),
		ErrorMsg:  rec[FieldVerificationErrorMsg],
		RequestId: rec[FieldVerificationRequestId],
	}
	if s := rec[FieldVerificationErrorCode]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tasks: record field %s: %w", FieldVerificationErrorCode, err)
		}
		v.ErrorCode = &n
	}
	if s := rec[FieldVerificationSimilarity]; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("tasks: record field %s: %w", FieldVerificationSimilarity, err)
		}
		v.Similarity = &f
	}
	var err error
	if v.Attempts, err = parseOptInt(rec, FieldVerificationAttempts); err != nil {
		return nil, err
	}
	if v.CompletedAt, err = parseOptTime(rec, FieldVerificationCompletedAt); err != nil {
		return nil, err
	}
	if v.FetchedAt, err = parseOptTime(rec, FieldVerificationFetchedAt); err != nil {
		return nil, err
	}
	if code := rec[FieldVerificationFetchError]; code != "" {
		v.Error = &JobError{Code: code, Message: rec[FieldVerificationFetchMessage]}
	}
	if s := rec[FieldVerificationOCR]; s != "" && json.Valid([]byte(s)) {
		v.OCRResult = json.RawMessage(s)
	}
	return v, nil
}

// Triggers of a fetch (GetPayload.Trigger).
const (
	// TriggerNow: a caller asked (POST /v1/tokens/{JobId}/verification, faceidq verify).
	TriggerNow = "now"
	// TriggerReturn: the person came back through faceidq's return page.
	TriggerReturn = "return"
	// TriggerSweep: the sweep of a FetchResult job whose person never came back.
	TriggerSweep = "sweep"
)

// GetPayload is the payload of a TypeGetResult task. The BizToken and region are
// read from the job's record.
type GetPayload struct {
	JobID     string    `json:"job_id"`
	Priority  Priority  `json:"priority"`
	Trigger   string    `json:"trigger"`
	CreatedAt time.Time `json:"created_at"`
}

// Encode returns the payload's wire form.
func (p *GetPayload) Encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode get payload of %s: %w", p.JobID, err)
	}
	return b, nil
}

// DecodeGetPayload parses a TypeGetResult payload.
func DecodeGetPayload(b []byte) (*GetPayload, error) {
	var p GetPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("tasks: decode get payload: %w", err)
	}
	if !ValidID("j_", p.JobID) {
		return nil, fmt.Errorf("tasks: decode get payload: bad job_id %q", p.JobID)
	}
	switch p.Trigger {
	case TriggerNow, TriggerReturn, TriggerSweep:
	default:
		return nil, fmt.Errorf("tasks: decode get payload %s: bad trigger %q", p.JobID, p.Trigger)
	}
	return &p, nil
}

// GetTaskID is the asynq task id of a fetch: one per job and trigger is queued at a
// time (a second enqueue is refused with asynq.ErrTaskIDConflict: it is queued).
func GetTaskID(jobID, trigger string) string { return "get:" + trigger + ":" + jobID }

// NewGetTask returns the TypeGetResult task of p on the Get queue of its lane, with
// the options every action's task has (see NewTask) and opts (e.g. asynq.ProcessIn
// for the sweep).
func NewGetTask(p *GetPayload, timeout time.Duration, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := p.Encode()
	if err != nil {
		return nil, err
	}
	return NewTask(TypeGetResult, p.Priority, GetTaskID(p.JobID, p.Trigger), b, timeout, opts...), nil
}
