package hatest_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redisconn"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/workertest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
	"github.com/faceidq/faceidq/worker"
)

// bundle is faceidq assembled on one REDIS_URL the way separate processes would have
// it: every component parses the URL itself and has its own connections.
type bundle struct {
	url      string
	sim      *simulator.Server
	endpoint string
	producer *producer.Producer
	results  *results.Store
	rdb      redis.UniversalClient
}

// connect returns a new client for the bundle's REDIS_URL, closed when the test ends.
func (b *bundle) connect(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb, err := redisconn.New(b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func setup(t *testing.T, url string) *bundle {
	t.Helper()
	b := &bundle{url: url}
	var err error
	if b.sim, err = simulator.New(simulator.Config{Rate: 20}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(b.sim)
	t.Cleanup(hs.Close)
	b.endpoint = hs.URL
	b.rdb = b.connect(t)
	if b.producer, err = producer.New(producer.Config{Redis: b.rdb}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.producer.Close)
	b.results = b.producer.Results()
	return b
}

// startWorker starts one worker with its own connections, upstream client and limiter.
func (b *bundle) startWorker(t *testing.T) *worker.Worker {
	t.Helper()
	id, key := b.sim.Credential()
	return workertest.Start(t, b.connect(t), workertest.Upstream{Endpoint: b.endpoint, SecretID: id, SecretKey: key})
}

// waitFinal waits until every job in ids is final or the deadline passes, and returns
// the jobs (nil where a job is not final; errors[i] says why). A job whose record does
// not exist is not waited for: it cannot become final.
func (b *bundle) waitFinal(ids []string, timeout time.Duration) ([]*tasks.Job, []error) {
	jobs := make([]*tasks.Job, len(ids))
	errs := make([]error, len(ids))
	deadline := time.Now().Add(timeout)
	for i, id := range ids {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			j, err := b.results.Get(ctx, id)
			cancel()
			if err == nil && j.Status.Final() {
				jobs[i], errs[i] = j, nil
				break
			}
			if err == nil {
				err = errors.New("status " + string(j.Status))
			}
			errs[i] = err
			if errors.Is(err, results.ErrNotFound) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return jobs, errs
}

// quietRedis drops go-redis's internal log lines (dial failures while a master is
// down are expected here).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
