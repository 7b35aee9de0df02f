// Package proctest builds the faceidq binary and runs its commands (api, worker,
// simulate, …) as real processes: for the process tests (faultsuite, deploy) and the
// benchmarks. A process gets exactly the environment it is given (plus PATH and HOME),
// its output is captured, and Must… helpers stop it through t.Cleanup. Functions
// without a testing.TB return errors, for programs that are not tests.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/waittest"
)

// BinEnv names a faceidq binary built elsewhere (e.g. from a clean checkout while the
// working tree does not build); Bin uses it instead of building.
const BinEnv = "FACEIDQ_FAULT_BIN"

// ReadyTimeout bounds the wait for a process to announce its listener or answer.
const ReadyTimeout = 30 * time.Second

// ModuleRoot returns the directory of the module's go.mod (`go env GOMOD`).
func ModuleRoot() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("proctest: go env GOMOD: %w", err)
	}
	p := strings.TrimSpace(string(gomod))
	if p == "" || p == os.DevNull {
		return "", errors.New("proctest: not inside the faceidq module")
	}
	return filepath.Dir(p), nil
}

// Build compiles ./cmd/faceidq with CGO_ENABLED=0 and the given `go build` flags into
// dir and returns the binary's path.
func Build(dir string, flags ...string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "faceidq")
	args := append(append([]string{"build"}, flags...), "-o", out, "./cmd/faceidq")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("proctest: go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return out, nil
}

// builds holds one build per set of flags for the life of the test binary.
var builds struct {
	mu   sync.Mutex
	bins map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Bin returns the faceidq binary, built once per test binary with flags (BinEnv
// wins when set), failing tb when it cannot be built. The build is removed when the
// test binary exits only if the caller's TestMain calls Cleanup; otherwise it stays in
// the system's temporary directory.
func Bin(tb testing.TB, flags ...string) string {
	tb.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		return p
	}
	key := strings.Join(flags, "\x00")
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	b := builds.bins[key]
	if b == nil {
		b = &build{}
		builds.bins[key] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "faceidq-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = Build(dir, flags...)
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// Main is a TestMain for a package that uses Bin: it runs the tests, then removes the
// binaries built for them.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the binaries Bin built; Main calls it after the tests.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	for _, b := range builds.bins {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path))
		}
	}
}

// Output is a process's stdout and stderr, safe for concurrent use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Tail is the last n bytes of the output.
func (o *Output) Tail(n int) string {
	s := o.String()
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Proc is a running process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Out  *Output
	done chan struct{}
}

// Start runs bin with args and exactly env (plus PATH, and HOME unless env sets it).
// Its output is captured in Out and also written to logs.
func Start(name, bin string, args []string, env map[string]string, logs ...io.Writer) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if _, ok := env["HOME"]; !ok {
		cmd.Env = append(cmd.Env, "HOME="+os.TempDir())
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Proc{Name: name, Cmd: cmd, Out: &Output{}, done: make(chan struct{})}
	var w io.Writer = p.Out
	if len(logs) > 0 {
		w = io.MultiWriter(append([]io.Writer{p.Out}, logs...)...)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proctest: start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// MustStart is Start for a test: the process is killed when the test ends if still
// running, and its output logged when the test failed.
func MustStart(tb testing.TB, name, bin string, args []string, env map[string]string) *Proc {
	tb.Helper()
	p, err := Start(name, bin, args, env)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("%s output (last 4 KiB):\n%s", name, p.Out.Tail(4096))
		}
	})
	return p
}

// Done is closed once the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Term sends SIGTERM and waits up to grace for the exit code; a process still running
// then is killed and an error returned.
func (p *Proc) Term(grace time.Duration) (int, error) {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), nil
	case <-time.After(grace):
		p.Kill()
		return -1, fmt.Errorf("proctest: %s did not stop within %v of SIGTERM", p.Name, grace)
	}
}

// Addr waits until the process has logged the address of listener (the JSON
// announce line of cmd/faceidq: {"Listener":…,"Addr":…}) and returns it.
func (p *Proc) Addr(listener string, timeout time.Duration) (string, error) {
	var found string
	err := waittest.For(timeout, p.Name+" announces its "+listener+" address", func() (bool, string) {
		if p.Exited() {
			return true, ""
		}
		sc := bufio.NewScanner(strings.NewReader(p.Out.String()))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct{ Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Listener == listener && line.Addr != "" {
				found = line.Addr
				return true, ""
			}
		}
		return false, "no announce line yet"
	})
	if err == nil && found == "" {
		err = fmt.Errorf("proctest: %s exited before listening:\n%s", p.Name, p.Out.Tail(4096))
	}
	return found, err
}

// MustAddr is Addr failing tb.
func (p *Proc) MustAddr(tb testing.TB, listener string) string {
	tb.Helper()
	a, err := p.Addr(listener, ReadyTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// readyClient is the client of WaitHTTP: no probe may hang.
var readyClient = &http.Client{Timeout: 5 * time.Second}

// WaitHTTP waits until url answers 2xx, failing early when the process exits.
func (p *Proc) WaitHTTP(url string, timeout time.Duration) error {
	exited := false
	err := waitURL(url, timeout, func() bool {
		exited = p.Exited()
		return exited
	})
	if exited {
		return fmt.Errorf("proctest: %s exited before %s answered:\n%s", p.Name, url, p.Out.Tail(4096))
	}
	return err
}

// WaitURL waits until url answers 2xx (a server this package did not start).
func WaitURL(url string, timeout time.Duration) error {
	return waitURL(url, timeout, func() bool { return false })
}

func waitURL(url string, timeout time.Duration, stop func() bool) error {
	return waittest.For(timeout, url+" to answer 2xx", func() (bool, string) {
		if stop() {
			return true, ""
		}
		resp, err := readyClient.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode/100 == 2, resp.Status
	})
}

// MustWaitHTTP is WaitHTTP failing tb.
func (p *Proc) MustWaitHTTP(tb testing.TB, url string) {
	tb.Helper()
	if err := p.WaitHTTP(url, ReadyTimeout); err != nil {
		tb.Fatal(err)
	}
}

// Listing is what `faceidq help --list` says: the commands, and for each environment
// variable the commands that read it.
type Listing struct {
	Commands map[string]bool
	Env      map[string][]string
	// Flags maps "command --flag" to its kind (string, int, number, duration, bool).
	Flags map[string]string
}

// List runs `bin help --list` and parses it.
func List(bin string) (*Listing, error) {
	out, err := exec.Command(bin, "help", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("proctest: %s help --list: %w", bin, err)
	}
	l := &Listing{Commands: map[string]bool{}, Env: map[string][]string{}, Flags: map[string]string{}}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "command" && len(f) >= 2:
			l.Commands[f[1]] = true
		case f[0] == "env" && len(f) >= 3:
			l.Env[f[1]] = strings.Split(f[2], ",")
		case f[0] == "flag" && len(f) >= 4:
			l.Flags[f[1]+" --"+f[2]] = f[3]
		}
	}
	if len(l.Commands) == 0 {
		return nil, fmt.Errorf("proctest: %s help --list listed no command", bin)
	}
	return l, nil
}

// MustList is List of Bin(tb, flags...), failing tb.
func MustList(tb testing.TB, flags ...string) *Listing {
	tb.Helper()
	l, err := List(Bin(tb, flags...))
	if err != nil {
		tb.Fatal(err)
	}
	return l
}
