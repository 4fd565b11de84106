package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const good = `
listen: 127.0.0.1:8080
public_url: http://localhost:8080
frame_ancestors: ["https://*.epic.com"]
session:
  store: memory
  idle_timeout: 10m
  lifetime: 4h
issuers:
  - name: Epic sandbox
    iss: https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4
    client_id: ${EPIC_CLIENT_ID}
    client_secret: ${EPIC_CLIENT_SECRET}
`

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseGood(t *testing.T) {
	cfg, err := Parse([]byte(good), env(map[string]string{"EPIC_CLIENT_ID": "abc", "EPIC_CLIENT_SECRET": "s+/=: #x"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := cfg.Issuers[0].ClientID; got != "abc" {
		t.Errorf("client_id = %q, want abc", got)
	}
	// A value from the environment is taken literally, never as YAML.
	if got := cfg.Issuers[0].ClientSecret.Value(); got != "s+/=: #x" {
		t.Errorf("client_secret = %q", got)
	}
	if cfg.Session.IdleTimeout != 10*time.Minute || cfg.Session.Lifetime != 4*time.Hour {
		t.Errorf("durations = %v, %v", cfg.Session.IdleTimeout, cfg.Session.Lifetime)
	}
	if cfg.FHIR.PageSize != DefaultPageSize || cfg.FHIR.DiscoveryTTL != DefaultDiscoveryTTL {
		t.Errorf("defaults not applied: %+v", cfg.FHIR)
	}
	if got := cfg.RedirectURI(); got != "http://localhost:8080/callback" {
		t.Errorf("RedirectURI = %q", got)
	}
	if is := cfg.Issuers[0]; is.MaxParallel != DefaultMaxParallel || is.MaxInFlight != DefaultMaxInFlight {
		t.Errorf("max_parallel %d, max_in_flight %d; want the defaults %d, %d", is.MaxParallel, is.MaxInFlight, DefaultMaxParallel, DefaultMaxInFlight)
	}
}

// TestConcurrencyKeys: max_parallel and max_in_flight are set per issuer;
// max_parallel 1 (slicing off) is a value of its own, not the default.
func TestConcurrencyKeys(t *testing.T) {
	y := "listen: 127.0.0.1:1\npublic_url: http://localhost:8080\nissuers:\n" +
		"  - iss: https://a.example.org/fhir\n    client_id: a\n    client_secret: b\n    max_parallel: 1\n    max_in_flight: 3\n" +
		"  - iss: https://b.example.org/fhir\n    client_id: a\n    client_secret: b\n    max_parallel: 6\n"
	cfg, err := Parse([]byte(y), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := [][2]int{{cfg.Issuers[0].MaxParallel, cfg.Issuers[0].MaxInFlight}, {cfg.Issuers[1].MaxParallel, cfg.Issuers[1].MaxInFlight}}
	if want := [][2]int{{1, 3}, {6, DefaultMaxInFlight}}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("(max_parallel, max_in_flight) = %v, want %v", got, want)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	cfg, err := Parse([]byte(good), env(map[string]string{"EPIC_CLIENT_ID": "abc", "EPIC_CLIENT_SECRET": "topsecret"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "topsecret") {
			t.Fatalf("secret printed: %s", s)
		}
	}
	b, _ := cfg.Issuers[0].ClientSecret.MarshalText()
	if string(b) != "REDACTED" {
		t.Errorf("MarshalText = %q", b)
	}
}

func TestParseProblems(t *testing.T) {
	base := func(issuer string) string {
		return "listen: 127.0.0.1:8080\npublic_url: http://localhost:8080\nissuers:\n" + issuer
	}
	okIssuer := "  - iss: https://ehr.example.org/fhir\n    client_id: a\n    client_secret: b\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // every one must appear in the error
	}{
		{"unknown key", base(okIssuer) + "colour: blue\n", nil, []string{"colour"}},
		{"unknown issuer key", base(okIssuer + "    secret: x\n"), nil, []string{"secret"}},
		{"missing listen", "public_url: http://localhost:8080\nissuers:\n" + okIssuer, nil, []string{"listen: required"}},
		{"missing public_url", "listen: 127.0.0.1:1\nissuers:\n" + okIssuer, nil, []string{"public_url: required"}},
		{"no issuers", "listen: 127.0.0.1:1\npublic_url: http://localhost:8080\n", nil, []string{"issuers: at least one"}},
		{"unset env", base("  - iss: https://ehr.example.org/fhir\n    client_id: ${NOPE}\n    client_secret: b\n"), nil, []string{"issuers[0].client_id", "NOPE"}},
		{"secret and key", base("  - iss: https://ehr.example.org/fhir\n    client_id: a\n    client_secret: b\n    private_key_file: k.pem\n"), nil, []string{"issuers[0]: set client_secret or private_key_file, not both"}},
		{"neither secret nor key", base("  - iss: https://ehr.example.org/fhir\n    client_id: a\n"), nil, []string{"issuers[0]: set client_secret"}},
		{"http issuer", base("  - iss: http://ehr.example.org/fhir\n    client_id: a\n    client_secret: b\n"), nil, []string{"issuers[0].iss", "https"}},
		{"malformed issuer", base("  - iss: ehr.example.org\n    client_id: a\n    client_secret: b\n"), nil, []string{"issuers[0].iss", "absolute"}},
		{"missing iss and client", base("  - name: x\n"), nil, []string{"issuers[0].iss: required", "issuers[0].client_id: required"}},
		{"http public_url", "listen: 127.0.0.1:1\npublic_url: http://app.example.org\nissuers:\n" + okIssuer, nil, []string{"public_url", "https"}},
		{"duplicate issuer", base(okIssuer + "  - iss: HTTPS://EHR.example.org/fhir/\n    client_id: a\n    client_secret: b\n"), nil, []string{"issuers[1].iss: same issuer"}},
		{"bad store", base(okIssuer) + "session:\n  store: disk\n", nil, []string{"session.store"}},
		{"redis without url", base(okIssuer) + "session:\n  store: redis\n", nil, []string{"session.redis_url: required"}},
		{"bad frame ancestor", base(okIssuer) + "frame_ancestors: [\"https://x.org; script-src *\"]\n", nil, []string{"frame_ancestors[0]"}},
		{"bad duration", base(okIssuer) + "session:\n  idle_timeout: soon\n", nil, []string{"yaml"}},
		{"bad time zone", base(okIssuer) + "time_zone: Mars/Olympus\n", nil, []string{"time_zone"}},
		{"allowed host with a scheme", base(okIssuer + "    allowed_hosts: [\"https://auth.example.org\"]\n"), nil, []string{"issuers[0].allowed_hosts[0]"}},
		{"allowed host with a path", base(okIssuer + "    allowed_hosts: [\"auth.example.org/token\"]\n"), nil, []string{"issuers[0].allowed_hosts[0]"}},
		{"allowed host wildcard", base(okIssuer + "    allowed_hosts: [\"ok.example.org\", \"*.example.org\"]\n"), nil, []string{"issuers[0].allowed_hosts[1]"}},
		{"allowed host bad port", base(okIssuer + "    allowed_hosts: [\"auth.example.org:99999\"]\n"), nil, []string{"issuers[0].allowed_hosts[0]"}},
		{"allowed host empty", base(okIssuer + "    allowed_hosts: [\"\"]\n"), nil, []string{"issuers[0].allowed_hosts[0]"}},
		{"negative max_parallel", base(okIssuer + "    max_parallel: -1\n"), nil, []string{"issuers[0].max_parallel"}},
		{"huge max_parallel", base(okIssuer + "    max_parallel: 1000\n"), nil, []string{"issuers[0].max_parallel"}},
		{"negative max_in_flight", base(okIssuer + "    max_in_flight: -2\n"), nil, []string{"issuers[0].max_in_flight"}},
		{"several at once", "listen: nope\npublic_url: ftp://x\nissuers:\n  - client_id: a\n    client_secret: b\n", nil, []string{"listen:", "public_url:", "issuers[0].iss: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoopbackHTTPAllowed(t *testing.T) {
	for _, host := range []string{"localhost:9000", "127.0.0.1:9000", "[::1]:9000"} {
		y := "listen: 127.0.0.1:1\npublic_url: http://" + host + "\nissuers:\n  - iss: http://" + host + "/fhir/R4\n    client_id: a\n    client_secret: b\n"
		if _, err := Parse([]byte(y), env(nil)); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
}

func TestAllowedHostsAccepted(t *testing.T) {
	y := "listen: 127.0.0.1:1\npublic_url: http://localhost:8080\nissuers:\n  - iss: https://ehr.example.org/fhir\n    client_id: a\n    client_secret: b\n" +
		"    allowed_hosts: [auth.example.org, \"keys.example.org:8443\", 192.0.2.7, \"[2001:db8::1]:443\", \"[2001:db8::2]\"]\n"
	cfg, err := Parse([]byte(y), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := len(cfg.Issuers[0].AllowedHosts); got != 5 {
		t.Errorf("%d allowed hosts, want 5", got)
	}
}

func TestLookup(t *testing.T) {
	cfg := &Config{Issuers: []Issuer{{ISS: "https://fhir.example.org/api/FHIR/R4"}}}
	tests := []struct {
		iss  string
		want bool
	}{
		{"https://fhir.example.org/api/FHIR/R4", true},
		{"https://fhir.example.org/api/FHIR/R4/", true},
		{"HTTPS://FHIR.Example.ORG/api/FHIR/R4", true},
		{"https://fhir.example.org/api/fhir/r4", false}, // path compared exactly
		{"https://fhir.example.org/api/FHIR/R4//", false},
		{"http://fhir.example.org/api/FHIR/R4", false},
		{"https://fhir.example.org.evil.com/api/FHIR/R4", false},
		{"https://fhir.example.org/api/FHIR/R4?x=1", false},
		{"https://user@fhir.example.org/api/FHIR/R4", false},
		{"", false},
		{"not a url", false},
		{"%zz", false},
	}
	for _, tt := range tests {
		if got := cfg.Lookup(tt.iss) != nil; got != tt.want {
			t.Errorf("Lookup(%q) = %v, want %v", tt.iss, got, tt.want)
		}
	}
}

// TestShippedConfigs keeps the files in configs/ and deploy/compose/ loadable
// (deploy/k8s's ConfigMap is checked by deploy/k8s/check).
func TestShippedConfigs(t *testing.T) {
	e := env(map[string]string{"EPIC_CLIENT_ID": "id", "EPIC_CLIENT_SECRET": "s", "SMARTLABS_REDIS_URL": "redis://127.0.0.1:6379/0", "SMARTLABS_PUBLIC_URL": "https://smartlabs.example.org", "SIM_CLIENT_SECRET": "s"})
	for _, f := range []string{"../../configs/example.yaml", "../../configs/epic-sandbox.yaml", "../../deploy/compose/smartlabs.yaml"} {
		_, err := LoadFile(f, e)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
