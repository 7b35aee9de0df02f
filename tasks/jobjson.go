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

// MarshalJSON writes j with every time in TimeFormat. A job that is not final
// carries Position and EstimatedStartAt (null when there is no estimate); a final
// job carries neither.
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job
	if !j.Status.Final() {
		return json.Marshal(struct {
			plain
			ExpiresAt        *msTime `json:"ExpiresAt"`
			CreatedAt        msTime  `json:"CreatedAt"`
			FinishedAt       *msTime `json:"FinishedAt"`
			Deadline         *msTime `json:"Deadline,omitempty"`
			Position         int     `json:"Position"`
			EstimatedStartAt *msTime `json:"EstimatedStartAt"`
		}{plain(j), optMS(j.ExpiresAt), msTime(j.CreatedAt), optMS(j.FinishedAt), optMS(j.Deadline),
			j.Position, optMS(j.EstimatedStartAt)})
	}
	return json.Marshal(struct {
		plain
		ExpiresAt        *msTime `json:"ExpiresAt"`
		CreatedAt        msTime  `json:"CreatedAt"`
		FinishedAt       *msTime `json:"FinishedAt"`
		Deadline         *msTime `json:"Deadline,omitempty"`
		Position         *int    `json:"Position,omitempty"`
		EstimatedStartAt *msTime `json:"EstimatedStartAt,omitempty"`
	}{plain: plain(j), ExpiresAt: optMS(j.ExpiresAt), CreatedAt: msTime(j.CreatedAt),
		FinishedAt: optMS(j.FinishedAt), Deadline: optMS(j.Deadline)})
}

// MarshalJSON writes w with its time in TimeFormat.
func (w Webhook) MarshalJSON() ([]byte, error) {
	type plain Webhook
	return json.Marshal(struct {
		plain
		LastAt *msTime `json:"LastAt,omitempty"`
	}{plain(w), optMS(w.LastAt)})
}
