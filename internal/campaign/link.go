package campaign

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// scanLinks counts the links of a link-mode campaign by state.
func (m *Manager) scanLinks(ctx context.Context, batchID string, p *Progress, now time.Time) error {
	for _, k := range []string{"unopened", "opened", "revoked", "expired"} {
		p.Counts[k] = 0
	}
	nowS := tasks.FormatTime(now)
	list := keys.BatchLinks(batchID)
	for start := int64(0); ; start += scanChunk {
		ids, err := m.rdb.LRange(ctx, list, start, start+scanChunk-1).Result()
		if err != nil {
			return fmt.Errorf("campaign: scan %s: %w", list, err)
		}
		if len(ids) == 0 {
			return nil
		}
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HMGet(ctx, keys.Link(id), lRevoked, lExpiresAt, lOpenedAt)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("campaign: scan %s: %w", list, err)
		}
		for i := range ids {
			v := cmds[i].Val()
			rev, _ := v[0].(string)
			exp, _ := v[1].(string)
			opened, _ := v[2].(string)
			switch {
			case rev != "":
				p.Counts["revoked"]++
			case exp == "" || exp <= nowS:
				p.Counts["expired"]++
			case opened != "":
				p.Counts["opened"]++
			default:
				p.Counts["unopened"]++
			}
		}
		if len(ids) < scanChunk {
			return nil
		}
	}
}
