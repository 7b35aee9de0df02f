package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// Output pacing of the campaign commands.
const (
	// maxRejectionsShown is how many bad lines an import prints (all are counted).
	maxRejectionsShown = 20
	// watchInterval is how often a campaign's progress is read.
	watchInterval = time.Second
	// lineInterval is how often progress is printed as a plain line when stderr is
	// not a terminal (the last one is always printed).
	lineInterval = 10 * time.Second
	// barWidth is the width of the progress bar in cells.
	barWidth = 30
)

// errNoCampaign is the error of a campaign name or id that does not exist.
func errNoCampaign(arg string) error {
	return fmt.Errorf("no campaign named or numbered %q (see faceidq batch list)", clipArg(arg))
}

// lookupCampaign returns the BatchId of a campaign given by name or BatchId.
func lookupCampaign(ctx context.Context, m *campaign.Manager, arg string) (string, error) {
	id, err := m.Lookup(ctx, arg)
	if errors.Is(err, campaign.ErrNotFound) {
		return "", errNoCampaign(arg)
	}
	return id, err
}

// parseWeight reads a campaign weight: a whole number from 1 to campaign.MaxWeight.
// name is what the error names (--weight, or the argument of batch weight).
func parseWeight(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > campaign.MaxWeight {
		return 0, usagef("%s: %q is not a whole number from 1 to %d", name, clipArg(v), campaign.MaxWeight)
	}
	return n, nil
}

// runEnqueueFile is `faceidq enqueue --file`: import the file as a campaign, then
// feed it from this process and draw its progress until it is done.
func runEnqueueFile(ctx context.Context, e *env, o *enqueueOpts) error {
	for _, opt := range []*option{o.redirectURL, o.extra, o.ruleID, o.priority, o.callback, o.conf, o.image, o.idemKey, o.wait} {
		if opt.set() {
			return usagef("--%s is for one job: with --file every row carries its own fields (see README, Campaigns)", opt.flag)
		}
	}
	opts := campaign.ImportOptions{KeepRejected: maxRejectionsShown}
	if *o.links {
		opts.Mode = campaign.ModeLinks
	}
	if o.linkTTL.set() {
		if !*o.links {
			return usagef("--link-ttl needs --links")
		}
		d, err := o.linkTTL.duration()
		if err != nil {
			return err
		}
		opts.LinkTTL = d
	}
	if o.weight.set() {
		w, err := parseWeight(o.weight.name(), o.weight.value)
		if err != nil {
			return err
		}
		opts.Weight = w
	}
	if o.batch.set() {
		if tasks.ValidID("b_", o.batch.value) {
			opts.BatchID = o.batch.value
		} else {
			opts.Name = o.batch.value
		}
	}
	if st, err := os.Stat(o.file.value); err != nil {
		return usagef("--file: %v", err)
	} else if st.IsDir() {
		return usagef("--file: %s is a directory", o.file.value)
	}
	log, err := o.log.logger(e.stderr)
	if err != nil {
		return err
	}
	ttl, err := o.resultTTL.duration()
	if err != nil {
		return err
	}
	check, err := callbackCheck(o.webhookSecret, o.allow)
	if err != nil {
		return err
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	p, err := producer.New(producer.Config{Redis: rdb, DefaultRegion: o.region.value, ResultTTL: ttl, CheckCallbackURL: check})
	if err != nil {
		return usagef("%v", err)
	}
	defer p.Close()
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: p})
	if err != nil {
		return usagef("%v", err)
	}

	tty := isTerminal(e.stderr)
	shown := 0
	var lastDraw time.Time
	name := filepath.Base(o.file.value)
	opts.OnReject = func(r campaign.Rejection) {
		if shown++; shown > maxRejectionsShown {
			return
		}
		if tty {
			fmt.Fprint(e.stderr, "\r\x1b[K")
		}
		fmt.Fprintf(e.stderr, "%s:%d: rejected: %s: %s\n", name, r.Line, r.Error.Code, oneLine(r.Error.Message))
	}
	opts.OnProgress = func(p campaign.ImportProgress) {
		every := lineInterval
		if tty {
			every = 100 * time.Millisecond
		}
		if time.Since(lastDraw) < every {
			return
		}
		lastDraw = time.Now()
		line := fmt.Sprintf("importing %s: %d lines, %d accepted (%d new), %d rejected, %.1f MB read",
			name, p.Lines, p.Accepted, p.Created, p.Rejected, float64(p.Bytes)/1e6)
		if tty {
			fmt.Fprint(e.stderr, "\r\x1b[K"+line)
		} else {
			fmt.Fprintln(e.stderr, line)
		}
	}
	sum, err := m.ImportFile(ctx, o.file.value, opts)
	if tty && !lastDraw.IsZero() {
		fmt.Fprint(e.stderr, "\r\x1b[K")
	}
	var fe *faceid.FieldError
	switch {
	case errors.As(err, &fe):
		return usagef("--batch: %s", fe.Error())
	case errors.Is(err, campaign.ErrHeader):
		return usagef("--file: %v", err)
	case err != nil && ctx.Err() != nil:
		return errors.New("interrupted during the import: run the same command again to go on (rows already imported are not imported twice)")
	case errors.Is(err, campaign.ErrImportRunning):
		return errors.New("another import into this campaign is running (or died less than 30 s ago): wait for it, or try again in a minute")
	case err != nil:
		return err
	}
	if sum.RejectedCount > maxRejectionsShown {
		fmt.Fprintf(e.stderr, "… and %d more rejected lines not shown (%d in all)\n", sum.RejectedCount-maxRejectionsShown, sum.RejectedCount)
	}
	fmt.Fprintf(e.stderr, "imported %s into campaign %q (%s): %d lines, %d accepted (%d new, %d already imported), %d rejected\n",
		name, sum.Name, sum.BatchId, sum.Lines, sum.Accepted, sum.Created, sum.Existing, sum.RejectedCount)
	if err := printJSON(e.stdout, sum); err != nil {
		return err
	}
	if sum.Mode == campaign.ModeLinks {
		fmt.Fprintf(e.stderr, "start links made; export them with: faceidq export --batch %s --format csv --out links.csv\n", sum.BatchId)
		return nil
	}
	info, err := m.Info(ctx, sum.BatchId)
	if err != nil {
		return err
	}
	if *o.noWait {
		if !info.LocalImages {
			fmt.Fprintf(e.stderr, "the workers feed the campaign; follow it with: faceidq batch status --watch %s\n", sum.BatchId)
			return nil
		}
		fmt.Fprintln(e.stderr, "--no-wait ignored: images of this campaign are in local files, which only this command reads; it feeds them until the campaign is done (Ctrl-C stops; the same command goes on later)")
	}
	if info.Total == 0 {
		fmt.Fprintln(e.stderr, "the campaign has no jobs: nothing to feed")
		return nil
	}
	if info.State != campaign.StateActive {
		fmt.Fprintf(e.stderr, "campaign %s is %s: not feeding it (faceidq batch resume %s)\n", sum.BatchId, info.State, sum.BatchId)
		return nil
	}

	// Feed the campaign from here (its images may be in local files) until done.
	stop, err := startFeeder(log, rdb, campaign.FeederConfig{Redis: rdb, Producer: p, Batch: sum.BatchId})
	if err != nil {
		return err
	}
	last, err := watch(ctx, m, sum.BatchId, e.stderr)
	stop()
	if ctx.Err() != nil {
		if info.LocalImages {
			return errors.New("interrupted: the jobs whose images are in the file are fed only while this command runs; run the same command again to go on (nothing is imported or fed twice)")
		}
		fmt.Fprintf(e.stderr, "stopped watching; the workers go on feeding campaign %s (faceidq batch status --watch %s)\n", sum.BatchId, sum.BatchId)
		return nil
	}
	if err != nil {
		return err
	}
	if n := last.Counts[string(tasks.StatusFailed)]; n > 0 {
		fmt.Fprintf(e.stderr, "%d jobs failed: faceidq batch rerun %s runs them again; faceidq export --batch %s lists them\n", n, sum.BatchId, sum.BatchId)
	}
	return nil
}

// callbackCheck returns the CallbackURL check of the producer: nil (callbacks
// refused) without a webhook secret.
func callbackCheck(secret, allow *option) (func(context.Context, string) error, error) {
	secrets, err := webhook.ParseSecrets(secret.value)
	if err != nil {
		return nil, usagef("%s: %v", secret.name(), err)
	}
	nets, err := webhook.ParseAllow(allow.value)
	if err != nil {
		return nil, usagef("%s: %v", allow.name(), err)
	}
	if len(secrets) == 0 {
		return nil, nil
	}
	policy := webhook.Policy{Allow: nets}
	return func(ctx context.Context, url string) error { return webhook.ValidateURL(ctx, url, policy) }, nil
}

// watch draws campaign id's progress on w until it is done (or canceled and idle),
// or ctx ends: a bar redrawn in place on a terminal, else a plain line every
// lineInterval and at the end. It returns the last progress read.
func watch(ctx context.Context, m *campaign.Manager, id string, w io.Writer) (*campaign.Progress, error) {
	tty := isTerminal(w)
	var last *campaign.Progress
	var printed time.Time
	lastPrinted := false
	err := m.Watch(ctx, id, watchInterval, func(p *campaign.Progress) {
		last, lastPrinted = p, false
		switch {
		case tty:
			fmt.Fprint(w, "\r\x1b[K"+p.Bar(barWidth))
			lastPrinted = true
		case time.Since(printed) >= lineInterval:
			fmt.Fprintln(w, p.Line())
			printed, lastPrinted = time.Now(), true
		}
	})
	switch {
	case tty && last != nil:
		fmt.Fprintln(w)
	case last != nil && !lastPrinted:
		fmt.Fprintln(w, last.Line())
	}
	if errors.Is(err, campaign.ErrNotFound) {
		return last, errNoCampaign(id)
	}
	return last, err
}

// batchOpts are the options of `faceidq batch`.
type batchOpts struct {
	redisURL        *option
	watch, canceled *bool
}

func batchFlags() (*flags, *batchOpts) {
	f := newFlags("batch")
	addLog(f)
	o := &batchOpts{}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.watch = f.boolFlag("watch", "status: draw the progress until the campaign is done (Ctrl-C stops watching)")
	o.canceled = f.boolFlag("canceled", "rerun: also re-run the canceled jobs")
	return f, o
}

// batchSubcommands are the subcommands of `faceidq batch` and how many arguments
// follow them: none, a campaign (NAME|ID), or a campaign and a weight.
var batchSubcommands = map[string]int{"status": 1, "list": 0, "pause": 1, "resume": 1, "weight": 2, "cancel": 1, "rerun": 1}

func runBatch(ctx context.Context, e *env, args []string) error {
	f, o := batchFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want a subcommand: status, list, pause, resume, weight, cancel or rerun")
	}
	sub := pos[0]
	nargs, ok := batchSubcommands[sub]
	switch {
	case !ok:
		return usagef("unknown subcommand %q: want status, list, pause, resume, weight, cancel or rerun", clipArg(sub))
	case nargs == 0 && len(pos) != 1:
		return usagef("unexpected argument %q", clipArg(pos[1]))
	case nargs == 1 && len(pos) != 2:
		return usagef("want one campaign name or BatchId (faceidq batch %s NAME|ID)", sub)
	case nargs == 2 && len(pos) != 3:
		return usagef("want a campaign name or BatchId and a weight from 1 to %d (faceidq batch %s NAME|ID WEIGHT)", campaign.MaxWeight, sub)
	case *o.watch && sub != "status":
		return usagef("--watch is for batch status")
	case *o.canceled && sub != "rerun":
		return usagef("--canceled is for batch rerun")
	}
	weight := 0
	if sub == "weight" {
		if weight, err = parseWeight("weight", pos[2]); err != nil {
			return err
		}
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		return err
	}
	defer p.Close()
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: p})
	if err != nil {
		return err
	}
	if sub == "list" {
		all, err := m.List(ctx)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, all)
	}
	id, err := lookupCampaign(ctx, m, pos[1])
	if err != nil {
		return err
	}
	var v any
	switch sub {
	case "status":
		if !*o.watch {
			v, err = m.Status(ctx, id)
			break
		}
		last, werr := watch(ctx, m, id, e.stderr)
		if ctx.Err() != nil {
			werr = nil // Ctrl-C stops watching
		}
		if last == nil || werr != nil {
			return werr
		}
		v = last
	case "pause":
		v, err = m.Pause(ctx, id)
	case "resume":
		v, err = m.Resume(ctx, id)
	case "weight":
		v, err = m.SetWeight(ctx, id, weight)
	case "cancel":
		v, err = m.Cancel(ctx, id)
	case "rerun":
		v, err = m.Rerun(ctx, id, campaign.RerunOptions{IncludeCanceled: *o.canceled})
	}
	if err != nil {
		return err
	}
	return printJSON(e.stdout, v)
}

// exportOpts are the options of `faceidq export`.
type exportOpts struct {
	redisURL, batch, format, out, publicURL *option
}

func exportFlags() (*flags, *exportOpts) {
	f := newFlags("export")
	addLog(f)
	o := &exportOpts{}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.batch = f.opt("batch", "", "", "the campaign: its name or BatchId (required)")
	o.format = f.opt("format", "", "", "csv or ndjson (default csv when --out ends in .csv, else ndjson)")
	o.out = f.opt("out", "", "", "write to this file, replaced only once complete (default stdout)")
	o.publicURL = f.opt("public-url", "FACEIDQ_PUBLIC_URL", "", "base URL of start links, for link campaigns (default none: LinkIds only)")
	return f, o
}

func runExport(ctx context.Context, e *env, args []string) error {
	f, o := exportFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (the campaign goes in --batch)", clipArg(pos[0]))
	}
	if !o.batch.set() || o.batch.value == "" {
		return usagef("--batch is required: the campaign's name or BatchId")
	}
	format := campaign.FormatNDJSON
	switch strings.ToLower(o.format.value) {
	case "":
		if strings.EqualFold(filepath.Ext(o.out.value), ".csv") {
			format = campaign.FormatCSV
		}
	case "ndjson":
	case "csv":
		format = campaign.FormatCSV
	default:
		return o.format.bad("not csv or ndjson")
	}
	cfg := campaign.Config{}
	if o.publicURL.set() {
		if cfg.PublicURL, err = publicURL(o.publicURL); err != nil {
			return err
		}
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		return err
	}
	defer p.Close()
	cfg.Redis, cfg.Producer = rdb, p
	m, err := campaign.New(cfg)
	if err != nil {
		return err
	}
	id, err := lookupCampaign(ctx, m, o.batch.value)
	if err != nil {
		return err
	}
	if !o.out.set() {
		bw := bufio.NewWriterSize(e.stdout, 64<<10)
		if err := m.Export(ctx, id, bw, format); err != nil {
			return err
		}
		return bw.Flush()
	}
	return writeFileAtomic(o.out.value, func(w io.Writer) error { return m.Export(ctx, id, w, format) })
}

// writeFileAtomic writes path through a temporary file in its directory, renamed
// over path only once write succeeded.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".partial-*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	bw := bufio.NewWriterSize(tmp, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("export to %s: %w", path, err)
	}
	return nil
}

// webhookOpts are the options of `faceidq webhook`.
type webhookOpts struct {
	redisURL, resultTTL *option
	all                 *bool
}

func webhookFlags() (*flags, *webhookOpts) {
	f := newFlags("webhook")
	addLog(f)
	o := &webhookOpts{}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.resultTTL = f.opt("result-ttl", "FACEIDQ_RESULT_TTL", "24h", "how long a final job's result is kept")
	o.all = f.boolFlag("all", "replay: every exhausted delivery")
	return f, o
}

func runWebhook(ctx context.Context, e *env, args []string) error {
	f, o := webhookFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want a subcommand: failed, or replay JOBID|--all")
	}
	switch sub := pos[0]; {
	case sub == "failed":
		if len(pos) > 1 {
			return usagef("unexpected argument %q", clipArg(pos[1]))
		}
		if *o.all {
			return usagef("--all is for webhook replay")
		}
	case sub == "replay":
		switch {
		case *o.all && len(pos) > 1:
			return usagef("give a JobId or --all, not both")
		case !*o.all && len(pos) != 2:
			return usagef("want one JobId, or --all (faceidq webhook replay JOBID|--all)")
		case !*o.all && !tasks.ValidID("j_", pos[1]):
			return usagef("%q is not a JobId (j_ and 26 characters)", clipArg(pos[1]))
		}
	default:
		return usagef("unknown subcommand %q: want failed or replay", clipArg(sub))
	}
	ttl, err := o.resultTTL.duration()
	if err != nil {
		return err
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	s, err := webhook.NewDeadLetters(webhook.DeadConfig{Redis: rdb, Store: results.New(rdb, results.Config{TTL: ttl}),
		Enqueuer: asynq.NewClientFromRedisClient(rdb)})
	if err != nil {
		return err
	}
	if pos[0] == "failed" {
		out, err := s.List(ctx)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	}
	n := 0
	if *o.all {
		n, err = s.ReplayAll(ctx)
	} else if err = s.Replay(ctx, pos[1]); err == nil {
		n = 1
	}
	if errors.Is(err, webhook.ErrNotExhausted) {
		return fmt.Errorf("job %s has no exhausted webhook delivery (see faceidq webhook failed)", pos[1])
	}
	if perr := printJSON(e.stdout, map[string]int{"Replayed": n}); err == nil {
		err = perr
	}
	return err
}
