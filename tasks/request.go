package tasks

import (
	"fmt"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

// TokenRequest is what a caller submits for one job: the upstream's own input, in
// Tencent's names so that a Tencent request body works as is, plus faceidq's Region,
// CallbackURL, Priority and MaxWait.
type TokenRequest struct {
	RedirectURL        *string                           `json:"RedirectURL,omitempty"`
	CompareImageBase64 *string                           `json:"CompareImageBase64,omitempty"`
	Extra              *string                           `json:"Extra,omitempty"`
	RuleId             *string                           `json:"RuleId,omitempty"`
	Config             *faceid.WebVerificationConfigIntl `json:"Config,omitempty"`

	// Region of the call. Defaults to the producer's default region.
	Region string `json:"Region,omitempty"`
	// CallbackURL receives the final job by webhook.
	CallbackURL string `json:"CallbackURL,omitempty"`
	// Priority is the lane: interactive (default) or batch.
	Priority Priority `json:"Priority,omitempty"`
	// FetchResult: fetch the person's verification result once they finish.
	FetchResult bool `json:"FetchResult,omitempty"`
	// MaxWait is the job's deadline in whole seconds after its creation: a job that
	// has not reached the upstream by then ends expired, with no upstream call.
	// Zero: the lane's default (none unless configured).
	MaxWait int `json:"MaxWait,omitempty"`
}

// MaxMaxWait is the longest MaxWait accepted.
const MaxMaxWait = 7 * 24 * time.Hour

// ValidateMaxWait checks a MaxWait in seconds: 0 (none) or 1 to MaxMaxWait.
func ValidateMaxWait(seconds int) error {
	if seconds < 0 || seconds > int(MaxMaxWait/time.Second) {
		return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "MaxWait",
			Reason: fmt.Sprintf("must be a whole number of seconds from 1 to %d (7 days), not %d", int(MaxMaxWait/time.Second), seconds)}
	}
	return nil
}

// Params returns the upstream input of r.
func (r *TokenRequest) Params() faceid.ApplyWebVerificationBizTokenIntlRequestParams {
	return faceid.ApplyWebVerificationBizTokenIntlRequestParams{
		RedirectURL: r.RedirectURL, CompareImageBase64: r.CompareImageBase64,
		Extra: r.Extra, Config: r.Config, RuleId: r.RuleId,
	}
}

// Validate checks r as the upstream documents its inputs (faceid.Validate), then its
// Region and Priority. It returns a *faceid.FieldError naming the field and the
// reason. An empty Region is valid here: the producer fills in its default.
func (r *TokenRequest) Validate() error {
	p := r.Params()
	if err := faceid.Validate(&p); err != nil {
		return err
	}
	if r.Region != "" {
		if err := faceid.ValidateRegion(r.Region); err != nil {
			return err
		}
	}
	if _, err := ParsePriority(string(r.Priority)); err != nil {
		return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "Priority", Reason: err.Error()}
	}
	return ValidateMaxWait(r.MaxWait)
}
