package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/keys"
)

// mustSim starts a simulator on loopback with a secret client, a JWT client
// and a backend client, and returns it with its key files.
func mustSim(t *testing.T, sw ehrsim.Switches) (*ehrsim.Sim, keys.Files) {
	t.Helper()
	f, err := keys.WriteNew(t.TempDir(), keys.MinBits)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := os.ReadFile(f.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ehrsim.New(ehrsim.Options{
		Clients: []ehrsim.Client{
			{ID: "app-secret", Secret: "s", RedirectURIs: []string{"http://localhost:8080/callback"}},
			{ID: "app-jwt", JWKS: jwks, RedirectURIs: []string{"http://localhost:8080/callback"}},
			{ID: "backend", Backend: true, JWKS: jwks},
		},
		Switches: sw,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	return sim, f
}

func mustConfig(t *testing.T, c *config.Config) *config.Config {
	t.Helper()
	c.Listen, c.PublicURL = "127.0.0.1:8080", "http://localhost:8080"
	if err := config.Finish(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// verdicts maps "subject/check" to the status, for compact comparisons.
func verdicts(rows []Row) map[string]Status {
	m := map[string]Status{}
	for _, r := range rows {
		m[r.Subject+"/"+r.Check] = r.Status
	}
	return m
}

func TestCheckIssuers(t *testing.T) {
	healthy, keyFiles := mustSim(t, ehrsim.Switches{})
	healthy2, _ := mustSim(t, ehrsim.Switches{})
	noS256, _ := mustSim(t, ehrsim.Switches{NoS256: true})
	down, _ := mustSim(t, ehrsim.Switches{DiscoveryDown: true})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	cfg := mustConfig(t, &config.Config{Issuers: []config.Issuer{
		{Name: "healthy", ISS: healthy.ISS(), ClientID: "app-jwt", PrivateKeyFile: keyFiles.PrivateKey, RedirectPath: "/callback/healthy"},
		{Name: "secret", ISS: healthy2.ISS(), ClientID: "app-secret", ClientSecret: "s", AuthorizePost: true},
		{Name: "no-s256", ISS: noS256.ISS(), ClientID: "app-secret", ClientSecret: "s"},
		{Name: "down", ISS: down.ISS(), ClientID: "app-secret", ClientSecret: "s"},
		{Name: "unreachable", ISS: closed.URL + "/fhir/R4", ClientID: "app-secret", ClientSecret: "s"},
	}})
	rows := CheckIssuers(context.Background(), cfg, Options{Timeout: 2 * time.Second})
	got := verdicts(rows)

	want := map[string]Status{
		"healthy/discovery":                      Pass,
		"healthy/capability launch-ehr":          Pass,
		"healthy/capability launch-standalone":   Pass,
		"healthy/PKCE S256":                      Pass,
		"healthy/client auth private_key_jwt":    Pass,
		"healthy/assertion alg RS384":            Pass,
		"healthy/id_token JWKS":                  Pass,
		"healthy/private key":                    Pass,
		"healthy/JWKS URL":                       Info,
		"secret/client auth client_secret_basic": Pass,
		"secret/capability authorize-post":       Pass,
		"no-s256/discovery":                      Pass,
		"no-s256/PKCE S256":                      Fail,
		"no-s256/capability launch-ehr":          Pass,
		"down/discovery":                         Fail,
		"down/PKCE S256":                         Skip,
		"unreachable/discovery":                  Fail,
		"unreachable/id_token JWKS":              Skip,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	for _, r := range rows {
		if strings.HasPrefix(r.Subject, "healthy") || r.Subject == "secret" {
			if r.Status == Fail {
				t.Errorf("healthy issuer row failed: %+v", r)
			}
		}
		if r.Subject == "healthy" && r.Check == "redirect URI" && r.Detail != "register exactly http://localhost:8080/callback/healthy" {
			t.Errorf("redirect URI row = %q", r.Detail)
		}
	}
	if !Failed(rows) {
		t.Error("Failed = false with broken issuers")
	}
	if Failed(CheckIssuers(context.Background(), mustConfig(t, &config.Config{Issuers: cfg.Issuers[:2]}), Options{})) {
		t.Error("Failed = true for the healthy issuers alone")
	}

	var buf bytes.Buffer
	if err := WriteTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, w := range []string{"SUBJECT", "no-s256", "PKCE S256", "FAIL", "check(s) FAILED"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
}

// tokenSpy records every token endpoint response body the doctor received.
type tokenSpy struct {
	bodies []string
}

func (s *tokenSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/token") {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.bodies = append(s.bodies, string(b))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func TestCheckBackend(t *testing.T) {
	sim, keyFiles := mustSim(t, ehrsim.Switches{TokenLifetime: 5 * time.Minute})
	now := time.Now()
	cfg := mustConfig(t, &config.Config{
		Issuers: []config.Issuer{{ISS: sim.ISS(), ClientID: "app-secret", ClientSecret: "s"}},
		BackendServices: []config.BackendService{
			{Name: "by-iss", ISS: sim.ISS(), ClientID: "backend", PrivateKeyFile: keyFiles.PrivateKey, Scopes: "system/Observation.read"},
			{Name: "by-url", TokenURL: sim.TokenURL(), ClientID: "backend", PrivateKeyFile: keyFiles.PrivateKey, Scopes: "system/Patient.read"},
			{Name: "clinician-app", TokenURL: sim.TokenURL(), ClientID: "app-jwt", PrivateKeyFile: keyFiles.PrivateKey, Scopes: "system/Patient.read"},
		},
	})
	tests := []struct {
		name       string
		wantStatus Status
		wantDetail string
	}{
		{"by-iss", Pass, `granted scope "system/Observation.read", expires in 5m0s`},
		{"by-url", Pass, `granted scope "system/Patient.read", expires in 5m0s`},
		// The clinician app's client is not registered for client_credentials.
		{"clinician-app", Fail, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy := &tokenSpy{}
			rows, err := CheckBackend(context.Background(), cfg, tt.name, Options{
				HTTPClient: &http.Client{Transport: spy}, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			last := rows[len(rows)-1]
			if last.Check != "system token" || last.Status != tt.wantStatus || !strings.Contains(last.Detail, tt.wantDetail) {
				t.Errorf("last row = %+v, want %s containing %q", last, tt.wantStatus, tt.wantDetail)
			}
			if diff := cmp.Diff(Info, rows[0].Status); diff != "" || !strings.Contains(rows[0].Detail, "not the clinician app's") {
				t.Errorf("first row does not say what is (not) proven: %+v", rows[0])
			}
			// The token never reaches the rows.
			for _, body := range spy.bodies {
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				if json.Unmarshal([]byte(body), &tok) == nil && tok.AccessToken != "" {
					var buf bytes.Buffer
					_ = WriteTable(&buf, rows)
					if strings.Contains(buf.String(), tok.AccessToken[len(tok.AccessToken)/2:][:24]) {
						t.Error("the access token appears in the doctor's output")
					}
				}
			}
			if tt.wantStatus == Pass && len(spy.bodies) == 0 {
				t.Error("no token response seen: the leak check proved nothing")
			}
		})
	}
	if _, err := CheckBackend(context.Background(), cfg, "nope", Options{}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("unknown backend: err = %v", err)
	}
}
