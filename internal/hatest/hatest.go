// Package hatest starts Redis beyond one machine, on this one: a Sentinel set (a
// master, replicas and sentinels) and a Redis Cluster, each made of real redis-server
// processes on free loopback ports that stop when the test ends.
//
// Like internal/redistest (which it builds on) it skips a test when redis-server is
// missing, and fails it instead under FACEIDQ_REQUIRE_REDIS=1. The Cluster also needs
// redis-cli (redis-tools), for `redis-cli --cluster create`.
//
// The package's own tests run faceidq's producer, worker and campaigns on both
// topologies: the Sentinel tests kill the master mid-run (also during a campaign) and
// measure what the failover cost.
package hatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redisproc"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
)

// SentinelOptions configures StartSentinel.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master under. Defaults to
	// "mymaster".
	MasterName string
	// Replicas is the number of replicas. Defaults to 1.
	Replicas int
	// Sentinels is the number of sentinels. Defaults to 3.
	Sentinels int
	// Quorum is the number of sentinels that must agree the master is down. Defaults
	// to a majority of Sentinels.
	Quorum int
	// DownAfter is how long the master must be unreachable before a sentinel calls it
	// down. Defaults to 1s.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout. Defaults to 5s.
	FailoverTimeout time.Duration
	// DataArgs are extra redis-server arguments for the master and the replicas, e.g.
	// "--appendonly", "yes".
	DataArgs []string
	// Links makes every replica replicate through a Link (a TCP proxy) that the test
	// can hold, to give the replica a lag that a kill of the master turns into lost
	// writes, as on a slow network. Defaults to direct replication.
	Links bool
}

func (o SentinelOptions) withDefaults() SentinelOptions {
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Sentinels <= 0 {
		o.Sentinels = 3
	}
	if o.Quorum <= 0 {
		o.Quorum = o.Sentinels/2 + 1
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	return o
}

// SentinelSet is a running master, its replicas and the sentinels watching them.
type SentinelSet struct {
	// MasterName is the monitored master's name.
	MasterName string
	// Data are the master (first, as started) and the replicas.
	Data []*redistest.Server
	// Sentinels are the sentinel processes.
	Sentinels []*Sentinel
	// Links are the replicas' replication links (with SentinelOptions.Links), in the
	// order of Data[1:].
	Links []*Link

	tb testing.TB
}

// Sentinel is one redis-server running in sentinel mode.
type Sentinel struct {
	// Port is its loopback port.
	Port int
	cmd  *exec.Cmd
	exit chan struct{}
}

// Addr is the sentinel's host:port.
func (s *Sentinel) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Kill ends the sentinel with SIGKILL and waits for it.
func (s *Sentinel) Kill() {
	select {
	case <-s.exit:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exit
}

// StartSentinel starts a master, its replicas (in sync before it returns) and the
// sentinels (each aware of every replica and of the other sentinels before it
// returns), all stopped when the test ends.
func StartSentinel(tb testing.TB, opts SentinelOptions) *SentinelSet {
	tb.Helper()
	opts = opts.withDefaults()
	bin := redistest.Binary(tb, "redis-server")
	set := &SentinelSet{MasterName: opts.MasterName, tb: tb}
	master := redistest.Start(tb, redistest.Options{Args: opts.DataArgs})
	set.Data = append(set.Data, master)
	for i := 0; i < opts.Replicas; i++ {
		upstream := master.Port
		if opts.Links {
			l := startLink(tb, master.Addr())
			set.Links = append(set.Links, l)
			upstream = l.Port()
		}
		args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(upstream)}, opts.DataArgs...)
		set.Data = append(set.Data, redistest.Start(tb, redistest.Options{Args: args}))
	}
	ctx := context.Background()
	mc := master.Client(tb)
	waittest.Until(tb, 20*time.Second, "replicas in sync", func() bool {
		info, err := mc.Info(ctx, "replication").Result()
		return err == nil && strings.Count(info, "state=online") == opts.Replicas
	})
	for i := 0; i < opts.Sentinels; i++ {
		set.Sentinels = append(set.Sentinels, startSentinel(tb, bin, master.Port, opts))
	}
	for _, s := range set.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		waittest.Until(tb, 20*time.Second, "sentinel "+s.Addr()+" sees the replicas and its peers", func() bool {
			m, err := c.Master(ctx, opts.MasterName).Result()
			if err != nil {
				return false
			}
			return m["num-slaves"] == strconv.Itoa(opts.Replicas) && m["num-other-sentinels"] == strconv.Itoa(opts.Sentinels-1)
		})
		_ = c.Close()
	}
	return set
}

func startSentinel(tb testing.TB, bin string, masterPort int, o SentinelOptions) *Sentinel {
	tb.Helper()
	dir := tb.TempDir()
	port := redistest.FreePort(tb)
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "sentinel.log"), o.MasterName, masterPort, o.Quorum,
		o.MasterName, o.DownAfter.Milliseconds(), o.MasterName, o.FailoverTimeout.Milliseconds(), o.MasterName)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, path, "--sentinel")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		tb.Fatalf("hatest: start sentinel: %v", err)
	}
	s := &Sentinel{Port: port, cmd: cmd, exit: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exit) }()
	tb.Cleanup(s.Kill)
	if err := redisproc.WaitReady(s.Addr(), 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
		tb.Fatalf("hatest: sentinel on %s: %v\n%s", s.Addr(), err, log)
	}
	return s
}

// Link is a TCP proxy between a replica and its master. Hold stops the master's
// stream to the replica (the replica still acknowledges what it has); Cut closes every
// connection, dropping what was held.
type Link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	cut   bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func startLink(tb testing.TB, target string) *Link {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("hatest: link: %v", err)
	}
	l := &Link{ln: ln, target: target}
	l.cond = sync.NewCond(&l.mu)
	l.wg.Add(1)
	go l.accept()
	tb.Cleanup(func() { l.Cut(); _ = ln.Close(); l.wg.Wait() })
	return l
}

// Port is the port the replica connects to.
func (l *Link) Port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		down, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			_ = down.Close()
			_ = up.Close()
			continue
		}
		l.conns = append(l.conns, down, up)
		l.mu.Unlock()
		l.wg.Add(2)
		go l.pipe(down, up, false) // replica → master: REPLCONF ACK, never held
		go l.pipe(up, down, true)  // master → replica: the replication stream
	}
}

func (l *Link) pipe(src, dst net.Conn, gated bool) {
	defer l.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if gated {
				l.mu.Lock()
				for l.held && !l.cut {
					l.cond.Wait()
				}
				cut := l.cut
				l.mu.Unlock()
				if cut {
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Hold stops passing the master's stream to the replica.
func (l *Link) Hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// Cut closes every connection of the link and refuses new ones: what Hold kept back
// never reaches the replica.
func (l *Link) Cut() {
	l.mu.Lock()
	l.cut = true
	conns := l.conns
	l.conns = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// SentinelAddrs returns the sentinels' addresses.
func (s *SentinelSet) SentinelAddrs() []string {
	var a []string
	for _, x := range s.Sentinels {
		a = append(a, x.Addr())
	}
	return a
}

// URL is the set's REDIS_URL in faceidq's Sentinel form (internal/redisconn):
// redis-sentinel://h1:p1,h2:p2,h3:p3/<master>.
func (s *SentinelSet) URL() string {
	return "redis-sentinel://" + strings.Join(s.SentinelAddrs(), ",") + "/" + s.MasterName
}

// MasterAddr asks the sentinels which address is the master now (the first that
// answers is believed).
func (s *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, x := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: x.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		a, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		_ = c.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		last = err
	}
	return "", fmt.Errorf("hatest: no sentinel named the master: %w", last)
}

// Master returns the data server that the sentinels currently call the master.
func (s *SentinelSet) Master() *redistest.Server {
	s.tb.Helper()
	addr, err := s.MasterAddr(context.Background())
	if err != nil {
		s.tb.Fatal(err)
	}
	for _, d := range s.Data {
		if d.Addr() == addr {
			return d
		}
	}
	s.tb.Fatalf("hatest: master %s is none of the data servers", addr)
	return nil
}

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Masters is the number of master nodes. Defaults to 3 (the least redis-cli
	// accepts).
	Masters int
	// NodeTimeout is cluster-node-timeout. Defaults to 2s.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
}

// Cluster is a running Redis Cluster.
type Cluster struct {
	// Nodes are the master nodes.
	Nodes []*redistest.Server
}

// StartCluster starts a Redis Cluster of masters without replicas, with every slot
// assigned and cluster_state:ok on every node before it returns.
func StartCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Masters <= 0 {
		opts.Masters = 3
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	cli := redistest.Binary(tb, "redis-cli")
	c := &Cluster{}
	for i := 0; i < opts.Masters; i++ {
		args := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10)}, opts.Args...)
		c.Nodes = append(c.Nodes, redistest.Start(tb, redistest.Options{Args: args}))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("hatest: redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, n := range c.Nodes {
		nc := n.Client(tb)
		waittest.Until(tb, 20*time.Second, "cluster_state:ok on "+n.Addr(), func() bool {
			info, err := nc.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(opts.Masters))
		})
	}
	return c
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// URL is the cluster's REDIS_URL in faceidq's Cluster form (internal/redisconn):
// redis-cluster://h1:p1,h2:p2,h3:p3.
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }
