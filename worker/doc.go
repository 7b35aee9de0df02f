// Package worker is the drain side of faceidq: it runs the tasks of every upstream
// action (one file each, action_*.go) through one pipeline: validate, take a slot of
// the action's own global budget in the job's lane, call, classify the outcome with
// faceid's code table, and record it. Each action has its own asynq servers over its
// own queues, and Apply a server per lane (servers.go), so one action's backlog
// never holds another's tasks, nor a campaign's batch tasks a person's slot. With
// several credential sets (Budget), a job runs on the set with the soonest slot among
// those serving its region, and its result is fetched with the set that minted its
// BizToken.
//
// Interactive tasks are served before batch tasks, at dequeue and at the limiter. A
// deferral (rate limited, paused, no slot in time, shutting down) spends no attempt;
// an account-level error fails no job and pauses the pipeline instead. Recording is
// idempotent, so a task run twice (after a crash) keeps its first outcome. Webhook
// deliveries run on a server of their own, so a slow receiver never holds an
// upstream call.
package worker
