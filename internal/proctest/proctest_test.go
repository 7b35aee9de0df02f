package proctest_test

import (
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// TestSimulate builds the binary, runs `faceidq simulate` on a free port, waits for it
// to announce its address and answer, and stops it with SIGTERM.
func TestSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := proctest.Bin(t)
	if again := proctest.Bin(t); again != bin {
		t.Fatalf("second Bin = %s, want the first build %s", again, bin)
	}
	p := proctest.MustStart(t, "simulate", bin, []string{"simulate"},
		map[string]string{"FACEIDQ_LISTEN": "127.0.0.1:0", "FACEIDQ_LOG_FORMAT": "json"})
	addr := p.MustAddr(t, "simulator")
	p.MustWaitHTTP(t, "http://"+addr+"/_sim/stats")
	if code, err := p.Term(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v\n%s", code, err, p.Out.Tail(2048))
	}
}

// TestList: help --list names the commands the process tests start.
func TestList(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	l := proctest.MustList(t)
	for _, c := range []string{"api", "worker", "simulate", "serve"} {
		if !l.Commands[c] {
			t.Errorf("help --list lacks command %s", c)
		}
	}
	if got := l.Flags["worker --concurrency"]; got != "int" {
		t.Errorf("worker --concurrency kind = %q, want int", got)
	}
	if cmds := l.Env["REDIS_URL"]; len(cmds) == 0 {
		t.Error("help --list: no command reads REDIS_URL")
	}
}
