package campaign

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// ExportColumns are the columns of a CSV export of a token campaign. row_key joins
// each line back to its input row (a row without a row_key has "L<line>:<digest>").
var ExportColumns = []string{"row_key", "job_id", "status", "biz_token", "verification_url", "expires_at",
	"error_code", "error_message", "attempts", "created_at", "finished_at", "extra",
	"verification_status", "verification_error_code", "verification_similarity", "verification_fetched_at"}

// LinkExportColumns are the columns of a CSV export of a link campaign.
var LinkExportColumns = []string{"row_key", "link_id", "url", "link_expires_at", "revoked", "opened_at", "mints",
	"job_id", "status", "verification_url", "expires_at"}

// StatusExpired is the Status exported for a job whose record is gone (it was final
// for longer than the result TTL).
const StatusExpired tasks.Status = "expired"

// Export writes every job of campaign batchID to w, in import order, streaming: as
// NDJSON job objects (tasks.Job) or as CSV (ExportColumns). A link campaign exports
// its links instead (Link objects, or LinkExportColumns).
func (m *Manager) Export(ctx context.Context, batchID string, w io.Writer, format Format) error {
	in, err := m.Info(ctx, batchID)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	var enc *json.Encoder
	switch format {
	case FormatCSV:
		cw = csv.NewWriter(bw)
		cols := ExportColumns
		if in.Mode == ModeLinks {
			cols = LinkExportColumns
		}
		if err := cw.Write(cols); err != nil {
			return fmt.Errorf("campaign: export %s: %w", batchID, err)
		}
	case FormatNDJSON, "":
		enc = json.NewEncoder(bw)
	default:
		return fmt.Errorf("campaign: unknown export format %q", format)
	}
	emit := func(v any, rec []string) error {
		if cw != nil {
			return cw.Write(rec)
		}
		return enc.Encode(v)
	}
	if in.Mode == ModeLinks {
		err = m.exportLinks(ctx, batchID, emit)
	} else {
		err = m.exportJobs(ctx, batchID, emit)
	}
	if err != nil {
		return err
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("campaign: export %s: %w", batchID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("campaign: export %s: %w", batchID, err)
	}
	return nil
}

func jobCells(j *tasks.Job) []string {
	c := []string{j.RowKey, j.JobId, string(j.Status), j.BizToken, j.VerificationURL, "", "", "",
		strconv.Itoa(j.Attempts), "", "", j.Extra}
	if j.ExpiresAt != nil {
		c[5] = tasks.FormatTime(*j.ExpiresAt)
	}
	if j.Error != nil {
		c[6], c[7] = j.Error.Code, j.Error.Message
	}
	if !j.CreatedAt.IsZero() {
		c[9] = tasks.FormatTime(j.CreatedAt)
	}
	if j.FinishedAt != nil {
		c[10] = tasks.FormatTime(*j.FinishedAt)
	}
	return append(c, verificationCells(j.Verification)...)
}

func (m *Manager) exportJobs(ctx context.Context, batchID string, emit func(any, []string) error) error {
	err := m.eachChunk(ctx, keys.BatchJobs(batchID), func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, keys.Result(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, id := range ids {
			job, err := tasks.JobFromRecord(id, cmds[i].Val())
			if err != nil {
				job = &tasks.Job{JobId: id, Status: StatusExpired, BatchId: batchID}
			}
			if err := emit(job, jobCells(job)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: export %s: %w", batchID, err)
	}
	return nil
}

func (m *Manager) exportLinks(ctx context.Context, batchID string, emit func(any, []string) error) error {
	err := m.eachChunk(ctx, keys.BatchLinks(batchID), func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, keys.Link(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		links := make([]*Link, len(ids))
		jpipe := m.rdb.Pipeline()
		jcmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			h := cmds[i].Val()
			links[i] = m.linkFrom(id, h)
			if len(h) == 0 {
				links[i].BatchId = batchID
			}
			if jid := h[lJobID]; jid != "" {
				jcmds[i] = jpipe.HGetAll(ctx, keys.Result(jid))
			}
		}
		if _, err := jpipe.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		for i, l := range links {
			if jcmds[i] != nil {
				if job, err := tasks.JobFromRecord(cmds[i].Val()[lJobID], jcmds[i].Val()); err == nil {
					l.Job = job
				}
			}
			c := []string{l.RowKey, l.LinkId, l.URL, tasks.FormatTime(l.ExpiresAt), strconv.FormatBool(l.Revoked), "",
				strconv.Itoa(l.Mints), "", "", "", ""}
			if l.OpenedAt != nil {
				c[5] = tasks.FormatTime(*l.OpenedAt)
			}
			if j := l.Job; j != nil {
				c[7], c[8], c[9] = j.JobId, string(j.Status), j.VerificationURL
				if j.ExpiresAt != nil {
					c[10] = tasks.FormatTime(*j.ExpiresAt)
				}
			}
			if err := emit(l, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: export %s: %w", batchID, err)
	}
	return nil
}
