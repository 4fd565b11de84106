package smart

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"smartlabs/server/config"
)

func TestDiscoverSmartConfiguration(t *testing.T) {
	f := newFakeEHR(t)
	c := mustClient(t, &clock{t: t0})
	d, err := c.Discover(context.Background(), f.issuer())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := &Discovery{
		Issuer:                   f.oauthIssuer(),
		AuthorizationEndpoint:    f.srv.URL + "/oauth2/authorize",
		TokenEndpoint:            f.tokenURL(),
		JWKSURI:                  f.srv.URL + "/oauth2/jwks",
		Capabilities:             []string{"launch-ehr", "launch-standalone", "authorize-post"},
		CodeChallengeMethods:     []string{"S256"},
		TokenEndpointAuthMethods: []string{"client_secret_basic", "private_key_jwt"},
	}
	if diff := cmp.Diff(want, d, cmpopts.IgnoreUnexported(Discovery{})); diff != "" {
		t.Errorf("Discovery (-want +got):\n%s", diff)
	}
	h := f.header("/fhir/.well-known/smart-configuration")
	if got := h.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
	if got := h.Get("Epic-Client-ID"); got != testClientID {
		t.Errorf("Epic-Client-ID = %q, want %q", got, testClientID)
	}
	if !d.Has("authorize-post") || d.Has("sso-openid-connect") {
		t.Errorf("Has() wrong for capabilities %v", d.Capabilities)
	}
	if n := f.count("/fhir/metadata"); n != 0 {
		t.Errorf("metadata fetched %d times, want 0", n)
	}
}

const capabilityStatementJSON = `{
  "resourceType": "CapabilityStatement",
  "rest": [{"mode": "server", "security": {"extension": [{
    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
    "extension": [
      {"url": "authorize", "valueUri": "%[1]s/oauth2/authorize"},
      {"url": "token", "valueUri": "%[1]s/oauth2/token"}
    ]}]}}]
}`

func TestDiscoverFallbackToMetadata(t *testing.T) {
	tests := []struct {
		name        string
		smartConfig http.HandlerFunc // nil means 404
	}{
		{"smart-configuration 404", nil},
		{"smart-configuration not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>sign in</html>"))
		}},
		{"smart-configuration without endpoints", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"capabilities": []string{"launch-ehr"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.handle("/fhir/.well-known/smart-configuration", tt.smartConfig)
			f.handle("/fhir/metadata", func(w http.ResponseWriter, r *http.Request) {
				// Like Epic, answer XML unless JSON is asked for.
				if r.Header.Get("Accept") != "application/fhir+json" {
					w.Header().Set("Content-Type", "application/fhir+xml")
					_, _ = w.Write([]byte("<CapabilityStatement/>"))
					return
				}
				w.Header().Set("Content-Type", "application/fhir+json")
				_, _ = w.Write([]byte(strings.ReplaceAll(capabilityStatementJSON, "%[1]s", f.srv.URL)))
			})
			c := mustClient(t, &clock{t: t0})
			d, err := c.Discover(context.Background(), f.issuer())
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if d.AuthorizationEndpoint != f.srv.URL+"/oauth2/authorize" || d.TokenEndpoint != f.tokenURL() {
				t.Errorf("endpoints = %q, %q", d.AuthorizationEndpoint, d.TokenEndpoint)
			}
			if d.Issuer != "" || d.JWKSURI != "" {
				t.Errorf("metadata discovery invented issuer %q / jwks %q", d.Issuer, d.JWKSURI)
			}
			h := f.header("/fhir/metadata")
			if got := h.Get("Accept"); got != "application/fhir+json" {
				t.Errorf("metadata Accept = %q, want application/fhir+json", got)
			}
			if got := h.Get("Epic-Client-ID"); got != testClientID {
				t.Errorf("metadata Epic-Client-ID = %q, want %q", got, testClientID)
			}
		})
	}
}

func TestDiscoverRejects(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(f *fakeEHR, m map[string]any)
		metadata string // served at /metadata when not empty
		want     ErrorKind
	}{
		{"plain PKCE only", func(f *fakeEHR, m map[string]any) {
			m["code_challenge_methods_supported"] = []string{"plain"}
		}, "", KindBadServer},
		{"relative token endpoint", func(f *fakeEHR, m map[string]any) {
			m["token_endpoint"] = "/oauth2/token"
		}, "", KindBadServer},
		{"http on a non-loopback host", func(f *fakeEHR, m map[string]any) {
			m["authorization_endpoint"] = "http://ehr.example.org/authorize"
		}, "", KindBadServer},
		{"javascript scheme", func(f *fakeEHR, m map[string]any) {
			m["authorization_endpoint"] = "javascript:alert(1)"
		}, "", KindBadServer},
		{"bad jwks_uri", func(f *fakeEHR, m map[string]any) {
			m["jwks_uri"] = "http://keys.example.org/jwks"
		}, "", KindBadServer},
		{"no endpoints anywhere", func(f *fakeEHR, m map[string]any) {
			delete(m, "token_endpoint")
		}, `{"resourceType":"CapabilityStatement","rest":[]}`, KindBadServer},
		{"metadata not JSON", func(f *fakeEHR, m map[string]any) {
			delete(m, "token_endpoint")
		}, `<CapabilityStatement/>`, KindBadServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.handle("/fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
				m := f.smartConfig()
				tt.mutate(f, m)
				writeJSON(w, m)
			})
			if tt.metadata != "" {
				f.handle("/fhir/metadata", func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(tt.metadata))
				})
			}
			_, err := mustClient(t, &clock{t: t0}).Discover(context.Background(), f.issuer())
			mustSmartError(t, err, tt.want)
		})
	}
}

func TestDiscoverUnreachable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()

	tests := []struct {
		name string
		iss  string
	}{
		{"connection refused", closedURL + "/fhir"},
		{"timeout", slow.URL + "/fhir"},
		{"upstream 503", failing.URL + "/fhir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(Options{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
			_, err := c.Discover(context.Background(), testIssuer(tt.iss))
			se := mustSmartError(t, err, KindUnreachable)
			if strings.Contains(se.Public, "127.0.0.1") {
				t.Errorf("Public text leaks the address: %q", se.Public)
			}
		})
	}
}

func TestDiscoverBodyLimit(t *testing.T) {
	f := newFakeEHR(t)
	f.handle("/fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("a", maxBody) + `"}`))
	})
	_, err := mustClient(t, &clock{t: t0}).Discover(context.Background(), f.issuer())
	mustSmartError(t, err, KindBadServer)
}

func testIssuer(iss string) config.Issuer {
	return config.Issuer{ISS: iss, ClientID: testClientID}
}

func TestDiscoverCache(t *testing.T) {
	f := newFakeEHR(t)
	clk := &clock{t: t0}
	c := NewClient(Options{Now: clk.now, DiscoveryTTL: 10 * time.Minute})
	ctx := context.Background()
	const path = "/fhir/.well-known/smart-configuration"

	steps := []struct {
		name    string
		advance time.Duration
		iss     config.Issuer
		want    int // requests seen so far
	}{
		{"first fetch", 0, f.issuer(), 1},
		{"cache hit", time.Minute, f.issuer(), 1},
		{"same issuer, trailing slash and upper-case scheme", 0, config.Issuer{ISS: strings.ToUpper(f.srv.URL[:7]) + f.srv.URL[7:] + "/fhir/", ClientID: testClientID}, 1},
		{"other client id is another entry", 0, config.Issuer{ISS: f.iss(), ClientID: "other"}, 2},
		{"still fresh just before TTL", 8*time.Minute + 59*time.Second, f.issuer(), 2},
		{"expired after TTL", time.Second, f.issuer(), 3},
		{"fresh again", time.Minute, f.issuer(), 3},
	}
	for _, s := range steps {
		clk.add(s.advance)
		if _, err := c.Discover(ctx, s.iss); err != nil {
			t.Fatalf("%s: Discover: %v", s.name, err)
		}
		if got := f.count(path); got != s.want {
			t.Errorf("%s: %d requests, want %d", s.name, got, s.want)
		}
	}
}

func TestDiscoverFailureNotCached(t *testing.T) {
	f := newFakeEHR(t)
	fail := true
	var mu sync.Mutex
	f.handle("/fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		writeJSON(w, f.smartConfig())
	})
	c := mustClient(t, &clock{t: t0})
	if _, err := c.Discover(context.Background(), f.issuer()); err == nil {
		t.Fatal("Discover succeeded against a failing server")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if _, err := c.Discover(context.Background(), f.issuer()); err != nil {
		t.Fatalf("Discover after recovery: %v", err)
	}
}

func TestDiscoverConcurrentCallersShareOneFetch(t *testing.T) {
	f := newFakeEHR(t)
	release := make(chan struct{})
	f.handle("/fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, f.smartConfig())
	})
	c := mustClient(t, &clock{t: t0})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Discover(context.Background(), f.issuer())
			errs <- err
		}()
	}
	// Give every goroutine time to join the fetch in flight before it completes.
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Discover: %v", err)
		}
	}
	if got := f.count("/fhir/.well-known/smart-configuration"); got != 1 {
		t.Errorf("%d fetches for %d concurrent callers, want 1", got, n)
	}
}
