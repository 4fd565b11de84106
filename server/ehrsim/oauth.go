package ehrsim

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Lifetimes of the simulator's grants, as Epic documents them.
const (
	launchLifetime    = 5 * time.Minute
	codeLifetime      = 2 * time.Minute
	idTokenLifetime   = 5 * time.Minute
	refreshLifetime   = 24 * time.Hour
	assertionMaxAhead = 5 * time.Minute
	jwksCacheTTL      = 5 * time.Minute
	defaultTokenLife  = time.Hour
	jwtBearerType     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	practitionerID    = "eM5CWtq15N0WJeuCet5bJlQ3"
	loginDepartmentID = "101010101"
)

// clientState is a registered client with its parsed keys.
type clientState struct {
	Client
	static *jose.JSONWebKeySet

	mu        sync.Mutex
	fetched   *jose.JSONWebKeySet
	fetchedAt time.Time
}

func newClientState(c Client) (*clientState, error) {
	if c.ID == "" {
		return nil, errors.New("empty ID")
	}
	hasKeys := c.JWKSURL != "" || len(c.JWKS) > 0
	if c.Backend {
		// Backend services authenticate with a JWT only (SMART Backend Services).
		if !hasKeys || c.Secret != "" || c.Public {
			return nil, errors.New("a backend client has keys, no secret and is not public")
		}
	} else if len(c.RedirectURIs) == 0 {
		return nil, errors.New("no redirect URIs")
	}
	if c.Public && (c.Secret != "" || hasKeys) {
		return nil, errors.New("a public client has no secret and no keys")
	}
	if !c.Public && c.Secret == "" && !hasKeys {
		return nil, errors.New("a confidential client needs a secret or keys")
	}
	cs := &clientState{Client: c}
	if len(c.JWKS) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return nil, fmt.Errorf("JWKS: %w", err)
		}
		cs.static = &set
	}
	return cs, nil
}

func (c *clientState) usesJWT() bool { return c.JWKSURL != "" || c.static != nil }

// key finds the client's public key with this kid, refetching the JWKS URL
// when the kid is unknown so that the app can rotate keys.
func (c *clientState) key(r *http.Request, hc *http.Client, now time.Time, kid string) (*jose.JSONWebKey, error) {
	if c.static != nil {
		if k := findKey(c.static, kid); k != nil {
			return k, nil
		}
	}
	if c.JWKSURL == "" {
		return nil, errors.New("unknown kid")
	}
	c.mu.Lock()
	set, at := c.fetched, c.fetchedAt
	c.mu.Unlock()
	if set != nil && now.Sub(at) < jwksCacheTTL {
		if k := findKey(set, kid); k != nil {
			return k, nil
		}
	}
	set, err := fetchJWKS(r, hc, c.JWKSURL)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.fetched, c.fetchedAt = set, now
	c.mu.Unlock()
	if k := findKey(set, kid); k != nil {
		return k, nil
	}
	return nil, errors.New("unknown kid")
}

func findKey(set *jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	for _, k := range set.Key(kid) {
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			return &k
		}
	}
	return nil
}

func fetchJWKS(r *http.Request, hc *http.Client, u string) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	return &set, nil
}

// launchGrant is a launch token minted by the EHR.
type launchGrant struct {
	patient, client string
	exp             time.Time
	used            bool
}

// codeGrant is an authorization code and everything bound to it.
type codeGrant struct {
	code, client, redirectURI string
	challenge, nonce          string
	scopes                    []string
	patient, encounter        string
	exp                       time.Time
	used                      bool
}

// accessGrant is what an access token stands for.
type accessGrant struct {
	id                    string // names the grant in logs and switches, unlike the token itself.
	client, patient, code string
	scopes                []string
	exp                   time.Time
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	client, patient, encounter, code string
	scopes                           []string
	exp                              time.Time
}

// NewLaunch mints a single-use launch token for patientID and clientID, as
// Hyperspace does when a clinician opens the app from a chart.
func (s *Sim) NewLaunch(patientID, clientID string) (string, error) {
	if s.data.patient(patientID) == nil {
		return "", fmt.Errorf("ehrsim: unknown patient %q", patientID)
	}
	if s.clients[clientID] == nil {
		return "", fmt.Errorf("ehrsim: unknown client %q", clientID)
	}
	// Epic's launch tokens are long opaque strings; apps must cope with 300+ characters.
	tok := randomString(240)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	s.launches[tok] = &launchGrant{patient: patientID, client: clientID, exp: s.now().Add(launchLifetime)}
	return tok, nil
}

// pruneLocked drops expired grants; s.mu must be held.
func (s *Sim) pruneLocked() {
	now := s.now()
	for k, v := range s.launches {
		if now.After(v.exp) {
			delete(s.launches, k)
		}
	}
	for k, v := range s.codes {
		if now.After(v.exp.Add(10 * time.Minute)) {
			delete(s.codes, k)
		}
	}
	for k, v := range s.access {
		if now.After(v.exp) {
			delete(s.access, k)
		}
	}
	for k, v := range s.refresh {
		if now.After(v.exp) {
			delete(s.refresh, k)
		}
	}
	for k, exp := range s.jtis {
		if now.After(exp.Add(time.Minute)) {
			delete(s.jtis, k)
		}
	}
}

var capabilities = []string{
	"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
	"client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
	"permission-patient", "permission-offline", "permission-online", "sso-openid-connect",
	"authorize-post",
}

// handleSmartConfiguration handles "GET /fhir/R4/.well-known/smart-configuration".
func (s *Sim) handleSmartConfiguration(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	s.latency(r.Context())
	sw := s.Switches()
	if sw.DiscoveryDown {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	if sw.MetadataOnly {
		http.NotFound(w, r)
		return
	}
	pkce := []string{"S256"}
	if sw.NoS256 {
		pkce = []string{"plain"}
	}
	doc := map[string]any{
		"issuer":                                s.OAuthIssuer(),
		"authorization_endpoint":                s.AuthorizeURL(),
		"token_endpoint":                        s.TokenURL(),
		"jwks_uri":                              s.OAuthIssuer() + "/jwks",
		"capabilities":                          capabilities,
		"code_challenge_methods_supported":      pkce,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token", "client_credentials"},
		"response_types_supported":                         []string{"code"},
		"scopes_supported": []string{
			"openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
			"patient/Patient.read", "patient/Observation.read", "patient/Patient.rs", "patient/Observation.rs",
			"patient/DiagnosticReport.read", "patient/DiagnosticReport.rs",
		},
	}
	if sw.ResponseISS {
		doc["authorization_response_iss_parameter_supported"] = true
	}
	writeJSON(w, http.StatusOK, "application/json", doc)
}

// handleOpenIDConfiguration handles "GET /oauth2/.well-known/openid-configuration"
// and, under the MetadataOnly switch, "GET /fhir/R4/.well-known/openid-configuration":
// the document is served beside the issuer it names, and only there.
func (s *Sim) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	issuer := s.issuer()
	if r.URL.Path != strings.TrimPrefix(issuer, s.base())+"/.well-known/openid-configuration" {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                s.AuthorizeURL(),
		"token_endpoint":                        s.TokenURL(),
		"jwks_uri":                              s.OAuthIssuer() + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "fhirUser"},
	})
}

// handleJWKS handles "GET /oauth2/jwks".
func (s *Sim) handleJWKS(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &s.key.PublicKey, KeyID: s.keyID, Algorithm: string(jose.RS256), Use: "sig",
	}}}
	writeJSON(w, http.StatusOK, "application/json", set)
}

// authorizeParams are the parameters that must appear at most once (RFC 6749 §3.1).
var authorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch",
	"code_challenge", "code_challenge_method", "nonce", "patient",
}

// handleAuthorize handles "GET /oauth2/authorize" and "POST /oauth2/authorize".
func (s *Sim) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.authorizeErrorPage(w, "The authorization request could not be read.")
		return
	}
	q := r.Form
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(q[p]) > 1 {
			s.authorizeErrorPage(w, "The parameter "+p+" was given more than once.")
			return
		}
	}
	c := s.clients[q.Get("client_id")]
	if c == nil || c.Backend {
		// Never redirect for an unknown client: the redirect URI cannot be trusted (RFC 6749 §4.1.2.1).
		s.authorizeErrorPage(w, "The application is not registered with this EHR.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirectURI) {
		// Never redirect to an unregistered URI: that would make the EHR an open redirector.
		s.authorizeErrorPage(w, "The redirect URI is not registered for this application.")
		return
	}
	state := q.Get("state")
	sw := s.Switches()
	fail := func(code, desc string) {
		s.redirectAuthorize(w, r, redirectURI, url.Values{
			"error": {code}, "error_description": {desc}, "state": {state},
		}, sw.ResponseISS)
	}
	for _, p := range authorizeParams {
		if len(q[p]) > 1 {
			fail("invalid_request", "The parameter "+p+" was given more than once.")
			return
		}
	}
	if state == "" {
		fail("invalid_request", "The state parameter is required.")
		return
	}
	if q.Get("response_type") != "code" {
		fail("invalid_request", "response_type must be code.")
		return
	}
	// PKCE with S256 is mandatory: "plain" would expose the verifier to anyone who sees the request.
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256.")
		return
	}
	if !validChallenge(q.Get("code_challenge")) {
		fail("invalid_request", "A valid S256 code_challenge is required.")
		return
	}
	// The audience must name this FHIR server so a token cannot be phished for another one.
	if aud := q.Get("aud"); aud != s.ISS() && aud != s.ISS()+"/" {
		fail("invalid_request", "aud must be the FHIR server's base URL.")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	var patientID, encounter string
	launch := q.Get("launch")
	_, hasLaunch := q["launch"]
	if hasLaunch {
		if !slices.Contains(scopes, "launch") {
			fail("invalid_scope", "An EHR launch requires the launch scope.")
			return
		}
		s.mu.Lock()
		g := s.launches[launch]
		s.mu.Unlock()
		switch {
		case g == nil || g.used && !sw.ReusableLaunch || s.now().After(g.exp):
			fail("invalid_request", "The launch context is unknown, used or expired.")
			return
		case g.client != c.ID:
			fail("unauthorized_client", "The launch context belongs to another application.")
			return
		}
		patientID = g.patient
		encounter = s.data.patient(patientID).encounter
	} else {
		if !slices.Contains(scopes, "launch/patient") {
			fail("invalid_scope", "A standalone launch requires the launch/patient scope.")
			return
		}
		patientID = s.data.patients[0].id
		if hint := q.Get("patient"); hint != "" {
			if s.data.patient(hint) == nil {
				fail("invalid_request", "Unknown patient.")
				return
			}
			patientID = hint
		}
	}
	if sw.DenyAuthorization {
		fail("access_denied", "The user denied the request.")
		return
	}
	code := randomString(32)
	s.mu.Lock()
	if hasLaunch {
		g := s.launches[launch]
		if g == nil || g.used && !sw.ReusableLaunch {
			s.mu.Unlock()
			fail("invalid_request", "The launch context is unknown, used or expired.")
			return
		}
		// Launch tokens are single use, as at Epic: a reload must get a new one.
		g.used = true
	}
	s.pruneLocked()
	s.codes[code] = &codeGrant{
		code: code, client: c.ID, redirectURI: redirectURI,
		challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		scopes: grantedScopes(scopes, sw.NoReportScope), patient: patientID, encounter: encounter,
		exp: s.now().Add(codeLifetime),
	}
	s.mu.Unlock()
	s.redirectAuthorize(w, r, redirectURI, url.Values{"code": {code}, "state": {state}}, sw.ResponseISS)
}

// redirectAuthorize sends the authorization response to the client's redirect URI.
func (s *Sim) redirectAuthorize(w http.ResponseWriter, r *http.Request, redirectURI string, v url.Values, withISS bool) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.authorizeErrorPage(w, "The redirect URI is malformed.")
		return
	}
	if v.Get("state") == "" {
		v.Del("state")
	}
	if withISS {
		v.Set("iss", s.issuer())
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// validChallenge reports whether c looks like a base64url SHA-256 digest.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// grantedScopes keeps the scopes the simulator knows and drops the rest, as
// Epic does; noReports also drops DiagnosticReport scopes, as Epic does when
// the app's registration lacks the DiagnosticReport API.
func grantedScopes(asked []string, noReports bool) []string {
	var out []string
	for _, sc := range asked {
		if noReports && strings.Contains(sc, "/DiagnosticReport.") {
			continue
		}
		switch {
		case sc == "launch", sc == "launch/patient", sc == "openid", sc == "fhirUser", sc == "profile",
			sc == "offline_access", sc == "online_access",
			strings.HasPrefix(sc, "patient/"), strings.HasPrefix(sc, "user/"):
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func invalidClient(desc string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc}
}

func invalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="ehrsim"`)
	}
	writeJSON(w, e.status, "application/json", map[string]string{"error": e.code, "error_description": e.desc})
}

// handleToken handles "POST /oauth2/token".
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	s.latency(r.Context())
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, invalidRequest("The body must be application/x-www-form-urlencoded."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("The body could not be read."))
		return
	}
	form := r.PostForm
	c, how, oerr := s.authenticateClientHow(r, form)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	markClient(w, c.ID, how.method, how.kid)
	var resp map[string]any
	grant := form.Get("grant_type")
	switch {
	case c.Backend && grant != "client_credentials":
		oerr = &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", desc: "A backend client may use only client_credentials."}
	case grant == "authorization_code":
		resp, oerr = s.exchangeCode(c, form)
	case grant == "refresh_token":
		resp, oerr = s.exchangeRefresh(c, form)
	case grant == "client_credentials":
		resp, oerr = s.clientCredentials(c, how, form)
	case grant == "":
		oerr = invalidRequest("grant_type is required.")
	default:
		oerr = &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "Only authorization_code, refresh_token and client_credentials are supported."}
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	markGrant(w, grant)
	writeJSON(w, http.StatusOK, "application/json;charset=UTF-8", resp)
}

// clientAuth is how a token request's client proved itself.
type clientAuth struct {
	method string // client_secret_basic, private_key_jwt or none
	kid    string // the assertion's kid, for private_key_jwt
}

// authenticateClientHow is authenticateClient that also says how the client authenticated.
func (s *Sim) authenticateClientHow(r *http.Request, form url.Values) (*clientState, clientAuth, *oauthError) {
	c, oerr := s.authenticateClient(r, form)
	if oerr != nil {
		return nil, clientAuth{}, oerr
	}
	switch {
	case r.Header.Get("Authorization") != "":
		return c, clientAuth{method: "client_secret_basic"}, nil
	case form.Get("client_assertion") != "":
		kid := ""
		if tok, err := jwt.ParseSigned(form.Get("client_assertion"), assertionAlgs); err == nil && len(tok.Headers) == 1 {
			kid = tok.Headers[0].KeyID
		}
		return c, clientAuth{method: "private_key_jwt", kid: kid}, nil
	}
	return c, clientAuth{method: "none"}, nil
}

// assertionAlgs are the client assertion algorithms accepted, as at Epic.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// authenticateClient identifies and authenticates the client of a token request.
func (s *Sim) authenticateClient(r *http.Request, form url.Values) (*clientState, *oauthError) {
	_, hasBasic := r.Header["Authorization"]
	hasAssertion := form.Get("client_assertion") != "" || form.Get("client_assertion_type") != ""
	if form.Get("client_secret") != "" {
		return nil, invalidClient("client_secret_post is not supported; use client_secret_basic.")
	}
	if hasBasic && hasAssertion {
		return nil, invalidRequest("Use exactly one client authentication method.")
	}
	switch {
	case hasBasic:
		return s.authenticateBasic(r, form)
	case hasAssertion:
		return s.authenticateAssertion(r, form)
	}
	c := s.clients[form.Get("client_id")]
	if c == nil {
		return nil, invalidClient("Unknown client.")
	}
	// A confidential client must prove itself; accepting only its client_id would let anyone redeem its codes.
	if !c.Public {
		return nil, invalidClient("Client authentication is required.")
	}
	return c, nil
}

// authenticateBasic checks client_secret_basic credentials, form-decoding
// both parts as RFC 6749 §2.3.1 requires.
func (s *Sim) authenticateBasic(r *http.Request, form url.Values) (*clientState, *oauthError) {
	fail := invalidClient("Invalid client credentials.")
	fail.basic = true
	rawUser, rawPass, ok := r.BasicAuth()
	if !ok {
		return nil, fail
	}
	user, err1 := url.QueryUnescape(rawUser)
	pass, err2 := url.QueryUnescape(rawPass)
	if err1 != nil || err2 != nil {
		return nil, fail
	}
	c := s.clients[user]
	if c == nil || c.Secret == "" {
		return nil, fail
	}
	// Constant-time comparison so response timing does not reveal the secret.
	if subtle.ConstantTimeCompare([]byte(pass), []byte(c.Secret)) != 1 {
		return nil, fail
	}
	if id := form.Get("client_id"); id != "" && id != c.ID {
		return nil, fail
	}
	return c, nil
}

// assertionClaims are the claims of a private_key_jwt client assertion.
type assertionClaims struct {
	jwt.Claims
}

// authenticateAssertion checks a private_key_jwt client assertion (RS384 or ES384).
func (s *Sim) authenticateAssertion(r *http.Request, form url.Values) (*clientState, *oauthError) {
	if form.Get("client_assertion_type") != jwtBearerType {
		return nil, invalidClient("Unsupported client_assertion_type.")
	}
	// Only RS384 and ES384 are accepted, as at Epic; an algorithm allow-list also rules out "none" and HMAC confusion.
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalidClient("The client assertion is malformed or not RS384/ES384.")
	}
	kid := tok.Headers[0].KeyID
	if kid == "" {
		return nil, invalidClient("The client assertion has no kid.")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidClient("The client assertion claims are malformed.")
	}
	c := s.clients[unverified.Issuer]
	if c == nil || !c.usesJWT() {
		return nil, invalidClient("Unknown client.")
	}
	now := s.now()
	key, err := c.key(r, s.httpClient, now, kid)
	if err != nil {
		return nil, invalidClient("No key matches the client assertion.")
	}
	// The key must be for the algorithm the assertion names, so an RSA key is never used as ES384 or back.
	if key.Algorithm != "" && key.Algorithm != tok.Headers[0].Algorithm {
		return nil, invalidClient("The key is not for the assertion's algorithm.")
	}
	var claims assertionClaims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, invalidClient("The client assertion signature is invalid.")
	}
	switch {
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return nil, invalidClient("iss and sub must be the client_id.")
	case !audienceIs(claims.Audience, s.TokenURL()):
		return nil, invalidClient("aud must be the token endpoint.")
	case claims.Expiry == nil:
		return nil, invalidClient("exp is required.")
	case !now.Before(claims.Expiry.Time()):
		return nil, invalidClient("The client assertion has expired.")
	case claims.Expiry.Time().After(now.Add(assertionMaxAhead)):
		return nil, invalidClient("exp must be at most 5 minutes ahead.")
	case claims.NotBefore != nil && now.Before(claims.NotBefore.Time()):
		return nil, invalidClient("The client assertion is not valid yet.")
	case claims.ID == "":
		return nil, invalidClient("jti is required.")
	}
	if id := form.Get("client_id"); id != "" && id != c.ID {
		return nil, invalidClient("client_id does not match the assertion.")
	}
	// A jti may be used once: a captured assertion must not be replayable.
	seenKey := c.ID + "\x00" + claims.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.jtis[seenKey]; seen {
		return nil, invalidClient("The client assertion was already used.")
	}
	s.jtis[seenKey] = claims.Expiry.Time()
	return c, nil
}

func audienceIs(aud jwt.Audience, want string) bool {
	return len(aud) == 1 && aud[0] == want
}

// exchangeCode redeems an authorization code.
func (s *Sim) exchangeCode(c *clientState, form url.Values) (map[string]any, *oauthError) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.codes[form.Get("code")]
	switch {
	case g == nil:
		return nil, invalidGrant("The authorization code is unknown.")
	case g.used:
		// A second use means the code leaked: revoke what it produced (RFC 6749 §4.1.2).
		s.revokeCodeLocked(g.code)
		return nil, invalidGrant("The authorization code was already used.")
	case now.After(g.exp):
		return nil, invalidGrant("The authorization code has expired.")
	case g.client != c.ID:
		return nil, invalidGrant("The authorization code was issued to another client.")
	}
	// The code is spent by any attempt from its client, so a wrong verifier cannot be retried.
	g.used = true
	if form.Get("redirect_uri") != g.redirectURI {
		return nil, invalidGrant("redirect_uri does not match the authorization request.")
	}
	v := form.Get("code_verifier")
	if len(v) < 43 || len(v) > 128 {
		return nil, invalidGrant("A code_verifier of 43 to 128 characters is required.")
	}
	sum := sha256.Sum256([]byte(v))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		return nil, invalidGrant("The code_verifier does not match the code_challenge.")
	}
	resp := s.issueLocked(c, g.patient, g.encounter, g.code, g.scopes, now)
	if slices.Contains(g.scopes, "openid") {
		idt, err := s.idToken(s.issuerLocked(), c.ID, g.nonce, now)
		if err != nil {
			return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "Could not sign the id_token."}
		}
		resp["id_token"] = idt
	}
	return resp, nil
}

// exchangeRefresh redeems and rotates a refresh token.
func (s *Sim) exchangeRefresh(c *clientState, form url.Values) (map[string]any, *oauthError) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := form.Get("refresh_token")
	g := s.refresh[old]
	switch {
	case g == nil:
		return nil, invalidGrant("The refresh token is unknown.")
	case s.switches.RevokeRefresh:
		return nil, invalidGrant("The refresh token was revoked.")
	case now.After(g.exp):
		return nil, invalidGrant("The refresh token has expired.")
	case g.client != c.ID:
		return nil, invalidGrant("The refresh token was issued to another client.")
	}
	scopes := g.scopes
	if asked := strings.Fields(form.Get("scope")); len(asked) > 0 {
		for _, sc := range asked {
			if !slices.Contains(g.scopes, sc) {
				return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", desc: "The scope exceeds the original grant."}
			}
		}
		scopes = asked
	}
	// Rotation: the old refresh token stops working once used.
	delete(s.refresh, old)
	return s.issueLocked(c, g.patient, g.encounter, g.code, scopes, now), nil
}

// clientCredentials grants a backend client a system-level token (SMART
// Backend Services): private_key_jwt only, system/ scopes only, no refresh token.
func (s *Sim) clientCredentials(c *clientState, how clientAuth, form url.Values) (map[string]any, *oauthError) {
	if !c.Backend {
		return nil, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", desc: "This client is not registered for client_credentials."}
	}
	if how.method != "private_key_jwt" {
		return nil, invalidClient("client_credentials requires a JWT client assertion.")
	}
	var scopes []string
	for _, sc := range strings.Fields(form.Get("scope")) {
		if strings.HasPrefix(sc, "system/") && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) == 0 {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", desc: "Ask for at least one system/ scope."}
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	life := s.switches.TokenLifetime
	if life <= 0 {
		life = defaultTokenLife
	}
	at := opaqueJWT()
	s.pruneLocked()
	// No patient: the token can read no patient's data through this simulator's FHIR API.
	s.access[at] = &accessGrant{id: randomString(9), client: c.ID, scopes: scopes, exp: now.Add(life)}
	return map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(life / time.Second),
		"scope":        strings.Join(scopes, " "),
	}, nil
}

// issueLocked creates an access token (and a refresh token when asked for) and
// the token response; s.mu must be held.
func (s *Sim) issueLocked(c *clientState, patient, encounter, code string, scopes []string, now time.Time) map[string]any {
	life := s.switches.TokenLifetime
	if life <= 0 {
		life = defaultTokenLife
	}
	at := opaqueJWT()
	s.access[at] = &accessGrant{id: randomString(9), client: c.ID, patient: patient, code: code, scopes: scopes, exp: now.Add(life)}
	resp := map[string]any{
		"access_token":         at,
		"token_type":           "Bearer",
		"expires_in":           int(life / time.Second),
		"scope":                strings.Join(scopes, " "),
		"need_patient_banner":  "true",
		"smart_style_url":      s.baseURL + "/styles/smart.json",
		"__epic.dstu2.patient": s.data.patient(patient).dstu2ID,
		"loginDepartment":      loginDepartmentID,
	}
	if !s.switches.NoPatientInToken {
		resp["patient"] = patient
	}
	if encounter != "" {
		resp["encounter"] = encounter
	}
	if slices.Contains(scopes, "offline_access") || slices.Contains(scopes, "online_access") {
		rt := randomString(48)
		s.refresh[rt] = &refreshGrant{client: c.ID, patient: patient, encounter: encounter, code: code, scopes: scopes, exp: now.Add(refreshLifetime)}
		resp["refresh_token"] = rt
	}
	return resp
}

// revokeCodeLocked revokes every token descended from an authorization code; s.mu must be held.
func (s *Sim) revokeCodeLocked(code string) {
	for k, v := range s.access {
		if v.code == code {
			delete(s.access, k)
		}
	}
	for k, v := range s.refresh {
		if v.code == code {
			delete(s.refresh, k)
		}
	}
}

// opaqueJWT returns a long JWT-shaped random access token; apps must store it
// whole and never decode it.
func opaqueJWT() string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"ehrsim","typ":"JWT"}`))
	return header + "." + randomString(420) + "." + randomString(256)
}

// idToken signs an OpenID Connect id_token for the simulated practitioner.
func (s *Sim) idToken(issuer, clientID, nonce string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.key, KeyID: s.keyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss":      issuer,
		"sub":      practitionerID,
		"aud":      clientID,
		"iat":      now.Unix(),
		"exp":      now.Add(idTokenLifetime).Unix(),
		"fhirUser": s.baseURL + "/fhir/R4/Practitioner/" + practitionerID,
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// bearer returns the grant of the request's access token, or nil.
func (s *Sim) bearer(r *http.Request) (*accessGrant, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.access[strings.TrimSpace(tok)]
	if g == nil || !s.now().Before(g.exp) {
		return nil, true
	}
	cp := *g
	return &cp, true
}
