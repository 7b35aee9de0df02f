package campaign_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// ndjsonRows returns n good NDJSON rows with row keys r0000….
func ndjsonRows(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"RedirectURL":"https://example.com/r/%d","Extra":"e%d","RowKey":"r%04d"}`+"\n", i, i, i)
	}
	return b.String()
}

func mustImport(t *testing.T, m *campaign.Manager, body string, opts campaign.ImportOptions) *campaign.ImportSummary {
	t.Helper()
	sum, err := m.Import(context.Background(), strings.NewReader(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func mustFeeder(t *testing.T, cfg campaign.FeederConfig) *campaign.Feeder {
	t.Helper()
	if cfg.Producer == nil {
		cfg.Producer = newProducer(t, cfg.Redis, nil)
	}
	f, err := campaign.NewFeeder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustTick(t *testing.T, f *campaign.Feeder) int {
	t.Helper()
	n, err := f.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pendingBatch(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	qi, err := insp.GetQueueInfo(tasks.QueueBatch)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return qi.Pending
}

// jobIDs returns the campaign's JobIds in import order.
func jobIDs(t *testing.T, b *testBundle, batchID string) []string {
	t.Helper()
	ids, err := b.rdb.LRange(context.Background(), keys.BatchJobs(batchID), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func finish(t *testing.T, st *results.Store, id string, status tasks.Status) {
	t.Helper()
	f := results.Final{Status: status}
	if status == tasks.StatusSucceeded {
		f.BizToken, f.VerificationURL, f.ExpiresAt = "tok-"+id, "https://v.example/"+id, time.Now().Add(10*time.Minute)
	} else {
		f.ErrorCode, f.ErrorMessage = "InvalidParameterValue", "bad"
	}
	if _, err := st.Finish(context.Background(), id, f); err != nil {
		t.Fatal(err)
	}
}

func TestFeeder(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	st := results.New(b.rdb, results.Config{})
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	sum := mustImport(t, m, ndjsonRows(100), campaign.ImportOptions{Name: "feed"})
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, MaxPending: 30})
	ids := jobIDs(t, b, sum.BatchId)

	t.Run("feeds up to the budget", func(t *testing.T) {
		if n := mustTick(t, f); n != 30 {
			t.Fatalf("fed %d, want 30", n)
		}
		if n := mustTick(t, f); n != 0 {
			t.Fatalf("fed %d over the budget", n)
		}
		if p := pendingBatch(t, insp); p != 30 {
			t.Fatalf("batch queue has %d pending, want 30", p)
		}
		info, err := insp.GetTaskInfo(tasks.QueueBatch, ids[0])
		if err != nil || info.Type != tasks.TypeApplyToken || info.MaxRetry != tasks.AsynqMaxRetry {
			t.Fatalf("task of the first job = %+v, %v", info, err)
		}
	})
	t.Run("refills as jobs finish", func(t *testing.T) {
		for _, id := range ids[:10] {
			finish(t, st, id, tasks.StatusSucceeded)
		}
		if n := mustTick(t, f); n != 10 {
			t.Fatalf("fed %d, want 10", n)
		}
	})
	t.Run("another feeder waits for the lock", func(t *testing.T) {
		g := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, MaxPending: 1000})
		if n := mustTick(t, g); n != 0 {
			t.Fatalf("second feeder fed %d while the first holds the lock", n)
		}
	})
	t.Run("pause stops feeding, resume feeds again", func(t *testing.T) {
		if _, err := m.Pause(ctx, sum.BatchId); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids[10:15] {
			finish(t, st, id, tasks.StatusSucceeded)
		}
		if n := mustTick(t, f); n != 0 {
			t.Fatalf("fed %d while paused", n)
		}
		p, _ := m.Status(ctx, sum.BatchId)
		if p.State != campaign.StatePaused || p.ETA != nil {
			t.Fatalf("paused progress = %+v", p)
		}
		if _, err := m.Resume(ctx, sum.BatchId); err != nil {
			t.Fatal(err)
		}
		if n := mustTick(t, f); n != 5 {
			t.Fatalf("fed %d after resume, want 5", n)
		}
	})
	t.Run("rate and ETA from finished jobs", func(t *testing.T) {
		p, err := m.Status(ctx, sum.BatchId)
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts["succeeded"] != 15 || p.Counts["queued"] != 85 || p.Rate <= 0 || p.ETA == nil || *p.ETA <= 0 || p.Fed != 45 {
			t.Fatalf("progress = %+v", p)
		}
		if bar := p.Bar(20); !strings.Contains(bar, "15/100") || !strings.Contains(bar, "ETA") {
			t.Errorf("bar = %q", bar)
		}
		if line := p.Line(); !strings.Contains(line, "succeeded 15") || !strings.Contains(line, sum.BatchId) {
			t.Errorf("line = %q", line)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		// One job has started (the record says running: the worker owns it).
		if _, err := st.MarkRunning(ctx, ids[20]); err != nil {
			t.Fatal(err)
		}
		cs, err := m.Cancel(ctx, sum.BatchId)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Canceled != 84 || cs.Running != 1 {
			t.Fatalf("cancel = %+v, want 84 canceled, 1 running", cs)
		}
		// The tasks of canceled jobs are gone (the 15 jobs finished above by hand
		// keep theirs: no worker ran them).
		for _, id := range ids[15:] {
			if _, err := insp.GetTaskInfo(tasks.QueueBatch, id); id != ids[20] && !errors.Is(err, asynq.ErrTaskNotFound) {
				t.Fatalf("task of canceled job %s: %v", id, err)
			}
		}
		p, _ := m.Status(ctx, sum.BatchId)
		if p.Counts["canceled"] != 84 || p.Counts["running"] != 1 || p.State != campaign.StateCanceled {
			t.Fatalf("progress after cancel = %+v", p)
		}
		if n := mustTick(t, f); n != 0 {
			t.Fatalf("fed %d after cancel", n)
		}
		if _, err := m.Import(ctx, strings.NewReader(ndjsonRows(1)), campaign.ImportOptions{BatchID: sum.BatchId}); !errors.Is(err, campaign.ErrCanceled) {
			t.Fatalf("import into a canceled campaign: %v", err)
		}
	})
	t.Run("rerun failed jobs", func(t *testing.T) {
		finish(t, st, ids[20], tasks.StatusFailed)
		rs, err := m.Rerun(ctx, sum.BatchId, campaign.RerunOptions{})
		if err != nil || rs.Reopened != 1 {
			t.Fatalf("rerun = %+v, %v", rs, err)
		}
		if n := mustTick(t, f); n != 1 {
			t.Fatalf("fed %d after the re-run, want 1", n)
		}
		info, err := insp.GetTaskInfo(tasks.QueueBatch, ids[20])
		if err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("re-run task = %+v, %v", info, err)
		}
		rs, err = m.Rerun(ctx, sum.BatchId, campaign.RerunOptions{IncludeCanceled: true})
		if err != nil || rs.Reopened != 84 {
			t.Fatalf("rerun with canceled = %+v, %v", rs, err)
		}
	})
}

func TestRerunReplacesArchivedTask(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	st := results.New(b.rdb, results.Config{})
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	sum := mustImport(t, m, ndjsonRows(3), campaign.ImportOptions{})
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb})
	if n := mustTick(t, f); n != 3 {
		t.Fatalf("fed %d", n)
	}
	id := jobIDs(t, b, sum.BatchId)[1]
	// As a worker does with a permanent failure: the record fails, asynq archives.
	finish(t, st, id, tasks.StatusFailed)
	if err := insp.ArchiveTask(tasks.QueueBatch, id); err != nil {
		t.Fatal(err)
	}
	if rs, err := m.Rerun(ctx, sum.BatchId, campaign.RerunOptions{}); err != nil || rs.Reopened != 1 {
		t.Fatalf("rerun = %+v, %v", rs, err)
	}
	if n := mustTick(t, f); n != 1 {
		t.Fatalf("fed %d", n)
	}
	info, err := insp.GetTaskInfo(tasks.QueueBatch, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task = %+v, %v", info, err)
	}
}

// TestRerunAfterInterruptedRerun: a re-run that died after reopening a job and
// before handing it to the feeder leaves it queued and unfed; running the re-run
// again feeds it.
func TestRerunAfterInterruptedRerun(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	st := b.producer.Results()
	sum := mustImport(t, m, ndjsonRows(3), campaign.ImportOptions{})
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb})
	if n := mustTick(t, f); n != 3 {
		t.Fatalf("fed %d", n)
	}
	ids := jobIDs(t, b, sum.BatchId)
	for _, id := range ids {
		finish(t, st, id, tasks.StatusFailed)
	}
	// A tick prunes the final jobs from the feeder's in-flight set; then the
	// interrupted re-run reopens one job.
	mustTick(t, f)
	if ok, err := st.Reopen(ctx, ids[1]); err != nil || !ok {
		t.Fatalf("reopen = %v, %v", ok, err)
	}
	rs, err := m.Rerun(ctx, sum.BatchId, campaign.RerunOptions{})
	if err != nil || rs.Reopened != 3 {
		t.Fatalf("rerun = %+v, %v; want the 2 failed jobs and the one left reopened", rs, err)
	}
	if n := mustTick(t, f); n != 3 {
		t.Fatalf("fed %d after the re-run, want 3", n)
	}
}

func TestExportJoinsBack(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	st := results.New(b.rdb, results.Config{})
	path, bad := csvFixture(t, t.TempDir(), 2500)
	sum, err := m.ImportFile(ctx, path, campaign.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := jobIDs(t, b, sum.BatchId)
	for i, id := range ids {
		if i%3 == 0 {
			finish(t, st, id, tasks.StatusSucceeded)
		} else if i%3 == 1 {
			finish(t, st, id, tasks.StatusFailed)
		}
	}
	t.Run("csv", func(t *testing.T) {
		var buf bytes.Buffer
		if err := m.Export(ctx, sum.BatchId, &buf, campaign.FormatCSV); err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(&buf)
		head, _ := r.Read()
		if strings.Join(head, ",") != strings.Join(campaign.ExportColumns, ",") {
			t.Fatalf("header = %v", head)
		}
		seen := map[string]bool{}
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seen[rec[0]] = true
			if rec[2] == "succeeded" && !strings.HasPrefix(rec[4], "https://v.example/") {
				t.Fatalf("row %v lacks its URL", rec)
			}
		}
		for i := 0; i < 2500; i++ {
			key := fmt.Sprintf("user-%05d", i)
			if _, isBad := bad[i+2]; seen[key] == isBad {
				t.Fatalf("row %s: exported=%v, bad=%v", key, seen[key], isBad)
			}
		}
	})
	t.Run("ndjson", func(t *testing.T) {
		var buf bytes.Buffer
		if err := m.Export(ctx, sum.BatchId, &buf, campaign.FormatNDJSON); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		n := 0
		counts := map[tasks.Status]int{}
		for dec.More() {
			var j tasks.Job
			if err := dec.Decode(&j); err != nil {
				t.Fatal(err)
			}
			if j.BatchId != sum.BatchId || j.RowKey == "" {
				t.Fatalf("job = %+v", j)
			}
			counts[j.Status]++
			n++
		}
		if n != len(ids) || counts[tasks.StatusSucceeded] != (len(ids)+2)/3 {
			t.Fatalf("exported %d jobs %v, want %d", n, counts, len(ids))
		}
	})
}
