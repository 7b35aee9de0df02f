package campaign_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/producer"
)

// The CLI's `enqueue --file`: import a file, then feed the campaign from this
// process (its images are in local files) and draw progress until it is done.
func Example_importFile() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	p, err := producer.New(producer.Config{Redis: rdb}) // the one way jobs are made
	if err != nil {
		panic(err)
	}
	defer p.Close()
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: p})
	if err != nil {
		panic(err)
	}
	sum, err := m.ImportFile(ctx, "users.csv", campaign.ImportOptions{
		OnProgress: func(p campaign.ImportProgress) { fmt.Fprintf(os.Stderr, "\rimported %d lines", p.Lines) },
		OnReject:   func(r campaign.Rejection) { fmt.Fprintf(os.Stderr, "line %d: %s\n", r.Line, r.Error.Message) },
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d accepted, %d rejected\n", sum.BatchId, sum.Accepted, sum.RejectedCount)

	f, err := campaign.NewFeeder(campaign.FeederConfig{Redis: rdb, Producer: p, Batch: sum.BatchId})
	if err != nil {
		panic(err)
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = f.Run(fctx, nil) }()
	_ = m.Watch(ctx, sum.BatchId, time.Second, func(p *campaign.Progress) {
		fmt.Fprintf(os.Stderr, "\r%s", p.Bar(30)) // p.Line() when stderr is not a terminal
	})
}

// A worker process runs the worker-wide feeder next to its asynq server.
func ExampleFeeder_Run() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	f, err := campaign.NewFeeder(campaign.FeederConfig{Redis: rdb, Producer: p})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_ = f.Run(ctx, func(err error) { fmt.Fprintln(os.Stderr, "campaign feeder:", err) })
	}()
}
