package campaign

import (
	"context"

	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// MintWithProducer returns the MintFunc that submits a link's token job through p, at
// interactive priority, with the link's generation as its Idempotency-Key (so that
// concurrent opens of one link share one job).
func MintWithProducer(p *producer.Producer) MintFunc {
	return func(ctx context.Context, req *tasks.TokenRequest, idempotencyKey string) (*tasks.Job, error) {
		r := *req
		r.Priority = tasks.PriorityInteractive
		job, _, err := p.Submit(ctx, &r, producer.Options{IdempotencyKey: idempotencyKey})
		return job, err
	}
}
