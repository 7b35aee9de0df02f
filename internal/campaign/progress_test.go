package campaign_test

import (
	"context"
	"testing"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// TestStatusDone pins when a campaign is done and what State its progress shows.
func TestStatusDone(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	tests := []struct {
		name      string
		body      string
		finish    bool // make every job final
		importing bool // an import is writing into the campaign
		cancel    bool
		wantDone  bool
		wantState campaign.State
	}{
		{name: "no rows", body: "not json\n", wantDone: true, wantState: campaign.StateDone},
		{name: "no rows yet, import running", body: "not json\n", importing: true, wantState: campaign.StateActive},
		{name: "jobs queued", body: `{"RedirectURL":"https://example.com/a"}` + "\n", wantState: campaign.StateActive},
		{name: "every job final", body: `{"RedirectURL":"https://example.com/a"}` + "\n" + `{"RedirectURL":"https://example.com/b"}` + "\n",
			finish: true, wantDone: true, wantState: campaign.StateDone},
		{name: "canceled", body: `{"RedirectURL":"https://example.com/a"}` + "\n", cancel: true, wantDone: true, wantState: campaign.StateCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := mustImport(t, m, tt.body, campaign.ImportOptions{})
			if tt.importing {
				b.rdb.Set(ctx, keys.BatchImportLock(sum.BatchId), "another import", 0)
			}
			if tt.finish {
				for _, id := range b.rdb.LRange(ctx, keys.BatchJobs(sum.BatchId), 0, -1).Val() {
					if _, err := b.producer.Results().Finish(ctx, id, results.Final{Status: tasks.StatusSucceeded, BizToken: "t"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.cancel {
				if _, err := m.Cancel(ctx, sum.BatchId); err != nil {
					t.Fatal(err)
				}
			}
			p, err := m.Status(ctx, sum.BatchId)
			if err != nil {
				t.Fatal(err)
			}
			if p.Done != tt.wantDone || p.State != tt.wantState {
				t.Errorf("Done %v State %q, want %v %q (%+v)", p.Done, p.State, tt.wantDone, tt.wantState, p)
			}
		})
	}
}
