package hatest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/hatest"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// TestCluster runs the producer, two workers (each with its own global limiter
// instance), the result store and the pipeline switch on a 3-master Redis Cluster
// through a redis-cluster:// URL. A multi-key script or transaction whose keys span
// slots would fail here with CROSSSLOT.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster and drains 80 jobs at 20/s (about 10 s)")
	}
	cl := hatest.StartCluster(t, hatest.ClusterOptions{})
	b := setup(t, cl.URL())
	if _, ok := b.rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("redisconn gave a %T for %s", b.rdb, cl.URL())
	}
	ctx := context.Background()

	// Final jobs are announced on the done channel (classic pub/sub reaches every
	// node's subscribers in a Cluster).
	sub := b.rdb.Subscribe(ctx, keys.Done)
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	announced := make(map[string]bool)
	msgs := sub.Channel()

	b.startWorker(t)
	b.startWorker(t)

	u := "https://example.com/done"
	img := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	var ids []string
	for i := 0; i < 80; i++ {
		extra := "row-" + strings.Repeat("x", i%7)
		req := &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch}
		opts := producer.Options{}
		if i%10 == 0 {
			req.CompareImageBase64 = &img
			req.Priority = tasks.PriorityInteractive
			opts.IdempotencyKey = "cluster-" + string(rune('a'+i/10))
		}
		j, created, err := b.producer.Submit(ctx, req, opts)
		if err != nil || !created {
			t.Fatalf("submit %d: created %v, %v", i, created, err)
		}
		ids = append(ids, j.JobId)
	}
	// The same Idempotency-Key gives the same job.
	again, created, err := b.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: ptr("row-"),
		CompareImageBase64: &img, Priority: tasks.PriorityInteractive}, producer.Options{IdempotencyKey: "cluster-a"})
	if err != nil || created || again.JobId != ids[0] {
		t.Fatalf("idempotent re-submit: created %v, job %v, err %v; want job %s", created, again, err, ids[0])
	}

	jobs, errs := b.waitFinal(ids, 60*time.Second)
	for i, j := range jobs {
		if j == nil {
			t.Fatalf("job %s not final: %v", ids[i], errs[i])
		}
		if j.Status != tasks.StatusSucceeded || j.BizToken == "" || j.RequestId == "" || j.ExpiresAt == nil {
			t.Fatalf("job %d = %+v (error %+v)", i, j, j.Error)
		}
	}
	// The public result hash, read straight from the Cluster.
	h, err := b.rdb.HGetAll(ctx, keys.Result(ids[1])).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tasks.FieldStatus, tasks.FieldBizToken, tasks.FieldVerificationURL, tasks.FieldExpiresAt,
		tasks.FieldRequestId, tasks.FieldAttempts, tasks.FieldUpdatedAt} {
		if h[f] == "" {
			t.Errorf("result hash field %s is empty: %v", f, h)
		}
	}
	if ttl := b.rdb.TTL(ctx, keys.Result(ids[1])).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("final result TTL = %v, want (0, 24h]", ttl)
	}
	if n := b.rdb.Exists(ctx, keys.Image(images.Ref(img))).Val(); n != 0 {
		t.Error("the image remains after its jobs are final")
	}
	waittest.Until(t, 10*time.Second, "every final job announced on "+keys.Done, func() bool {
		for {
			select {
			case m := <-msgs:
				announced[m.Payload] = true
				continue
			default:
			}
			break
		}
		for _, id := range ids {
			if !announced[id] {
				return false
			}
		}
		return true
	})

	st := b.sim.Stats()
	if st.ByCode["OK"] != int64(len(ids)) || st.ByCode["RequestLimitExceeded"] != 0 || st.MaxInAnySecond > 20 {
		t.Errorf("upstream saw %v, max %d in a second; want %d OK, none refused, at most 20/s", st.ByCode, st.MaxInAnySecond, len(ids))
	}

	// The data is spread over the masters, so the run crossed slots and nodes.
	used := 0
	for _, n := range cl.Nodes {
		if n.Client(t).DBSize(ctx).Val() > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("keys on %d of %d masters; the test did not exercise the Cluster", used, len(cl.Nodes))
	}

	// Pause and resume: jobs wait while paused, then finish.
	sw := pipeline.New(b.rdb)
	if _, err := sw.Pause(ctx, pipeline.ReasonOperator); err != nil {
		t.Fatal(err)
	}
	var held []string
	for i := 0; i < 5; i++ {
		j, _, err := b.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, j.JobId)
	}
	// asynq keeps a paused queue's tasks pending, on the Cluster too.
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	for _, q := range []string{tasks.QueueInteractive, tasks.QueueBatch} {
		qi, err := insp.GetQueueInfo(q)
		if err != nil || !qi.Paused {
			t.Fatalf("queue %s while paused: %+v, %v", q, qi, err)
		}
	}
	for _, id := range held {
		ti, err := insp.GetTaskInfo(tasks.QueueInteractive, id)
		if err != nil || ti.State != asynq.TaskStatePending {
			t.Fatalf("held task %s: %+v, %v", id, ti, err)
		}
	}
	if got := b.sim.Stats().ByCode["OK"]; got != int64(len(ids)) {
		t.Errorf("%d upstream calls while paused", got-int64(len(ids)))
	}
	if _, err := sw.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	js, errs := b.waitFinal(held, 20*time.Second)
	for i, j := range js {
		if j == nil || j.Status != tasks.StatusSucceeded {
			t.Fatalf("held job %s after resume: %+v %v", held[i], j, errs[i])
		}
	}
	t.Logf("cluster %v: %d jobs, upstream %v, max %d in any second, keys on %d masters", cl.Addrs(), len(ids)+len(held), b.sim.Stats().ByCode, st.MaxInAnySecond, used)
}

func ptr(s string) *string { return &s }
