package webhook

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
)

// Event types, the "type" of a webhook body.
const (
	// EventTokenSucceeded announces a job that got its BizToken.
	EventTokenSucceeded = "token.succeeded"
	// EventTokenFailed announces a job that failed for good, or was canceled
	// (data.Status says which).
	EventTokenFailed = "token.failed"
	// EventTokenExpired announces a job that did not reach the upstream within its
	// MaxWait (no call was made for it).
	EventTokenExpired = "token.expired"
)

// TaskTimeout is the asynq timeout of a delivery task: long enough for one request
// (Config.Timeout, at most a minute) and the bookkeeping around it.
const TaskTimeout = 2 * time.Minute

// ErrNoURL is returned by Sender.TaskFor when a job has no callback URL and no default
// URL is configured: there is nothing to deliver.
var ErrNoURL = errors.New("webhook: no callback URL")

// event is the body of a webhook, per the Standard Webhooks payload structure.
type event struct {
	Type      string     `json:"type"`
	Timestamp string     `json:"timestamp"`
	Data      *tasks.Job `json:"data"`
}

// payload is the payload of a TypeDeliverWebhook task. Body is the exact request body,
// fixed when the job became final, so every attempt (and a replay) posts the same bytes
// under the same webhook-id.
type payload struct {
	ID    string          `json:"id"` // webhook-id, "msg_…"
	JobID string          `json:"job_id"`
	Type  string          `json:"type"`
	URL   string          `json:"url"`
	Body  json.RawMessage `json:"body"`
	// PriorAttempts counts attempts made before this task (earlier tasks of a replayed
	// delivery), so a job's attempt count keeps growing across replays.
	PriorAttempts int `json:"prior_attempts,omitempty"`
	// LastError is kept with an exhausted delivery, for the record after a failed replay.
	LastError string `json:"last_error,omitempty"`
}

func decodePayload(b []byte) (*payload, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("webhook: decode payload: %w", err)
	}
	switch {
	case !strings.HasPrefix(p.ID, "msg_"):
		return nil, errors.New("webhook: decode payload: bad id")
	case !tasks.ValidID("j_", p.JobID):
		return nil, errors.New("webhook: decode payload: bad job_id")
	case p.Type != EventTokenSucceeded && p.Type != EventTokenFailed && p.Type != EventTokenExpired && p.Type != EventVerificationCompleted:
		return nil, errors.New("webhook: decode payload: bad type")
	case !json.Valid(p.Body):
		return nil, errors.New("webhook: decode payload: body is not JSON")
	}
	return &p, nil
}

func (p *payload) encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode payload of %s: %w", p.JobID, err)
	}
	return b, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// eventID returns the webhook-id of a final job's event. It is derived from the job's
// id, status and finish time, so the same final state enqueued twice (a worker that
// crashed after finishing a job and ran it again) is the same event, deduplicated by
// its asynq TaskID and by receivers, while a later final state of the same job (a
// re-run) is a new event. A job without FinishedAt gets a random id.
func eventID(job *tasks.Job) string {
	var b [16]byte
	if job.FinishedAt != nil {
		h := sha256.Sum256([]byte("faceidq/webhook\x00" + job.JobId + "\x00" + string(job.Status) +
			"\x00" + tasks.FormatTime(*job.FinishedAt)))
		copy(b[:], h[:])
	} else {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	}
	return "msg_" + idEncoding.EncodeToString(b[:])
}

func eventType(s tasks.Status) (string, error) {
	switch s {
	case tasks.StatusSucceeded:
		return EventTokenSucceeded, nil
	case tasks.StatusFailed, tasks.StatusCanceled:
		return EventTokenFailed, nil
	case tasks.StatusExpired:
		return EventTokenExpired, nil
	}
	return "", fmt.Errorf("webhook: job status %q is not final", s)
}

// taskID is the asynq TaskID of the first delivery task of event id.
func taskID(eventID string) string { return "webhook:" + eventID }

// NewTask returns the TypeDeliverWebhook task that posts final job job to url. The body,
// {"type":…,"timestamp":<FinishedAt>,"data":<job>}, is fixed now: data is a snapshot of
// the job without its Webhook delivery state. url is checked for its shape only (use
// ValidateURL when accepting it); the policy is enforced at delivery.
//
// Options: queue tasks.QueueWebhooks, MaxRetry len(DefaultSchedule), Timeout
// TaskTimeout, and TaskID "webhook:<event id>", so enqueueing the same final job twice
// fails with asynq.ErrTaskIDConflict (treat it as done). opts are applied after these.
func NewTask(job *tasks.Job, url string, opts ...asynq.Option) (*asynq.Task, error) {
	if job == nil || !tasks.ValidID("j_", job.JobId) {
		return nil, errors.New("webhook: new task: job without a valid JobId")
	}
	typ, err := eventType(job.Status)
	if err != nil {
		return nil, fmt.Errorf("webhook: new task for %s: %w", job.JobId, err)
	}
	if _, _, err := parseURL(url); err != nil {
		return nil, fmt.Errorf("webhook: new task for %s: %w", job.JobId, err)
	}
	snap := *job
	snap.Webhook = nil
	ts := time.Now()
	if job.FinishedAt != nil {
		ts = *job.FinishedAt
	}
	body, err := json.Marshal(event{Type: typ, Timestamp: tasks.FormatTime(ts), Data: &snap})
	if err != nil {
		return nil, fmt.Errorf("webhook: new task for %s: encode body: %w", job.JobId, err)
	}
	p := &payload{ID: eventID(job), JobID: job.JobId, Type: typ, URL: url, Body: body}
	b, err := p.encode()
	if err != nil {
		return nil, err
	}
	all := append([]asynq.Option{
		asynq.Queue(tasks.QueueWebhooks),
		asynq.MaxRetry(len(DefaultSchedule)),
		asynq.Timeout(TaskTimeout),
		asynq.TaskID(taskID(p.ID)),
	}, opts...)
	return asynq.NewTask(tasks.TypeDeliverWebhook, b, all...), nil
}

// URLFor returns where job's webhook goes: its own callback URL (job.Webhook.URL, from
// the record's CallbackURL), else the configured default, else "".
func (s *Sender) URLFor(job *tasks.Job) string {
	if job != nil && job.Webhook != nil && job.Webhook.URL != "" {
		return job.Webhook.URL
	}
	return s.defaultURL
}

// TaskFor returns the delivery task of final job job to URLFor(job), with MaxRetry set
// to the length of the sender's schedule. It returns ErrNoURL when there is no URL.
func (s *Sender) TaskFor(job *tasks.Job, opts ...asynq.Option) (*asynq.Task, error) {
	url := s.URLFor(job)
	if url == "" {
		return nil, ErrNoURL
	}
	return NewTask(job, url, append([]asynq.Option{asynq.MaxRetry(len(s.schedule))}, opts...)...)
}
