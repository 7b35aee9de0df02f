package campaign_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
