package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/producer"
)

// TestClassifyNotReplicated: a job that was written but not confirmed by the
// replicas is a 503 that does not claim that nothing was done.
func TestClassifyNotReplicated(t *testing.T) {
	e, internal := classify(&producer.ReplicationError{Want: 1}, 1<<20)
	if e.status != http.StatusServiceUnavailable || e.code != CodeNotReplicated || !internal {
		t.Fatalf("classify = %+v, internal %v", e, internal)
	}
	if strings.Contains(e.message, "nothing was done") || !strings.Contains(e.message, "Idempotency-Key") {
		t.Fatalf("message %q", e.message)
	}
}
