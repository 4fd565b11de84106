// Package smart is the app side of SMART App Launch 2.x as Epic does it:
// discovery, the authorization request, the code exchange with client
// authentication, and id_token validation.
package smart

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"smartlabs/server/config"
)

// maxBody bounds every response body we read, so a hostile or broken server cannot exhaust memory.
const maxBody = 1 << 20

// EpicClientIDHeader carries the client id on every request; Epic may route endpoints per client.
const EpicClientIDHeader = "Epic-Client-ID"

// Options configures a Client. Zero values get sensible defaults.
type Options struct {
	// HTTPClient is used for every outbound call; default has a 15 s timeout.
	// Its redirect policy is replaced: the Client never follows redirects.
	HTTPClient *http.Client
	// DiscoveryTTL is how long discovery documents and JWKS are cached; default 1 h.
	DiscoveryTTL time.Duration
	// ClockSkew is the tolerance for id_token exp and iat; default 2 min.
	ClockSkew time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Client talks SMART to the configured issuers and caches what they publish.
type Client struct {
	http *http.Client
	ttl  time.Duration
	skew time.Duration
	now  func() time.Time

	discovery ttlCache[*Discovery]
	oidc      ttlCache[*oidcConfig]
	jwks      ttlCache[*jose.JSONWebKeySet]
}

// NewClient returns a Client with opts, filling in defaults.
func NewClient(opts Options) *Client {
	c := &Client{http: opts.HTTPClient, ttl: opts.DiscoveryTTL, skew: opts.ClockSkew, now: opts.Now}
	if c.http == nil {
		c.http = &http.Client{Timeout: 15 * time.Second}
	}
	// Redirects are never followed: a redirecting token endpoint would get the code
	// and the client credentials re-sent to a host discovery never named, and a
	// redirecting JWKS would let another host choose the id_token keys.
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	if c.ttl <= 0 {
		c.ttl = time.Hour
	}
	if c.skew <= 0 {
		c.skew = 2 * time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Discovery is what an issuer publishes about its authorization server.
type Discovery struct {
	// Issuer is the OAuth issuer (Epic: "…/oauth2", not the FHIR base); empty
	// when discovery came from the CapabilityStatement.
	Issuer string
	// AuthorizationEndpoint is where the browser is sent to sign in.
	AuthorizationEndpoint string
	// TokenEndpoint is where the code is exchanged.
	TokenEndpoint string
	// JWKSURI is where the id_token signing keys are; may be empty.
	JWKSURI string
	// Capabilities are the SMART capabilities, e.g. "launch-ehr", "authorize-post".
	Capabilities []string
	// CodeChallengeMethods are the PKCE methods offered.
	CodeChallengeMethods []string
	// TokenEndpointAuthMethods are the client authentication methods offered.
	TokenEndpointAuthMethods []string
	// ResponseISSRequired is authorization_response_iss_parameter_supported (RFC 9207).
	ResponseISSRequired bool

	// fhirBase is the configured iss, used to look for an openid-configuration.
	fhirBase string
	// policy is where the issuer's endpoints may be; the zero value refuses all.
	policy endpointPolicy
}

// Has reports whether the server advertises capability.
func (d *Discovery) Has(capability string) bool {
	return slices.Contains(d.Capabilities, capability)
}

// smartConfig is the JSON of .well-known/smart-configuration.
type smartConfig struct {
	Issuer                     string   `json:"issuer"`
	AuthorizationEndpoint      string   `json:"authorization_endpoint"`
	TokenEndpoint              string   `json:"token_endpoint"`
	JWKSURI                    string   `json:"jwks_uri"`
	Capabilities               []string `json:"capabilities"`
	CodeChallengeMethods       []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	AuthorizationResponseISSOK bool     `json:"authorization_response_iss_parameter_supported"`
}

// capabilityStatement is the part of a FHIR CapabilityStatement that names the OAuth endpoints.
type capabilityStatement struct {
	Rest []struct {
		Security struct {
			Extension []fhirExtension `json:"extension"`
		} `json:"security"`
	} `json:"rest"`
}

type fhirExtension struct {
	URL       string          `json:"url"`
	ValueURI  string          `json:"valueUri"`
	Extension []fhirExtension `json:"extension"`
}

const oauthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// Discover returns the issuer's discovery document, from the cache when fresh.
func (c *Client) Discover(ctx context.Context, iss config.Issuer) (*Discovery, error) {
	// allowed_hosts is part of the key so that a document accepted under one
	// issuer's hosts is never served under another's.
	key := normalizeISS(iss.ISS) + "\x00" + iss.ClientID + "\x00" + strings.Join(iss.AllowedHosts, ",")
	return c.discovery.get(ctx, key, c.now(), c.ttl, false, func(ctx context.Context) (*Discovery, error) {
		return c.fetchDiscovery(ctx, iss)
	})
}

func (c *Client) fetchDiscovery(ctx context.Context, iss config.Issuer) (*Discovery, error) {
	base := strings.TrimSuffix(iss.ISS, "/")
	body, status, err := c.get(ctx, base+"/.well-known/smart-configuration", "application/json", iss.ClientID)
	if err != nil {
		return nil, err
	}
	var sc smartConfig
	if status == http.StatusOK && json.Unmarshal(body, &sc) == nil && sc.AuthorizationEndpoint != "" && sc.TokenEndpoint != "" {
		d := &Discovery{
			Issuer:                   sc.Issuer,
			AuthorizationEndpoint:    sc.AuthorizationEndpoint,
			TokenEndpoint:            sc.TokenEndpoint,
			JWKSURI:                  sc.JWKSURI,
			Capabilities:             sc.Capabilities,
			CodeChallengeMethods:     sc.CodeChallengeMethods,
			TokenEndpointAuthMethods: sc.TokenEndpointAuthMethods,
			ResponseISSRequired:      sc.AuthorizationResponseISSOK,
			fhirBase:                 base,
			policy:                   newEndpointPolicy(iss),
		}
		if err := validateDiscovery(d); err != nil {
			return nil, err
		}
		return d, nil
	}
	if status >= 500 {
		return nil, errorf(KindUnreachable, publicUnreachable, "smart-configuration: status %d", status)
	}
	// Older servers publish the endpoints only in the CapabilityStatement.
	// Epic answers XML unless JSON is asked for explicitly.
	body, status, err = c.get(ctx, base+"/metadata", "application/fhir+json", iss.ClientID)
	if err != nil {
		return nil, err
	}
	if status >= 500 {
		return nil, errorf(KindUnreachable, publicUnreachable, "metadata: status %d", status)
	}
	if status != http.StatusOK {
		return nil, errorf(KindBadServer, publicBadServer, "no smart-configuration and metadata: status %d", status)
	}
	var cs capabilityStatement
	if err := json.Unmarshal(body, &cs); err != nil {
		return nil, errorf(KindBadServer, publicBadServer, "metadata: %v", err)
	}
	d := &Discovery{fhirBase: base, policy: newEndpointPolicy(iss)}
	for _, r := range cs.Rest {
		for _, e := range r.Security.Extension {
			if e.URL != oauthURIsExtension {
				continue
			}
			for _, sub := range e.Extension {
				switch sub.URL {
				case "authorize":
					d.AuthorizationEndpoint = sub.ValueURI
				case "token":
					d.TokenEndpoint = sub.ValueURI
				}
			}
		}
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return nil, errorf(KindBadServer, publicBadServer, "neither smart-configuration nor metadata names the OAuth endpoints")
	}
	if err := validateDiscovery(d); err != nil {
		return nil, err
	}
	return d, nil
}

// validateDiscovery applies the rules every discovery document must pass.
func validateDiscovery(d *Discovery) error {
	// A server that offers only "plain" PKCE leaks the verifier's protection, so we refuse it.
	if len(d.CodeChallengeMethods) > 0 && !slices.Contains(d.CodeChallengeMethods, "S256") {
		return errorf(KindBadServer, publicPKCE, "code_challenge_methods_supported %q lacks S256", d.CodeChallengeMethods)
	}
	checks := []struct{ name, val string }{
		{"authorization_endpoint", d.AuthorizationEndpoint},
		{"token_endpoint", d.TokenEndpoint},
	}
	if d.JWKSURI != "" {
		checks = append(checks, struct{ name, val string }{"jwks_uri", d.JWKSURI})
	}
	if d.Issuer != "" {
		checks = append(checks, struct{ name, val string }{"issuer", d.Issuer})
	}
	for _, ch := range checks {
		if err := d.policy.check(ch.val); err != nil {
			return errorf(KindBadServer, publicBadServer, "%s: %v", ch.name, err)
		}
	}
	return nil
}

// normalizeISS lower-cases scheme and host and drops one trailing slash, for cache keys.
func normalizeISS(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return iss
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// get fetches rawURL with the Accept and Epic-Client-ID headers and returns the
// bounded body and status. Network failures come back as KindUnreachable.
func (c *Client) get(ctx context.Context, rawURL, accept, clientID string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, errorf(KindBadServer, publicBadServer, "bad URL: %v", err)
	}
	req.Header.Set("Accept", accept)
	if clientID != "" {
		req.Header.Set(EpicClientIDHeader, clientID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: err}
	}
	if len(body) > maxBody {
		return nil, 0, errorf(KindBadServer, publicBadServer, "%s: response larger than %d bytes", req.URL.Redacted(), maxBody)
	}
	return body, resp.StatusCode, nil
}
