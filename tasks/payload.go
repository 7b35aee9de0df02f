package tasks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// ApplyPayload is a TypeApplyToken job as the worker runs it. Its task carries the
// ids only (Encode): JobID, Priority, BatchID, CreatedAt and, for an image fed from a
// campaign file, ImageRef. The input is kept once, in the job's record
// (InputFields), and read back with ApplyPayloadFromRecord. It never carries the
// image: a CompareImageBase64 is stored once under keys.Image(ImageRef) and fetched
// by the worker right before the upstream call.
type ApplyPayload struct {
	JobID    string   `json:"job_id"`
	Priority Priority `json:"priority,omitempty"`
	Region   string   `json:"region,omitempty"`
	// Input is the upstream input; its CompareImageBase64 is always nil here.
	Input       faceid.ApplyWebVerificationBizTokenIntlRequestParams `json:"input"`
	ImageRef    string                                               `json:"image_ref,omitempty"`
	CallbackURL string                                               `json:"callback_url,omitempty"`
	BatchID     string                                               `json:"batch_id,omitempty"`
	// FetchResult: once the BizToken is minted, the sweep fetch is scheduled.
	FetchResult bool      `json:"fetch_result,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Deadline is when the job expires unless it has reached the upstream (zero: never).
	Deadline time.Time `json:"deadline,omitzero"`
}

// applyTask is the wire form of a TypeApplyToken task: the ids, under short names
// (asynq keeps the task in a hash whose every byte is paid once per pending job). The
// JobId is the task's id (NewApplyTask), not repeated here; an interactive job leaves
// Priority out.
type applyTask struct {
	JobID      string   `json:"id,omitempty"` // a task whose id is not its JobId
	Priority   Priority `json:"p,omitempty"`
	BatchID    string   `json:"b,omitempty"`
	ImageRef   string   `json:"i,omitempty"`
	CreatedMS  int64    `json:"ms"`          // CreatedAt, Unix milliseconds
	DeadlineMS int64    `json:"d,omitempty"` // Deadline, Unix milliseconds (0: none)
}

// Encode returns the payload of p's task (NewApplyTask, whose id is the JobId): the
// ids, not the input (see InputFields). DecodeApplyTask reads it back.
func (p *ApplyPayload) Encode() ([]byte, error) {
	if p.Input.CompareImageBase64 != nil {
		return nil, fmt.Errorf("tasks: payload of %s carries image bytes; store them and set ImageRef", p.JobID)
	}
	t := applyTask{Priority: p.Priority, BatchID: p.BatchID, ImageRef: p.ImageRef,
		CreatedMS: p.CreatedAt.UnixMilli()}
	if !p.Deadline.IsZero() {
		t.DeadlineMS = p.Deadline.UnixMilli()
	}
	if t.Priority == PriorityInteractive {
		t.Priority = ""
	}
	return t.appendJSON(make([]byte, 0, 48+len(t.Priority)+len(t.BatchID)+len(t.ImageRef))), nil
}

// appendJSON appends t as json.Marshal writes it (TestApplyTaskJSON holds it to that).
func (t *applyTask) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for _, f := range [...]struct{ name, value string }{
		{`"id":`, t.JobID}, {`"p":`, string(t.Priority)}, {`"b":`, t.BatchID}, {`"i":`, t.ImageRef},
	} {
		if f.value != "" { // omitempty
			b = append(appendJSONString(append(b, f.name...), f.value), ',')
		}
	}
	b = append(b, `"ms":`...)
	b = strconv.AppendInt(b, t.CreatedMS, 10)
	if t.DeadlineMS != 0 {
		b = append(b, `,"d":`...)
		b = strconv.AppendInt(b, t.DeadlineMS, 10)
	}
	return append(b, '}')
}

// DecodeApplyPayload parses the payload of a TypeApplyToken task that names its job
// (see DecodeApplyTask).
func DecodeApplyPayload(b []byte) (*ApplyPayload, error) { return DecodeApplyTask("", b) }

// DecodeApplyTask parses TypeApplyToken task taskID: its payload has the ids and the
// JobId is the task's id, or, in a task written before the input moved to the
// record, the payload names the job and has the input too.
func DecodeApplyTask(taskID string, b []byte) (*ApplyPayload, error) {
	var w struct {
		ApplyPayload // the earlier form
		applyTask
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("tasks: decode apply payload: %w", err)
	}
	p := w.ApplyPayload
	if t := w.applyTask; t.CreatedMS != 0 {
		p.JobID, p.Priority, p.BatchID, p.ImageRef = cmp.Or(t.JobID, taskID), t.Priority, t.BatchID, t.ImageRef
		p.CreatedAt = time.UnixMilli(t.CreatedMS).UTC()
		if t.DeadlineMS != 0 {
			p.Deadline = time.UnixMilli(t.DeadlineMS).UTC()
		}
	}
	if !ValidID("j_", p.JobID) {
		return nil, fmt.Errorf("tasks: decode apply payload: bad job_id %q", p.JobID)
	}
	if p.Input.CompareImageBase64 != nil {
		return nil, fmt.Errorf("tasks: decode apply payload %s: image bytes in payload", p.JobID)
	}
	if p.Priority == "" {
		p.Priority = PriorityInteractive
	}
	return &p, nil
}

// Record fields of a job's input (besides Extra, Region, CallbackURL, FetchResult,
// which the record has anyway). Each is written only when set.
const (
	FieldRedirectURL = "RedirectURL" // the RedirectURL sent upstream
	FieldRuleId      = "RuleId"
	FieldConfig      = "Config" // the page configuration, JSON
	FieldImageRef    = "ImageRef"
)

// InputFields returns the record fields (field, value pairs) that keep p's input
// beyond what every record has: RedirectURL, RuleId, Config and ImageRef, each only
// when set. Kept one per field, a typical value stays under Redis's
// hash-max-listpack-value (64 bytes), so the record stays a compact listpack.
func (p *ApplyPayload) InputFields() ([]any, error) {
	var f []any
	if v := p.Input.RedirectURL; v != nil {
		f = append(f, FieldRedirectURL, *v)
	}
	if v := p.Input.RuleId; v != nil {
		f = append(f, FieldRuleId, *v)
	}
	if v := p.Input.Config; v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("tasks: encode Config of %s: %w", p.JobID, err)
		}
		f = append(f, FieldConfig, string(b))
	}
	if p.ImageRef != "" {
		f = append(f, FieldImageRef, p.ImageRef)
	}
	return f, nil
}

// ApplyRecordFields are the record fields ApplyPayloadFromRecord reads, in its order
// (an HMGET's): Status first.
var ApplyRecordFields = []string{
	FieldStatus, FieldPriority, FieldRegion, FieldCreatedAt, FieldBatchId, FieldCallbackURL,
	FieldFetchResult, FieldExtra, FieldRedirectURL, FieldRuleId, FieldConfig, FieldImageRef,
	FieldPayload, FieldDeadline,
}

// ApplyPayloadFromRecord rebuilds job jobID from the values of ApplyRecordFields (an
// HMGET's answer: strings, nil for a missing field) and returns it with the job's
// state. A missing record is status "" and a nil payload. A record written before the
// input moved out of the task has it in its Payload field.
func ApplyPayloadFromRecord(jobID string, vals []any) (*ApplyPayload, Status, error) {
	if len(vals) != len(ApplyRecordFields) {
		return nil, "", fmt.Errorf("tasks: record of %s: %d values for %d fields", jobID, len(vals), len(ApplyRecordFields))
	}
	rec := make(map[string]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			rec[ApplyRecordFields[i]] = s
		}
	}
	st, ok := rec[FieldStatus]
	if !ok {
		return nil, "", nil
	}
	if legacy := rec[FieldPayload]; legacy != "" {
		p, err := DecodeApplyPayload([]byte(legacy))
		return p, Status(st), err
	}
	p := &ApplyPayload{JobID: jobID, Priority: Priority(rec[FieldPriority]), Region: rec[FieldRegion],
		BatchID: rec[FieldBatchId], CallbackURL: rec[FieldCallbackURL], ImageRef: rec[FieldImageRef],
		FetchResult: rec[FieldFetchResult] == "1"}
	if p.Priority == "" {
		p.Priority = PriorityInteractive
	}
	var err error
	if p.CreatedAt, err = parseCreatedAt(rec); err != nil {
		return nil, "", err
	}
	if s := rec[FieldExtra]; s != "" {
		p.Input.Extra = &s
	}
	dl, err := parseOptTime(rec, FieldDeadline)
	if err != nil {
		return nil, "", fmt.Errorf("tasks: record of %s: %w", jobID, err)
	}
	if dl != nil {
		p.Deadline = *dl
	}
	if s, ok := rec[FieldRedirectURL]; ok {
		p.Input.RedirectURL = &s
	}
	if s, ok := rec[FieldRuleId]; ok {
		p.Input.RuleId = &s
	}
	if s, ok := rec[FieldConfig]; ok {
		var c faceid.WebVerificationConfigIntl
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			return nil, "", fmt.Errorf("tasks: record of %s: Config: %w", jobID, err)
		}
		p.Input.Config = &c
	}
	return p, Status(st), nil
}
