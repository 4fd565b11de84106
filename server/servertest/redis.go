package servertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServerPath is where the Debian redis-server package installs the server.
const RedisServerPath = "/usr/bin/redis-server"

// Redis is a private redis-server process for one test.
type Redis struct {
	// URL is redis://127.0.0.1:PORT/0.
	URL  string
	Addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a real redis-server on a free loopback port, without
// persistence; it stops when the test ends. Without redis-server the test is
// skipped, unless SMARTLABS_REQUIRE_REDIS=1 (the Makefile's test target sets it).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := os.Stat(RedisServerPath); err != nil {
		if os.Getenv("SMARTLABS_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server is required (SMARTLABS_REQUIRE_REDIS=1) but %s is missing: run make deps", RedisServerPath)
		}
		t.Skipf("%s not installed; set SMARTLABS_REQUIRE_REDIS=1 to make this a failure", RedisServerPath)
	}
	var lastErr error
	// The free port is found by listening and closing, so another process
	// may take it in between: try a few ports.
	for range 3 {
		r, err := startRedis(t.TempDir())
		if err == nil {
			t.Cleanup(r.Stop)
			return r
		}
		lastErr = err
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func startRedis(dir string) (*Redis, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(RedisServerPath,
		"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &Redis{URL: "redis://" + addr + "/0", Addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()

	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("redis-server on %s exited: %v", addr, err)
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server on %s never answered: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit; it may be called twice.
// Tests call it to see how the app behaves while Redis is down.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Kill()
	<-r.done
}

// Client returns a new client of this server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Dump returns every key and value in the server: what an attacker holding
// a copy of Redis would see.
func (r *Redis) Dump(t testing.TB) map[string][]byte {
	t.Helper()
	c := r.Client(t)
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := c.Get(ctx, k).Bytes()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}
