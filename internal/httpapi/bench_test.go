package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/producer"
)

// BenchmarkPostToken measures POST /v1/tokens through the handler (no network on
// the HTTP side) on a real redis-server, with a bearer token and metrics, as
// `faceidq api` runs it. The end-to-end load test is `go run ./cmd/faceidq-load`.
func BenchmarkPostToken(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	rdb := srv.Client(b)
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	a, err := New(Config{Producer: p, Redis: rdb, Metrics: metrics.New(), Tokens: []string{"bench-token"}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	const body = `{"RedirectURL":"https://example.com/signup/done","Extra":"load-test-user"}`
	b.ReportAllocs()
	b.SetParallelism(32) // many requests in flight, as under load
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer bench-token")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("POST = %d %s", rec.Code, rec.Body)
			}
		}
	})
}
