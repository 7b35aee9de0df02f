package tasks

import (
	"encoding/json"
	"strconv"
	"time"
)

// msTime is a time written in TimeFormat (UTC, milliseconds): every time of an answer
// has the precision of the record, whether the job was just created or read back.
type msTime time.Time

func (t msTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+4)
	return appendMS(b, time.Time(t)), nil
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
//
// It writes the fields by hand, in the order and with the escaping encoding/json
// gives the struct (TestJobMarshalJSON holds it to that): a job is the answer of
// every POST /v1/tokens, and the reflection walk was a large share of its cost.
func (j Job) MarshalJSON() ([]byte, error) {
	return j.AppendJSON(make([]byte, 0, 512))
}

// AppendJSON appends what MarshalJSON returns to b.
func (j *Job) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"JobId":`...)
	b = appendJSONString(b, j.JobId)
	b = append(b, `,"Status":`...)
	b = appendJSONString(b, string(j.Status))
	b = append(b, `,"BizToken":`...)
	b = appendJSONString(b, j.BizToken)
	b = append(b, `,"VerificationURL":`...)
	b = appendJSONString(b, j.VerificationURL)
	b = append(b, `,"Extra":`...)
	b = appendJSONString(b, j.Extra)
	b = append(b, `,"RequestId":`...)
	b = appendJSONString(b, j.RequestId)
	b = append(b, `,"Error":`...)
	if j.Error == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"Code":`...)
		b = appendJSONString(b, j.Error.Code)
		b = append(b, `,"Message":`...)
		b = appendJSONString(b, j.Error.Message)
		b = append(b, '}')
	}
	b = append(b, `,"Attempts":`...)
	b = strconv.AppendInt(b, int64(j.Attempts), 10)
	b = appendOptString(b, `,"BatchId":`, j.BatchId)
	b = appendOptString(b, `,"RowKey":`, j.RowKey)
	b = appendOptString(b, `,"Priority":`, string(j.Priority))
	b = appendOptString(b, `,"Region":`, j.Region)
	b = appendOptString(b, `,"Account":`, j.Account)
	var err error
	if j.Webhook != nil {
		if b, err = appendMarshal(b, `,"Webhook":`, j.Webhook); err != nil {
			return nil, err
		}
	}
	if j.FetchResult {
		b = append(b, `,"FetchResult":true`...)
	}
	if j.Verification != nil {
		if b, err = appendMarshal(b, `,"Verification":`, j.Verification); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"ExpiresAt":`...)
	b = appendOptMS(b, j.ExpiresAt)
	b = append(b, `,"CreatedAt":`...)
	b = appendMS(b, j.CreatedAt)
	b = append(b, `,"FinishedAt":`...)
	b = appendOptMS(b, j.FinishedAt)
	if j.Deadline != nil {
		b = append(b, `,"Deadline":`...)
		b = appendMS(b, *j.Deadline)
	}
	if !j.Status.Final() {
		b = append(b, `,"Position":`...)
		b = strconv.AppendInt(b, int64(j.Position), 10)
		b = append(b, `,"EstimatedStartAt":`...)
		b = appendOptMS(b, j.EstimatedStartAt)
	}
	return append(b, '}'), nil
}

// MarshalJSON writes w with its time in TimeFormat.
func (w Webhook) MarshalJSON() ([]byte, error) {
	type plain Webhook
	return json.Marshal(struct {
		plain
		LastAt *msTime `json:"LastAt,omitempty"`
	}{plain(w), optMS(w.LastAt)})
}

// appendMS appends t as a JSON string in TimeFormat.
func appendMS(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendTime(b, t)
	return append(b, '"')
}

func appendOptMS(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendMS(b, *t)
}

// appendOptString appends name and s unless s is empty (omitempty).
func appendOptString(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, name...), s)
}

// appendMarshal appends name and v as encoding/json writes it.
func appendMarshal(b []byte, name string, v any) ([]byte, error) {
	m, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(append(b, name...), m...), nil
}

// appendJSONString appends s as encoding/json writes a string: as it is when every
// byte is printable ASCII that needs no escape, else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			m, _ := json.Marshal(s) // a string always encodes
			return append(b, m...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
