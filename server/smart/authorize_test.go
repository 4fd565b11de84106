package smart

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/config"
)

func TestNewAuthRequest(t *testing.T) {
	d := &Discovery{
		Issuer:                "https://ehr.example.org/oauth2",
		AuthorizationEndpoint: "https://ehr.example.org/oauth2/authorize?tenant=a",
		TokenEndpoint:         "https://ehr.example.org/oauth2/token",
		Capabilities:          []string{"launch-ehr", "authorize-post"},
	}
	noPost := *d
	noPost.Capabilities = []string{"launch-ehr"}
	base := config.Issuer{ISS: "https://ehr.example.org/api/FHIR/R4", ClientID: "abc"}
	const redirect = "https://app.example.org/callback"

	tests := []struct {
		name       string
		d          *Discovery
		iss        func(config.Issuer) config.Issuer
		launch     string
		wantMethod string
		wantScope  string
	}{
		{"ehr launch", d, nil, "LAUNCH-TOKEN-xyz", "GET",
			"launch openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
		{"standalone launch", d, nil, "", "GET",
			"launch/patient openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
		{"scope override", d, func(i config.Issuer) config.Issuer { i.Scopes = "launch openid"; return i }, "L", "GET",
			"launch openid"},
		{"form post", d, func(i config.Issuer) config.Issuer { i.AuthorizePost = true; return i }, "L", "POST",
			"launch openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
		{"form post not advertised", &noPost, func(i config.Issuer) config.Issuer { i.AuthorizePost = true; return i }, "L", "GET",
			"launch openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := base
			if tt.iss != nil {
				iss = tt.iss(iss)
			}
			ar, err := NewAuthRequest(tt.d, iss, redirect, tt.launch)
			if err != nil {
				t.Fatalf("NewAuthRequest: %v", err)
			}
			if ar.Method != tt.wantMethod {
				t.Fatalf("Method = %q, want %q", ar.Method, tt.wantMethod)
			}
			var got url.Values
			switch ar.Method {
			case "GET":
				u, err := url.Parse(ar.URL)
				if err != nil {
					t.Fatal(err)
				}
				if u.Scheme+"://"+u.Host+u.Path != "https://ehr.example.org/oauth2/authorize" {
					t.Errorf("URL endpoint = %q", ar.URL)
				}
				got = u.Query()
				if got.Get("tenant") != "a" {
					t.Error("the endpoint's own query parameter was dropped")
				}
				got.Del("tenant")
				if ar.Form != nil {
					t.Error("GET request has a Form")
				}
			case "POST":
				if ar.URL != tt.d.AuthorizationEndpoint {
					t.Errorf("POST URL = %q, want the endpoint", ar.URL)
				}
				got = ar.Form
			}
			sum := sha256.Sum256([]byte(ar.CodeVerifier))
			want := url.Values{
				"response_type":         {"code"},
				"client_id":             {"abc"},
				"redirect_uri":          {redirect},
				"scope":                 {tt.wantScope},
				"state":                 {ar.State},
				"aud":                   {iss.ISS},
				"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
				"code_challenge_method": {"S256"},
				"nonce":                 {ar.Nonce},
			}
			if tt.launch != "" {
				want.Set("launch", tt.launch)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			if len(ar.State) != 22 {
				t.Errorf("state %q has %d chars, want 22", ar.State, len(ar.State))
			}
			if len(ar.CodeVerifier) < 43 || len(ar.CodeVerifier) > 128 {
				t.Errorf("verifier length %d outside 43..128", len(ar.CodeVerifier))
			}
			if len(ar.Nonce) != 22 {
				t.Errorf("nonce %q has %d chars, want 22 (128 bits)", ar.Nonce, len(ar.Nonce))
			}
			if _, err := base64.RawURLEncoding.DecodeString(ar.State); err != nil {
				t.Errorf("state is not base64url: %v", err)
			}
		})
	}
}

func TestAuthRequestRandomnessUnique(t *testing.T) {
	d := &Discovery{AuthorizationEndpoint: "https://ehr.example.org/authorize"}
	iss := config.Issuer{ISS: "https://ehr.example.org/fhir", ClientID: "abc"}
	seen := map[string]bool{}
	for range 500 {
		ar, err := NewAuthRequest(d, iss, "https://app.example.org/callback", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{ar.State, ar.Nonce, ar.CodeVerifier} {
			if seen[v] {
				t.Fatalf("value %q repeated", v)
			}
			seen[v] = true
		}
	}
}

func TestDefaultScopes(t *testing.T) {
	tests := []struct {
		kind LaunchKind
		want string
	}{
		{EHRLaunch, "launch openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
		{StandaloneLaunch, "launch/patient openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"},
	}
	for _, tt := range tests {
		if got := DefaultScopes(tt.kind); got != tt.want {
			t.Errorf("DefaultScopes(%d) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

func TestCheckResponseIssuer(t *testing.T) {
	const issuer = "https://ehr.example.org/oauth2"
	const fhirBase = "https://ehr.example.org/api/FHIR/R4"
	tests := []struct {
		name     string
		d        Discovery
		issParam string
		wantErr  bool
	}{
		{"matches", Discovery{Issuer: issuer}, issuer, false},
		{"absent and optional", Discovery{Issuer: issuer}, "", false},
		{"absent but required", Discovery{Issuer: issuer, ResponseISSRequired: true}, "", true},
		{"present and required", Discovery{Issuer: issuer, ResponseISSRequired: true}, issuer, false},
		{"other server", Discovery{Issuer: issuer}, "https://evil.example.org/oauth2", true},
		{"trailing slash differs", Discovery{Issuer: issuer}, issuer + "/", true},
		{"case differs", Discovery{Issuer: issuer}, "https://EHR.example.org/oauth2", true},
		{"FHIR base instead of issuer", Discovery{Issuer: issuer}, "https://ehr.example.org/api/FHIR/R4", true},
		{"no discovered issuer", Discovery{}, issuer, true},
		// Discovery from /metadata names no issuer: the FHIR base stands for it.
		{"metadata: FHIR base", Discovery{fhirBase: fhirBase}, fhirBase, false},
		{"metadata: FHIR base, trailing slash", Discovery{fhirBase: fhirBase}, fhirBase + "/", false},
		{"metadata: FHIR base, upper-case host", Discovery{fhirBase: fhirBase}, "https://EHR.example.org/api/FHIR/R4", false},
		{"metadata: FHIR base, path case differs", Discovery{fhirBase: fhirBase}, "https://ehr.example.org/api/fhir/r4", true},
		{"metadata: another server", Discovery{fhirBase: fhirBase}, "https://evil.example.org/api/FHIR/R4", true},
		{"metadata: OAuth issuer we never learned", Discovery{fhirBase: fhirBase}, issuer, true},
		{"metadata: FHIR base with a query", Discovery{fhirBase: fhirBase}, fhirBase + "?x=1", true},
		{"metadata: no FHIR base known", Discovery{}, fhirBase, true},
		{"metadata: absent and optional", Discovery{fhirBase: fhirBase}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckResponseIssuer(&tt.d, tt.issParam)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				mustSmartError(t, err, KindIssuerMismatch)
			}
		})
	}
}
