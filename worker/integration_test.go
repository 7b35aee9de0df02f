package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/internal/workertest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
	"github.com/faceidq/faceidq/worker"
)

type cluster struct {
	red      *redistest.Server
	rdb      *redis.Client
	sim      *simulator.Server
	endpoint string
	producer *producer.Producer
	results  *results.Store
}

// startWorker starts one worker as a separate process would have it: its own Redis
// connection, upstream client and limiter instance (sharing only Redis).
func (c *cluster) startWorker(t *testing.T) *worker.Worker {
	t.Helper()
	id, key := c.sim.Credential()
	return workertest.Start(t, c.red.Client(t), workertest.Upstream{Endpoint: c.endpoint, SecretID: id, SecretKey: key})
}

func setupCluster(t *testing.T, faults simulator.Faults) *cluster {
	t.Helper()
	c := &cluster{red: redistest.Start(t, redistest.Options{})}
	c.rdb = c.red.Client(t)
	var err error
	if c.sim, err = simulator.New(simulator.Config{Rate: 20, Faults: faults}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c.sim)
	t.Cleanup(hs.Close)
	c.endpoint = hs.URL
	if c.producer, err = producer.New(producer.Config{Redis: c.rdb}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.producer.Close)
	c.results = c.producer.Results()
	return c
}

func (c *cluster) waitAllFinal(t *testing.T, ids []string, timeout time.Duration) []*tasks.Job {
	t.Helper()
	jobs := make([]*tasks.Job, len(ids))
	waittest.UntilReason(t, timeout, fmt.Sprintf("%d jobs final", len(ids)), func() (bool, string) {
		for i, id := range ids {
			if jobs[i] != nil {
				continue
			}
			j, err := c.results.Get(context.Background(), id)
			if err != nil || !j.Status.Final() {
				return false, fmt.Sprintf("job %d (%s): %+v %v", i, id, j, err)
			}
			jobs[i] = j
		}
		return true, ""
	})
	return jobs
}

// TestThreeWorkersShareTheGlobalLimit drains 300 jobs with three workers against the
// simulator at its strict 20/s, with 20% InternalError.
func TestThreeWorkersShareTheGlobalLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 300 jobs at 20/s (about 20 s)")
	}
	c := setupCluster(t, simulator.Faults{InternalErrorRate: 0.2})
	ctx := context.Background()
	u := "https://example.com/done"
	img := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	var ids []string
	for i := 0; i < 300; i++ {
		extra := "row-" + string(rune('a'+i%26))
		req := &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch}
		if i%50 == 0 {
			req.CompareImageBase64 = &img
			req.Priority = tasks.PriorityInteractive
		}
		j, _, err := c.producer.Submit(ctx, req, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.JobId)
	}
	for i := 0; i < 3; i++ {
		c.startWorker(t)
	}
	jobs := c.waitAllFinal(t, ids, 90*time.Second)
	retried := 0
	for i, j := range jobs {
		if j.Status != tasks.StatusSucceeded || j.BizToken == "" || j.VerificationURL != "https://intl.faceid.qq.com/reflect/?token="+j.BizToken ||
			j.RequestId == "" || j.ExpiresAt == nil || j.Extra != "row-"+string(rune('a'+i%26)) || j.Attempts < 1 {
			t.Fatalf("job %d = %+v", i, j)
		}
		if j.Attempts > 1 {
			retried++
		}
	}
	st := c.sim.Stats()
	if st.ByCode["RequestLimitExceeded"] != 0 || st.MaxInAnySecond > 20 {
		t.Fatalf("the workers overran the limit: %d RequestLimitExceeded, max %d in a second", st.ByCode["RequestLimitExceeded"], st.MaxInAnySecond)
	}
	if st.ByCode["InternalError"] == 0 || retried == 0 {
		t.Fatalf("no InternalError was retried (by_code %v, retried jobs %d)", st.ByCode, retried)
	}
	if got := st.ByCode["OK"]; got != 300 {
		t.Fatalf("OK answers = %d, want 300 (one success per job)", got)
	}
	if n := c.rdb.Exists(ctx, keys.Image(images.Ref(img))).Val(); n != 0 {
		t.Fatal("image key remains after its jobs are final")
	}
	t.Logf("simulator: %d requests, by code %v, max in any second %d", st.Requests, st.ByCode, st.MaxInAnySecond)
}

// TestPermanentAndAccountErrors checks that an input the upstream refuses fails after
// exactly one call, and that an account-level error pauses every worker without
// failing a job.
func TestPermanentAndAccountErrors(t *testing.T) {
	c := setupCluster(t, simulator.Faults{})
	ctx := context.Background()
	c.startWorker(t)
	c.startWorker(t)

	// A job the producer's validator would refuse, enqueued as an older producer might
	// have: the upstream refuses it, permanently.
	bad := "ftp://example.com/x"
	pl := &tasks.ApplyPayload{JobID: tasks.NewJobID(), Priority: tasks.PriorityInteractive, Region: "ap-singapore", CreatedAt: time.Now()}
	pl.Input.RedirectURL = &bad
	b, _ := pl.Encode()
	in, _ := pl.InputFields()
	if err := c.results.Create(ctx, results.NewRecord{JobID: pl.JobID, Region: pl.Region, Input: in}); err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(c.rdb).Enqueue(asynq.NewTask(tasks.TypeApplyToken, b),
		asynq.Queue(tasks.QueueInteractive), asynq.TaskID(pl.JobID), asynq.MaxRetry(tasks.AsynqMaxRetry)); err != nil {
		t.Fatal(err)
	}
	j := c.waitAllFinal(t, []string{pl.JobID}, 20*time.Second)[0]
	if j.Status != tasks.StatusFailed || j.Error == nil || !strings.HasPrefix(j.Error.Code, "InvalidParameter") || j.Attempts != 1 {
		t.Fatalf("permanent job = %+v (error %+v)", j, j.Error)
	}
	if n := c.sim.Stats().ByCode[j.Error.Code]; n != 1 {
		t.Fatalf("upstream saw the bad job %d times, want 1", n)
	}

	// The account runs out of credit.
	if err := c.sim.SetFaults(simulator.Faults{AccountError: "UnauthorizedOperation.Arrears"}); err != nil {
		t.Fatal(err)
	}
	u := "https://example.com/done"
	var ids []string
	for i := 0; i < 20; i++ {
		j, _, err := c.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.JobId)
	}
	sw := pipeline.New(c.rdb)
	waittest.Until(t, 20*time.Second, "pipeline paused by the account-level error", func() bool {
		st, _ := sw.State(ctx)
		return st.Paused
	})
	before := c.sim.Stats().ByCode["UnauthorizedOperation.Arrears"]
	// While paused, jobs are still accepted and none is failed.
	for i := 0; i < 5; i++ {
		j, _, err := c.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.JobId)
	}
	for _, id := range ids {
		if st, _ := c.results.Status(ctx, id); st.Final() {
			t.Fatalf("job %s is %s during an account-level pause", id, st)
		}
	}
	// The account is fixed; an operator resumes.
	if err := c.sim.SetFaults(simulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, j := range c.waitAllFinal(t, ids, 30*time.Second) {
		if j.Status != tasks.StatusSucceeded {
			t.Fatalf("after resume: %+v", j)
		}
	}
	// At most the calls in flight when the pause happened reached the upstream after it.
	if after := c.sim.Stats().ByCode["UnauthorizedOperation.Arrears"]; after-before > 16 {
		t.Fatalf("%d refused calls after the pause; the workers kept calling", after-before)
	}
}
