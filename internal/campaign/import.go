package campaign

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// ImportOptions configure one import.
type ImportOptions struct {
	// BatchID imports into this existing campaign.
	BatchID string
	// Name names the campaign. When a campaign of that name exists, the rows are
	// imported into it (this is how an interrupted import is resumed without
	// duplicates). Defaults to: ImportFile, the file's base name and a digest of its
	// content ("users.csv@3f2a…"); Import, the new campaign's BatchId.
	Name string
	// Format of the input. Defaults to: ImportFile, by extension (.csv is CSV,
	// anything else NDJSON); Import, NDJSON.
	Format Format
	// Mode of a new campaign. Defaults to ModeTokens.
	Mode Mode
	// Weight is the campaign's share of the batch lane (1 to MaxWeight; see Feeder).
	// Defaults to 0: an existing campaign keeps its weight, a new one gets
	// DefaultWeight.
	Weight int
	// LinkTTL is how long the start links of a link-mode import stay valid. Defaults
	// to Config.LinkTTL (30 days).
	LinkTTL time.Duration
	// ChunkSize is the number of rows written per round trip. Defaults to 500.
	ChunkSize int
	// KeepRejected is how many rejections the summary keeps (all are counted, and
	// all are passed to OnReject). Defaults to 1000; negative keeps all.
	KeepRejected int
	// OnProgress is called after each chunk, from the importing goroutine.
	OnProgress func(ImportProgress)
	// OnReject is called for each rejected row, from the importing goroutine.
	OnReject func(Rejection)

	// file is the absolute path of the imported file (ImportFile only): images are
	// then loaded from it when the job is fed, not stored at import.
	file string
}

// ImportProgress is an import's progress so far.
type ImportProgress struct {
	Lines    int   // rows read (good and bad)
	Accepted int   // good rows (Created + Existing)
	Created  int   // jobs (or links) created
	Rejected int   // bad rows
	Bytes    int64 // input bytes read
}

// Rejection is one bad row: its line number (the first line of the row, counting the
// CSV header as line 1) and why it was rejected.
type Rejection struct {
	Line  int            `json:"Line"`
	Error tasks.JobError `json:"Error"`
}

// ImportSummary is the outcome of an import.
type ImportSummary struct {
	BatchId string `json:"BatchId"`
	Name    string `json:"Name"`
	Mode    Mode   `json:"Mode"`
	// Accepted is the number of good rows: those that created a job or a link, and
	// those found already imported (Existing).
	Accepted int `json:"Accepted"`
	// Created is the number of jobs (or links) this import created.
	Created int `json:"Created"`
	// Existing is the number of good rows whose row key the campaign had already.
	Existing int `json:"Existing"`
	// Rejected lists the bad rows (at most ImportOptions.KeepRejected of them).
	Rejected []Rejection `json:"Rejected"`
	// RejectedCount is the number of bad rows.
	RejectedCount int `json:"RejectedCount"`
	// Lines is the number of rows read.
	Lines int `json:"Lines"`
}

// ImportFile imports a CSV or NDJSON file (see Import). Images (image_path, and
// image_base64 or CompareImageBase64 within the file) stay in the file until the job
// is fed: the campaign is then marked as fed by its importing process, which must run
// a Feeder for it (FeederConfig.Batch) until it is done, or by workers that see the
// same files (FeederConfig.LoadFiles).
func (m *Manager) ImportFile(ctx context.Context, path string, opts ImportOptions) (*ImportSummary, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("campaign: import %s: %w", path, err)
	}
	if opts.Format == "" {
		opts.Format = FormatNDJSON
		if strings.EqualFold(filepath.Ext(abs), ".csv") {
			opts.Format = FormatCSV
		}
	}
	if opts.Name == "" && opts.BatchID == "" {
		sum, err := fileDigest(abs)
		if err != nil {
			return nil, err
		}
		opts.Name = filepath.Base(abs) + "@" + sum[:16]
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("campaign: import: %w", err)
	}
	defer f.Close()
	opts.file = abs
	return m.Import(ctx, f, opts)
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("campaign: import: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("campaign: digest %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Import reads rows from r and adds them to a campaign: one queued job per good row
// (ModeTokens; the Feeder moves them to the batch queue) or one start link per good
// row (ModeLinks). Bad rows are reported with their line number and the reason, and
// never stop the good ones. Rows are written in pipelined chunks; memory does not grow
// with the input.
//
// Each row has a row key (its row_key/RowKey, or "L<line>:<digest of the row>"); a row
// key the campaign already has creates nothing, so running the same import again
// after a crash or an interrupt creates no duplicate.
//
// Images sent inline to Import (not ImportFile) are stored in Redis at import, as by
// the producer; use ImportFile for large image campaigns.
//
// Errors: ErrHeader (CSV), ErrCanceled, ErrModeMismatch, ErrNotFound (BatchID), a
// read error, a wrapped Redis error, or a *producer.ReplicationError (a chunk not
// confirmed by the replicas); the summary then tells how far it got, and the same
// import run again goes on without duplicates.
func (m *Manager) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*ImportSummary, error) {
	if opts.Mode == "" {
		opts.Mode = ModeTokens
	}
	if opts.Mode != ModeTokens && opts.Mode != ModeLinks {
		return nil, fmt.Errorf("campaign: unknown mode %q", opts.Mode)
	}
	if opts.Format == "" {
		opts.Format = FormatNDJSON
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 500
	}
	if opts.KeepRejected == 0 {
		opts.KeepRejected = 1000
	}
	if opts.LinkTTL <= 0 {
		opts.LinkTTL = m.cfg.LinkTTL
	}
	if opts.BatchID != "" && !tasks.ValidID("b_", opts.BatchID) {
		return nil, ErrNotFound
	}
	var rr rowReader
	cr := &countingReader{r: r}
	switch opts.Format {
	case FormatNDJSON:
		rr = newNDJSONReader(cr)
	case FormatCSV:
		c, err := newCSVReader(cr)
		if err != nil {
			return nil, err
		}
		rr = c
	default:
		return nil, fmt.Errorf("campaign: unknown format %q", opts.Format)
	}
	batchID, info, err := m.open(ctx, opts.BatchID, opts.Name, opts.Mode, "", opts.Weight)
	if err != nil {
		return nil, err
	}
	token := tasks.NewJobID() // any unguessable value
	if err := m.importLock(ctx, batchID, token); err != nil {
		return nil, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlock.Run(uctx, m.rdb, []string{keys.BatchImportLock(batchID)}, token).Err()
	}()
	im := &importer{m: m, opts: opts, batchID: batchID, sum: &ImportSummary{BatchId: batchID, Name: info.Name, Mode: info.Mode, Rejected: []Rejection{}}}
	chunk := make([]goodRow, 0, opts.ChunkSize)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := m.importLock(ctx, batchID, token); err != nil {
			return err
		}
		last, err := im.write(ctx, chunk)
		if err == nil {
			// With producer.Config.AckReplicas, the chunk is on the replicas before
			// the import goes on (and before it reports the chunk): checked by the
			// row key of its last new row, set by its last MULTI.
			var w []producer.Written
			if last.id != "" {
				w = append(w, producer.Written{Key: keys.BatchRows(batchID), Field: last.rowKey, Value: last.id})
			}
			err = m.producer.Ack(ctx, w...)
		}
		clear(chunk)
		chunk = chunk[:0]
		if err != nil {
			return err
		}
		if opts.OnProgress != nil {
			s := im.sum
			opts.OnProgress(ImportProgress{Lines: s.Lines, Accepted: s.Accepted, Created: s.Created, Rejected: s.RejectedCount, Bytes: cr.n})
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return im.sum, fmt.Errorf("campaign: import into %s: %w", batchID, err)
		}
		rw, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return im.sum, ferr
			}
			return im.sum, err
		}
		im.sum.Lines++
		var d *producer.Draft
		if rw.err == nil {
			d, rw.err = m.prepareRow(ctx, rw, opts)
		}
		if rw.err != nil {
			im.reject(rw)
			continue
		}
		chunk = append(chunk, goodRow{rw, d})
		if len(chunk) == cap(chunk) {
			if err := flush(); err != nil {
				return im.sum, err
			}
		}
	}
	if err := flush(); err != nil {
		return im.sum, err
	}
	return im.sum, nil
}

// importLockTTL is how long the import lock of a campaign survives an import that died.
const importLockTTL = 30 * time.Second

// importLock takes, or renews, the import lock of a campaign.
func (m *Manager) importLock(ctx context.Context, batchID, token string) error {
	ok, err := lock.Run(ctx, m.rdb, []string{keys.BatchImportLock(batchID)}, token, importLockTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("campaign: import into %s: lock: %w", batchID, err)
	}
	if ok != 1 {
		return ErrImportRunning
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// goodRow is a row the producer validated.
type goodRow struct {
	*row
	draft *producer.Draft
}

// prepareRow validates a row with the producer (as a POST /v1/tokens body), and its
// image_path.
func (m *Manager) prepareRow(ctx context.Context, rw *row, opts ImportOptions) (*producer.Draft, error) {
	d, err := m.producer.Validate(ctx, &rw.req)
	if err != nil {
		return nil, err
	}
	if err := checkImagePath(rw, d, opts); err != nil {
		return nil, err
	}
	return d, nil
}

// checkImagePath checks a row's image_path and makes it absolute.
func checkImagePath(rw *row, d *producer.Draft, opts ImportOptions) error {
	if rw.imagePath != "" {
		if d.Image() != "" {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "image_path",
				Reason: "give image_path or image_base64, not both"}
		}
		if opts.file == "" {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "image_path",
				Reason: "is accepted by file imports only (faceidq enqueue --file); send CompareImageBase64 instead"}
		}
		p := rw.imagePath
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(opts.file), p)
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "image_path", Reason: "is not a readable file"}
		}
		if st.Size() == 0 || base64.StdEncoding.EncodedLen(int(st.Size())) > faceid.MaxImageBase64Len {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "image_path",
				Reason: fmt.Sprintf("is %d bytes; a non-empty image of at most %d bytes (8 MB of base64) is required", st.Size(), faceid.MaxImageBase64Len/4*3)}
		}
		rw.imagePath = p
	}
	return nil
}

type importer struct {
	m       *Manager
	opts    ImportOptions
	batchID string
	sum     *ImportSummary
	local   bool // the campaign was marked as fed by its importing process
}

func (im *importer) reject(rw *row) {
	rej := Rejection{Line: rw.line, Error: tasks.JobError{Code: faceid.CodeInvalidParameter, Message: rw.err.Error()}}
	var fe *faceid.FieldError
	if errors.As(rw.err, &fe) {
		rej.Error.Code = fe.Code
	}
	im.sum.RejectedCount++
	if im.opts.KeepRejected < 0 || len(im.sum.Rejected) < im.opts.KeepRejected {
		im.sum.Rejected = append(im.sum.Rejected, rej)
	}
	if im.opts.OnReject != nil {
		im.opts.OnReject(rej)
	}
}

// pendingClaim marks a row key claimed by an import that has not written its job yet.
const pendingClaim = "?"

// write stores a chunk of good rows, in an order that a crash at any point leaves
// safe to import again (no row lost, no job made twice):
//
//  1. HSETNX row key -> "?"+new id in keys.BatchRows: the rows that win are new;
//     the losers whose value still starts with "?" were claimed by an import that
//     died before step 3: they are finished with the id they claimed;
//  2. the job records (or links), in their own pipeline: they are keyed by JobId
//     (or LinkId), not by campaign, so they cannot join the campaign's MULTI; a record
//     written twice for one claimed id is the same job;
//  3. one MULTI on the campaign's keys (one slot): the list of the campaign, the row
//     keys set to their final value, the image sources and the campaign's Total;
//  4. the campaign is (again) marked active for the feeder, after the MULTI, so that
//     a feeder leaving the active set meanwhile sees the new jobs (Feeder.feedBatch).
func (im *importer) write(ctx context.Context, rows []goodRow) (last lastRow, err error) {
	m := im.m
	rowsKey := keys.BatchRows(im.batchID)
	newID := tasks.NewJobID
	if im.opts.Mode == ModeLinks {
		newID = tasks.NewLinkID
	}
	ids := make([]string, len(rows))
	pipe := m.rdb.Pipeline()
	claims := make([]*redis.BoolCmd, len(rows))
	for i, rw := range rows {
		ids[i] = newID()
		claims[i] = pipe.HSetNX(ctx, rowsKey, rw.rowKey, pendingClaim+ids[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return last, fmt.Errorf("campaign: import into %s: claim rows: %w", im.batchID, err)
	}
	var lost []int
	fresh := make([]bool, len(rows))
	for i := range rows {
		fresh[i] = claims[i].Val()
		if !fresh[i] {
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		vals, err := m.rdb.HMGet(ctx, rowsKey, rowKeys(rows, lost)...).Result()
		if err != nil {
			return last, fmt.Errorf("campaign: import into %s: read rows: %w", im.batchID, err)
		}
		claimedHere := make(map[string]bool, len(rows))
		for i := range rows {
			if fresh[i] {
				claimedHere[ids[i]] = true
			}
		}
		for j, i := range lost {
			s, _ := vals[j].(string)
			// A pending claim of an import that died is completed with its id; one
			// made by this very chunk is a row key repeated in the input.
			if id, ok := strings.CutPrefix(s, pendingClaim); ok && !claimedHere[id] {
				ids[i], fresh[i] = id, true
				claimedHere[id] = true
			}
		}
	}
	recs := m.rdb.Pipeline()
	tx := m.rdb.TxPipeline()
	var created []string
	deferred := false
	for i, rw := range rows {
		if !fresh[i] {
			im.sum.Existing++
			continue
		}
		var err error
		if im.opts.Mode == ModeLinks {
			err = im.linkCmds(ctx, recs, ids[i], rw)
		} else {
			var d bool
			d, err = im.jobCmds(ctx, recs, tx, ids[i], rw)
			deferred = deferred || d
		}
		var fe *faceid.FieldError
		if errors.As(err, &fe) {
			im.reject(&row{line: rw.line, err: err})
			continue
		}
		if err != nil {
			return last, err
		}
		tx.HSet(ctx, rowsKey, rw.rowKey, ids[i])
		created = append(created, ids[i])
		last = lastRow{rowKey: rw.rowKey, id: ids[i]}
	}
	if len(created) > 0 {
		if _, err := recs.Exec(ctx); err != nil {
			return last, fmt.Errorf("campaign: import into %s: write %d records: %w", im.batchID, len(created), err)
		}
		list := keys.BatchJobs(im.batchID)
		if im.opts.Mode == ModeLinks {
			list = keys.BatchLinks(im.batchID)
		}
		vals := make([]any, len(created))
		for i, id := range created {
			vals[i] = id
		}
		tx.RPush(ctx, list, vals...)
		tx.HIncrBy(ctx, keys.Batch(im.batchID), fTotal, int64(len(created)))
		if deferred && !im.local {
			tx.HSet(ctx, keys.Batch(im.batchID), fFeeder, "local")
		}
		if _, err := tx.Exec(ctx); err != nil {
			return last, fmt.Errorf("campaign: import into %s: write %d rows: %w", im.batchID, len(created), err)
		}
		im.local = im.local || deferred
	}
	if im.opts.Mode == ModeTokens {
		// Also when every row existed: an import that died after step 3 is resumed.
		if err := m.rdb.SAdd(ctx, keys.BatchesActive, im.batchID).Err(); err != nil {
			return last, fmt.Errorf("campaign: import into %s: %w", im.batchID, err)
		}
	}
	im.sum.Created += len(created)
	im.sum.Accepted = im.sum.Created + im.sum.Existing
	return last, nil
}

// lastRow is the last row a chunk created (none: empty).
type lastRow struct{ rowKey, id string }

func rowKeys(rows []goodRow, idx []int) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = rows[i].rowKey
	}
	return out
}

// imageSource is where the feeder finds a job's image: "path:<file>" (raw image
// bytes), or "row:<format>:<column>:<offset>:<length>:<file>" (the image_base64 or
// CompareImageBase64 of the row at those bytes of the imported file).
func (im *importer) imageSource(rw *row) string {
	if rw.imagePath != "" {
		return "path:" + rw.imagePath
	}
	if rw.req.CompareImageBase64 != nil && im.opts.file != "" {
		return fmt.Sprintf("row:%s:%d:%d:%d:%s", im.opts.Format, rw.imageCol, rw.off, rw.n, im.opts.file)
	}
	return ""
}

// jobCmds queues the record of a row's job on recs (through the producer) and its
// image source on tx; deferred reports that its image stays in the file until the
// job is fed.
func (im *importer) jobCmds(ctx context.Context, recs, tx redis.Pipeliner, jobID string, rw goodRow) (deferred bool, err error) {
	src := im.imageSource(rw.row)
	// An image sent inline to Import (over HTTP) is stored now, as by Submit.
	err = im.m.producer.WriteDeferred(ctx, recs, jobID, rw.draft,
		producer.Options{BatchID: im.batchID, RowKey: rw.rowKey}, src != "")
	if err != nil {
		return false, fmt.Errorf("campaign: import into %s: %w", im.batchID, err)
	}
	if src != "" {
		tx.HSet(ctx, keys.BatchImages(im.batchID), jobID, src)
	}
	return src != "", nil
}

// Link hash fields (keys.Link).
const (
	lBatchID   = "BatchId"
	lRowKey    = "RowKey"
	lRequest   = "Request"
	lImage     = "Image"
	lExpiresAt = "ExpiresAt"
	lCreatedAt = "CreatedAt"
	lRevoked   = "Revoked"
	lOpenedAt  = "OpenedAt"
	lGen       = "Gen"
	lJobID     = "JobId"
	lMints     = "Mints"
)

// linkCmds queues the commands creating a row's start link. The link keeps the
// request, and its image if any (link mode keeps images in Redis for the life of the
// link: the person may open it at any time, on any API process).
func (im *importer) linkCmds(ctx context.Context, tx redis.Pipeliner, linkID string, rw goodRow) error {
	m := im.m
	req := rw.draft.Request()
	img := ""
	if req.CompareImageBase64 != nil {
		img = *req.CompareImageBase64
	} else if rw.imagePath != "" {
		b, err := os.ReadFile(rw.imagePath)
		if err != nil {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "image_path", Reason: "is not a readable file"}
		}
		img = base64.StdEncoding.EncodeToString(b)
	}
	req.CompareImageBase64 = nil
	req.Priority = tasks.PriorityInteractive
	enc, err := json.Marshal(&req)
	if err != nil {
		return fmt.Errorf("campaign: encode link request: %w", err)
	}
	now := m.cfg.Now().UTC()
	exp := now.Add(im.opts.LinkTTL)
	fields := []any{lBatchID, im.batchID, lRowKey, rw.rowKey, lRequest, enc,
		lExpiresAt, tasks.FormatTime(exp), lCreatedAt, tasks.FormatTime(now), lGen, 0, lMints, 0}
	if img != "" {
		fields = append(fields, lImage, img)
	}
	tx.HSet(ctx, keys.Link(linkID), fields...)
	// Kept a result TTL past its expiry, so that exports still show it.
	tx.ExpireAt(ctx, keys.Link(linkID), exp.Add(m.results.TTL()))
	return nil
}
