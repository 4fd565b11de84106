package smart

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smartlabs/server/config"
)

func TestCheckEndpoint(t *testing.T) {
	const epic = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"
	remote := config.Issuer{ISS: "https://ehr.example.org/api/FHIR/R4"}
	withAllowed := config.Issuer{ISS: remote.ISS, AllowedHosts: []string{"auth.example.org", "keys.example.org:8443", "[2001:db8::1]"}}
	local := config.Issuer{ISS: "http://127.0.0.1:8081/fhir/R4"}
	tests := []struct {
		name    string
		iss     config.Issuer
		raw     string
		wantErr bool
	}{
		{"Epic: issuer beside the FHIR base", config.Issuer{ISS: epic}, "https://fhir.epic.com/interconnect-fhir-oauth/oauth2", false},
		{"Epic: token endpoint", config.Issuer{ISS: epic}, "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token", false},
		{"same host", remote, "https://ehr.example.org/oauth2/token", false},
		{"same host, explicit default port", remote, "https://ehr.example.org:443/oauth2/token", false},
		{"same host, other case and a trailing dot", remote, "https://EHR.Example.ORG./oauth2/token", false},
		{"same host, other port", remote, "https://ehr.example.org:9100/metrics", true},
		{"other host", remote, "https://auth.example.org/token", true},
		{"sub-domain of the issuer's host", remote, "https://x.ehr.example.org/token", true},
		{"suffix trick", remote, "https://ehr.example.org.evil.com/token", true},
		{"loopback over http", remote, "http://127.0.0.1:9100/metrics", true},
		{"localhost over http", remote, "http://localhost/token", true},
		{"loopback over https", remote, "https://127.0.0.1:9100/metrics", true},
		{"same host over http", remote, "http://ehr.example.org/oauth2/token", true},
		{"credentials in the URL", remote, "https://user:pw@ehr.example.org/token", true},
		{"relative", remote, "/oauth2/token", true},
		{"javascript", remote, "javascript:alert(1)", true},
		{"allowed host", withAllowed, "https://auth.example.org/token", false},
		{"allowed host, other case", withAllowed, "https://AUTH.example.org/token", false},
		{"allowed host on another port", withAllowed, "https://auth.example.org:8443/token", true},
		{"allowed host:port", withAllowed, "https://keys.example.org:8443/jwks", false},
		{"allowed host:port, default port", withAllowed, "https://keys.example.org/jwks", true},
		{"allowed IPv6 host", withAllowed, "https://[2001:db8::1]/token", false},
		{"allowed host over http", withAllowed, "http://auth.example.org/token", true},
		{"issuer's own host still allowed", withAllowed, "https://ehr.example.org/token", false},
		{"loopback issuer: same host and port over http", local, "http://127.0.0.1:8081/oauth2/token", false},
		{"loopback issuer: another port", local, "http://127.0.0.1:9100/metrics", true},
		{"loopback issuer: localhost is another host", local, "http://localhost:8081/oauth2/token", true},
		{"loopback issuer: a remote host over http", config.Issuer{ISS: local.ISS, AllowedHosts: []string{"ehr.example.org"}}, "http://ehr.example.org/token", true},
		{"loopback issuer: allowed loopback port", config.Issuer{ISS: local.ISS, AllowedHosts: []string{"127.0.0.1:9000"}}, "http://127.0.0.1:9000/token", false},
		{"no issuer configured", config.Issuer{}, "https://ehr.example.org/token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckEndpoint(tt.iss, tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckEndpoint(%q) = %v, wantErr %v", tt.raw, err, tt.wantErr)
			}
		})
	}
}

// remoteEHR serves a smart-configuration over TLS for a non-loopback issuer:
// every connection the client makes lands on the test server, whatever host it names.
func remoteEHR(t *testing.T, doc func(m map[string]any), oidc map[string]any) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fhir/.well-known/smart-configuration":
			m := map[string]any{
				"issuer":                           "https://ehr.example.org/oauth2",
				"authorization_endpoint":           "https://ehr.example.org/oauth2/authorize",
				"token_endpoint":                   "https://ehr.example.org/oauth2/token",
				"jwks_uri":                         "https://ehr.example.org/oauth2/jwks",
				"code_challenge_methods_supported": []string{"S256"},
			}
			doc(m)
			writeJSON(w, m)
		case "/oauth2/.well-known/openid-configuration":
			writeJSON(w, oidc)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		// The test server's certificate names 127.0.0.1, not the hosts under test.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return NewClient(Options{HTTPClient: &http.Client{Transport: tr, Timeout: 5 * time.Second}, Now: (&clock{t: t0}).now})
}

// TestDiscoverEndpointHosts: a configured remote issuer's document cannot send
// the code and the client secret to another host or to a plain-http service
// on this machine, unless the operator allowed that host.
func TestDiscoverEndpointHosts(t *testing.T) {
	iss := config.Issuer{ISS: "https://ehr.example.org/fhir", ClientID: testClientID}
	tests := []struct {
		name    string
		allowed []string
		doc     func(m map[string]any)
		wantErr bool
	}{
		{"all on the issuer's host", nil, func(m map[string]any) {}, false},
		{"token endpoint on a loopback metrics port", nil, func(m map[string]any) {
			m["token_endpoint"] = "http://127.0.0.1:9100/metrics"
		}, true},
		{"token endpoint on localhost over https", nil, func(m map[string]any) {
			m["token_endpoint"] = "https://localhost:9100/metrics"
		}, true},
		{"authorize endpoint elsewhere", nil, func(m map[string]any) {
			m["authorization_endpoint"] = "https://login.evil.example/authorize"
		}, true},
		{"JWKS elsewhere", nil, func(m map[string]any) {
			m["jwks_uri"] = "https://keys.evil.example/jwks"
		}, true},
		{"issuer elsewhere", nil, func(m map[string]any) {
			m["issuer"] = "https://idp.evil.example/oauth2"
		}, true},
		{"authorization server on an allowed host", []string{"auth.example.org"}, func(m map[string]any) {
			m["issuer"] = "https://auth.example.org/"
			m["authorization_endpoint"] = "https://auth.example.org/authorize"
			m["token_endpoint"] = "https://auth.example.org/token"
			m["jwks_uri"] = "https://auth.example.org/jwks"
		}, false},
		{"allowed host does not admit http", []string{"auth.example.org"}, func(m map[string]any) {
			m["token_endpoint"] = "http://auth.example.org/token"
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := remoteEHR(t, tt.doc, nil)
			is := iss
			is.AllowedHosts = tt.allowed
			d, err := c.Discover(context.Background(), is)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Discover: %v", err)
				}
				return
			}
			se := mustSmartError(t, err, KindBadServer)
			if d != nil {
				t.Error("a discovery document came back with the error")
			}
			if strings.Contains(se.Public, "evil") || strings.Contains(se.Public, "127.0.0.1") {
				t.Errorf("Public text names the endpoint: %q", se.Public)
			}
		})
	}
}

// TestIDTokenKeysEndpointHosts: the jwks_uri and issuer an openid-configuration
// names are held to the same hosts as discovery's.
func TestIDTokenKeysEndpointHosts(t *testing.T) {
	iss := config.Issuer{ISS: "https://ehr.example.org/fhir", ClientID: testClientID}
	tests := []struct {
		name    string
		oidc    map[string]any
		wantErr bool
	}{
		{"on the issuer's host", map[string]any{"issuer": "https://ehr.example.org/oauth2", "jwks_uri": "https://ehr.example.org/oauth2/jwks"}, false},
		{"jwks_uri on a loopback port", map[string]any{"issuer": "https://ehr.example.org/oauth2", "jwks_uri": "http://127.0.0.1:9100/jwks"}, true},
		{"jwks_uri on another host", map[string]any{"issuer": "https://ehr.example.org/oauth2", "jwks_uri": "https://keys.evil.example/jwks"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := remoteEHR(t, func(m map[string]any) { delete(m, "jwks_uri") }, tt.oidc)
			d, err := c.Discover(context.Background(), iss)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			_, jwks, err := c.idTokenKeys(context.Background(), d, testClientID)
			if !tt.wantErr {
				if err != nil || jwks != tt.oidc["jwks_uri"] {
					t.Fatalf("idTokenKeys = %q, %v", jwks, err)
				}
				return
			}
			mustSmartError(t, err, KindBadServer)
		})
	}
}
