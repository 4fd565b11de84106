// Package ehrsim is an Epic-like EHR simulator: a launchpad, a SMART on FHIR
// authorization server and a FHIR R4 endpoint serving deterministic synthetic
// lab results.
//
// It is an independent peer of smartlabs: it imports nothing from the app, so
// a bug shared by both sides cannot make an integration test pass.
package ehrsim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client is an app registered with the simulator.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret, when non-empty, makes the client confidential with client_secret_basic.
	Secret string
	// JWKSURL, when non-empty, makes the client use private_key_jwt with keys fetched from this URL.
	JWKSURL string
	// JWKS is an alternative to JWKSURL: the client's JWKS document given directly.
	JWKS []byte
	// RedirectURIs are the registered redirect URIs, matched exactly.
	RedirectURIs []string
	// Public marks a public client: PKCE only, no client authentication.
	Public bool
	// Backend registers a backend-services client: only the client_credentials
	// grant, with private_key_jwt, for system/ scopes; it needs no redirect URI.
	Backend bool
}

// Options configure a Sim.
type Options struct {
	// BaseURL is how browsers and the app reach the simulator, without a trailing slash.
	BaseURL string
	// AppLaunchURL is the app's Launch URL.
	AppLaunchURL string
	// Clients are the registered apps.
	Clients []Client
	// Switches are the initial behaviour switches.
	Switches Switches
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SigningKey signs id_tokens; nil generates a fresh 2048-bit RSA key.
	SigningKey *rsa.PrivateKey
	// HTTPClient fetches client JWKS documents; nil uses a client with a 5 s timeout.
	HTTPClient *http.Client
}

// Switches change the simulator's behaviour at run time, so tests can provoke
// latency, failures and Epic's quirks.
type Switches struct {
	// Latency is added before answering every FHIR request and token request.
	Latency time.Duration
	// LatencyPerResult is added to a search page for each result it holds,
	// as an EHR spends time on every resource it reads and serializes.
	LatencyPerResult time.Duration
	// LatencyPerInFlight is added to Latency for each other request with an
	// access token in flight when a request arrives: an EHR slows down
	// under load.
	LatencyPerInFlight time.Duration
	// MaxInFlightPerToken, when > 0, answers a FHIR request 429 Too Many
	// Requests, with Retry-After, when more than this many requests with its
	// access token are in flight, as an EHR that caps each app's concurrency.
	MaxInFlightPerToken int
	// RetryAfter is the Retry-After of those 429 answers, in whole seconds.
	RetryAfter time.Duration
	// SearchParams chooses which slicing parameters (_lastUpdated, date,
	// date:missing) the Observation search lists and applies; the zero value
	// lists and applies them all.
	SearchParams SearchParams
	// FailPage, when > 0, makes the Observation search page with this 1-based number answer 500.
	FailPage int
	// TokenLifetime is the access token lifetime; 0 means one hour.
	TokenLifetime time.Duration
	// DenyAuthorization makes authorize redirect back with error=access_denied.
	DenyAuthorization bool
	// ResponseISS adds the RFC 9207 iss parameter to authorization responses and advertises it.
	ResponseISS bool
	// PagingExpired makes the first next-link request made with each access token
	// answer Epic's paging-session-expired OperationOutcome (code 4113); the
	// restarted search then pages normally.
	PagingExpired bool
	// WrongSubject makes one Observation on the first page name another patient as subject.
	WrongSubject bool
	// NoPatientInToken omits "patient" from token responses.
	NoPatientInToken bool
	// PageSize is the page size when _count is absent; 0 means 100 (max 1000).
	PageSize int
	// NoS256 makes discovery advertise only the "plain" PKCE method, as a
	// misconfigured server would (authorize still demands S256).
	NoS256 bool
	// DiscoveryDown makes smart-configuration and metadata answer 503.
	DiscoveryDown bool
	// RevokeRefresh makes every refresh_token grant answer invalid_grant, as
	// when the EHR revoked the grant or the user's EHR session ended.
	RevokeRefresh bool
	// ReusableLaunch lets a launch token be used again until it expires, as
	// smart-launcher-v2 does (it sends the same launch value every time for
	// the same settings); Epic's launch tokens are single use.
	ReusableLaunch bool
	// NoReportScope makes the authorization server drop DiagnosticReport
	// scopes from every grant, as Epic does when the app's registration lacks
	// the DiagnosticReport API.
	NoReportScope bool
	// FailReports, when set, makes the DiagnosticReport search answer this
	// HTTP status with an error OperationOutcome; 200 answers a Bundle that
	// holds only that OperationOutcome.
	FailReports int
	// MetadataOnly plays a server without SMART discovery whose OAuth issuer is
	// its FHIR base: smart-configuration answers 404, so the endpoints come from
	// the CapabilityStatement, and the FHIR base is the issuer in id_tokens, in
	// the RFC 9207 iss parameter and in an openid-configuration beside it.
	MetadataOnly bool
	// Style, when non-nil, is the smart_style_url document served instead of
	// DefaultStyle, e.g. LowContrastStyle.
	Style map[string]string
}

// Request is one entry of the simulator's request log.
type Request struct {
	// Time is when the request arrived; Done when its answer was written.
	Time, Done time.Time
	// Method is the HTTP method.
	Method string
	// Path is the URL path, without the query.
	Path string
	// EpicClientID is the value of the Epic-Client-ID header.
	EpicClientID string
	// Authorized reports whether the request carried a valid access token.
	Authorized bool
	// Status is the response status code.
	Status int
	// ClientID is the client a token request authenticated as; empty otherwise.
	ClientID string
	// ClientAuth is how it authenticated: client_secret_basic, private_key_jwt or none.
	ClientAuth string
	// KeyID is the kid of the private_key_jwt assertion that was accepted.
	KeyID string
	// Grant is the grant_type of a successful token request.
	Grant string
	// Query is the URL query of a FHIR search, without the patient parameter.
	Query string
	// InFlight counts the requests with an access token in flight when this
	// one arrived, this one included; TokenInFlight counts those with its token.
	InFlight, TokenInFlight int
}

// Sim is the EHR simulator; it is an http.Handler safe for concurrent use.
type Sim struct {
	now          func() time.Time
	appLaunchURL string
	clients      map[string]*clientState
	clientOrder  []string
	key          *rsa.PrivateKey
	keyID        string
	httpClient   *http.Client
	data         *dataset
	mux          *http.ServeMux

	mu        sync.Mutex
	baseURL   string
	switches  Switches
	requests  []Request
	launches  map[string]*launchGrant
	codes     map[string]*codeGrant
	access    map[string]*accessGrant
	refresh   map[string]*refreshGrant
	jtis      map[string]time.Time
	searches  map[string]*search
	cursors   map[string]cursor
	expiredBy map[string]bool
	// reportPages are the DiagnosticReport searches' opaque next links.
	reportPages map[string]reportCursor
	flight      inFlight
	times       map[string]cachedTimes
}

// maxLoggedRequests bounds the request log so a long demo run cannot grow it without limit.
const maxLoggedRequests = 20000

// New returns a simulator for opts.
func New(opts Options) (*Sim, error) {
	if len(opts.Clients) == 0 {
		return nil, errors.New("ehrsim: at least one client is required")
	}
	s := &Sim{
		now:          opts.Now,
		appLaunchURL: opts.AppLaunchURL,
		clients:      map[string]*clientState{},
		key:          opts.SigningKey,
		httpClient:   opts.HTTPClient,
		data:         newDataset(),
		baseURL:      strings.TrimSuffix(opts.BaseURL, "/"),
		switches:     opts.Switches,
		launches:     map[string]*launchGrant{},
		codes:        map[string]*codeGrant{},
		access:       map[string]*accessGrant{},
		refresh:      map[string]*refreshGrant{},
		jtis:         map[string]time.Time{},
		searches:     map[string]*search{},
		cursors:      map[string]cursor{},
		expiredBy:    map[string]bool{},
		reportPages:  map[string]reportCursor{},
		flight:       inFlight{byToken: map[string]int{}},
		times:        map[string]cachedTimes{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.httpClient == nil {
		s.httpClient = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.AppLaunchURL != "" {
		if _, err := url.Parse(opts.AppLaunchURL); err != nil {
			return nil, fmt.Errorf("ehrsim: AppLaunchURL: %w", err)
		}
	}
	for i, c := range opts.Clients {
		cs, err := newClientState(c)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: client %d: %w", i, err)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("ehrsim: client %q registered twice", c.ID)
		}
		s.clients[c.ID] = cs
		s.clientOrder = append(s.clientOrder, c.ID)
	}
	if s.key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: signing key: %w", err)
		}
		s.key = k
	}
	jwk := jose.JSONWebKey{Key: &s.key.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: key thumbprint: %w", err)
	}
	s.keyID = base64.RawURLEncoding.EncodeToString(tp)
	s.mux = s.routes()
	return s, nil
}

// routes lists every endpoint of the simulator.
func (s *Sim) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.handleLaunchpad)
	m.HandleFunc("GET /hyperspace", s.handleHyperspace)
	m.HandleFunc("GET /styles/smart.json", s.handleStyle)

	m.HandleFunc("GET /fhir/R4/.well-known/smart-configuration", s.handleSmartConfiguration)
	m.HandleFunc("GET /fhir/R4/metadata", s.handleMetadata)
	m.HandleFunc("GET /fhir/R4/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	m.HandleFunc("GET /fhir/R4/Patient/{id}", s.handlePatient)
	m.HandleFunc("GET /fhir/R4/Observation", s.handleObservationSearch)
	m.HandleFunc("GET /fhir/R4/DiagnosticReport", s.handleReportSearch)
	m.HandleFunc("OPTIONS /fhir/R4/", s.handlePreflight)
	m.HandleFunc("/fhir/R4/", s.handleFHIRNotFound)

	m.HandleFunc("GET /oauth2/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	m.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	m.HandleFunc("GET /oauth2/authorize", s.handleAuthorize)
	m.HandleFunc("POST /oauth2/authorize", s.handleAuthorize)
	m.HandleFunc("POST /oauth2/token", s.handleToken)
	m.HandleFunc("OPTIONS /oauth2/token", s.handlePreflight)
	return m
}

// ServeHTTP serves every simulator endpoint and records the request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	start := s.now()
	rec.inFlight, rec.tokenInFlight = s.arrive(r)
	defer s.leave(r)
	s.mux.ServeHTTP(rec, r)
	done := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxLoggedRequests {
		s.requests = s.requests[1:]
	}
	s.requests = append(s.requests, Request{
		Time:          start,
		Done:          done,
		Method:        r.Method,
		Path:          r.URL.Path,
		EpicClientID:  r.Header.Get("Epic-Client-ID"),
		Authorized:    rec.authorized,
		Status:        rec.status,
		ClientID:      rec.clientID,
		ClientAuth:    rec.clientAuth,
		KeyID:         rec.keyID,
		Grant:         rec.grant,
		Query:         searchQuery(r),
		InFlight:      rec.inFlight,
		TokenInFlight: rec.tokenInFlight,
	})
}

// recorder captures the status and whether the request was authorized.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	authorized  bool
	clientID    string
	clientAuth  string
	keyID       string
	grant       string
	// inFlight and tokenInFlight are the request's counts at arrival (see Request).
	inFlight, tokenInFlight int
}

// WriteHeader records the status code.
func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// markAuthorized notes in the request log that the request carried a valid token.
func markAuthorized(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.authorized = true
	}
}

// markClient notes in the request log which client authenticated, how, and with which kid.
func markClient(w http.ResponseWriter, clientID, method, kid string) {
	if rec, ok := w.(*recorder); ok {
		rec.clientID, rec.clientAuth, rec.keyID = clientID, method, kid
	}
}

// markGrant notes in the request log the grant of a successful token request.
func markGrant(w http.ResponseWriter, grant string) {
	if rec, ok := w.(*recorder); ok {
		rec.grant = grant
	}
}

// ISS returns the FHIR base URL, which is the iss of every launch.
func (s *Sim) ISS() string { return s.base() + "/fhir/R4" }

// OAuthIssuer returns the authorization server's issuer, which differs from ISS as at Epic.
func (s *Sim) OAuthIssuer() string { return s.base() + "/oauth2" }

// issuer is the OAuth issuer the simulator currently speaks as: OAuthIssuer,
// or the FHIR base under the MetadataOnly switch.
func (s *Sim) issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuerLocked()
}

// issuerLocked is issuer for callers that hold s.mu.
func (s *Sim) issuerLocked() string {
	if s.switches.MetadataOnly {
		return s.baseURL + "/fhir/R4"
	}
	return s.baseURL + "/oauth2"
}

// TokenURL returns the token endpoint, the audience of private_key_jwt assertions.
func (s *Sim) TokenURL() string { return s.base() + "/oauth2/token" }

// AuthorizeURL returns the authorization endpoint.
func (s *Sim) AuthorizeURL() string { return s.base() + "/oauth2/authorize" }

// SetBaseURL changes the base URL, for when the listener address is known only after New.
func (s *Sim) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimSuffix(u, "/")
}

func (s *Sim) base() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// SetSwitches replaces the behaviour switches.
func (s *Sim) SetSwitches(sw Switches) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switches = sw
}

// Switches returns the current behaviour switches.
func (s *Sim) Switches() Switches {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switches
}

// Requests returns a copy of the request log.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests empties the request log.
func (s *Sim) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// PatientInfo describes a synthetic patient.
type PatientInfo struct {
	// ID is the FHIR Patient id.
	ID string
	// Name is the display name, "Family, Given" as Epic shows it.
	Name string
	// Family is the family name.
	Family string
	// Given is the given name.
	Given string
	// Gender is the FHIR administrative gender.
	Gender string
	// BirthDate is YYYY-MM-DD.
	BirthDate string
	// MRN is the medical record number; empty for the patient without one.
	MRN string
	// ResultCount is the number of lab Observations the search returns.
	ResultCount int
	// EnteredInError is how many of those results have status entered-in-error
	// (an app must leave them out).
	EnteredInError int
}

// Patients lists the synthetic patients in launchpad order.
func (s *Sim) Patients() []PatientInfo {
	out := make([]PatientInfo, 0, len(s.data.patients))
	now := s.now()
	for _, p := range s.data.patients {
		info := p.info()
		for _, o := range s.data.observations(p.id, now) {
			if o.Status == "entered-in-error" {
				info.EnteredInError++
			}
		}
		out = append(out, info)
	}
	return out
}

// latency sleeps for the Latency switch, plus LatencyPerInFlight for each
// other request in flight, or until the request is cancelled.
func (s *Sim) latency(ctx context.Context) {
	s.mu.Lock()
	d := s.switches.Latency + s.switches.LatencyPerInFlight*time.Duration(max(s.flight.all-1, 0))
	s.mu.Unlock()
	sleep(ctx, d)
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms.
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeJSON writes v as JSON with the given content type and status.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// allowCORS lets browser-only apps call discovery, token and FHIR endpoints;
// "*" is safe because these endpoints never rely on cookies.
func allowCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Location")
}

// handlePreflight handles "OPTIONS /oauth2/token" and "OPTIONS /fhir/R4/".
func (s *Sim) handlePreflight(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Epic-Client-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
