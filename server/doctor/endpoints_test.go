package doctor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
)

// TestEndpointHosts: discovery naming an endpoint outside the issuer's host
// and allowed_hosts is a FAIL, and a refused jwks_uri is never fetched.
func TestEndpointHosts(t *testing.T) {
	var keyHits atomic.Int64
	keysSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keyHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	}))
	t.Cleanup(keysSrv.Close)
	keysHost := strings.TrimPrefix(keysSrv.URL, "http://")

	tests := []struct {
		name      string
		edit      func(m map[string]any)
		allowed   []string
		want      Status
		wantJWKS  Status
		wantHits  int64
		wantInRow string
	}{
		{"all on the issuer's host", func(map[string]any) {}, nil, Pass, Pass, 0, ""},
		{"token endpoint on a metrics port", func(m map[string]any) {
			m["token_endpoint"] = "http://127.0.0.1:9100/metrics"
		}, nil, Fail, Pass, 0, "token_endpoint http://127.0.0.1:9100/metrics"},
		{"JWKS on another host", func(m map[string]any) {
			m["jwks_uri"] = keysSrv.URL + "/jwks"
		}, nil, Fail, Skip, 0, "jwks_uri"},
		{"JWKS on an allowed host", func(m map[string]any) {
			m["jwks_uri"] = keysSrv.URL + "/jwks"
		}, []string{keysHost}, Pass, Pass, 1, keysHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyHits.Store(0)
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/fhir/.well-known/smart-configuration":
					m := map[string]any{
						"issuer":                                base + "/oauth2",
						"authorization_endpoint":                base + "/oauth2/authorize",
						"token_endpoint":                        base + "/oauth2/token",
						"jwks_uri":                              base + "/oauth2/jwks",
						"capabilities":                          []string{"launch-ehr", "launch-standalone"},
						"code_challenge_methods_supported":      []string{"S256"},
						"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
					}
					tt.edit(m)
					writeTestJSON(w, m)
				case "/oauth2/jwks":
					_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			base = srv.URL
			cfg := mustConfig(t, &config.Config{Issuers: []config.Issuer{
				{Name: "ehr", ISS: base + "/fhir", ClientID: "c", ClientSecret: "s", AllowedHosts: tt.allowed},
			}})
			rows := CheckIssuers(context.Background(), cfg, Options{Timeout: 2 * time.Second})
			got := verdicts(rows)
			if got["ehr/endpoint hosts"] != tt.want {
				t.Errorf("endpoint hosts = %q, want %q", got["ehr/endpoint hosts"], tt.want)
			}
			if got["ehr/id_token JWKS"] != tt.wantJWKS {
				t.Errorf("id_token JWKS = %q, want %q", got["ehr/id_token JWKS"], tt.wantJWKS)
			}
			if n := keyHits.Load(); n != tt.wantHits {
				t.Errorf("the other host was asked %d times, want %d", n, tt.wantHits)
			}
			if Failed(rows) != (tt.want == Fail) {
				t.Errorf("Failed = %v", Failed(rows))
			}
			for _, r := range rows {
				if r.Check == "endpoint hosts" && !strings.Contains(r.Detail, tt.wantInRow) {
					t.Errorf("row detail %q lacks %q", r.Detail, tt.wantInRow)
				}
			}
		})
	}
}

func writeTestJSON(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v)
}

// TestBackendEndpointHost: a backend-services check does not send its client
// assertion to a token endpoint that discovery names on another host.
func TestBackendEndpointHost(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, map[string]any{"token_endpoint": other.URL + "/token"})
	}))
	t.Cleanup(srv.Close)
	_, keyFiles := mustSim(t, ehrsim.Switches{})
	cfg := mustConfig(t, &config.Config{
		Issuers:         []config.Issuer{{ISS: srv.URL + "/fhir", ClientID: "c", ClientSecret: "s"}},
		BackendServices: []config.BackendService{{Name: "b", ISS: srv.URL + "/fhir", ClientID: "backend", PrivateKeyFile: keyFiles.PrivateKey, Scopes: "system/Patient.read"}},
	})
	rows, err := CheckBackend(context.Background(), cfg, "b", Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := verdicts(rows)
	if got["b/discovery"] != Fail || got["b/system token"] != Skip {
		t.Errorf("discovery = %q, system token = %q; want FAIL and SKIP", got["b/discovery"], got["b/system token"])
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the assertion was sent to the other host (%d requests)", n)
	}
}
