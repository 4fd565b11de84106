package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// mustConfigListening writes a minimal valid config that listens on listen.
func mustConfigListening(t *testing.T, listen string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smartlabs.yaml")
	yaml := "listen: " + listen + `
public_url: http://localhost:8080
issuers:
  - iss: https://ehr.example.org/fhir/R4
    client_id: abc
    client_secret: s
`
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHealthcheck runs `smartlabs healthcheck` against a running `smartlabs
// serve` and against listeners that are not healthy: only a 200 from
// /healthz passes, and a hung server fails within --timeout.
func TestHealthcheck(t *testing.T) {
	stdout, _, stop := start(t, "serve", "--config", mustConfigListening(t, "127.0.0.1:0"))
	addr := waitFor(t, stdout, regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))

	unhealthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unhealthy.Close)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name       string
		listen     string
		args       []string
		wantErr    string
		wantStdout string
	}{
		{name: "serve is up", listen: addr, wantStdout: "ok smartlabs "},
		{name: "serve on all interfaces is probed on loopback", listen: "0.0.0.0:" + addr[strings.LastIndex(addr, ":")+1:], wantStdout: "ok smartlabs "},
		{name: "healthz answers 503", listen: strings.TrimPrefix(unhealthy.URL, "http://"), wantErr: "answered 503"},
		{name: "server hangs", listen: strings.TrimPrefix(hung.URL, "http://"), args: []string{"--timeout", "100ms"}, wantErr: "deadline exceeded"},
		{name: "no fixed port", listen: "127.0.0.1:0", wantErr: "no fixed port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"healthcheck", "--config", mustConfigListening(t, tt.listen)}, tt.args...)
			begun := time.Now()
			err := run(context.Background(), args, os.Getenv, &out, io.Discard)
			if tt.wantErr == "" {
				if err != nil || !strings.HasPrefix(out.String(), tt.wantStdout) {
					t.Fatalf("healthcheck = %v, stdout %q; want nil and %q", err, out.String(), tt.wantStdout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("healthcheck = %v, want an error with %q", err, tt.wantErr)
			}
			// A failure bound only: the check must never hang the container runtime.
			if d := time.Since(begun); d > 10*time.Second {
				t.Errorf("healthcheck took %v", d)
			}
		})
	}

	// Once serve has stopped, the same check fails.
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "--config", mustConfigListening(t, addr)}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passed after serve stopped")
	}
	if err := run(context.Background(), []string{"healthcheck"}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck without --config passed")
	}
}

func TestProbeAddr(t *testing.T) {
	tests := []struct{ listen, want, wantErr string }{
		{listen: "127.0.0.1:8080", want: "127.0.0.1:8080"},
		{listen: "0.0.0.0:8080", want: "127.0.0.1:8080"},
		{listen: ":8080", want: "127.0.0.1:8080"},
		{listen: "[::]:8080", want: "[::1]:8080"},
		{listen: "10.1.2.3:8080", want: "10.1.2.3:8080"},
		{listen: "localhost:8080", want: "localhost:8080"},
		{listen: "127.0.0.1:0", wantErr: "no fixed port"},
		{listen: "8080", wantErr: "not host:port"},
	}
	for _, tt := range tests {
		got, err := probeAddr(tt.listen)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("probeAddr(%q) = %q, %v; want error %q", tt.listen, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("probeAddr(%q) = %q, %v; want %q", tt.listen, got, err, tt.want)
		}
	}
}
