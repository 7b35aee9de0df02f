package campaign_test

import (
	"testing"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/tasks"
)

func TestProgressCountsExpired(t *testing.T) {
	p := &campaign.Progress{Total: 4, Counts: map[string]int{
		string(tasks.StatusSucceeded): 1, string(tasks.StatusExpired): 2, string(tasks.StatusQueued): 1}}
	if got := p.Finished(); got != 3 {
		t.Errorf("Finished %d, want 3 (expired jobs are final)", got)
	}
	if got := p.Remaining(); got != 1 {
		t.Errorf("Remaining %d, want 1", got)
	}
}
