package campaign

import (
	"strconv"

	"github.com/faceidq/faceidq/tasks"
)

// verificationCells are the verification columns of a CSV export row.
func verificationCells(v *tasks.Verification) []string {
	c := make([]string, 4)
	if v == nil {
		return c
	}
	c[0] = string(v.Status)
	if v.ErrorCode != nil {
		c[1] = strconv.FormatInt(*v.ErrorCode, 10)
	}
	if v.Similarity != nil {
		c[2] = strconv.FormatFloat(*v.Similarity, 'f', -1, 64)
	}
	if v.FetchedAt != nil {
		c[3] = tasks.FormatTime(*v.FetchedAt)
	}
	return c
}

// countVerification counts a job's verification status (a record field value).
func countVerification(p *Progress, v any) {
	s, _ := v.(string)
	if s == "" {
		return
	}
	if p.Verification == nil {
		p.Verification = map[string]int{}
	}
	p.Verification[s]++
}
