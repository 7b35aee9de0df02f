package webhook

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkDeliver measures signed deliveries per second to a local receiver
// (httptest on 127.0.0.1, allow-listed), through the dial guard, with keep-alive, run in
// parallel (GOMAXPROCS goroutines).
func BenchmarkDeliver(b *testing.B) {
	s, tb := setup(b, nil)
	rc := newReceiver(b, tb.secrets, status(http.StatusNoContent))
	task, err := NewTask(finalJob(b), rc.srv.URL+"/hook")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.ProcessTask(ctx, task); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
