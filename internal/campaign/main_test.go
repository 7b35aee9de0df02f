package campaign

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// TODO(producer.Close): producer.New starts a committer per priority that
		// nothing stops yet; drop this once Producer.Close stops them.
		goleak.IgnoreTopFunction("github.com/faceidq/faceidq/producer.(*committer).loop"))
}
