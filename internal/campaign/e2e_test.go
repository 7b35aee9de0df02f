package campaign_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/worker"
)

// startWorker starts a real worker against a simulator admitting rate calls a second.
func startWorker(t testing.TB, rdb *redis.Client, rate int) {
	t.Helper()
	sim := faceidtest.Start(t, simulator.Config{Rate: rate})
	client, err := faceid.New(faceid.Config{Endpoint: sim.URL, SecretID: sim.SecretID, SecretKey: sim.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(rdb, ratelimit.Config{Key: keys.Limiter(client.Account(), faceid.Action, client.Endpoint()), Rate: float64(rate)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Redis: rdb, Upstream: client, Limiter: lim, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
}

// imageCampaign writes a CSV of n rows whose images are files of size bytes (distinct
// files, reused cyclically after files of them).
func imageCampaign(t testing.TB, dir string, n, files, size int) string {
	t.Helper()
	img := make([]byte, size)
	for i := 0; i < files; i++ {
		_, _ = rand.Read(img)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%05d.jpg", i)), img, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	buf.WriteString("row_key,redirect_url,image_path\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&buf, "k%06d,https://example.com/r,p%05d.jpg\n", i, i%files)
	}
	p := filepath.Join(dir, "campaign.csv")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitDone waits until campaign id is done, failing after timeout.
func waitDone(t testing.TB, m *campaign.Manager, id string, timeout time.Duration) *campaign.Progress {
	t.Helper()
	var p *campaign.Progress
	waittest.UntilReason(t, timeout, "campaign "+id+" done", func() (bool, string) {
		var err error
		if p, err = m.Status(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return p.Done, p.Line()
	})
	return p
}

// TestCampaignEndToEnd imports a CSV whose images are files, feeds it from the
// importing process (a campaign feeder) under a small image budget, and drains it
// with a real worker and the upstream simulator.
func TestCampaignEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 200 jobs through a worker")
	}
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	path := imageCampaign(t, t.TempDir(), 200, 50, 20<<10)
	sum, err := m.ImportFile(ctx, path, campaign.ImportOptions{})
	if err != nil || sum.Created != 200 {
		t.Fatalf("import = %+v, %v", sum, err)
	}
	if n := b.rdb.Keys(ctx, keys.Image("*")).Val(); len(n) != 0 {
		t.Fatalf("%d images in Redis right after the import: they must stay in the files", len(n))
	}
	// A worker-wide feeder leaves this campaign alone: its images are local files.
	global := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb})
	if n := mustTick(t, global); n != 0 {
		t.Fatalf("the global feeder fed %d jobs of a campaign with local images", n)
	}
	startWorker(t, b.rdb, 100)
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Batch: sum.BatchId, MaxPendingBytes: 10 * 27 << 10, Interval: 20 * time.Millisecond})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(fctx, func(err error) { t.Errorf("feeder: %v", err) }) }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	var p *campaign.Progress
	if err := m.Watch(wctx, sum.BatchId, 50*time.Millisecond, func(pr *campaign.Progress) { p = pr }); err != nil {
		t.Fatalf("watch: %v (last: %s)", err, p.Line())
	}
	stop()
	<-done
	if !p.Done || p.Counts["succeeded"] != 200 || p.Rate <= 0 {
		t.Fatalf("progress = %s", p.Line())
	}
	if n := b.rdb.Keys(ctx, keys.Image("*")).Val(); len(n) != 0 {
		t.Errorf("%d images left in Redis after the campaign", len(n))
	}
	var buf bytes.Buffer
	if err := m.Export(ctx, sum.BatchId, &buf, campaign.FormatCSV); err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(&buf).ReadAll()
	if len(recs) != 201 {
		t.Fatalf("export has %d lines", len(recs))
	}
	for i, r := range recs[1:] {
		if r[0] != "k"+fmt.Sprintf("%06d", i) || r[2] != "succeeded" || !strings.HasPrefix(r[4], "https://") {
			t.Fatalf("export row %d = %v", i, r)
		}
	}
}

// TestMeasureImageCampaignRedisMemory measures Redis's peak memory while a 10,000-job
// campaign with 200 KB images is drained under the feeder's backpressure. Run with:
//
//	FACEIDQ_MEASURE=1 go test -run TestMeasureImageCampaignRedisMemory -v ./internal/campaign/
func TestMeasureImageCampaignRedisMemory(t *testing.T) {
	if os.Getenv("FACEIDQ_MEASURE") != "1" {
		t.Skip("a measurement: set FACEIDQ_MEASURE=1")
	}
	const jobs, size = 10000, 200 << 10
	red := redistest.Start(t, redistest.Options{})
	rdb := red.Client(t)
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: newProducer(t, rdb, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	path := imageCampaign(t, t.TempDir(), jobs, 1000, size)
	base := usedMemory(t, rdb, "used_memory")
	sum, err := m.ImportFile(ctx, path, campaign.ImportOptions{})
	if err != nil || sum.Created != jobs {
		t.Fatalf("import = %+v, %v", sum, err)
	}
	afterImport := usedMemory(t, rdb, "used_memory")
	startWorker(t, rdb, 1000)
	f := mustFeeder(t, campaign.FeederConfig{Redis: rdb, Batch: sum.BatchId, Interval: 20 * time.Millisecond})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(fctx, nil) }()
	start := time.Now()
	p := waitDone(t, m, sum.BatchId, 10*time.Minute)
	stop()
	<-done
	peak := usedMemory(t, rdb, "used_memory_peak")
	t.Logf("%d jobs with %d KB images (base64 %d KB): drained in %v (%s)", jobs, size>>10, (size*4/3)>>10, time.Since(start).Round(time.Millisecond), p.Line())
	t.Logf("Redis used_memory: %.1f MB before, %.1f MB after import; used_memory_peak %.1f MB (all images at once would be %.0f MB)",
		mb(base), mb(afterImport), mb(peak), float64(jobs)*float64(size*4/3)/1e6)
}

func usedMemory(t testing.TB, rdb *redis.Client, field string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in INFO memory", field)
	return 0
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// TestCancelAndRerunEndToEnd cancels a campaign while a real worker drains it (fed
// by a worker-wide feeder): jobs not started are canceled, started ones finish, and
// a re-run of the canceled jobs completes the campaign.
func TestCancelAndRerunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 150 jobs through a worker")
	}
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	sum := mustImport(t, m, ndjsonRows(150), campaign.ImportOptions{Name: "e2e"})
	startWorker(t, b.rdb, 50)
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, MaxPending: 20, Interval: 20 * time.Millisecond})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(fctx, func(err error) { t.Errorf("feeder: %v", err) }) }()
	t.Cleanup(func() { stop(); <-done })

	waittest.UntilReason(t, 30*time.Second, "30 rows succeeded", func() (bool, string) {
		p, err := m.Status(ctx, sum.BatchId)
		if err != nil {
			return false, err.Error()
		}
		return p.Counts["succeeded"] >= 30, p.Line()
	})
	cs, err := m.Cancel(ctx, sum.BatchId)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var p *campaign.Progress
	if err := m.Watch(wctx, sum.BatchId, 20*time.Millisecond, func(pr *campaign.Progress) { p = pr }); err != nil {
		t.Fatalf("watch after cancel: %v", err)
	}
	if p.Remaining() != 0 || p.Counts["canceled"] != cs.Canceled || p.Counts["succeeded"]+p.Counts["canceled"] != 150 || cs.Canceled < 50 {
		t.Fatalf("after cancel %+v: %s", cs, p.Line())
	}
	rs, err := m.Rerun(ctx, sum.BatchId, campaign.RerunOptions{IncludeCanceled: true})
	if err != nil || rs.Reopened != cs.Canceled {
		t.Fatalf("rerun = %+v, %v", rs, err)
	}
	p = waitDone(t, m, sum.BatchId, 30*time.Second)
	if p.Counts["succeeded"] != 150 || p.State != campaign.StateDone {
		t.Fatalf("after rerun: %s", p.Line())
	}
}
