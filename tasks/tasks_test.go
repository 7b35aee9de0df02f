package tasks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
)

func ptr[T any](v T) *T { return &v }

func TestTokenRequestValidate(t *testing.T) {
	ok := "https://example.com/done"
	tests := []struct {
		name      string
		req       TokenRequest
		wantField string
	}{
		{"minimal", TokenRequest{RedirectURL: &ok}, ""},
		{"batch lane", TokenRequest{RedirectURL: &ok, Priority: PriorityBatch}, ""},
		{"all regions", TokenRequest{RedirectURL: &ok, Region: "sa-saopaulo"}, ""},
		{"missing redirect", TokenRequest{}, "RedirectURL"},
		{"bad region", TokenRequest{RedirectURL: &ok, Region: "ap-guangzhou"}, "Region"},
		{"bad priority", TokenRequest{RedirectURL: &ok, Priority: "urgent"}, "Priority"},
		{"long extra", TokenRequest{RedirectURL: &ok, Extra: ptr(strings.Repeat("é", 1001))}, "Extra"},
		{"bad config", TokenRequest{RedirectURL: &ok, Config: &faceid.WebVerificationConfigIntl{CheckMode: ptr(int64(9))}}, "Config.CheckMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *faceid.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewJobID()
		if !ValidID("j_", id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "j_", "j_ABC", "b_" + NewJobID()[2:], NewJobID() + "x", "j_../../etc/passwd0000000000"} {
		if ValidID("j_", bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	u := "https://example.com"
	p := &ApplyPayload{JobID: NewJobID(), Priority: PriorityBatch, Region: "ap-jakarta", ImageRef: "abc",
		Input: faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &u}, CreatedAt: time.Unix(1, 0).UTC()}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeApplyPayload(b)
	if err != nil || got.JobID != p.JobID || *got.Input.RedirectURL != u || got.ImageRef != "abc" || got.Priority != PriorityBatch {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	img := "QUJD"
	p.Input.CompareImageBase64 = &img
	if _, err := p.Encode(); err == nil {
		t.Fatal("Encode accepted image bytes in the payload")
	}
}

func TestJobFromRecord(t *testing.T) {
	rec := map[string]string{
		FieldStatus: "failed", FieldErrorCode: "InvalidParameter", FieldErrorMessage: "RedirectURL: bad",
		FieldAttempts: "1", FieldCreatedAt: "2026-11-27T10:00:00.000Z", FieldFinishedAt: "2026-11-27T10:00:01.000Z",
	}
	j, err := JobFromRecord("j_x", rec)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != StatusFailed || !j.Status.Final() || j.Error == nil || j.Error.Code != "InvalidParameter" || j.Attempts != 1 || j.FinishedAt == nil {
		t.Fatalf("job = %+v", j)
	}
	if _, err := JobFromRecord("j_x", map[string]string{FieldStatus: "queued", FieldAttempts: "x"}); err == nil {
		t.Fatal("malformed Attempts accepted")
	}
	if _, err := JobFromRecord("j_x", nil); err == nil {
		t.Fatal("empty record accepted")
	}
}

func TestJobJSONPosition(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name string
		job  Job
		want []string
		not  []string
	}{
		{"queued with an estimate", Job{Status: StatusQueued, Position: 7, EstimatedStartAt: &at},
			[]string{`"Position":7`, `"EstimatedStartAt":"2026-01-02T03:04:05.000Z"`}, nil},
		{"queued while paused", Job{Status: StatusQueued}, []string{`"Position":0`, `"EstimatedStartAt":null`}, nil},
		{"final", Job{Status: StatusExpired, Position: 7, EstimatedStartAt: &at}, nil, []string{"Position", "EstimatedStartAt"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.job)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(string(b), n) {
					t.Errorf("%s has %s", b, n)
				}
			}
		})
	}
}
