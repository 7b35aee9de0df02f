package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faceidq/faceidq/internal/simulator"
)

// probe wraps the simulator: it adds the inbound half of the network latency (and its
// jitter) before the simulator counts an arrival, stamped at the moment the simulated
// network delivers the request (simulator.WithArrival), and
// records every arrival with its outcome and, for interactive jobs, the wait from
// enqueue (carried in Extra as "bench:i:<unix ns>") to the first upstream arrival.
type probe struct {
	next http.Handler

	mu       sync.Mutex
	inbound  time.Duration // mean inbound delay
	jitter   time.Duration // ± around it
	rng      *rand.Rand
	arrivals []arrival
	firstI   map[string]time.Duration // interactive Extra → wait to first arrival
	firstK   map[string]time.Time     // "bench:k:<n>" Extra → first arrival (burst.go)
}

type arrival struct {
	at time.Time
	ok bool
}

func newProbe(next http.Handler) *probe {
	return &probe{next: next, rng: rand.New(rand.NewPCG(7, 7)), firstI: map[string]time.Duration{}, firstK: map[string]time.Time{}}
}

func (p *probe) setInbound(mean, jitter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inbound, p.jitter = mean, jitter
}

func (p *probe) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arrivals = p.arrivals[:0]
	p.firstI = map[string]time.Duration{}
	p.firstK = map[string]time.Time{}
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		p.next.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	d := p.inbound
	if p.jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(2*p.jitter))) - p.jitter
	}
	p.mu.Unlock()
	// The request reaches the upstream d after it reached the probe: that moment is
	// its arrival, even when this process's timer wakes up later (a busy machine
	// oversleeps by up to ~12 ms here, jitter that is the harness's, not the network's).
	at := time.Now().Add(d)
	if d > 0 {
		time.Sleep(d)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r = r.WithContext(simulator.WithArrival(r.Context(), at))
	rec := &recorder{ResponseWriter: w}
	p.next.ServeHTTP(rec, r)

	var in struct{ Extra string }
	_ = json.Unmarshal(body, &in)
	ok := rec.status == 0 || rec.status == http.StatusOK
	ok = ok && !bytes.Contains(rec.head, []byte(`"Error"`))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arrivals = append(p.arrivals, arrival{at: at, ok: ok})
	if strings.HasPrefix(in.Extra, "bench:k:") {
		if _, seen := p.firstK[in.Extra]; !seen {
			p.firstK[in.Extra] = at
		}
	}
	if rest, found := strings.CutPrefix(in.Extra, "bench:i:"); found {
		if _, seen := p.firstI[in.Extra]; !seen {
			if ns, err := strconv.ParseInt(rest, 10, 64); err == nil {
				p.firstI[in.Extra] = at.Sub(time.Unix(0, ns))
			}
		}
	}
}

// firstArrival returns the first upstream arrival of the job whose Extra is extra.
func (p *probe) firstArrival(extra string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.firstK[extra]
	return at, ok
}

// okBetween counts successful arrivals in [from, to).
func (p *probe) okBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.arrivals {
		if a.ok && !a.at.Before(from) && a.at.Before(to) {
			n++
		}
	}
	return n
}

// margin returns how far the tightest sliding second kept from holding rate+1
// arrivals: the smallest (arrival k+rate − arrival k) − 1s over every arrival recorded
// (the simulator counts each one). Negative: some second held rate+1 of them. ok is
// false with fewer than rate+1 arrivals.
func (p *probe) margin(rate int) (m time.Duration, ok bool) {
	p.mu.Lock()
	at := make([]time.Time, len(p.arrivals))
	for i, a := range p.arrivals {
		at[i] = a.at
	}
	p.mu.Unlock()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) }) // stamped at delivery, recorded at handling
	for k := 0; k+rate < len(at); k++ {
		if d := at[k+rate].Sub(at[k]) - time.Second; !ok || d < m {
			m, ok = d, true
		}
	}
	return m, ok
}

// interactiveWaits returns the recorded interactive waits, sorted.
func (p *probe) interactiveWaits() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]time.Duration, 0, len(p.firstI))
	for _, d := range p.firstI {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// quantile returns the q-quantile of sorted durations (0 for none).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

type recorder struct {
	http.ResponseWriter
	status int
	head   []byte
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if len(r.head) < 256 {
		r.head = append(r.head, b[:min(len(b), 256-len(r.head))]...)
	}
	return r.ResponseWriter.Write(b)
}
