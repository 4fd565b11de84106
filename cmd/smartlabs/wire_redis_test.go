package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smartlabs/server/servertest"
)

// TestServeWithRedis runs `smartlabs serve` with session.store: redis against
// a real redis-server: /readyz follows Redis, the session cookie's store write
// lands in Redis hashed and encrypted.
func TestServeWithRedis(t *testing.T) {
	rs := servertest.StartRedis(t)
	cfg := filepath.Join(t.TempDir(), "smartlabs.yaml")
	os.WriteFile(cfg, []byte(`
listen: 127.0.0.1:0
public_url: http://localhost:8080
session:
  store: redis
  redis_url: ${SMARTLABS_TEST_REDIS_URL}
issuers:
  - iss: https://ehr.example.org/fhir/R4
    client_id: abc
    client_secret: s
`), 0o600)
	t.Setenv("SMARTLABS_TEST_REDIS_URL", rs.URL)
	stdout, stderr, stop := start(t, "serve", "--config", cfg)
	addr := waitFor(t, stdout, regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("readyz with Redis up = %d %q", code, body)
	}
	// The cookie check of /launch creates a session: it must reach Redis, encrypted.
	if code, _ := get(t, "http://"+addr+"/launch?iss=https://ehr.example.org/fhir/R4"); code != 400 {
		t.Errorf("launch without cookie support = %d, want 400", code)
	}
	d := rs.Dump(t)
	sessions := 0
	for k, v := range d {
		if strings.HasPrefix(k, "smartlabs:scs:") {
			sessions++
			if strings.Contains(string(v), "browser") {
				t.Errorf("session %s stored in clear", k)
			}
		}
	}
	if sessions == 0 {
		t.Fatalf("no session in Redis: %d keys", len(d))
	}
	rs.Stop()
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 503 {
		t.Errorf("readyz with Redis down = %d, want 503", code)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("healthz with Redis down = %d, want 200", code)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
	if strings.Contains(stderr.String(), rs.URL) {
		t.Error("the Redis URL was logged")
	}
}
