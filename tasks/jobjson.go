package tasks

import (
	"encoding/json"
	"time"
)

// msTime is a time written in TimeFormat (UTC, milliseconds): every time of an answer
// has the precision of the record, whether the job was just created or read back.
type msTime time.Time

func (t msTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+4)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

func optMS(t *time.Time) *msTime {
	if t == nil {
		return nil
	}
	m := msTime(*t)
	return &m
}

// MarshalJSON writes j with every time in TimeFormat.
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job
	return json.Marshal(struct {
		plain
		ExpiresAt  *msTime `json:"ExpiresAt"`
		CreatedAt  msTime  `json:"CreatedAt"`
		FinishedAt *msTime `json:"FinishedAt"`
	}{plain(j), optMS(j.ExpiresAt), msTime(j.CreatedAt), optMS(j.FinishedAt)})
}

// MarshalJSON writes w with its time in TimeFormat.
func (w Webhook) MarshalJSON() ([]byte, error) {
	type plain Webhook
	return json.Marshal(struct {
		plain
		LastAt *msTime `json:"LastAt,omitempty"`
	}{plain(w), optMS(w.LastAt)})
}
