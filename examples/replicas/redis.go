package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisOptions returns the options of REDIS_URL's server, or else starts
// a redis-server from PATH on a free loopback port, without persistence,
// in a temporary directory, and returns a func that stops it.
func redisOptions(ctx context.Context) (*redis.Options, func(), error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		fmt.Printf("using the Redis at %s\n", opts.Addr)
		return opts, func() {}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil, fmt.Errorf("no REDIS_URL and no redis-server on PATH: set REDIS_URL=redis://host:port/db or install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "replicas-redis-")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	opts := &redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	c := redis.NewClient(opts)
	defer c.Close()
	for {
		if c.Ping(ctx).Err() == nil {
			break
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, fmt.Errorf("redis-server did not start: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Printf("started redis-server on %s for this run\n", opts.Addr)
	return opts, stop, nil
}
