package ehrsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestAuthorizeStrict(t *testing.T) {
	p0, p1 := patientSpecs[0].id, patientSpecs[1].id
	tests := []struct {
		name       string
		edit       func(f *fixture, v url.Values)
		wantStatus int    // 302 or 400
		wantError  string // error in the redirect; "" for success
	}{
		{"valid EHR launch", nil, 302, ""},
		{"aud with one trailing slash", func(f *fixture, v url.Values) { v.Set("aud", f.sim.ISS()+"/") }, 302, ""},
		{"unknown client", func(f *fixture, v url.Values) { v.Set("client_id", "nobody") }, 400, ""},
		{"unregistered redirect", func(f *fixture, v url.Values) { v.Set("redirect_uri", "http://localhost:8080/evil") }, 400, ""},
		{"redirect differs by slash", func(f *fixture, v url.Values) { v.Set("redirect_uri", testRedirect+"/") }, 400, ""},
		{"duplicate client_id", func(f *fixture, v url.Values) { v.Add("client_id", secretClient) }, 400, ""},
		{"missing state", func(f *fixture, v url.Values) { v.Del("state") }, 302, "invalid_request"},
		{"response_type token", func(f *fixture, v url.Values) { v.Set("response_type", "token") }, 302, "invalid_request"},
		{"missing challenge", func(f *fixture, v url.Values) { v.Del("code_challenge") }, 302, "invalid_request"},
		{"missing method", func(f *fixture, v url.Values) { v.Del("code_challenge_method") }, 302, "invalid_request"},
		{"plain method", func(f *fixture, v url.Values) { v.Set("code_challenge_method", "plain") }, 302, "invalid_request"},
		{"short challenge", func(f *fixture, v url.Values) { v.Set("code_challenge", "abc") }, 302, "invalid_request"},
		{"missing aud", func(f *fixture, v url.Values) { v.Del("aud") }, 302, "invalid_request"},
		{"wrong aud", func(f *fixture, v url.Values) { v.Set("aud", "https://fhir.example.com/R4") }, 302, "invalid_request"},
		{"aud with two slashes", func(f *fixture, v url.Values) { v.Set("aud", f.sim.ISS()+"//") }, 302, "invalid_request"},
		{"EHR launch without launch scope", func(f *fixture, v url.Values) {
			v.Set("scope", "openid patient/Observation.read")
		}, 302, "invalid_scope"},
		{"unknown launch token", func(f *fixture, v url.Values) { v.Set("launch", "forged") }, 302, "invalid_request"},
		{"empty launch token", func(f *fixture, v url.Values) { v.Set("launch", "") }, 302, "invalid_request"},
		{"launch minted for another client", func(f *fixture, v url.Values) {
			l, _ := f.sim.NewLaunch(p0, jwtClient)
			v.Set("launch", l)
		}, 302, "unauthorized_client"},
		{"standalone without launch/patient", func(f *fixture, v url.Values) {
			v.Del("launch")
			v.Set("scope", "launch openid patient/Observation.read")
		}, 302, "invalid_scope"},
		{"standalone", func(f *fixture, v url.Values) {
			v.Del("launch")
			v.Set("scope", "launch/patient openid patient/Observation.read")
			v.Set("patient", p1)
		}, 302, ""},
		{"standalone unknown patient hint", func(f *fixture, v url.Values) {
			v.Del("launch")
			v.Set("scope", "launch/patient")
			v.Set("patient", "nobody")
		}, 302, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, Switches{})
			v, _ := f.ehrLaunchParams(t, p0, secretClient, defaultScope)
			if tt.edit != nil {
				tt.edit(f, v)
			}
			resp := f.authorize(t, v)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusFound {
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("Location = %q, want none", loc)
				}
				return
			}
			loc := mustLocation(t, resp)
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
				t.Errorf("redirected to %q, want %q", got, testRedirect)
			}
			q := loc.Query()
			if got := q.Get("error"); got != tt.wantError {
				t.Errorf("error = %q (%s), want %q", got, q.Get("error_description"), tt.wantError)
			}
			if tt.wantError == "" && q.Get("code") == "" {
				t.Error("no code in a successful response")
			}
			if tt.wantError != "" && (q.Get("code") != "" || q.Get("error_description") == "") {
				t.Errorf("error response has code %q, description %q", q.Get("code"), q.Get("error_description"))
			}
			if v.Get("state") != "" && q.Get("state") != v.Get("state") {
				t.Errorf("state = %q, want %q", q.Get("state"), v.Get("state"))
			}
			if q.Has("iss") {
				t.Error("iss present although ResponseISS is off")
			}
		})
	}
}

// TestAuthorizeReusableLaunch: with ReusableLaunch, as smart-launcher-v2
// does, one launch value works again and again until it expires.
func TestAuthorizeReusableLaunch(t *testing.T) {
	p0 := patientSpecs[0].id
	f := mustFixture(t, Switches{ReusableLaunch: true})
	v, _ := f.ehrLaunchParams(t, p0, secretClient, defaultScope)
	for i := range 3 {
		if q := mustLocation(t, f.authorize(t, v)).Query(); q.Get("code") == "" {
			t.Fatalf("use %d: error %q, want a code", i+1, q.Get("error"))
		}
	}
	f.advance(6 * time.Minute)
	if q := mustLocation(t, f.authorize(t, v)).Query(); q.Get("error") != "invalid_request" {
		t.Errorf("expired launch: error = %q, want invalid_request", q.Get("error"))
	}
}

func TestAuthorizeLaunchSingleUseAndExpiry(t *testing.T) {
	p0 := patientSpecs[0].id
	f := mustFixture(t, Switches{})
	v, _ := f.ehrLaunchParams(t, p0, secretClient, defaultScope)
	if q := mustLocation(t, f.authorize(t, v)).Query(); q.Get("code") == "" {
		t.Fatalf("first use failed: %s", q.Get("error"))
	}
	if q := mustLocation(t, f.authorize(t, v)).Query(); q.Get("error") != "invalid_request" {
		t.Errorf("reused launch: error = %q, want invalid_request", q.Get("error"))
	}
	v2, _ := f.ehrLaunchParams(t, p0, secretClient, defaultScope)
	f.advance(6 * time.Minute)
	if q := mustLocation(t, f.authorize(t, v2)).Query(); q.Get("error") != "invalid_request" {
		t.Errorf("expired launch: error = %q, want invalid_request", q.Get("error"))
	}
	if len(v2.Get("launch")) < 300 {
		t.Errorf("launch token has %d characters, want at least 300", len(v2.Get("launch")))
	}
}

func TestAuthorizePost(t *testing.T) {
	f := mustFixture(t, Switches{})
	v, _ := f.ehrLaunchParams(t, patientSpecs[0].id, secretClient, defaultScope)
	resp, err := f.http.PostForm(f.srv.URL+"/oauth2/authorize", v)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || mustLocation(t, resp).Query().Get("code") == "" {
		t.Fatalf("status = %d, location = %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuthorizeSwitches(t *testing.T) {
	f := mustFixture(t, Switches{DenyAuthorization: true})
	v, _ := f.ehrLaunchParams(t, patientSpecs[0].id, secretClient, defaultScope)
	q := mustLocation(t, f.authorize(t, v)).Query()
	if q.Get("error") != "access_denied" || q.Get("error_description") == "" || q.Get("state") != "state-123" {
		t.Errorf("deny: got %v", q)
	}

	f.sim.SetSwitches(Switches{ResponseISS: true})
	v, _ = f.ehrLaunchParams(t, patientSpecs[0].id, secretClient, defaultScope)
	q = mustLocation(t, f.authorize(t, v)).Query()
	if q.Get("iss") != f.sim.OAuthIssuer() || q.Get("code") == "" {
		t.Errorf("response iss = %q, want %q", q.Get("iss"), f.sim.OAuthIssuer())
	}
	_, body := f.get(t, "/fhir/R4/.well-known/smart-configuration", "")
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["authorization_response_iss_parameter_supported"] != true {
		t.Error("discovery does not advertise the iss parameter")
	}
}

// TestMetadataOnlySwitch: a server without SMART discovery whose issuer is its
// FHIR base says so consistently: no smart-configuration, an openid-configuration
// beside the FHIR base only, and the FHIR base in the iss parameter and id_token.
func TestMetadataOnlySwitch(t *testing.T) {
	f := mustFixture(t, Switches{MetadataOnly: true, ResponseISS: true})
	wantStatus := map[string]int{
		"/fhir/R4/.well-known/smart-configuration":  http.StatusNotFound,
		"/oauth2/.well-known/openid-configuration":  http.StatusNotFound,
		"/fhir/R4/.well-known/openid-configuration": http.StatusOK,
		"/fhir/R4/metadata":                         http.StatusOK,
	}
	for path, want := range wantStatus {
		if resp, _ := f.get(t, path, "", "Accept", "application/fhir+json"); resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	_, body := f.get(t, "/fhir/R4/.well-known/openid-configuration", "")
	var oidc map[string]any
	if err := json.Unmarshal(body, &oidc); err != nil {
		t.Fatal(err)
	}
	if oidc["issuer"] != f.sim.ISS() {
		t.Errorf("openid-configuration issuer = %v, want %s", oidc["issuer"], f.sim.ISS())
	}

	v, verifier := f.ehrLaunchParams(t, patientSpecs[0].id, secretClient, defaultScope)
	q := mustLocation(t, f.authorize(t, v)).Query()
	if q.Get("iss") != f.sim.ISS() {
		t.Errorf("response iss = %q, want the FHIR base %q", q.Get("iss"), f.sim.ISS())
	}
	status, tok := f.tokenRequest(t, codeForm(q.Get("code"), verifier), secretClient, testSecret)
	if status != http.StatusOK {
		t.Fatalf("token status = %d, error %v", status, tok["error"])
	}
	idt, err := jwt.ParseSigned(tok["id_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := idt.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Issuer != f.sim.ISS() {
		t.Errorf("id_token iss = %q, want %q", claims.Issuer, f.sim.ISS())
	}

	// Switched off, the simulator is Epic-like again: the FHIR base publishes no openid-configuration.
	f.sim.SetSwitches(Switches{})
	if resp, _ := f.get(t, "/fhir/R4/.well-known/openid-configuration", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("openid-configuration beside the FHIR base without the switch: status %d", resp.StatusCode)
	}
	if resp, _ := f.get(t, "/oauth2/.well-known/openid-configuration", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("openid-configuration beside /oauth2: status %d", resp.StatusCode)
	}
}

func TestTokenSecretBasic(t *testing.T) {
	p0 := patientSpecs[0]
	f := mustFixture(t, Switches{TokenLifetime: 10 * time.Minute})
	code, verifier := f.mustCode(t, p0.id, secretClient, defaultScope+" offline_access")
	status, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	if status != http.StatusOK {
		t.Fatalf("status = %d, error = %v %v", status, body["error"], body["error_description"])
	}
	at, _ := body["access_token"].(string)
	if len(at) < 600 || strings.Count(at, ".") != 2 {
		t.Errorf("access_token has %d characters and %d dots, want a JWT-shaped string of at least 600", len(at), strings.Count(at, "."))
	}
	wantStrings := map[string]string{
		"token_type":          "Bearer",
		"patient":             p0.id,
		"encounter":           p0.encounter,
		"need_patient_banner": "true",
		"smart_style_url":     f.srv.URL + "/styles/smart.json",
		"scope":               defaultScope + " offline_access",
		"loginDepartment":     loginDepartmentID,
	}
	for k, want := range wantStrings {
		if got, _ := body[k].(string); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if body["expires_in"] != float64(600) {
		t.Errorf("expires_in = %v, want 600", body["expires_in"])
	}
	for _, k := range []string{"refresh_token", "id_token", "__epic.dstu2.patient"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}
	if _, ok := body["state"]; ok {
		t.Error("token response echoes state")
	}
	verifyIDToken(t, f, body["id_token"].(string))
	if resp, style := f.get(t, body["smart_style_url"].(string), ""); resp.StatusCode != http.StatusOK || !json.Valid(style) {
		t.Errorf("smart_style_url: status %d", resp.StatusCode)
	}

	// The secret sent without x/oauth2's escaping decodes "+" to a space and fails.
	code, verifier = f.mustCode(t, p0.id, secretClient, defaultScope)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/oauth2/token", strings.NewReader(codeForm(code, verifier).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(secretClient, "s3cr+t/with=and")
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("unescaped secret: status = %d, WWW-Authenticate = %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// verifyIDToken checks the id_token against the simulator's published JWKS.
func verifyIDToken(t *testing.T, f *fixture, idt string) {
	t.Helper()
	_, body := f.get(t, "/oauth2/jwks", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(idt, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys for the id_token kid", len(keys))
	}
	var claims jwt.Claims
	var extra struct {
		Nonce    string `json:"nonce"`
		FHIRUser string `json:"fhirUser"`
	}
	if err := tok.Claims(keys[0].Key, &claims, &extra); err != nil {
		t.Fatal(err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: f.sim.OAuthIssuer(), AnyAudience: jwt.Audience{secretClient}, Time: f.now()}); err != nil {
		t.Error(err)
	}
	if extra.Nonce != "nonce-456" || extra.FHIRUser != f.sim.ISS()+"/Practitioner/"+practitionerID {
		t.Errorf("nonce = %q, fhirUser = %q", extra.Nonce, extra.FHIRUser)
	}
	if claims.Expiry.Time().Sub(claims.IssuedAt.Time()) != 5*time.Minute {
		t.Errorf("id_token lifetime = %v, want 5m", claims.Expiry.Time().Sub(claims.IssuedAt.Time()))
	}
}

func TestTokenClientAuthFailures(t *testing.T) {
	f := mustFixture(t, Switches{})
	tests := []struct {
		name       string
		form       func(url.Values)
		user, pass string
		wantStatus int
		wantError  string
	}{
		{"wrong secret", nil, secretClient, "nope", 401, "invalid_client"},
		{"unknown basic user", nil, "nobody", testSecret, 401, "invalid_client"},
		{"confidential without auth", func(v url.Values) { v.Set("client_id", secretClient) }, "", "", 401, "invalid_client"},
		{"no client at all", nil, "", "", 401, "invalid_client"},
		{"client_secret_post", func(v url.Values) {
			v.Set("client_id", secretClient)
			v.Set("client_secret", testSecret)
		}, "", "", 401, "invalid_client"},
		{"basic client_id mismatch", func(v url.Values) { v.Set("client_id", jwtClient) }, secretClient, testSecret, 401, "invalid_client"},
		{"public client, code of another client", func(v url.Values) { v.Set("client_id", publicClient) }, "", "", 400, "invalid_grant"},
		{"missing grant_type", func(v url.Values) { v.Del("grant_type") }, secretClient, testSecret, 400, "invalid_request"},
		{"password grant", func(v url.Values) { v.Set("grant_type", "password") }, secretClient, testSecret, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := f.mustCode(t, patientSpecs[0].id, secretClient, defaultScope)
			form := codeForm(code, verifier)
			if tt.form != nil {
				tt.form(form)
			}
			status, body := f.tokenRequest(t, form, tt.user, tt.pass)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %d %v, want %d %s", status, body["error"], tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestTokenPrivateKeyJWT(t *testing.T) {
	f := mustFixture(t, Switches{})
	replayed := f.assertion(t, jose.RS384, appKeyID, nil)
	tests := []struct {
		name      string
		assertion func() string
		assertTyp string
		wantError string
	}{
		{"valid", func() string { return f.assertion(t, jose.RS384, appKeyID, nil) }, jwtBearerType, ""},
		{"first use of an assertion", func() string { return replayed }, jwtBearerType, ""},
		{"replayed jti", func() string { return replayed }, jwtBearerType, "invalid_client"},
		{"wrong aud", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { c["aud"] = f.sim.ISS() })
		}, jwtBearerType, "invalid_client"},
		{"RS256 instead of RS384", func() string { return f.assertion(t, jose.RS256, appKeyID, nil) }, jwtBearerType, "invalid_client"},
		{"unknown kid", func() string { return f.assertion(t, jose.RS384, "other", nil) }, jwtBearerType, "invalid_client"},
		{"no kid", func() string { return f.assertion(t, jose.RS384, "", nil) }, jwtBearerType, "invalid_client"},
		{"sub differs from iss", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { c["sub"] = secretClient })
		}, jwtBearerType, "invalid_client"},
		{"exp too far ahead", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { c["exp"] = f.now().Add(10 * time.Minute).Unix() })
		}, jwtBearerType, "invalid_client"},
		{"expired", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { c["exp"] = f.now().Add(-time.Second).Unix() })
		}, jwtBearerType, "invalid_client"},
		{"no exp", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { delete(c, "exp") })
		}, jwtBearerType, "invalid_client"},
		{"no jti", func() string {
			return f.assertion(t, jose.RS384, appKeyID, func(c map[string]any) { delete(c, "jti") })
		}, jwtBearerType, "invalid_client"},
		{"wrong assertion type", func() string { return f.assertion(t, jose.RS384, appKeyID, nil) }, "urn:other", "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := f.mustCode(t, patientSpecs[0].id, jwtClient, defaultScope)
			form := codeForm(code, verifier)
			form.Set("client_assertion_type", tt.assertTyp)
			form.Set("client_assertion", tt.assertion())
			status, body := f.tokenRequest(t, form, "", "")
			if tt.wantError == "" {
				if status != http.StatusOK || body["access_token"] == nil {
					t.Errorf("status = %d, error = %v %v", status, body["error"], body["error_description"])
				}
				return
			}
			if status != http.StatusUnauthorized || body["error"] != tt.wantError {
				t.Errorf("got %d %v, want 401 %s", status, body["error"], tt.wantError)
			}
		})
	}
}

func TestTokenPrivateKeyJWTKeyRotation(t *testing.T) {
	f := mustFixture(t, Switches{})
	exchange := func(kid string) int {
		t.Helper()
		code, verifier := f.mustCode(t, patientSpecs[0].id, jwtClient, defaultScope)
		form := codeForm(code, verifier)
		form.Set("client_assertion_type", jwtBearerType)
		form.Set("client_assertion", f.assertion(t, jose.RS384, kid, nil))
		status, _ := f.tokenRequest(t, form, "", "")
		return status
	}
	if a, b := exchange(appKeyID), exchange(appKeyID); a != 200 || b != 200 || f.jwksFetches.Load() != 1 {
		t.Fatalf("statuses %d %d, JWKS fetched %d times, want 200 200 and 1 fetch", a, b, f.jwksFetches.Load())
	}
	f.serveKID("app-key-2")
	if got := exchange("app-key-2"); got != 200 || f.jwksFetches.Load() != 2 {
		t.Errorf("rotated kid: status %d after %d fetches, want 200 after 2", got, f.jwksFetches.Load())
	}
	if got := exchange(appKeyID); got != http.StatusUnauthorized {
		t.Errorf("retired kid: status %d, want 401", got)
	}
}

func TestTokenCodeReplayRevokes(t *testing.T) {
	f := mustFixture(t, Switches{})
	p0 := patientSpecs[0].id
	code, verifier := f.mustCode(t, p0, secretClient, defaultScope+" offline_access")
	status, first := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	if status != http.StatusOK {
		t.Fatalf("first exchange: %d", status)
	}
	tok := first["access_token"].(string)
	if resp, _ := f.get(t, "/fhir/R4/Patient/"+p0, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("token works before replay: status %d", resp.StatusCode)
	}
	status, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("replay: got %d %v, want 400 invalid_grant", status, body["error"])
	}
	if resp, _ := f.get(t, "/fhir/R4/Patient/"+p0, tok); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("access token after code replay: status %d, want 401", resp.StatusCode)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}}
	if status, _ := f.tokenRequest(t, refresh, secretClient, testSecret); status != http.StatusBadRequest {
		t.Errorf("refresh token after code replay: status %d, want 400", status)
	}
}

func TestTokenCodeChecks(t *testing.T) {
	tests := []struct {
		name string
		edit func(f *fixture, v url.Values)
	}{
		{"PKCE mismatch", func(f *fixture, v url.Values) { v.Set("code_verifier", randomString(32)) }},
		{"missing verifier", func(f *fixture, v url.Values) { v.Del("code_verifier") }},
		{"other redirect_uri", func(f *fixture, v url.Values) { v.Set("redirect_uri", "http://localhost:8080/other") }},
		{"unknown code", func(f *fixture, v url.Values) { v.Set("code", "forged") }},
		{"expired code", func(f *fixture, v url.Values) { f.advance(3 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, Switches{})
			code, verifier := f.mustCode(t, patientSpecs[0].id, secretClient, defaultScope)
			form := codeForm(code, verifier)
			tt.edit(f, form)
			status, body := f.tokenRequest(t, form, secretClient, testSecret)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("got %d %v, want 400 invalid_grant", status, body["error"])
			}
		})
	}
}

func TestTokenPublicClientAndCORS(t *testing.T) {
	f := mustFixture(t, Switches{NoPatientInToken: true})
	code, verifier := f.mustCode(t, patientSpecs[1].id, publicClient, defaultScope)
	form := codeForm(code, verifier)
	form.Set("client_id", publicClient)
	status, body := f.tokenRequest(t, form, "", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, error = %v", status, body["error"])
	}
	if _, ok := body["patient"]; ok {
		t.Error("patient present although NoPatientInToken is on")
	}
	req, _ := http.NewRequest(http.MethodOptions, f.srv.URL+"/oauth2/token", nil)
	req.Header.Set("Origin", "http://localhost:8080")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestTokenRefreshRotation(t *testing.T) {
	f := mustFixture(t, Switches{})
	code, verifier := f.mustCode(t, patientSpecs[0].id, secretClient, defaultScope+" online_access")
	_, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	rt1, _ := body["refresh_token"].(string)
	if rt1 == "" {
		t.Fatal("no refresh token for online_access")
	}
	refresh := func(rt, user, pass string) (int, map[string]any) {
		return f.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, user, pass)
	}
	if status, _ := refresh(rt1, jwtClient, "x"); status != http.StatusUnauthorized {
		t.Errorf("refresh by an unauthenticated client: %d, want 401", status)
	}
	status, body := refresh(rt1, secretClient, testSecret)
	rt2, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt2 == "" || rt2 == rt1 || body["access_token"] == nil {
		t.Fatalf("refresh: status %d, rotated = %v", status, rt2 != rt1)
	}
	if resp, _ := f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, body["access_token"].(string)); resp.StatusCode != http.StatusOK {
		t.Errorf("refreshed access token: status %d", resp.StatusCode)
	}
	if status, body := refresh(rt1, secretClient, testSecret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("old refresh token: %d %v, want 400 invalid_grant", status, body["error"])
	}
	if status, _ := refresh(rt2, secretClient, testSecret); status != http.StatusOK {
		t.Errorf("new refresh token: status %d", status)
	}
}

func TestTokenLifetimeExpiry(t *testing.T) {
	f := mustFixture(t, Switches{TokenLifetime: time.Minute})
	tok := f.mustToken(t, patientSpecs[0].id)
	if resp, _ := f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token: status %d", resp.StatusCode)
	}
	f.advance(61 * time.Second)
	resp, _ := f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, tok)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("expired token: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestDiscovery(t *testing.T) {
	f := mustFixture(t, Switches{})
	resp, body := f.get(t, "/fhir/R4/.well-known/smart-configuration", "")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("discovery lacks CORS")
	}
	var doc struct {
		Issuer        string   `json:"issuer"`
		Authorize     string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		JWKS          string   `json:"jwks_uri"`
		Capabilities  []string `json:"capabilities"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		ISSSupported  *bool    `json:"authorization_response_iss_parameter_supported"`
		ResponseTypes []string `json:"response_types_supported"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != f.srv.URL+"/oauth2" || doc.Token != f.srv.URL+"/oauth2/token" || doc.JWKS != f.srv.URL+"/oauth2/jwks" ||
		doc.Authorize != f.srv.URL+"/oauth2/authorize" || strings.Join(doc.PKCE, ",") != "S256" ||
		len(doc.Capabilities) != 12 || doc.ISSSupported != nil || strings.Join(doc.ResponseTypes, ",") != "code" ||
		strings.Join(doc.AuthMethods, ",") != "client_secret_basic,private_key_jwt" {
		t.Errorf("smart-configuration = %+v", doc)
	}
	_, body = f.get(t, "/oauth2/.well-known/openid-configuration", "")
	var oidc map[string]any
	if err := json.Unmarshal(body, &oidc); err != nil {
		t.Fatal(err)
	}
	if oidc["issuer"] != doc.Issuer || oidc["jwks_uri"] != doc.JWKS {
		t.Errorf("openid-configuration = %v", oidc)
	}
}
