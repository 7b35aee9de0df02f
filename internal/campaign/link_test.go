package campaign_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// fakeMinter mints tokens the way a worker would (a record, then a final result
// expiring 10 minutes after the clock's now), idempotently by key.
type fakeMinter struct {
	mu     sync.Mutex
	st     *results.Store
	clock  *fakeClock
	byKey  map[string]*tasks.Job
	calls  atomic.Int32
	fail   atomic.Bool
	images []string
}

func (f *fakeMinter) mint(ctx context.Context, req *tasks.TokenRequest, key string) (*tasks.Job, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if j, ok := f.byKey[key]; ok {
		return j, nil
	}
	if req.Priority != tasks.PriorityInteractive {
		return nil, errors.New("link token minted outside the interactive lane")
	}
	if req.CompareImageBase64 != nil {
		f.images = append(f.images, *req.CompareImageBase64)
	}
	id := tasks.NewJobID()
	if err := f.st.Create(ctx, results.NewRecord{JobID: id, Priority: req.Priority}); err != nil {
		return nil, err
	}
	fin := results.Final{Status: tasks.StatusSucceeded, BizToken: "tok-" + id,
		VerificationURL: "https://verify.example/" + id, ExpiresAt: f.clock.Now().Add(10 * time.Minute)}
	if f.fail.Load() {
		fin = results.Final{Status: tasks.StatusFailed, ErrorCode: "InternalError", ErrorMessage: "boom"}
	}
	if _, err := f.st.Finish(ctx, id, fin); err != nil {
		return nil, err
	}
	j, err := f.st.Get(ctx, id)
	f.byKey[key] = j
	return j, err
}

func TestLinks(t *testing.T) {
	clock := newFakeClock()
	fm := &fakeMinter{clock: clock, byKey: map[string]*tasks.Job{}}
	m, b := setup(t, campaign.Config{Now: clock.Now, Mint: fm.mint, LinkTTL: 7 * 24 * time.Hour, PublicURL: "https://kyc.example.com/"})
	fm.st = results.New(b.rdb, results.Config{Now: clock.Now})
	ctx := context.Background()
	body := `{"RedirectURL":"https://example.com/a","RowKey":"a"}
{"RedirectURL":"https://example.com/b","RowKey":"b","CompareImageBase64":"QUJDRA=="}
{"RedirectURL":"https://example.com/c","RowKey":"c"}
{"RedirectURL":"bad","RowKey":"d"}
{"RedirectURL":"https://example.com/e","RowKey":"e"}
`
	sum := mustImport(t, m, body, campaign.ImportOptions{Name: "links", Mode: campaign.ModeLinks})
	if sum.Created != 4 || sum.RejectedCount != 1 || sum.Mode != campaign.ModeLinks {
		t.Fatalf("summary = %+v", sum)
	}
	link := map[string]string{}
	for _, k := range []string{"a", "b", "c", "e"} {
		link[k] = b.rdb.HGet(ctx, keys.BatchRows(sum.BatchId), k).Val()
		if !tasks.ValidID("l_", link[k]) {
			t.Fatalf("row %s: link id %q", k, link[k])
		}
	}
	if again := mustImport(t, m, body, campaign.ImportOptions{Name: "links", Mode: campaign.ModeLinks}); again.Created != 0 || again.Existing != 4 {
		t.Fatalf("re-import = %+v", again)
	}

	var first *tasks.Job
	t.Run("first open mints", func(t *testing.T) {
		j, err := m.Start(ctx, link["a"])
		if err != nil {
			t.Fatal(err)
		}
		if j.VerificationURL == "" || fm.calls.Load() != 1 {
			t.Fatalf("job = %+v after %d mints", j, fm.calls.Load())
		}
		first = j
	})
	t.Run("reopen within validity reuses", func(t *testing.T) {
		clock.Advance(5 * time.Minute)
		j, err := m.Start(ctx, link["a"])
		if err != nil || j.VerificationURL != first.VerificationURL || fm.calls.Load() != 1 {
			t.Fatalf("job = %+v, %v after %d mints", j, err, fm.calls.Load())
		}
	})
	t.Run("reopen near expiry mints again", func(t *testing.T) {
		clock.Advance(4 * time.Minute) // 1 minute left: under the 2-minute margin
		j, err := m.Start(ctx, link["a"])
		if err != nil || j.VerificationURL == first.VerificationURL || fm.calls.Load() != 2 {
			t.Fatalf("job = %+v, %v after %d mints", j, err, fm.calls.Load())
		}
		l, err := m.GetLink(ctx, link["a"])
		if err != nil || l.Mints != 2 || l.Job == nil || l.Job.JobId != j.JobId || l.OpenedAt == nil {
			t.Fatalf("link = %+v, %v", l, err)
		}
	})
	t.Run("the image goes to the mint", func(t *testing.T) {
		if _, err := m.Start(ctx, link["b"]); err != nil {
			t.Fatal(err)
		}
		if len(fm.images) != 1 || fm.images[0] != "QUJDRA==" {
			t.Fatalf("images minted with = %v", fm.images)
		}
	})
	t.Run("concurrent opens share one mint", func(t *testing.T) {
		before := len(fm.byKey)
		var wg sync.WaitGroup
		urls := make([]string, 8)
		for i := range urls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if j, err := m.Start(ctx, link["c"]); err == nil {
					urls[i] = j.VerificationURL
				}
			}()
		}
		wg.Wait()
		for _, u := range urls {
			if u == "" || u != urls[0] {
				t.Fatalf("urls = %v", urls)
			}
		}
		if len(fm.byKey) != before+1 {
			t.Fatalf("%d jobs minted for one link", len(fm.byKey)-before)
		}
	})
	t.Run("a failed mint is reported, then minted again", func(t *testing.T) {
		fm.fail.Store(true)
		_, err := m.Start(ctx, link["e"])
		var me *campaign.MintError
		if !errors.As(err, &me) || me.Code != "InternalError" {
			t.Fatalf("err = %v", err)
		}
		fm.fail.Store(false)
		if j, err := m.Start(ctx, link["e"]); err != nil || j.Status != tasks.StatusSucceeded {
			t.Fatalf("after the failure: %+v, %v", j, err)
		}
	})
	t.Run("progress counts opened and minted", func(t *testing.T) {
		p, err := m.Status(ctx, sum.BatchId)
		if err != nil {
			t.Fatal(err)
		}
		if p.Opened != 4 || p.Minted != 6 || p.Counts["opened"] != 4 || p.Counts["unopened"] != 0 || p.Total != 4 {
			t.Fatalf("progress = %+v", p)
		}
	})
	t.Run("export lists the links", func(t *testing.T) {
		var buf bytes.Buffer
		if err := m.Export(ctx, sum.BatchId, &buf, campaign.FormatCSV); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) != 5 {
			t.Fatalf("export = %v, %v", recs, err)
		}
		if recs[1][0] != "a" || recs[1][2] != "https://kyc.example.com/v1/start/"+link["a"] || recs[1][8] != "succeeded" || recs[1][6] != "2" {
			t.Fatalf("row a = %v", recs[1])
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if err := m.RevokeLink(ctx, link["b"]); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Start(ctx, link["b"]); !errors.Is(err, campaign.ErrLinkRevoked) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		for _, id := range []string{tasks.NewLinkID(), "l_nope", "../x"} {
			if _, err := m.Start(ctx, id); !errors.Is(err, campaign.ErrLinkNotFound) {
				t.Fatalf("Start(%q) err = %v", id, err)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		clock.Advance(7 * 24 * time.Hour)
		if _, err := m.Start(ctx, link["a"]); !errors.Is(err, campaign.ErrLinkExpired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancel revokes every link", func(t *testing.T) {
		cs, err := m.Cancel(ctx, sum.BatchId)
		if err != nil || cs.Canceled != 3 { // b was revoked already
			t.Fatalf("cancel = %+v, %v", cs, err)
		}
		if _, err := m.Start(ctx, link["c"]); !errors.Is(err, campaign.ErrLinkRevoked) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestLinkWithProducer mints through the real producer; a stand-in worker finishes
// each job as it is submitted, so Start waits on keys.Done.
func TestLinkWithProducer(t *testing.T) {
	clock := newFakeClock()
	var m *campaign.Manager
	var p *producer.Producer
	var st *results.Store
	mint := func(ctx context.Context, req *tasks.TokenRequest, key string) (*tasks.Job, error) {
		j, err := campaign.MintWithProducer(p)(ctx, req, key)
		if err == nil && !j.Status.Final() {
			go func() {
				_, _ = st.Finish(context.Background(), j.JobId, results.Final{Status: tasks.StatusSucceeded,
					BizToken: "t", VerificationURL: "https://verify.example/" + j.JobId, ExpiresAt: clock.Now().Add(10 * time.Minute)})
			}()
		}
		return j, err
	}
	m, b := setup(t, campaign.Config{Now: clock.Now, Mint: mint})
	var err error
	if p, err = producer.New(producer.Config{Redis: b.rdb, Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	st = p.Results()
	ctx := context.Background()
	sum := mustImport(t, m, `{"RedirectURL":"https://example.com/a"}`, campaign.ImportOptions{Mode: campaign.ModeLinks})
	id := b.rdb.LIndex(ctx, keys.BatchLinks(sum.BatchId), 0).Val()
	j1, err := m.Start(ctx, id)
	if err != nil || !strings.HasPrefix(j1.VerificationURL, "https://verify.example/") || j1.Priority != tasks.PriorityInteractive {
		t.Fatalf("first open = %+v, %v", j1, err)
	}
	j2, err := m.Start(ctx, id)
	if err != nil || j2.JobId != j1.JobId {
		t.Fatalf("reopen = %+v, %v", j2, err)
	}
	clock.Advance(11 * time.Minute)
	j3, err := m.Start(ctx, id)
	if err != nil || j3.JobId == j1.JobId {
		t.Fatalf("after expiry = %+v, %v", j3, err)
	}
}
