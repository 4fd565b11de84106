package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const multi = `
listen: 127.0.0.1:8080
public_url: https://labs.example.org/
frame_ancestors: ["https://*.epic.com"]
metrics_listen: 127.0.0.1:9100
issuers:
  - name: Org A prod
    iss: https://fhir.org-a.example/api/FHIR/R4
    client_id: a-prod
    client_secret: s
    frame_ancestors: ["https://hyperspace.org-a.example"]
    redirect_path: /callback/org-a
  - name: Org B prod
    iss: https://fhir.org-b.example/api/FHIR/R4
    client_id: b-prod
    private_key_file: keys/b/privatekey.pem
    extra_public_keys: [keys/b-old/jwks.json]
backend_services:
  - name: org-b-backend
    iss: https://fhir.org-b.example/api/FHIR/R4
    client_id: b-backend
    private_key_file: keys/b-backend/privatekey.pem
    scopes: system/Observation.read
`

func TestParseMultiIssuer(t *testing.T) {
	cfg, err := Parse([]byte(multi), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &cfg.Issuers[0], &cfg.Issuers[1]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"redirect A", cfg.RedirectURIFor(a), "https://labs.example.org/callback/org-a"},
		{"redirect B", cfg.RedirectURIFor(b), "https://labs.example.org/callback"},
		{"redirect nil", cfg.RedirectURIFor(nil), cfg.RedirectURI()},
		{"paths", cfg.RedirectPaths(), []string{"/callback", "/callback/org-a"}},
		{"frame A", cfg.FrameAncestorsFor(a), []string{"https://hyperspace.org-a.example"}},
		{"frame B", cfg.FrameAncestorsFor(b), []string{"https://*.epic.com"}},
		{"frame none", cfg.FrameAncestorsFor(nil), []string{"https://*.epic.com"}},
		{"jwks", cfg.JWKSURL(), "https://labs.example.org/.well-known/jwks.json"},
		{"metrics", cfg.MetricsListen, "127.0.0.1:9100"},
		{"backend", cfg.Backend("org-b-backend").ClientID, "b-backend"},
		{"no backend", cfg.Backend("nope") == nil, true},
		{"extra keys", b.ExtraPublicKeys, []string{"keys/b-old/jwks.json"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		want    string
	}{
		{"bad redirect path", [2]string{"/callback/org-a", "/launch"}, "issuers[0].redirect_path"},
		{"redirect path with slash", [2]string{"/callback/org-a", "/callback/a/b"}, "issuers[0].redirect_path"},
		{"bad issuer frame ancestor", [2]string{"https://hyperspace.org-a.example", "https://x; script-src *"}, "issuers[0].frame_ancestors[0]"},
		{"metrics same as listen", [2]string{"metrics_listen: 127.0.0.1:9100", "metrics_listen: 127.0.0.1:8080"}, "metrics_listen: must differ"},
		{"metrics not host:port", [2]string{"metrics_listen: 127.0.0.1:9100", "metrics_listen: nine"}, "metrics_listen"},
		{"extra keys without private key", [2]string{"client_secret: s\n", "client_secret: s\n    extra_public_keys: [k.json]\n"}, "issuers[0].extra_public_keys"},
		{"backend without key", [2]string{"    private_key_file: keys/b-backend/privatekey.pem\n", ""}, "backend_services[0].private_key_file"},
		{"backend without scopes", [2]string{"    scopes: system/Observation.read\n", ""}, "backend_services[0].scopes"},
		{"backend http", [2]string{"    iss: https://fhir.org-b.example/api/FHIR/R4\n    client_id: b-backend", "    iss: http://fhir.org-b.example/api/FHIR/R4\n    client_id: b-backend"}, "backend_services[0].iss"},
		{"backend both urls", [2]string{"    client_id: b-backend", "    client_id: b-backend\n    token_url: https://x.example/token"}, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(multi, tt.replace[0], tt.replace[1], 1)
			if src == multi {
				t.Fatalf("replacement %q not found", tt.replace[0])
			}
			_, err := Parse([]byte(src), env(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
