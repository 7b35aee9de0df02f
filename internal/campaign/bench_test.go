package campaign_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/redistest"
)

// BenchmarkImport imports b.N NDJSON rows into a real redis-server and reports jobs/s.
//
//	go test -run '^$' -bench BenchmarkImport -benchtime 200000x ./internal/campaign/
func BenchmarkImport(b *testing.B) {
	for _, format := range []campaign.Format{campaign.FormatNDJSON, campaign.FormatCSV} {
		b.Run(string(format), func(b *testing.B) {
			red := redistest.Start(b, redistest.Options{})
			rdb := red.Client(b)
			m, err := campaign.New(campaign.Config{Redis: rdb, Producer: newProducer(b, rdb, nil)})
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "in."+string(format))
			writeRows(b, path, format, b.N)
			b.ResetTimer()
			start := time.Now()
			sum, err := m.ImportFile(context.Background(), path, campaign.ImportOptions{})
			el := time.Since(start)
			b.StopTimer()
			if err != nil || sum.Created != b.N {
				b.Fatalf("import = %+v, %v", sum, err)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
		})
	}
}

// writeRows writes n good rows (with row keys, an extra and a config) to path.
func writeRows(tb testing.TB, path string, format campaign.Format, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if format == campaign.FormatCSV {
		fmt.Fprintln(w, "row_key,redirect_url,extra,config")
	}
	for i := 0; i < n; i++ {
		if format == campaign.FormatCSV {
			fmt.Fprintf(w, "user-%08d,https://example.com/kyc/done?u=%d,customer %d,\"{\"\"CheckMode\"\":1}\"\n", i, i, i)
		} else {
			fmt.Fprintf(w, `{"RowKey":"user-%08d","RedirectURL":"https://example.com/kyc/done?u=%d","Extra":"customer %d","Config":{"CheckMode":1}}`+"\n", i, i, i)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestMeasureImportMemory imports a 1,000,000-line NDJSON file into a real
// redis-server and reports the importing process's peak heap and RSS. Run with:
//
//	FACEIDQ_MEASURE=1 go test -run TestMeasureImportMemory -v -timeout 20m ./internal/campaign/
func TestMeasureImportMemory(t *testing.T) {
	if os.Getenv("FACEIDQ_MEASURE") != "1" {
		t.Skip("a measurement: set FACEIDQ_MEASURE=1")
	}
	const lines = 1_000_000
	red := redistest.Start(t, redistest.Options{})
	rdb := red.Client(t)
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: newProducer(t, rdb, nil)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.ndjson")
	writeRows(t, path, campaign.FormatNDJSON, lines)
	st, _ := os.Stat(path)
	runtime.GC()
	var peakHeap atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peakHeap.Load() {
			peakHeap.Store(ms.HeapInuse)
		}
	}
	var at []string
	start := time.Now()
	sum, err := m.ImportFile(context.Background(), path, campaign.ImportOptions{OnProgress: func(p campaign.ImportProgress) {
		if p.Lines%100_000 < 500 {
			sample()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			at = append(at, fmt.Sprintf("%dk:%dMB", p.Lines/1000, ms.HeapInuse>>20))
		}
	}})
	el := time.Since(start)
	if err != nil || sum.Created != lines {
		t.Fatalf("import = %+v, %v", sum, err)
	}
	t.Logf("%d lines (%d MB) imported in %v: %.0f jobs/s", lines, st.Size()>>20, el.Round(time.Millisecond), float64(lines)/el.Seconds())
	t.Logf("heap in use along the import: %s; peak sampled %d MB; peak RSS (VmHWM) %s", strings.Join(at, " "), peakHeap.Load()>>20, vmHWM())
	t.Logf("Redis used_memory after the import: %.0f MB", mb(usedMemory(t, rdb, "used_memory")))
	start = time.Now()
	p, err := m.Status(context.Background(), sum.BatchId)
	if err != nil || p.Total != lines || p.Counts["queued"] != lines {
		t.Fatalf("status = %+v, %v", p, err)
	}
	t.Logf("Status of the %d-job campaign took %v", lines, time.Since(start).Round(time.Millisecond))
}

// vmHWM returns the process's peak resident set size from /proc.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// importForMemory imports n CSV rows (writeRows) into a fresh redis-server, feeds
// none, and returns the used_memory delta per row and the import's rows/s.
func importForMemory(t *testing.T, n int) (perJob, rowsPerSec float64, rdb *redis.Client, batchID string) {
	t.Helper()
	rdb = redistest.Start(t, redistest.Options{}).Client(t)
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: newProducer(t, rdb, nil)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "in.csv")
	writeRows(t, path, campaign.FormatCSV, n)
	base := usedMemory(t, rdb, "used_memory")
	start := time.Now()
	sum, err := m.ImportFile(context.Background(), path, campaign.ImportOptions{})
	el := time.Since(start)
	if err != nil || sum.Created != n {
		t.Fatalf("import = %+v, %v", sum, err)
	}
	return float64(usedMemory(t, rdb, "used_memory")-base) / float64(n), float64(n) / el.Seconds(), rdb, sum.BatchId
}

// TestRedisMemoryPerImportedJob keeps the Redis memory of an imported campaign job
// not yet fed under its budget.
func TestRedisMemoryPerImportedJob(t *testing.T) {
	redistest.Binary(t, "redis-server")
	perJob, _, _, _ := importForMemory(t, 20_000)
	t.Logf("%.0f bytes per imported job", perJob)
	if perJob > 600 {
		t.Errorf("Redis holds %.0f bytes per imported job not yet fed; the budget is 600", perJob)
	}
}

// TestMeasureRedisMemoryPerImportedJob imports a FACEIDQ_MEASURE_N-row (default
// 100,000) CSV into a fresh redis-server, feeds none, and reports Redis's used_memory
// delta per job, the import's rows/s, and what each key of the campaign takes. Run with:
//
//	FACEIDQ_MEASURE=1 go test -run TestMeasureRedisMemoryPerImportedJob -v ./internal/campaign/
func TestMeasureRedisMemoryPerImportedJob(t *testing.T) {
	if os.Getenv("FACEIDQ_MEASURE") != "1" {
		t.Skip("a measurement: set FACEIDQ_MEASURE=1")
	}
	n := 100_000
	if v := os.Getenv("FACEIDQ_MEASURE_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	perJob, rate, rdb, batchID := importForMemory(t, n)
	t.Logf("%d imported jobs not yet fed: %.0f bytes of Redis used_memory per job; import %.0f rows/s", n, perJob, rate)
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	seen := 0
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, ":j_") {
			if seen++; seen > 1 {
				continue
			}
		}
		mem, _ := rdb.MemoryUsage(ctx, k).Result()
		enc, _ := rdb.ObjectEncoding(ctx, k).Result()
		t.Logf("  %-60s %-10s %8d bytes", k, enc, mem)
	}
	t.Logf("campaign %s", batchID)
}
