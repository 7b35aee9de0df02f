package webhook

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/tasks"
)

// EventVerificationCompleted announces a job whose Verification reached a final
// state (passed, failed, expired) or the sweep's incomplete; data is the job.
const EventVerificationCompleted = "verification.completed"

// verificationEventID is derived from the job and its verification's status and
// error code, so a duplicate run enqueues the same event.
func verificationEventID(job *tasks.Job) string {
	v := job.Verification
	code := ""
	if v.ErrorCode != nil {
		code = strconv.FormatInt(*v.ErrorCode, 10)
	}
	h := sha256.Sum256([]byte("faceidq/webhook/verification\x00" + job.JobId + "\x00" + string(v.Status) + "\x00" + code))
	var b [16]byte
	copy(b[:], h[:])
	return "msg_" + idEncoding.EncodeToString(b[:])
}

// VerificationTaskFor returns the delivery task of job's verification.completed
// event to URLFor(job), or ErrNoURL. The job must carry a Verification.
func (s *Sender) VerificationTaskFor(job *tasks.Job, opts ...asynq.Option) (*asynq.Task, error) {
	url := s.URLFor(job)
	if url == "" {
		return nil, ErrNoURL
	}
	if job == nil || !tasks.ValidID("j_", job.JobId) || job.Verification == nil {
		return nil, errors.New("webhook: verification task: job without a JobId or a Verification")
	}
	if _, _, err := parseURL(url); err != nil {
		return nil, fmt.Errorf("webhook: verification task for %s: %w", job.JobId, err)
	}
	snap := *job
	snap.Webhook = nil
	ts := time.Now()
	if job.Verification.FetchedAt != nil {
		ts = *job.Verification.FetchedAt
	}
	body, err := json.Marshal(event{Type: EventVerificationCompleted, Timestamp: tasks.FormatTime(ts), Data: &snap})
	if err != nil {
		return nil, fmt.Errorf("webhook: verification task for %s: encode body: %w", job.JobId, err)
	}
	p := &payload{ID: verificationEventID(job), JobID: job.JobId, Type: EventVerificationCompleted, URL: url, Body: body}
	b, err := p.encode()
	if err != nil {
		return nil, err
	}
	all := append([]asynq.Option{
		asynq.Queue(tasks.QueueWebhooks),
		asynq.MaxRetry(len(s.schedule)),
		asynq.Timeout(TaskTimeout),
		asynq.TaskID(taskID(p.ID)),
	}, opts...)
	return asynq.NewTask(tasks.TypeDeliverWebhook, b, all...), nil
}
