package ehrsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	secretClient = "app-secret"
	jwtClient    = "app-jwt"
	publicClient = "app-public"
	// testSecret has the characters x/oauth2 escapes in Basic credentials.
	testSecret   = "s3cr+t/with=and%"
	testRedirect = "http://localhost:8080/callback"
	appLaunchURL = "http://localhost:8080/launch"
	appKeyID     = "app-key-1"
)

var testKeys struct {
	once     sync.Once
	sim, app *rsa.PrivateKey
	err      error
}

// mustKeys returns RSA keys shared by all tests, generated once to keep tests fast.
func mustKeys(t *testing.T) (sim, app *rsa.PrivateKey) {
	t.Helper()
	testKeys.once.Do(func() {
		testKeys.sim, testKeys.err = rsa.GenerateKey(rand.Reader, 2048)
		if testKeys.err == nil {
			testKeys.app, testKeys.err = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	if testKeys.err != nil {
		t.Fatal(testKeys.err)
	}
	return testKeys.sim, testKeys.app
}

// fixture is a simulator on a loopback test server with a controllable clock.
type fixture struct {
	sim    *Sim
	srv    *httptest.Server
	jwks   *httptest.Server
	clock  atomic.Int64
	appKey *rsa.PrivateKey
	http   *http.Client

	jwksDoc     atomic.Pointer[jose.JSONWebKeySet]
	jwksFetches atomic.Int64
}

// serveKID makes the app's JWKS server publish the app key under kid.
func (f *fixture) serveKID(kid string) {
	f.jwksDoc.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.appKey.PublicKey, KeyID: kid, Algorithm: "RS384", Use: "sig"}}})
}

func (f *fixture) now() time.Time          { return time.Unix(0, f.clock.Load()) }
func (f *fixture) advance(d time.Duration) { f.clock.Add(int64(d)) }

func mustFixture(t *testing.T, sw Switches) *fixture {
	t.Helper()
	simKey, appKey := mustKeys(t)
	f := &fixture{appKey: appKey}
	f.clock.Store(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).UnixNano())
	f.serveKID(appKeyID)
	f.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.jwksFetches.Add(1)
		_ = json.NewEncoder(w).Encode(f.jwksDoc.Load())
	}))
	t.Cleanup(f.jwks.Close)
	sim, err := New(Options{
		AppLaunchURL: appLaunchURL,
		Clients: []Client{
			{ID: secretClient, Secret: testSecret, RedirectURIs: []string{testRedirect}},
			{ID: jwtClient, JWKSURL: f.jwks.URL, RedirectURIs: []string{testRedirect}},
			{ID: publicClient, Public: true, RedirectURIs: []string{testRedirect}},
		},
		Switches:   sw,
		Now:        f.now,
		SigningKey: simKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sim = sim
	f.srv = httptest.NewServer(sim)
	t.Cleanup(f.srv.Close)
	sim.SetBaseURL(f.srv.URL)
	f.http = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// ehrLaunchParams returns a valid EHR-launch authorization request.
func (f *fixture) ehrLaunchParams(t *testing.T, patient, client, scope string) (url.Values, string) {
	t.Helper()
	launch, err := f.sim.NewLaunch(patient, client)
	if err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce()
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {testRedirect},
		"scope":                 {scope},
		"state":                 {"state-123"},
		"aud":                   {f.sim.ISS()},
		"launch":                {launch},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"nonce":                 {"nonce-456"},
	}, verifier
}

const defaultScope = "launch openid fhirUser patient/Patient.read patient/Observation.read"

// authorize sends an authorization request and returns the response.
func (f *fixture) authorize(t *testing.T, v url.Values) *http.Response {
	t.Helper()
	resp, err := f.http.Get(f.srv.URL + "/oauth2/authorize?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// mustCode runs an EHR launch authorization for patient and returns the code and verifier.
func (f *fixture) mustCode(t *testing.T, patient, client, scope string) (code, verifier string) {
	t.Helper()
	v, verifier := f.ehrLaunchParams(t, patient, client, scope)
	resp := f.authorize(t, v)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status = %d", resp.StatusCode)
	}
	loc := mustLocation(t, resp)
	if loc.Query().Get("error") != "" {
		t.Fatalf("authorize error = %s", loc.Query().Get("error"))
	}
	return loc.Query().Get("code"), verifier
}

func mustLocation(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// tokenRequest posts form to the token endpoint, with Basic credentials escaped
// as x/oauth2 does when user is non-empty.
func (f *fixture) tokenRequest(t *testing.T, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, body
}

func codeForm(code, verifier string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testRedirect},
		"code_verifier": {verifier},
	}
}

// mustToken runs a full EHR launch with the secret client and returns the access token.
func (f *fixture) mustToken(t *testing.T, patient string) string {
	t.Helper()
	code, verifier := f.mustCode(t, patient, secretClient, defaultScope)
	status, body := f.tokenRequest(t, codeForm(code, verifier), secretClient, testSecret)
	if status != http.StatusOK {
		t.Fatalf("token status = %d, body = %v", status, body["error"])
	}
	return body["access_token"].(string)
}

// get fetches path (absolute or relative to the server) with an optional bearer token.
func (f *fixture) get(t *testing.T, path, token string, header ...string) (*http.Response, []byte) {
	t.Helper()
	if strings.HasPrefix(path, "/") {
		path = f.srv.URL + path
	}
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// assertion builds a private_key_jwt client assertion; edit changes the claims.
func (f *fixture) assertion(t *testing.T, alg jose.SignatureAlgorithm, kid string, edit func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{
		"iss": jwtClient,
		"sub": jwtClient,
		"aud": f.sim.TokenURL(),
		"jti": randomString(16),
		"exp": f.now().Add(4 * time.Minute).Unix(),
		"iat": f.now().Unix(),
	}
	if edit != nil {
		edit(claims)
	}
	opts := &jose.SignerOptions{}
	opts.WithType("JWT")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: f.appKey, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewRejectsBadClients(t *testing.T) {
	tests := []struct {
		name    string
		clients []Client
	}{
		{"none", nil},
		{"no id", []Client{{Secret: "x", RedirectURIs: []string{testRedirect}}}},
		{"no redirect", []Client{{ID: "a", Secret: "x"}}},
		{"confidential without credentials", []Client{{ID: "a", RedirectURIs: []string{testRedirect}}}},
		{"public with secret", []Client{{ID: "a", Public: true, Secret: "x", RedirectURIs: []string{testRedirect}}}},
		{"bad jwks", []Client{{ID: "a", JWKS: []byte("{"), RedirectURIs: []string{testRedirect}}}},
		{"duplicate", []Client{
			{ID: "a", Secret: "x", RedirectURIs: []string{testRedirect}},
			{ID: "a", Secret: "y", RedirectURIs: []string{testRedirect}},
		}},
	}
	simKey, _ := mustKeys(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Options{Clients: tt.clients, SigningKey: simKey}); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

// TestRequestLogTimes: a logged request has its arrival and, after it, the
// time its answer was written, both on the simulator's clock.
func TestRequestLogTimes(t *testing.T) {
	var calls atomic.Int64
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	// Each reading of this clock is one second after the one before.
	tick := func() time.Time { return t0.Add(time.Duration(calls.Add(1)) * time.Second) }
	sim, err := New(Options{AppLaunchURL: appLaunchURL, Now: tick, Clients: []Client{{ID: publicClient, Public: true, RedirectURIs: []string{testRedirect}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	resp, err := http.Get(srv.URL + "/fhir/R4/metadata")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := sim.Requests()
	if len(got) != 1 {
		t.Fatalf("got %d requests, want 1", len(got))
	}
	if r := got[0]; r.Time.Before(t0) || !r.Done.After(r.Time) {
		t.Errorf("request arrived at %v, answered at %v; want an answer after its arrival", r.Time, r.Done)
	}
}

func TestRequestLog(t *testing.T) {
	f := mustFixture(t, Switches{})
	tok := f.mustToken(t, patientSpecs[0].id)
	f.sim.ResetRequests()
	f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, tok, "Epic-Client-ID", secretClient)
	f.get(t, "/fhir/R4/Patient/"+patientSpecs[0].id, "")
	got := f.sim.Requests()
	if len(got) != 2 {
		t.Fatalf("got %d requests, want 2", len(got))
	}
	want := []Request{
		{Method: "GET", Path: "/fhir/R4/Patient/" + patientSpecs[0].id, EpicClientID: secretClient, Authorized: true, Status: 200, InFlight: 1, TokenInFlight: 1},
		{Method: "GET", Path: "/fhir/R4/Patient/" + patientSpecs[0].id, Status: 401},
	}
	for i := range want {
		got[i].Time, got[i].Done = time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
