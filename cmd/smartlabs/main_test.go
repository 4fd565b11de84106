package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the program in the background and returns its output buffers
// and a function that stops it and returns run's error.
func start(t *testing.T, args ...string) (stdout, stderr *syncBuffer, stop func() error) {
	t.Helper()
	return startEnv(t, os.Getenv, args...)
}

// startEnv is start with the environment given as getenv.
func startEnv(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, getenv, stdout, stderr) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				t.Error("run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

// waitFor polls until re matches the output and returns the first submatch.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("output never matched %s: %q", re, out.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDemo(t *testing.T) {
	stdout, stderr, stop := start(t, "demo", "--listen", "127.0.0.1:0", "--ehr-listen", "127.0.0.1:0")
	ehr := waitFor(t, stdout, regexp.MustCompile(`Open the EHR simulator: (http://127\.0\.0\.1:\d+)/`))
	app := waitFor(t, stdout, regexp.MustCompile(`app at (http://localhost:\d+)`))
	if code, body := get(t, app+"/healthz"); code != 200 || !strings.HasPrefix(body, "ok") {
		t.Errorf("healthz = %d %q", code, body)
	}
	if code, _ := get(t, app+"/readyz"); code != 200 {
		t.Errorf("readyz = %d", code)
	}
	code, body := get(t, ehr+"/")
	if code != 200 || !strings.Contains(body, `data-testid="launch-`) {
		t.Fatalf("launchpad = %d", code)
	}
	// The launchpad's chart page embeds the app's Launch URL.
	m := regexp.MustCompile(`href="(/hyperspace\?patient=[^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no launch link")
	}
	_, chart := get(t, ehr+strings.ReplaceAll(m[1], "&amp;", "&"))
	if !strings.Contains(chart, `src="`+app+`/launch?iss=`) {
		t.Errorf("chart page does not frame the app at %s", app)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
	if strings.Contains(stderr.String(), `"level":"error"`) {
		t.Errorf("errors logged: %s", stderr.String())
	}
}

// TestDemoShowsRecentResults: in the demo, on whatever day it runs, every
// patient with lab results has some under "30 days": the simulator's data
// ends just before today.
func TestDemoShowsRecentResults(t *testing.T) {
	stdout, _, _ := start(t, "demo", "--listen", "127.0.0.1:0", "--ehr-listen", "127.0.0.1:0")
	ehr := waitFor(t, stdout, regexp.MustCompile(`Open the EHR simulator: (http://127\.0\.0\.1:\d+)/`))
	_, pad := get(t, ehr+"/")
	patients := regexp.MustCompile(`data-testid="result-count">(\d+)</td>\s*<td><a class="button" data-testid="launch-[^"]+" href="(/hyperspace\?patient=[^"]+)"`).FindAllStringSubmatch(pad, -1)
	if len(patients) < 3 {
		t.Fatalf("%d patients on the launchpad", len(patients))
	}
	frameSrc := regexp.MustCompile(`data-testid="app-frame"[^>]*src="([^"]+)"`)
	for _, p := range patients {
		if p[1] == "0" || p[1] == "5000" { // no results; the large history takes long and proves nothing more
			continue
		}
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		_, chart := get(t, ehr+html.UnescapeString(p[2]))
		m := frameSrc.FindStringSubmatch(chart)
		if m == nil {
			t.Fatalf("no app frame on %s", p[2])
		}
		resp, err := c.Get(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/l/") {
			t.Fatalf("%s: launch ended with %d at %s", p[2], resp.StatusCode, resp.Request.URL)
		}
		// The view follows its updates (#labs-live) while the results arrive;
		// read it again until they are all in.
		var body string
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := c.Get(resp.Request.URL.String() + "?view=all&range=30d")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); !strings.Contains(body, `id="labs-live"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the results never finished loading", p[2])
			}
		}
		if n := strings.Count(body, `data-testid="result-row"`); n == 0 {
			t.Errorf("%s: \"30 days\" shows no results", p[2])
		}
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "smartlabs.yaml")
	os.WriteFile(cfg, []byte(`
listen: 127.0.0.1:0
public_url: http://localhost:8080
issuers:
  - iss: https://ehr.example.org/fhir/R4
    client_id: abc
    client_secret: ${SMARTLABS_TEST_SECRET}
`), 0o600)
	t.Setenv("SMARTLABS_TEST_SECRET", "s")
	stdout, _, stop := start(t, "serve", "--config", cfg)
	addr := waitFor(t, stdout, regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("healthz = %d", code)
	}
	// An unknown iss gets a 400 page.
	if code, body := get(t, "http://"+addr+"/launch?iss=https://other.example/fhir"); code != 400 || !strings.Contains(body, "not set up for this EHR") {
		t.Errorf("unknown iss = %d", code)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "listen: 127.0.0.1:0\npublic_url: http://localhost\ncolour: red\nissuers: [{iss: 'https://a.example/f', client_id: x, client_secret: y}]\n", []string{"colour"}},
		{"unset variable", "listen: 127.0.0.1:0\npublic_url: http://localhost\nissuers: [{iss: 'https://a.example/f', client_id: x, client_secret: '${SMARTLABS_UNSET_VAR}'}]\n", []string{"issuers[0].client_secret", "SMARTLABS_UNSET_VAR"}},
		{"missing key file", "listen: 127.0.0.1:0\npublic_url: http://localhost\nissuers: [{iss: 'https://a.example/f', client_id: x, private_key_file: /nonexistent.pem}]\n", []string{"issuers[0].private_key_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o600)
			err := run(context.Background(), []string{"serve", "--config", p}, os.Getenv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if err := run(context.Background(), []string{"serve"}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("serve without --config succeeded")
	}
	if err := run(context.Background(), []string{"frobnicate"}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("unknown command succeeded")
	}
}

func TestKeysNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "org-prod")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "new", "--out", dir}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "privatekey.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st, err)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	if err := json.Unmarshal(b, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["d"] != nil {
		t.Fatalf("jwks.json: %s", b)
	}
	// A second run never overwrites a key.
	if err := run(context.Background(), []string{"keys", "new", "--out", dir}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("keys new overwrote existing files")
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, os.Getenv, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "smartlabs ") {
		t.Errorf("version: %q %v", out.String(), err)
	}
}
