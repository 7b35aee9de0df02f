package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// ApplyPayload is the payload of a TypeApplyToken task. It never carries the image:
// a CompareImageBase64 is stored once under keys.Image(ImageRef) and fetched by the
// worker right before the upstream call.
type ApplyPayload struct {
	JobID    string   `json:"job_id"`
	Priority Priority `json:"priority"`
	Region   string   `json:"region"`
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

// Encode returns the payload's wire form.
func (p *ApplyPayload) Encode() ([]byte, error) {
	if p.Input.CompareImageBase64 != nil {
		return nil, fmt.Errorf("tasks: payload of %s carries image bytes; store them and set ImageRef", p.JobID)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode payload of %s: %w", p.JobID, err)
	}
	return b, nil
}

// DecodeApplyPayload parses a TypeApplyToken payload.
func DecodeApplyPayload(b []byte) (*ApplyPayload, error) {
	var p ApplyPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("tasks: decode apply payload: %w", err)
	}
	if !ValidID("j_", p.JobID) {
		return nil, fmt.Errorf("tasks: decode apply payload: bad job_id %q", p.JobID)
	}
	if p.Input.CompareImageBase64 != nil {
		return nil, fmt.Errorf("tasks: decode apply payload %s: image bytes in payload", p.JobID)
	}
	return &p, nil
}
