package campaign_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// testBundle is what setup gives a test.
type testBundle struct {
	rdb      *redis.Client
	red      *redistest.Server
	producer *producer.Producer
}

// newProducer returns a producer on rdb, closed when the test ends.
func newProducer(tb testing.TB, rdb redis.UniversalClient, now func() time.Time) *producer.Producer {
	tb.Helper()
	p, err := producer.New(producer.Config{Redis: rdb, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, cfg campaign.Config) (*campaign.Manager, *testBundle) {
	t.Helper()
	red := redistest.Start(t, redistest.Options{})
	rdb := red.Client(t)
	b := &testBundle{rdb: rdb, red: red}
	cfg.Redis = rdb
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Producer == nil {
		cfg.Producer = newProducer(t, rdb, cfg.Now)
	}
	b.producer = cfg.Producer
	if cfg.Waiter == nil {
		w, err := jobwait.New(jobwait.Config{Redis: rdb})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		cfg.Waiter = w
	}
	m, err := campaign.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// csvFixture writes a CSV of n data rows where every row i with i%7==3 is bad, in
// one of four ways; it returns the path and the line numbers of the bad rows.
func csvFixture(t *testing.T, dir string, n int) (string, map[int]string) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("row_key,redirect_url,extra,region,config\n")
	bad := map[int]string{}
	for i := 0; i < n; i++ {
		line := i + 2
		key := fmt.Sprintf("user-%05d", i)
		switch {
		case i%7 == 3 && i%4 == 0:
			fmt.Fprintf(&buf, "%s,,x,,\n", key)
			bad[line] = "RedirectURL"
		case i%7 == 3 && i%4 == 1:
			fmt.Fprintf(&buf, "%s,https://example.com/r,x,ap-mars,\n", key)
			bad[line] = "Region"
		case i%7 == 3 && i%4 == 2:
			fmt.Fprintf(&buf, "%s,https://example.com/r,x,,\"{\"\"CheckMode\"\":9}\"\n", key)
			bad[line] = "Config.CheckMode"
		case i%7 == 3:
			fmt.Fprintf(&buf, "%s,https://example.com/r,x,,\"{\"\"Nope\"\":1}\"\n", key)
			bad[line] = "config"
		default:
			fmt.Fprintf(&buf, "%s,https://example.com/r?u=%d,\"extra, %d\",ap-jakarta,\"{\"\"CheckMode\"\":1}\"\n", key, i, i)
		}
	}
	p := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, bad
}

func TestImportCSV(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	path, bad := csvFixture(t, t.TempDir(), 10000)

	var progressCalls int
	sum, err := m.ImportFile(ctx, path, campaign.ImportOptions{KeepRejected: -1, OnProgress: func(campaign.ImportProgress) { progressCalls++ }})
	if err != nil {
		t.Fatal(err)
	}
	good := 10000 - len(bad)
	t.Run("exact counts", func(t *testing.T) {
		if sum.Accepted != good || sum.Created != good || sum.Existing != 0 || sum.RejectedCount != len(bad) || sum.Lines != 10000 {
			t.Fatalf("summary = accepted %d created %d existing %d rejected %d lines %d; want %d good, %d bad",
				sum.Accepted, sum.Created, sum.Existing, sum.RejectedCount, sum.Lines, good, len(bad))
		}
		if progressCalls < good/500 {
			t.Errorf("OnProgress called %d times", progressCalls)
		}
		if n := b.rdb.LLen(ctx, keys.BatchJobs(sum.BatchId)).Val(); n != int64(good) {
			t.Errorf("campaign list has %d jobs, want %d", n, good)
		}
	})
	t.Run("rejections name line and field", func(t *testing.T) {
		if len(sum.Rejected) != len(bad) {
			t.Fatalf("%d rejections kept, want %d", len(sum.Rejected), len(bad))
		}
		for _, r := range sum.Rejected {
			field, ok := bad[r.Line]
			if !ok {
				t.Fatalf("line %d rejected (%v) but it is good", r.Line, r.Error)
			}
			if !strings.HasPrefix(r.Error.Message, field+":") || !strings.HasPrefix(r.Error.Code, "InvalidParameter") && r.Error.Code != faceid.CodeMissingParameter && r.Error.Code != faceid.CodeUnsupportedRegion {
				t.Errorf("line %d: error %+v, want one on %s", r.Line, r.Error, field)
			}
		}
	})
	t.Run("status", func(t *testing.T) {
		p, err := m.Status(ctx, sum.BatchId)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != good || p.Counts["queued"] != good || p.Done || p.ETA != nil || p.Name != sum.Name {
			t.Fatalf("progress = %+v", p)
		}
	})
	t.Run("records", func(t *testing.T) {
		id := b.rdb.HGet(ctx, keys.BatchRows(sum.BatchId), "user-00000").Val()
		rec := b.rdb.HGetAll(ctx, keys.Result(id)).Val()
		if rec[tasks.FieldStatus] != "queued" || rec[tasks.FieldBatchId] != sum.BatchId || rec[tasks.FieldRowKey] != "user-00000" ||
			rec[tasks.FieldExtra] != "extra, 0" || rec[tasks.FieldPriority] != "batch" || rec[tasks.FieldRegion] != "ap-jakarta" {
			t.Fatalf("record = %v", rec)
		}
		if _, ok := rec[tasks.FieldPayload]; ok {
			t.Fatalf("record %v keeps a second copy of the input", rec)
		}
		vals := b.rdb.HMGet(ctx, keys.Result(id), tasks.ApplyRecordFields...).Val()
		p, _, err := tasks.ApplyPayloadFromRecord(id, vals)
		if err != nil || p.BatchID != sum.BatchId || p.Input.Config == nil || *p.Input.Config.CheckMode != 1 {
			t.Fatalf("payload = %+v, %v", p, err)
		}
	})
	t.Run("re-import creates no duplicate", func(t *testing.T) {
		again, err := m.ImportFile(ctx, path, campaign.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.BatchId != sum.BatchId || again.Created != 0 || again.Existing != good || again.RejectedCount != len(bad) {
			t.Fatalf("re-import = %+v", again)
		}
		if n := b.rdb.LLen(ctx, keys.BatchJobs(sum.BatchId)).Val(); n != int64(good) {
			t.Errorf("campaign list has %d jobs after re-import, want %d", n, good)
		}
		if n := b.rdb.DBSize(ctx).Val(); n > int64(good)+10 {
			t.Errorf("%d keys in Redis after re-import: duplicates were written", n)
		}
	})
}

func TestImportResumesAfterInterrupt(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	path, bad := csvFixture(t, t.TempDir(), 3000)
	good := 3000 - len(bad)
	ctx, cancel := context.WithCancel(context.Background())
	// Interrupt the import after its second chunk (as a Ctrl-C would).
	chunks := 0
	_, err := m.ImportFile(ctx, path, campaign.ImportOptions{Name: "spring", OnProgress: func(campaign.ImportProgress) {
		if chunks++; chunks == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: err = %v", err)
	}
	sum, err := m.ImportFile(context.Background(), path, campaign.ImportOptions{Name: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != good || sum.Existing != 1000 || sum.Created != good-1000 {
		t.Fatalf("resumed import = accepted %d existing %d created %d; want %d, 1000, %d", sum.Accepted, sum.Existing, sum.Created, good, good-1000)
	}
	if n := b.rdb.LLen(context.Background(), keys.BatchJobs(sum.BatchId)).Val(); n != int64(good) {
		t.Fatalf("campaign has %d jobs, want %d", n, good)
	}
}

func TestImportNDJSON(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	body := strings.Join([]string{
		`{"RedirectURL":"https://example.com/a","Extra":"a"}`,
		`{"RedirectURL":"https://example.com/b","RowKey":"b"}`,
		``,
		`{"RedirectURL":"not a url"}`,
		`{"RedirectURL":`,
		`{"RedirectURL":"https://example.com/c","CompareImageBase64":"data:image/jpeg;base64,QUJDRA=="}`,
		`{"RedirectURL":"https://example.com/d","ImagePath":"x.jpg"}`,
		`{"RedirectURL":"https://example.com/e","CallbackURL":"https://example.com/hook"}`,
		`{"RedirectURL":"https://example.com/a","Extra":"a"}`,
		`{"RedirectURL":"https://example.com/b2","RowKey":"b"}`,
	}, "\n")
	sum, err := m.Import(ctx, strings.NewReader(body), campaign.ImportOptions{Name: "nd"})
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []int{4, 5, 7, 8}
	var got []int
	for _, r := range sum.Rejected {
		got = append(got, r.Line)
	}
	// Line 9 repeats line 1 (same line content, other line number: a new row);
	// line 10 repeats row key b: Existing.
	if fmt.Sprint(got) != fmt.Sprint(wantLines) || sum.Accepted != 5 || sum.Created != 4 || sum.Existing != 1 {
		t.Fatalf("summary = %+v; rejected lines %v, want %v", sum, got, wantLines)
	}
	if !strings.Contains(sum.Rejected[2].Error.Message, "file imports only") || !strings.Contains(sum.Rejected[3].Error.Message, "webhooks are off") {
		t.Errorf("rejections = %+v", sum.Rejected)
	}
	// The inline image is stored (stripped of its Data URI header) and referenced.
	id := b.rdb.HGet(ctx, keys.BatchRows(sum.BatchId), "b").Val()
	if id == "" {
		t.Fatal("row key b not recorded")
	}
	again, err := m.Import(ctx, strings.NewReader(body), campaign.ImportOptions{Name: "nd"})
	if n := b.rdb.LLen(ctx, keys.BatchJobs(sum.BatchId)).Val(); n != 4 {
		t.Fatalf("%d jobs in the campaign, want 4", n)
	}
	if err != nil || again.Created != 0 || again.Existing != 5 {
		t.Fatalf("re-import = %+v, %v", again, err)
	}
}

func TestImportErrors(t *testing.T) {
	m, _ := setup(t, campaign.Config{})
	ctx := context.Background()
	tests := []struct {
		name string
		body string
		opts campaign.ImportOptions
		want error
	}{
		{"empty csv", "", campaign.ImportOptions{Format: campaign.FormatCSV}, campaign.ErrHeader},
		{"unknown column", "redirect_url,colour\n", campaign.ImportOptions{Format: campaign.FormatCSV}, campaign.ErrHeader},
		{"no redirect_url", "extra\n", campaign.ImportOptions{Format: campaign.FormatCSV}, campaign.ErrHeader},
		{"unknown batch", "", campaign.ImportOptions{BatchID: tasks.NewBatchID()}, campaign.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Import(ctx, strings.NewReader(tt.body), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("mode mismatch", func(t *testing.T) {
		if _, err := m.Import(ctx, strings.NewReader(""), campaign.ImportOptions{Name: "mm"}); err != nil {
			t.Fatal(err)
		}
		_, err := m.Import(ctx, strings.NewReader(""), campaign.ImportOptions{Name: "mm", Mode: campaign.ModeLinks})
		if !errors.Is(err, campaign.ErrModeMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("one import at a time", func(t *testing.T) {
		var inner error
		_, err := m.Import(ctx, strings.NewReader(ndjsonRows(600)), campaign.ImportOptions{Name: "locked", OnProgress: func(campaign.ImportProgress) {
			if inner == nil {
				_, inner = m.Import(ctx, strings.NewReader(ndjsonRows(1)), campaign.ImportOptions{Name: "locked"})
			}
		}})
		if err != nil || !errors.Is(inner, campaign.ErrImportRunning) {
			t.Fatalf("outer %v, inner %v", err, inner)
		}
		// Released at the end: a new import runs.
		if sum, err := m.Import(ctx, strings.NewReader(ndjsonRows(601)), campaign.ImportOptions{Name: "locked"}); err != nil || sum.Created != 1 {
			t.Fatalf("after: %+v, %v", sum, err)
		}
	})
	t.Run("long line rejected, rest imported", func(t *testing.T) {
		body := `{"RedirectURL":"https://example.com/` + strings.Repeat("a", campaign.MaxLineBytes+10) + "\"}\n" +
			`{"RedirectURL":"https://example.com/ok"}`
		sum, err := m.Import(ctx, strings.NewReader(body), campaign.ImportOptions{})
		if err != nil || sum.Created != 1 || sum.RejectedCount != 1 || sum.Rejected[0].Line != 1 {
			t.Fatalf("summary = %+v, %v", sum, err)
		}
	})
}

// TestImportCrashPoints re-imports after an import that died at each point of a
// chunk's write (importer.write): every row ends with exactly one job, the one the
// dead import claimed, and the campaign is active for the feeder.
func TestImportCrashPoints(t *testing.T) {
	body := `{"RedirectURL":"https://example.com/a","RowKey":"r1"}` + "\n" + `{"RedirectURL":"https://example.com/b","RowKey":"r2"}` + "\n"
	ctx := context.Background()
	tests := []struct {
		name                   string
		record, listed, active bool // what the dead import wrote of row r1
	}{
		{name: "after the claim"},
		{name: "after the records", record: true},
		{name: "after the campaign's MULTI", record: true, listed: true},
		{name: "after everything", record: true, listed: true, active: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, b := setup(t, campaign.Config{})
			sum := mustImport(t, m, "", campaign.ImportOptions{Name: "crash"})
			id := tasks.NewJobID()
			final := "?" + id
			if tt.listed {
				final = id
			}
			b.rdb.HSet(ctx, keys.BatchRows(sum.BatchId), "r1", final)
			if tt.record {
				d, err := b.producer.Validate(ctx, &tasks.TokenRequest{RedirectURL: ptr("https://example.com/a")})
				if err != nil {
					t.Fatal(err)
				}
				pipe := b.rdb.Pipeline()
				if err := b.producer.WriteDeferred(ctx, pipe, id, d, producer.Options{BatchID: sum.BatchId, RowKey: "r1"}, false); err != nil {
					t.Fatal(err)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tt.listed {
				b.rdb.RPush(ctx, keys.BatchJobs(sum.BatchId), id)
				b.rdb.HIncrBy(ctx, keys.Batch(sum.BatchId), "Total", 1)
			}
			b.rdb.SRem(ctx, keys.BatchesActive, sum.BatchId)
			if tt.active {
				b.rdb.SAdd(ctx, keys.BatchesActive, sum.BatchId)
			}

			again := mustImport(t, m, body, campaign.ImportOptions{Name: "crash"})
			wantCreated := 2
			if tt.listed {
				wantCreated = 1
			}
			if again.BatchId != sum.BatchId || again.Created != wantCreated || again.Accepted != 2 {
				t.Fatalf("re-import = %+v; want %d created into %s", again, wantCreated, sum.BatchId)
			}
			ids := b.rdb.LRange(ctx, keys.BatchJobs(sum.BatchId), 0, -1).Val()
			if len(ids) != 2 || ids[0] != id && ids[1] != id || ids[0] == ids[1] {
				t.Fatalf("jobs %v; want 2, one of them the claimed %s", ids, id)
			}
			for _, j := range ids {
				if st, err := b.producer.Results().Status(ctx, j); err != nil || st != tasks.StatusQueued {
					t.Errorf("job %s: %s, %v", j, st, err)
				}
			}
			if n := len(b.rdb.Keys(ctx, "faceidq:result:*").Val()); n != 2 {
				t.Errorf("%d job records, want 2", n)
			}
			if !b.rdb.SIsMember(ctx, keys.BatchesActive, sum.BatchId).Val() {
				t.Error("the campaign is not active for the feeder")
			}
			if in, err := m.Info(ctx, sum.BatchId); err != nil || in.Total != 2 {
				t.Errorf("Total = %+v, %v; want 2", in, err)
			}
		})
	}
}
func ptr(s string) *string { return &s }
