package smart

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"smartlabs/server/config"
	"smartlabs/server/keys"
)

// t0 is the fixed "now" of every test clock.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

const testClientID = "client-123"

// fakeEHR is an httptest server playing an EHR's FHIR and OAuth endpoints.
// Handlers are function fields keyed by path; every request is counted and recorded.
type fakeEHR struct {
	srv *httptest.Server

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	hits     map[string]int
	headers  map[string]http.Header
	forms    map[string][]url.Values

	// jwksKeys is what /oauth2/jwks serves.
	jwksKeys []jose.JSONWebKey
}

func newFakeEHR(t *testing.T) *fakeEHR {
	t.Helper()
	f := &fakeEHR{
		handlers: map[string]http.HandlerFunc{},
		hits:     map[string]int{},
		headers:  map[string]http.Header{},
		forms:    map[string][]url.Values{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.handle("/fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, f.smartConfig())
	})
	f.handle("/oauth2/jwks", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		set := jose.JSONWebKeySet{Keys: f.jwksKeys}
		f.mu.Unlock()
		writeJSON(w, set)
	})
	return f
}

func (f *fakeEHR) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.hits[r.URL.Path]++
	f.headers[r.URL.Path] = r.Header.Clone()
	f.forms[r.URL.Path] = append(f.forms[r.URL.Path], r.PostForm)
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func (f *fakeEHR) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[path] = h
}

func (f *fakeEHR) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *fakeEHR) header(path string) http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[path]
}

func (f *fakeEHR) postForms(path string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms[path]...)
}

func (f *fakeEHR) setJWKS(keys ...jose.JSONWebKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwksKeys = keys
}

func (f *fakeEHR) iss() string         { return f.srv.URL + "/fhir" }
func (f *fakeEHR) oauthIssuer() string { return f.srv.URL + "/oauth2" }
func (f *fakeEHR) tokenURL() string    { return f.srv.URL + "/oauth2/token" }

func (f *fakeEHR) issuer() config.Issuer {
	return config.Issuer{Name: "Fake", ISS: f.iss(), ClientID: testClientID}
}

func (f *fakeEHR) smartConfig() map[string]any {
	return map[string]any{
		"issuer":                                f.oauthIssuer(),
		"authorization_endpoint":                f.srv.URL + "/oauth2/authorize",
		"token_endpoint":                        f.tokenURL(),
		"jwks_uri":                              f.srv.URL + "/oauth2/jwks",
		"capabilities":                          []string{"launch-ehr", "launch-standalone", "authorize-post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
	}
}

// discovery is the Discovery matching smartConfig, without a network call.
func (f *fakeEHR) discovery() *Discovery {
	return &Discovery{
		Issuer:                f.oauthIssuer(),
		AuthorizationEndpoint: f.srv.URL + "/oauth2/authorize",
		TokenEndpoint:         f.tokenURL(),
		JWKSURI:               f.srv.URL + "/oauth2/jwks",
		Capabilities:          []string{"launch-ehr", "authorize-post"},
		CodeChallengeMethods:  []string{"S256"},
		fhirBase:              f.iss(),
		policy:                newEndpointPolicy(f.issuer()),
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// clock is an adjustable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustClient(t *testing.T, clk *clock) *Client {
	t.Helper()
	return NewClient(Options{
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Now:        clk.now,
	})
}

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
	rsaErr  error

	clientKeyOnce sync.Once
	clientKey     *keys.Key
	clientKeyErr  error
)

// mustRSA returns one of two shared EHR signing keys (generated once per test binary).
func mustRSA(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			if rsaKeys[j], rsaErr = rsa.GenerateKey(rand.Reader, 2048); rsaErr != nil {
				return
			}
		}
	})
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	return rsaKeys[i]
}

// mustClientKey returns the app's shared private_key_jwt key.
func mustClientKey(t *testing.T) *keys.Key {
	t.Helper()
	clientKeyOnce.Do(func() { clientKey, clientKeyErr = keys.Generate(2048) })
	if clientKeyErr != nil {
		t.Fatal(clientKeyErr)
	}
	return clientKey
}

func publicJWK(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

// mustSign signs claims as a compact JWT with alg and a kid header.
func mustSign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// idTokenClaims are good id_token claims for fake f.
func idTokenClaims(f *fakeEHR, nonce string) map[string]any {
	return map[string]any{
		"iss":      f.oauthIssuer(),
		"sub":      "user-1",
		"aud":      testClientID,
		"exp":      t0.Add(5 * time.Minute).Unix(),
		"iat":      t0.Unix(),
		"nonce":    nonce,
		"fhirUser": f.iss() + "/Practitioner/p1",
	}
}

// tokenResponder answers the token endpoint with body as JSON.
func tokenResponder(status int, body map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// mustSmartError asserts err is an *Error of kind want.
func mustSmartError(t *testing.T, err error, want ErrorKind) *Error {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *smart.Error", err, err)
	}
	if se.Kind != want {
		t.Fatalf("kind = %v, want %v (err: %v)", se.Kind, want, err)
	}
	if se.Public == "" {
		t.Error("Public text is empty")
	}
	return se
}
