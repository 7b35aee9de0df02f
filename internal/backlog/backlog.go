// Package backlog tells a queued job its place and an honest estimate of its start,
// in constant time per request: two counters per (upstream action, lane), one of jobs
// that entered the lane (a job keeps the value its increment returned: its ticket)
// and one of jobs that left it for good (reached their slot, expired, or were dropped
// before a call). The jobs ahead of a ticket are those entered before it and not yet
// gone; interactive jobs go before batch jobs, so a batch job also has every waiting
// interactive job ahead of it. Counters only ever grow; an estimate is clamped at 0.
package backlog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/asynqwire"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// Config configures a Backlog.
type Config struct {
	// Redis holds the counters. Required.
	Redis redis.UniversalClient
	// Action is the upstream action whose queue is counted. Defaults to faceid.Action.
	Action string
	// Rate is the budget's rate in calls per second (FACEIDQ_RATE) at which the
	// queue drains. Defaults to 20.
	Rate float64
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Action = cmp.Or(c.Action, faceid.Action)
	c.Rate = cmp.Or(c.Rate, 20)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.Redis == nil {
		return errors.New("backlog: Config.Redis is required")
	}
	if c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate) {
		return fmt.Errorf("backlog: Config.Rate %v must be a positive number", c.Rate)
	}
	return nil
}

// Backlog reads and moves the counters. It is safe for concurrent use.
type Backlog struct {
	cfg     Config
	cluster bool
	// lanes are the keys of the two lanes, built once.
	lanes [2]laneKeys
	// readArgs are the arguments of the commands of ReadCmds, one after the other.
	readArgs []any
	// ticketArgs are the EVAL arguments of ticketScript by lane, the record's key left
	// empty.
	ticketArgs [2][]any
}

// laneKeys are the keys of one lane.
type laneKeys struct {
	tickets, served, pending string
}

// New returns a Backlog.
func New(cfg Config) (*Backlog, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	_, cluster := cfg.Redis.(*redis.ClusterClient)
	b := &Backlog{cfg: cfg, cluster: cluster}
	for i, lane := range []tasks.Priority{tasks.PriorityInteractive, tasks.PriorityBatch} {
		b.lanes[i] = b.newLaneKeys(lane)
	}
	in, ba := b.lanes[0], b.lanes[1]
	b.readArgs = []any{
		"mget", in.tickets, in.served, ba.tickets, ba.served,
		"hget", keys.Pipeline, "Paused",
		"llen", in.pending,
		"llen", ba.pending,
	}
	for i, l := range b.lanes {
		b.ticketArgs[i] = []any{"eval", ticketScript, 2, l.tickets, ""}
	}
	return b, nil
}

func (b *Backlog) newLaneKeys(lane tasks.Priority) laneKeys {
	return laneKeys{
		tickets: keys.BacklogTickets(b.cfg.Action, string(lane)),
		served:  keys.BacklogServed(b.cfg.Action, string(lane)),
		pending: b.pendingKey(lane),
	}
}

// lane returns the keys of lane.
func (b *Backlog) lane(lane tasks.Priority) laneKeys {
	switch lane {
	case tasks.PriorityInteractive:
		return b.lanes[0]
	case tasks.PriorityBatch:
		return b.lanes[1]
	}
	return b.newLaneKeys(lane)
}

// Rate is the drain rate estimates assume.
func (b *Backlog) Rate() float64 { return b.cfg.Rate }

// ticketScript takes the next ticket of KEYS[1] and stores it in the record KEYS[2].
const ticketScript = `
local t = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'Ticket', t)
return t
`

// TicketCmd queues on pipe, after the command that creates job jobID's record, the
// command that gives it a ticket in lane and stores it in the record. Read the
// ticket with Ticket. On Redis Cluster the counter and the record live in different
// slots: the command only counts, and Store writes the ticket after the pipeline.
func (b *Backlog) TicketCmd(ctx context.Context, pipe redis.Pipeliner, lane tasks.Priority, jobID string) *redis.Cmd {
	if b.cluster {
		return pipe.Do(ctx, "INCR", b.lane(lane).tickets)
	}
	// EVAL of ticketScript, with the arguments built once. EVAL, not EVALSHA: a
	// pipeline cannot fall back on NOSCRIPT.
	args := make([]any, len(b.ticketArgs[0]))
	switch lane {
	case tasks.PriorityInteractive:
		copy(args, b.ticketArgs[0])
	case tasks.PriorityBatch:
		copy(args, b.ticketArgs[1])
	default:
		copy(args, b.ticketArgs[0])
		args[3] = b.lane(lane).tickets
	}
	args[4] = keys.Result(jobID)
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// Store writes ticket t into job jobID's record when TicketCmd could not (Cluster).
func (b *Backlog) Store(ctx context.Context, jobID string, t int64) error {
	if !b.cluster {
		return nil
	}
	if err := b.cfg.Redis.HSet(ctx, keys.Result(jobID), tasks.FieldTicket, t).Err(); err != nil {
		return fmt.Errorf("backlog: store ticket of %s: %w", jobID, err)
	}
	return nil
}

// Ticket takes a job's ticket in lane and stores it in its record, in its own round
// trip (a campaign job fed to its queue).
func (b *Backlog) Ticket(ctx context.Context, lane tasks.Priority, jobID string) (int64, error) {
	pipe := b.cfg.Redis.Pipeline()
	cmd := b.TicketCmd(ctx, pipe, lane, jobID)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("backlog: ticket of %s: %w", jobID, err)
	}
	t, _ := cmd.Int64()
	return t, b.Store(ctx, jobID, t)
}

// Served counts one job of lane gone from its queue for good.
func (b *Backlog) Served(ctx context.Context, lane tasks.Priority) error {
	if err := b.cfg.Redis.Incr(ctx, b.lane(lane).served).Err(); err != nil {
		return fmt.Errorf("backlog: served: %w", err)
	}
	return nil
}

// Estimate is a job's place in its queue.
type Estimate struct {
	// Position is the number of jobs ahead of it.
	Position int
	// StartAt is when it should reach the upstream; nil while the pipeline is paused.
	StartAt *time.Time
}

// Wait is the time from now to StartAt (0 when none or past).
func (e Estimate) Wait(now time.Time) time.Duration {
	if e.StartAt == nil {
		return 0
	}
	return max(0, e.StartAt.Sub(now))
}

// Estimate returns the place of the job holding ticket t in lane. A ticket of 0 (a
// job about to be submitted) is placed after every job queued now. One round trip.
func (b *Backlog) Estimate(ctx context.Context, lane tasks.Priority, t int64) (Estimate, error) {
	pipe := b.cfg.Redis.Pipeline()
	r := b.ReadCmds(ctx, pipe)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Estimate{}, fmt.Errorf("backlog: estimate: %w", err)
	}
	return r.Estimate(lane, t)
}

// Reads are the reads of an estimate queued on a pipeline (ReadCmds).
type Reads struct {
	b            *Backlog
	counts       *redis.SliceCmd
	paused       *redis.StringCmd
	pendI, pendB *redis.IntCmd
}

// ReadCmds queues on pipe the reads an estimate needs, so that a caller writing a
// job (producer.Submit) gets its estimate in the same round trip: queued after the
// job's ticket, they count it. The reads may serve every job of a pipeline when queued
// after all of them: each job's place comes from its own ticket, and the pending lists
// that bound it then also count the pipeline's own tasks (the bound only matters when
// the counters drifted).
func (b *Backlog) ReadCmds(ctx context.Context, pipe redis.Pipeliner) *Reads {
	// The commands of pipe.MGet, HGet and LLen, from arguments built once.
	args := make([]any, len(b.readArgs))
	copy(args, b.readArgs)
	r := &Reads{b: b,
		counts: redis.NewSliceCmd(ctx, args[0:5:5]...),
		paused: redis.NewStringCmd(ctx, args[5:8:8]...),
		pendI:  redis.NewIntCmd(ctx, args[8:10:10]...),
		pendB:  redis.NewIntCmd(ctx, args[10:12:12]...),
	}
	_ = pipe.Process(ctx, r.counts)
	_ = pipe.Process(ctx, r.paused)
	_ = pipe.Process(ctx, r.pendI)
	_ = pipe.Process(ctx, r.pendB)
	return r
}

// Estimate computes the place of the job holding ticket t in lane from reads whose
// pipeline has run.
func (r *Reads) Estimate(lane tasks.Priority, t int64) (Estimate, error) {
	if err := r.counts.Err(); err != nil {
		return Estimate{}, fmt.Errorf("backlog: estimate: %w", err)
	}
	var n [4]int64
	for i, v := range r.counts.Val() {
		if s, ok := v.(string); ok {
			n[i], _ = strconv.ParseInt(s, 10, 64) // INCR's counters
		}
	}
	return r.estimate(lane, t, n, r.paused.Val() == "1", r.pendI.Val(), r.pendB.Val()), nil
}

// estimate computes the estimate from values read: the counters n, the switch, and
// the lengths of the two pending lists.
func (r *Reads) estimate(lane tasks.Priority, t int64, n [4]int64, paused bool, pendI, pendB int64) Estimate {
	// The counters may drift (a job dropped without being counted); the jobs ahead
	// can never be more than the tasks pending in the queues ahead.
	limit := pendI
	if lane == tasks.PriorityBatch {
		limit += pendB
	}
	return r.b.estimate(lane, t, n, paused, limit)
}

// pendingKey is the list of asynq's pending tasks of the action's queue of lane.
func (b *Backlog) pendingKey(lane tasks.Priority) string {
	typ := tasks.TypeApplyToken
	if b.cfg.Action == faceid.ActionGet {
		typ = tasks.TypeGetResult
	}
	return asynqwire.PendingKey(tasks.Queue(typ, lane))
}

// estimate computes an Estimate from the counters n (interactive tickets, served,
// batch tickets, served).
// limit bounds the result (negative: no bound).
func (b *Backlog) estimate(lane tasks.Priority, t int64, n [4]int64, paused bool, limit int64) Estimate {
	intWaiting := max(0, n[0]-n[1])
	var ahead int64
	switch {
	case lane == tasks.PriorityBatch && t == 0:
		ahead = intWaiting + max(0, n[2]-n[3])
	case lane == tasks.PriorityBatch:
		ahead = intWaiting + max(0, t-n[3]-1)
	case t == 0:
		ahead = intWaiting
	default:
		ahead = max(0, t-n[1]-1)
	}
	if limit >= 0 {
		ahead = min(ahead, limit)
	}
	e := Estimate{Position: int(ahead)}
	if !paused {
		at := b.cfg.Now().Add(time.Duration(float64(ahead) / b.cfg.Rate * float64(time.Second))).UTC()
		e.StartAt = &at
	}
	return e
}

// Fill sets job's Position and EstimatedStartAt when it is not final and holds a
// ticket; it leaves other jobs alone.
func (b *Backlog) Fill(ctx context.Context, job *tasks.Job) error {
	if job.Status.Final() || job.Ticket == 0 {
		return nil
	}
	e, err := b.Estimate(ctx, job.Priority, job.Ticket)
	if err != nil {
		return err
	}
	job.Position, job.EstimatedStartAt = e.Position, e.StartAt
	return nil
}
