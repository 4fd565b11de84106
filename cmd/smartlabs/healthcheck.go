package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"smartlabs/server/config"
)

// runHealthcheck handles "smartlabs healthcheck": it asks /healthz of the
// address the config listens on and fails unless the answer is 200. It is the
// container image's HEALTHCHECK, which has no shell and no curl.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML) of the server to check")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on the whole check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("healthcheck: --config FILE is required")
	}
	cfg, err := config.LoadFile(*path, getenv)
	if err != nil {
		return err
	}
	addr, err := probeAddr(cfg.Listen)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	// No proxy from the environment: the probe is for this host's own listener.
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
	line = strings.TrimSpace(line)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: http://%s/healthz answered %d", addr, resp.StatusCode)
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// probeAddr is where a process on the same host reaches a server listening
// on listen: an unspecified host (all interfaces) is reached on loopback.
func probeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen %q is not host:port", listen)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("listen %q has no fixed port to probe", listen)
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
