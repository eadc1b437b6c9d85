// Package redistest runs a real redis-server for the tests of redisstore:
// the one REDIS_URL names, or one it starts from PATH on a free loopback
// port in a temporary directory and stops when the test ends. Without
// either it skips the test with a message that says how to run it, but
// never under CI=true, where it fails it instead.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
)

// Server is a Redis server a test may use.
type Server struct {
	// Addr is the server's host:port.
	Addr string
	opts *redis.Options

	// Set only for a server this package started.
	bin, dir string
	port     int
	args     []string
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startTimeout bounds how long a started server may take to answer.
const startTimeout = 15 * time.Second

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("redistest: %s; CI=true, so this test must not skip (is .ci/run installing redis-server?)", why)
	}
	t.Skipf("redistest: %s; skipping. Install redis-server (apt-get install redis-server) or set REDIS_URL=redis://host:port/db to run this test", why)
}

// Start returns the server REDIS_URL names, shared by every test (each
// test keeps to its own Prefix), or else a new server started from PATH
// and stopped when t ends. It skips t when neither is possible, unless
// CI=true, where it fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("redistest: REDIS_URL: %v", err)
		}
		s := &Server{Addr: opts.Addr, opts: opts}
		s.ping(t)
		return s
	}
	return StartLocal(t, false)
}

// StartLocal starts a new redis-server from PATH, whatever REDIS_URL
// says, for tests that stop or restart it, and stops it when t ends. With
// durable, every write is on disk before Redis answers it (appendfsync
// always), so that a Kill loses nothing; otherwise writes are flushed
// every second and on a clean stop. It skips t when redis-server is not
// on PATH, unless CI=true, where it fails t.
func StartLocal(t testing.TB, durable bool, extraArgs ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "no redis-server on PATH and no REDIS_URL")
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	fsync := "everysec"
	if durable {
		fsync = "always"
	}
	args := append([]string{
		"--bind", "127.0.0.1", "--protected-mode", "no", "--save", "",
		"--appendonly", "yes", "--appendfsync", fsync, "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}, extraArgs...)
	var lastErr error
	for range 5 { // another process may take the free port first
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.opts = &redis.Options{Addr: s.Addr}
		if lastErr = s.start(args); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("redistest: %v", lastErr)
	}
	s.args = args
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server and waits until it answers.
func (s *Server) start(args []string) error {
	cmd := exec.Command(s.bin, append([]string{"--port", strconv.Itoa(s.port)}, args...)...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %v\n%s", s.port, err, tail(log))
		case <-time.After(5 * time.Millisecond): // polling a process start, not a test
		}
		if time.Now().After(deadline) {
			s.kill(syscall.SIGKILL)
			return fmt.Errorf("redis-server on port %d not ready within %v: %v", s.port, startTimeout, err)
		}
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// kill signals the server and waits for it to exit.
func (s *Server) kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Stop stops a server this package started (SIGTERM: Redis flushes its
// writes first). It does nothing for REDIS_URL's or a stopped one.
func (s *Server) Stop() { s.kill(syscall.SIGTERM) }

// Kill stops a server this package started as a crash would (SIGKILL).
func (s *Server) Kill() { s.kill(syscall.SIGKILL) }

// Restart starts a server this package started and then stopped, on the
// same port and with the same data; it fails t if it cannot.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatal("redistest: Restart of a server this package did not start")
	}
	if err := s.start(s.args); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) ping(t testing.TB) {
	t.Helper()
	c := redis.NewClient(s.opts)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		unavailable(t, fmt.Sprintf("REDIS_URL's server %s does not answer: %v", s.Addr, err))
	}
}

// Client returns a new client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	o := *s.opts
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses, for a server tests may
// share.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "redistest:" + hex.EncodeToString(b[:]) + ":"
}

// StartCluster starts a Redis Cluster of n masters (no replicas), each a
// redis-server from PATH, with the slots split evenly, and returns their
// addresses once the cluster answers; it stops them when t ends. It skips
// or fails t as StartLocal does.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	nodes := make([]*Server, n)
	addrs := make([]string, n)
	for i := range nodes {
		nodes[i] = StartLocal(t, false, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		addrs[i] = nodes[i].Addr
	}
	ctx := context.Background()
	const slots = 16384
	for i, node := range nodes {
		c := redis.NewClient(&redis.Options{Addr: node.Addr})
		lo, hi := i*slots/n, (i+1)*slots/n
		args := []any{"CLUSTER", "ADDSLOTS"}
		for slot := lo; slot < hi; slot++ {
			args = append(args, slot)
		}
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTS on %s: %v", node.Addr, err)
		}
		if i > 0 {
			if err := c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(nodes[0].port)).Err(); err != nil {
				t.Fatalf("redistest: CLUSTER MEET from %s: %v", node.Addr, err)
			}
		}
		_ = c.Close()
	}
	deadline := time.Now().Add(startTimeout)
	for _, node := range nodes {
		c := redis.NewClient(&redis.Options{Addr: node.Addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ready within %v: %v\n%s", startTimeout, err, info)
			}
			time.Sleep(10 * time.Millisecond) // polling a cluster forming, not a test
		}
		_ = c.Close()
	}
	return addrs
}
