package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// defaultEmbeddedRedis is where `serve`'s embedded Redis listens unless
// --embedded-redis-listen says otherwise: a fixed port, so that the README's
// REDIS_URL=redis://127.0.0.1:6380/0 reaches it from the other commands.
const defaultEmbeddedRedis = "127.0.0.1:6380"

// loopbackAddress validates the embedded Redis's address: host:port with a loopback
// host (the embedded Redis has no password, so it never listens beyond the machine).
func loopbackAddress(o *option) (string, error) {
	host, _, err := net.SplitHostPort(o.value)
	if err == nil && host != "localhost" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			err = errors.New("not loopback")
		}
	}
	if err != nil {
		return "", o.bad("not a loopback host:port such as 127.0.0.1:6380 (the embedded Redis has no password; set REDIS_URL to share a Redis beyond this machine)")
	}
	return o.value, nil
}

// startEmbeddedRedis starts the in-process Redis on addr. When addr is taken and was
// not chosen explicitly (fixed false), it falls back to a free loopback port and says
// so; a chosen address must be free.
func startEmbeddedRedis(log zerolog.Logger, addr string, fixed bool) (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	err := mr.StartAddr(addr)
	if err != nil && !fixed {
		log.Warn().Err(err).Str("redis_addr", addr).Msg("the embedded Redis's default address " + addr +
			" is taken (another faceidq serve, or a Redis?): using a free port instead, logged below; choose one with --embedded-redis-listen (FACEIDQ_EMBEDDED_REDIS_LISTEN)")
		mr = miniredis.NewMiniRedis()
		addr = "127.0.0.1:0"
		err = mr.StartAddr(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("start the embedded Redis on %s: %w", addr, err)
	}
	return mr, nil
}

// lostWork is what the embedded Redis holds that is not final: it is lost when
// `serve` stops.
type lostWork struct {
	queued   int // token jobs in asynq (pending, running, scheduled or retrying)
	unfed    int // campaign jobs imported but not yet fed to the batch queue
	fetches  int // verification fetches (Get tasks) not yet done
	webhooks int // webhook deliveries not yet done
}

// countLostWork reads the asynq queue sizes and the campaigns' fed counts.
func countLostWork(ctx context.Context, rdb redis.UniversalClient) (lostWork, error) {
	var w lostWork
	insp := asynq.NewInspectorFromRedisClient(rdb)
	queues, err := insp.Queues() // only those that ever held a task
	if err != nil {
		return w, fmt.Errorf("queues: %w", err)
	}
	for _, q := range queues {
		if !slices.Contains(tasks.TokenQueues, q) && q != tasks.QueueWebhooks {
			continue
		}
		qi, err := insp.GetQueueInfo(q)
		if err != nil {
			return w, fmt.Errorf("queue %s: %w", q, err)
		}
		n := qi.Pending + qi.Active + qi.Scheduled + qi.Retry + qi.Aggregating
		switch {
		case q == tasks.QueueWebhooks:
			w.webhooks += n
		case slices.Contains(tasks.ActionQueues(tasks.TypeGetResult), q):
			w.fetches += n
		default:
			w.queued += n
		}
	}
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		return w, err
	}
	defer p.Close()
	cm, err := campaign.New(campaign.Config{Redis: rdb, Producer: p})
	if err != nil {
		return w, err
	}
	list, err := cm.List(ctx)
	if err != nil {
		return w, err
	}
	for _, in := range list {
		if in.Mode != campaign.ModeTokens || in.State == campaign.StateCanceled {
			continue
		}
		p, err := cm.Status(ctx, in.BatchId)
		if err != nil {
			return w, err
		}
		w.unfed += max(0, p.Total-p.Fed)
	}
	return w, nil
}

// reportEmbeddedLoss logs, as `serve` stops with its embedded Redis, how much
// unfinished work goes with it.
func reportEmbeddedLoss(log zerolog.Logger, rdb redis.UniversalClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := countLostWork(ctx, rdb)
	if err != nil {
		log.Warn().Err(err).Msg("the embedded Redis stops with this process: every job not final is lost (not counted)")
		return
	}
	if w == (lostWork{}) {
		log.Info().Msg("the embedded Redis stops with this process: no job was left unfinished")
		return
	}
	log.Warn().Int("lost_jobs", w.queued+w.unfed).Int("queued", w.queued).Int("unfed", w.unfed).
		Int("lost_fetches", w.fetches).Int("lost_webhooks", w.webhooks).
		Msg(fmt.Sprintf("the embedded Redis stops with this process: %d jobs not final are lost (%d queued, running or retrying; %d campaign jobs not yet fed), %d verification fetches and %d webhook deliveries; set REDIS_URL to a persistent Redis to keep them",
			w.queued+w.unfed, w.queued, w.unfed, w.fetches, w.webhooks))
}
