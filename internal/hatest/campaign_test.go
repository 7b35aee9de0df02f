package hatest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/hatest"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// pngBytes is a 1x1 PNG: the simulator accepts any base64 image.
var pngBytes, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

// campaignCSV writes a CSV of n rows in dir, every third row with an image file
// (img-<i>.png), and returns its path.
func campaignCSV(t *testing.T, dir, name string, n int) string {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("row_key,redirect_url,extra,image_path\n")
	for i := range n {
		img := ""
		if i%3 == 0 {
			img = fmt.Sprintf("img-%s-%d.png", name, i)
			if err := os.WriteFile(filepath.Join(dir, img), pngBytes, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&buf, "%s-%d,https://example.com/done,%s row %d,%s\n", name, i, name, i, img)
	}
	path := filepath.Join(dir, name+".csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startFeeder runs a worker-wide campaign feeder (one that reads local files) until
// the test ends.
func (b *bundle) startFeeder(t *testing.T) {
	t.Helper()
	f, err := campaign.NewFeeder(campaign.FeederConfig{Redis: b.connect(t), Producer: b.producer, LoadFiles: true,
		Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx, func(err error) { t.Logf("feeder: %v", err) }) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitCampaign waits until campaign id is done and returns its progress.
func waitCampaign(t *testing.T, m *campaign.Manager, id string, timeout time.Duration) *campaign.Progress {
	t.Helper()
	var p *campaign.Progress
	waittest.Until(t, timeout, "campaign "+id+" done", func() bool {
		var err error
		p, err = m.Status(context.Background(), id)
		return err == nil && p.Done
	})
	return p
}

// TestClusterCampaign runs every campaign operation on a 3-master Redis Cluster: a
// CSV import with image files, feeding by the feeder with a worker running,
// pause/resume, cancel, re-run (of failed and of canceled jobs), export, and a start
// link opened. A transaction or script whose keys span slots fails here with
// CROSSSLOT.
func TestClusterCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster and runs campaigns at 20/s (about 10 s)")
	}
	cl := hatest.StartCluster(t, hatest.ClusterOptions{})
	b := setup(t, cl.URL())
	ctx := context.Background()
	w, err := jobwait.New(jobwait.Config{Redis: b.rdb, Results: b.producer.Results()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	m, err := campaign.New(campaign.Config{Redis: b.rdb, Producer: b.producer, Waiter: w})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b.startWorker(t)

	// Import, paused before the feeder starts: nothing is fed until resumed.
	sumA, err := m.ImportFile(ctx, campaignCSV(t, dir, "a", 24), campaign.ImportOptions{Name: "spring"})
	if err != nil || sumA.Created != 24 || sumA.RejectedCount != 0 {
		t.Fatalf("import = %+v, %v", sumA, err)
	}
	if again, err := m.ImportFile(ctx, filepath.Join(dir, "a.csv"), campaign.ImportOptions{Name: "spring"}); err != nil ||
		again.Created != 0 || again.Existing != 24 || again.BatchId != sumA.BatchId {
		t.Fatalf("import again = %+v, %v; want 24 existing in %s", again, err, sumA.BatchId)
	}
	if id, err := m.Lookup(ctx, "spring"); err != nil || id != sumA.BatchId {
		t.Fatalf("lookup by name = %s, %v", id, err)
	}
	// One image file is gone before the job is fed: the job fails, and is re-run once
	// the file is back.
	gone := filepath.Join(dir, "img-a-3.png")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Pause(ctx, sumA.BatchId); err != nil {
		t.Fatal(err)
	}
	b.startFeeder(t)
	time.Sleep(300 * time.Millisecond)
	if p, err := m.Status(ctx, sumA.BatchId); err != nil || p.Fed != 0 || p.State != campaign.StatePaused {
		t.Fatalf("paused campaign: %+v, %v; want nothing fed", p, err)
	}
	if _, err := m.Resume(ctx, sumA.BatchId); err != nil {
		t.Fatal(err)
	}
	p := waitCampaign(t, m, sumA.BatchId, 30*time.Second)
	if p.Counts[string(tasks.StatusSucceeded)] != 23 || p.Counts[string(tasks.StatusFailed)] != 1 {
		t.Fatalf("after feeding: %v; want 23 succeeded and the row without its file failed", p.Counts)
	}
	if err := os.WriteFile(gone, pngBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if rs, err := m.Rerun(ctx, sumA.BatchId, campaign.RerunOptions{}); err != nil || rs.Reopened != 1 {
		t.Fatalf("rerun = %+v, %v", rs, err)
	}
	p = waitCampaign(t, m, sumA.BatchId, 30*time.Second)
	if p.Counts[string(tasks.StatusSucceeded)] != 24 {
		t.Fatalf("after the re-run: %v; want 24 succeeded", p.Counts)
	}

	// Export: every row, joined back by row key.
	var out bytes.Buffer
	if err := m.Export(ctx, sumA.BatchId, &out, campaign.FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != 25 {
		t.Fatalf("export: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		if r[col["status"]] != "succeeded" || r[col["biz_token"]] == "" || !strings.HasPrefix(r[col["row_key"]], "a-") {
			t.Errorf("exported row %v", r)
		}
	}

	// Cancel: with the pipeline paused, the fed jobs wait in the queue and the rest
	// are not fed; every one is canceled. Then re-run the canceled ones.
	sw := pipeline.New(b.rdb)
	if _, err := sw.Pause(ctx, pipeline.ReasonOperator); err != nil {
		t.Fatal(err)
	}
	sumB, err := m.ImportFile(ctx, campaignCSV(t, dir, "b", 10), campaign.ImportOptions{})
	if err != nil || sumB.Created != 10 {
		t.Fatalf("import b = %+v, %v", sumB, err)
	}
	waittest.Until(t, 10*time.Second, "campaign b fed", func() bool {
		p, err := m.Status(ctx, sumB.BatchId)
		return err == nil && p.Fed == 10
	})
	cs, err := m.Cancel(ctx, sumB.BatchId)
	if err != nil || cs.Canceled != 10 || cs.Running != 0 {
		t.Fatalf("cancel = %+v, %v", cs, err)
	}
	if _, err := sw.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	p = waitCampaign(t, m, sumB.BatchId, 10*time.Second)
	if p.Counts[string(tasks.StatusCanceled)] != 10 || p.State != campaign.StateCanceled {
		t.Fatalf("canceled campaign: %+v", p)
	}
	if rs, err := m.Rerun(ctx, sumB.BatchId, campaign.RerunOptions{IncludeCanceled: true}); err != nil || rs.Reopened != 10 {
		t.Fatalf("rerun canceled = %+v, %v", rs, err)
	}
	p = waitCampaign(t, m, sumB.BatchId, 30*time.Second)
	if p.Counts[string(tasks.StatusSucceeded)] != 10 {
		t.Fatalf("after re-running the canceled jobs: %v", p.Counts)
	}

	// A start link, imported with an inline image and opened.
	img := base64.StdEncoding.EncodeToString(pngBytes)
	sumC, err := m.Import(ctx, strings.NewReader(`{"RedirectURL":"https://example.com/done","RowKey":"p1","CompareImageBase64":"`+img+`"}`+"\n"),
		campaign.ImportOptions{Mode: campaign.ModeLinks, Name: "links"})
	if err != nil || sumC.Created != 1 {
		t.Fatalf("import links = %+v, %v", sumC, err)
	}
	linkID := b.rdb.LIndex(ctx, keys.BatchLinks(sumC.BatchId), 0).Val()
	j, err := m.Start(ctx, linkID)
	if err != nil || j.Status != tasks.StatusSucceeded || !strings.HasPrefix(j.VerificationURL, "https://") {
		t.Fatalf("open link %s = %+v, %v", linkID, j, err)
	}
	if again, err := m.Start(ctx, linkID); err != nil || again.JobId != j.JobId {
		t.Fatalf("open again = %+v, %v; want the same job %s", again, err, j.JobId)
	}

	all, err := m.List(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("list = %d campaigns, %v", len(all), err)
	}
	used := 0
	for _, n := range cl.Nodes {
		if n.Client(t).DBSize(ctx).Val() > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("keys on %d of %d masters; the test did not exercise the Cluster", used, len(cl.Nodes))
	}
}

// TestSentinelFailoverDuringCampaign kills the Sentinel-managed master while a
// campaign (CSV with image files) is being fed and drained by two workers: the
// campaign goes on through the promoted replica and completes with every row
// succeeded, none lost and none made twice.
func TestSentinelFailoverDuringCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a Sentinel-managed master during a campaign (about 20 s)")
	}
	set := hatest.StartSentinel(t, hatest.SentinelOptions{DataArgs: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	b := setup(t, set.URL())
	m, err := campaign.New(campaign.Config{Redis: b.rdb, Producer: b.producer})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b.startWorker(t)
	b.startWorker(t)
	const rows = 160
	sum, err := m.ImportFile(ctx, campaignCSV(t, t.TempDir(), "f", rows), campaign.ImportOptions{Name: "failover"})
	if err != nil || sum.Created != rows {
		t.Fatalf("import = %+v, %v", sum, err)
	}
	b.startFeeder(t)
	old := set.Master()
	waittest.Until(t, 30*time.Second, "40 jobs done before the kill", func() bool { return b.sim.Stats().ByCode["OK"] >= 40 })
	okAtKill := b.sim.Stats().ByCode["OK"]
	old.Kill()
	waittest.Until(t, 30*time.Second, "the sentinels to promote the replica", func() bool {
		a, err := set.MasterAddr(context.Background())
		return err == nil && a != old.Addr()
	})
	// Jobs running at the kill come back when their lease expires (about 35 s).
	var p *campaign.Progress
	waittest.Until(t, 90*time.Second, "the campaign done after the failover", func() bool {
		var err error
		p, err = m.Status(ctx, sum.BatchId)
		return err == nil && p.Done
	})
	if p.Total != rows || p.Counts[string(tasks.StatusSucceeded)] != rows || p.Expired != 0 {
		t.Fatalf("after the failover: total %d, counts %v, expired %d; want %d succeeded", p.Total, p.Counts, p.Expired, rows)
	}
	var out bytes.Buffer
	if err := m.Export(ctx, sum.BatchId, &out, campaign.FormatNDJSON); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var j tasks.Job
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatal(err)
		}
		if seen[j.RowKey] {
			t.Errorf("row %s exported twice", j.RowKey)
		}
		seen[j.RowKey] = true
	}
	if len(seen) != rows {
		t.Errorf("%d rows exported, want %d", len(seen), rows)
	}
	t.Logf("failover at %d upstream successes; campaign of %d rows done; upstream %v (duplicates bounded by the calls in flight at the kill)",
		okAtKill, rows, b.sim.Stats().ByCode)
}
