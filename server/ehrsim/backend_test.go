package ehrsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

const backendClient = "backend-1"

// backendFixture is a simulator with a backend client (static JWKS, RSA and
// EC keys) and the usual secret client, on a loopback test server.
type backendFixture struct {
	*fixture
	ecKey *ecdsa.PrivateKey
}

func mustBackendFixture(t *testing.T) *backendFixture {
	t.Helper()
	simKey, appKey := mustKeys(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &appKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS384", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "ec-1", Algorithm: "ES384", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{appKey: appKey}
	f.clock.Store(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).UnixNano())
	sim, err := New(Options{
		Clients: []Client{
			{ID: backendClient, Backend: true, JWKS: jwks},
			{ID: secretClient, Secret: testSecret, RedirectURIs: []string{testRedirect}},
		},
		Now: f.now, SigningKey: simKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sim = sim
	f.srv = httptest.NewServer(sim)
	t.Cleanup(f.srv.Close)
	sim.SetBaseURL(f.srv.URL)
	f.http = &http.Client{Timeout: 10 * time.Second}
	return &backendFixture{fixture: f, ecKey: ecKey}
}

func (f *backendFixture) backendAssertion(t *testing.T, alg jose.SignatureAlgorithm, kid string) string {
	t.Helper()
	var key any = f.appKey
	if alg == jose.ES384 {
		key = f.ecKey
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": backendClient, "sub": backendClient, "aud": f.sim.TokenURL(),
		"jti": randomString(16), "exp": f.now().Add(4 * time.Minute).Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClientCredentials(t *testing.T) {
	f := mustBackendFixture(t)
	tests := []struct {
		name       string
		form       func() url.Values
		user       string
		wantStatus int
		wantError  string
		wantScope  string
	}{
		{"RS384 assertion", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.read launch"},
				"client_assertion_type": {jwtBearerType}, "client_assertion": {f.backendAssertion(t, jose.RS384, "rsa-1")}}
		}, "", 200, "", "system/Observation.read"},
		{"ES384 assertion", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.read"},
				"client_assertion_type": {jwtBearerType}, "client_assertion": {f.backendAssertion(t, jose.ES384, "ec-1")}}
		}, "", 200, "", "system/Patient.read"},
		{"EC key named as RS384", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.read"},
				"client_assertion_type": {jwtBearerType}, "client_assertion": {f.backendAssertion(t, jose.RS384, "ec-1")}}
		}, "", 401, "invalid_client", ""},
		{"no system scope", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"patient/Observation.read"},
				"client_assertion_type": {jwtBearerType}, "client_assertion": {f.backendAssertion(t, jose.RS384, "rsa-1")}}
		}, "", 400, "invalid_scope", ""},
		{"backend client tries a code", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"client_assertion_type": {jwtBearerType}, "client_assertion": {f.backendAssertion(t, jose.RS384, "rsa-1")}}
		}, "", 400, "unauthorized_client", ""},
		{"clinician app client", func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.read"}}
		}, secretClient, 400, "unauthorized_client", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pass := ""
			if tt.user != "" {
				pass = testSecret
			}
			status, body := f.tokenRequest(t, tt.form(), tt.user, pass)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%v), want %d", status, body["error"], tt.wantStatus)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError {
					t.Errorf("error = %v, want %s", body["error"], tt.wantError)
				}
				return
			}
			if body["scope"] != tt.wantScope || body["access_token"] == nil || body["refresh_token"] != nil {
				t.Errorf("body scope %v, token present %v, refresh %v", body["scope"], body["access_token"] != nil, body["refresh_token"] != nil)
			}
			// A system token reads no patient's data here.
			resp, _ := f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, body["access_token"].(string))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("patient read with a system token = %d, want 403", resp.StatusCode)
			}
		})
	}
}

func TestBackendClientCannotAuthorize(t *testing.T) {
	f := mustBackendFixture(t)
	v, _ := f.ehrLaunchParams(t, patientSpecs[0].id, secretClient, defaultScope)
	v.Set("client_id", backendClient)
	resp := f.authorize(t, v)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("authorize for a backend client = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestRequestLogNamesClientAuth(t *testing.T) {
	f := mustFixture(t, Switches{})
	code, verifier := f.mustCode(t, patientSpecs[0].id, jwtClient, defaultScope)
	form := codeForm(code, verifier)
	form.Set("client_assertion_type", jwtBearerType)
	form.Set("client_assertion", f.assertion(t, jose.RS384, appKeyID, nil))
	if status, _ := f.tokenRequest(t, form, "", ""); status != 200 {
		t.Fatalf("jwt exchange status %d", status)
	}
	f.mustToken(t, patientSpecs[0].id)
	type entry struct{ Client, Auth, Kid, Grant string }
	var got []entry
	for _, r := range f.sim.Requests() {
		if r.Path == "/oauth2/token" {
			got = append(got, entry{r.ClientID, r.ClientAuth, r.KeyID, r.Grant})
		}
	}
	want := []entry{
		{jwtClient, "private_key_jwt", appKeyID, "authorization_code"},
		{secretClient, "client_secret_basic", "", "authorization_code"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}
}

func TestDiscoverySwitches(t *testing.T) {
	tests := []struct {
		name       string
		sw         Switches
		wantStatus int
		wantPKCE   []string
	}{
		{"healthy", Switches{}, 200, []string{"S256"}},
		{"no S256", Switches{NoS256: true}, 200, []string{"plain"}},
		{"down", Switches{DiscoveryDown: true}, 503, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, tt.sw)
			resp, body := f.get(t, "/fhir/R4/.well-known/smart-configuration", "")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if meta, _ := f.get(t, "/fhir/R4/metadata", "", "Accept", "application/fhir+json"); tt.sw.DiscoveryDown != (meta.StatusCode == 503) {
				t.Errorf("metadata status = %d", meta.StatusCode)
			}
			if tt.wantStatus != 200 {
				return
			}
			var doc struct {
				PKCE   []string `json:"code_challenge_methods_supported"`
				Grants []string `json:"grant_types_supported"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantPKCE, doc.PKCE); diff != "" {
				t.Errorf("PKCE methods (-want +got):\n%s", diff)
			}
			if !strings.Contains(strings.Join(doc.Grants, " "), "client_credentials") {
				t.Errorf("grant types %v lack client_credentials", doc.Grants)
			}
		})
	}
}
