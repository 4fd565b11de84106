package smart

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"smartlabs/server/config"
)

const (
	testCode     = "auth-code-SECRET-1"
	testVerifier = "verifier-0123456789-0123456789-0123456789-abc"
	testRedirect = "https://app.example.org/callback"
)

// newTokenFake returns a fake whose token endpoint hands out a good id_token
// for nonce after check accepts the request.
func newTokenFake(t *testing.T, nonce string, check func(r *http.Request) (status int, oauthErr string)) *fakeEHR {
	t.Helper()
	f := newFakeEHR(t)
	f.setJWKS(publicJWK(mustRSA(t, 0), "k1"))
	idt := mustSign(t, jose.RS256, mustRSA(t, 0), "k1", idTokenClaims(f, nonce))
	f.handle("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if status, e := check(r); status != 0 {
			tokenResponder(status, map[string]any{"error": e})(w, r)
			return
		}
		tokenResponder(http.StatusOK, map[string]any{
			"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"scope": "launch openid", "patient": "p1", "id_token": idt,
		})(w, r)
	})
	return f
}

func TestExchangeClientSecretBasic(t *testing.T) {
	const secret = "s3cr+t/with=signs&more %"
	var got struct {
		user, pass string
		ok         bool
		form       url.Values
		clientHdr  string
	}
	f := newTokenFake(t, "n1", func(r *http.Request) (int, string) {
		u, p, ok := r.BasicAuth()
		// RFC 6749 2.3.1: the credentials are form-encoded before Basic encoding.
		got.user, _ = url.QueryUnescape(u)
		got.pass, _ = url.QueryUnescape(p)
		got.ok = ok
		got.form = r.PostForm
		got.clientHdr = r.Header.Get("Epic-Client-ID")
		if got.pass != secret {
			return http.StatusUnauthorized, "invalid_client"
		}
		return 0, ""
	})
	iss := f.issuer()
	iss.ClientSecret = config.Secret(secret)
	c := mustClient(t, &clock{t: t0})
	tok, err := c.Exchange(context.Background(), f.discovery(), iss, nil, testRedirect, testCode, testVerifier, "n1")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !got.ok || got.user != testClientID || got.pass != secret {
		t.Errorf("Basic credentials = %q / %q (ok %v), want %q / the secret", got.user, got.pass, got.ok, testClientID)
	}
	wantForm := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {testCode},
		"redirect_uri":  {testRedirect},
		"code_verifier": {testVerifier},
	}
	if diff := cmp.Diff(wantForm, got.form); diff != "" {
		t.Errorf("token form (-want +got):\n%s", diff)
	}
	if got.clientHdr != testClientID {
		t.Errorf("Epic-Client-ID on token request = %q, want %q", got.clientHdr, testClientID)
	}
	if tok.Patient != "p1" || tok.AccessToken != "at" {
		t.Errorf("tokens = %+v", tok)
	}
	if n := f.count("/oauth2/token"); n != 1 {
		t.Errorf("token endpoint called %d times, want 1 (no auth-style probing)", n)
	}
}

func TestExchangeSecretRejectedIsNotRetried(t *testing.T) {
	f := newTokenFake(t, "n1", func(r *http.Request) (int, string) { return http.StatusUnauthorized, "invalid_client" })
	iss := f.issuer()
	iss.ClientSecret = "wrong"
	_, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), f.discovery(), iss, nil, testRedirect, testCode, testVerifier, "n1")
	mustSmartError(t, err, KindRejected)
	// Auto-detection would have retried with the secret in the body, re-sending the code.
	if n := f.count("/oauth2/token"); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}
}

func TestExchangePrivateKeyJWT(t *testing.T) {
	key := mustClientKey(t)
	clientJWK := key.PublicJWK()
	var mu sync.Mutex
	jtis := map[string]bool{}
	var problems []string
	fail := func(s string) (int, string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
		return http.StatusUnauthorized, "invalid_client"
	}

	var f *fakeEHR
	f = newTokenFake(t, "n1", func(r *http.Request) (int, string) {
		if _, _, ok := r.BasicAuth(); ok {
			return fail("Authorization header sent with private_key_jwt")
		}
		if r.PostForm.Has("client_secret") {
			return fail("client_secret sent with private_key_jwt")
		}
		if got := r.PostForm.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			return fail("client_assertion_type = " + got)
		}
		tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS384})
		if err != nil {
			return fail("assertion not RS384: " + err.Error())
		}
		if kid := tok.Headers[0].KeyID; kid != key.KeyID() {
			return fail("kid = " + kid)
		}
		var cl jwt.Claims
		if err := tok.Claims(clientJWK.Key, &cl); err != nil {
			return fail("signature: " + err.Error())
		}
		if err := cl.ValidateWithLeeway(jwt.Expected{
			Issuer: testClientID, Subject: testClientID, AnyAudience: jwt.Audience{f.tokenURL()}, Time: t0,
		}, 0); err != nil {
			return fail("claims: " + err.Error())
		}
		if cl.Expiry == nil || cl.IssuedAt == nil || cl.Expiry.Time().Sub(cl.IssuedAt.Time()) > 5*time.Minute || !cl.Expiry.Time().After(t0) {
			return fail("exp missing, past, or more than 5 minutes after iat")
		}
		mu.Lock()
		defer mu.Unlock()
		if cl.ID == "" || jtis[cl.ID] {
			problems = append(problems, "jti empty or reused")
			return http.StatusBadRequest, "invalid_client"
		}
		jtis[cl.ID] = true
		return 0, ""
	})
	c := mustClient(t, &clock{t: t0})
	for i := range 2 {
		if _, err := c.Exchange(context.Background(), f.discovery(), f.issuer(), key, testRedirect, testCode, testVerifier, "n1"); err != nil {
			t.Fatalf("Exchange %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("fake token endpoint rejected the assertion: %v", problems)
	}
	if len(jtis) != 2 {
		t.Errorf("saw %d distinct jti, want 2", len(jtis))
	}
}

func TestExchangeResponseFields(t *testing.T) {
	// A real Epic access token is a JWT of several kilobytes; it must come back byte for byte.
	longAT := "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("QUJD", 2500) + ".c2ln"
	tests := []struct {
		name       string
		banner     any
		wantBanner bool
	}{
		{"banner string false", "false", false},
		{"banner string true", "true", true},
		{"banner string TRUE", "TRUE", true},
		{"banner bool true", true, true},
		{"banner bool false", false, false},
		{"banner absent", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.setJWKS(publicJWK(mustRSA(t, 0), "k1"))
			body := map[string]any{
				"access_token":          longAT,
				"refresh_token":         "rt",
				"token_type":            "Bearer",
				"expires_in":            3600,
				"scope":                 "launch openid fhirUser patient/Observation.read",
				"patient":               "eXYZ.123",
				"encounter":             "enc-9",
				"smart_style_url":       "https://ehr.example.org/style.json",
				"fhirContext":           []any{map[string]any{"reference": "Encounter/enc-9"}},
				"__epic.dstu2.patient":  "T1wI5bk8n1YVgvWk9D05BmRV0Pi3ECImNSK8DKyKltsMB",
				"loginDepartment":       "101",
				"state":                 "ignored",
				"id_token":              mustSign(t, jose.RS256, mustRSA(t, 0), "k1", idTokenClaims(f, "n1")),
				"need_patient_banner_x": "unused",
			}
			if tt.banner != nil {
				body["need_patient_banner"] = tt.banner
			}
			f.handle("/oauth2/token", tokenResponder(http.StatusOK, body))
			got, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), f.discovery(), f.issuer(), nil, testRedirect, testCode, testVerifier, "n1")
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			want := &Tokens{
				AccessToken:       longAT,
				RefreshToken:      "rt",
				IDToken:           body["id_token"].(string),
				TokenType:         "Bearer",
				Scope:             "launch openid fhirUser patient/Observation.read",
				Expiry:            t0.Add(time.Hour),
				Patient:           "eXYZ.123",
				Encounter:         "enc-9",
				NeedPatientBanner: tt.wantBanner,
				SmartStyleURL:     "https://ehr.example.org/style.json",
				FHIRContext:       json.RawMessage(`[{"reference":"Encounter/enc-9"}]`),
				FHIRUser:          f.iss() + "/Practitioner/p1",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Tokens (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExchangeErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name     string
		handler  http.HandlerFunc
		tokenURL string // overrides the fake's token endpoint when set
		want     ErrorKind
	}{
		{"invalid_grant", tokenResponder(http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "code " + testCode + " used"}), "", KindRejected},
		{"invalid_client", tokenResponder(http.StatusUnauthorized, map[string]any{"error": "invalid_client"}), "", KindRejected},
		{"plain 403", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }, "", KindRejected},
		{"error in a 200", tokenResponder(http.StatusOK, map[string]any{"error": "invalid_grant"}), "", KindRejected},
		{"upstream 502", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) }, "", KindUnreachable},
		{"no access_token", tokenResponder(http.StatusOK, map[string]any{"token_type": "Bearer"}), "", KindBadServer},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<html>"))
		}, "", KindBadServer},
		{"openid asked, no id_token", tokenResponder(http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer"}), "", KindBadServer},
		{"connection refused", nil, closedURL + "/token", KindUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			if tt.handler != nil {
				f.handle("/oauth2/token", tt.handler)
			}
			d := f.discovery()
			if tt.tokenURL != "" {
				d.TokenEndpoint = tt.tokenURL
			}
			iss := f.issuer()
			iss.ClientSecret = "the-client-secret"
			_, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), d, iss, nil, testRedirect, testCode, testVerifier, "n1")
			se := mustSmartError(t, err, tt.want)
			for _, secret := range []string{testCode, testVerifier, "the-client-secret", base64.StdEncoding.EncodeToString([]byte(testClientID + ":the-client-secret"))} {
				if strings.Contains(err.Error(), secret) || strings.Contains(se.Public, secret) {
					t.Errorf("error text leaks %q: %v", secret, err)
				}
			}
		})
	}
}

func TestExchangeWithoutOpenIDNeedsNoIDToken(t *testing.T) {
	f := newFakeEHR(t)
	f.handle("/oauth2/token", tokenResponder(http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "patient": "p1"}))
	iss := f.issuer()
	iss.Scopes = "launch patient/Observation.read"
	tok, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), f.discovery(), iss, nil, testRedirect, testCode, testVerifier, "n1")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.FHIRUser != "" || tok.IDToken != "" || tok.Patient != "p1" {
		t.Errorf("tokens = %+v", tok)
	}
}

func TestExchangeRefusesSecretAndKey(t *testing.T) {
	f := newFakeEHR(t)
	iss := f.issuer()
	iss.ClientSecret = "s"
	_, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), f.discovery(), iss, mustClientKey(t), testRedirect, testCode, testVerifier, "n1")
	if err == nil {
		t.Fatal("Exchange accepted both a secret and a key")
	}
	if n := f.count("/oauth2/token"); n != 0 {
		t.Errorf("token endpoint called %d times, want 0", n)
	}
}
