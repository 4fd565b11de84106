package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"smartlabs/server/config"
	"smartlabs/server/keys"
)

// clientAssertionType is the RFC 7523 assertion type for private_key_jwt.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime stays under Epic's five-minute maximum for client assertions.
const assertionLifetime = 4 * time.Minute

// Tokens is what a successful code exchange yields. It stays on the server.
type Tokens struct {
	// AccessToken is stored whole: Epic's are long JWTs and are never decoded.
	AccessToken string
	// RefreshToken may be empty.
	RefreshToken string
	// IDToken is the raw, validated id_token.
	IDToken string
	// TokenType is usually "Bearer".
	TokenType string
	// Scope is the granted scope.
	Scope string
	// Expiry is when the access token expires; zero when expires_in was absent.
	Expiry time.Time
	// Patient is the launch context patient id.
	Patient string
	// Encounter is the launch context encounter id.
	Encounter string
	// NeedPatientBanner asks the app to show a patient banner.
	NeedPatientBanner bool
	// SmartStyleURL points at the EHR's style hints.
	SmartStyleURL string
	// FHIRContext is the fhirContext array as sent; nil when absent.
	FHIRContext json.RawMessage
	// FHIRUser is the signed-in user, from the id_token's fhirUser (else profile) claim.
	FHIRUser string
}

// Exchange trades code for tokens at d's token endpoint, authenticating with
// client_secret_basic when iss has a secret, private_key_jwt when key is not
// nil, and as a public client otherwise; then validates the id_token.
func (c *Client) Exchange(ctx context.Context, d *Discovery, iss config.Issuer, key *keys.Key, redirectURI, code, codeVerifier, nonce string) (*Tokens, error) {
	if iss.ClientSecret != "" && key != nil {
		return nil, errors.New("smart: issuer has both a client secret and a private key")
	}
	cfg := oauth2.Config{
		ClientID:    iss.ClientID,
		RedirectURL: redirectURI,
		// The auth style is set explicitly: auto-detection would retry a failed
		// request in another style, re-sending the single-use code.
		Endpoint: oauth2.Endpoint{TokenURL: d.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(codeVerifier)}
	switch {
	case iss.ClientSecret != "":
		cfg.ClientSecret = iss.ClientSecret.Value()
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case key != nil:
		assertion, err := c.clientAssertion(key, iss.ClientID, d.TokenEndpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts,
			oauth2.SetAuthURLParam("client_assertion_type", clientAssertionType),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}

	hc := *c.http
	hc.Transport = headerTransport{base: c.http.Transport, clientID: iss.ClientID}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &hc)
	tok, err := cfg.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, tokenError(err)
	}

	t := &Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Scope:        extraString(tok, "scope"),
		Patient:      extraString(tok, "patient"),
		Encounter:    extraString(tok, "encounter"),
		// Epic has sent need_patient_banner both as a JSON bool and as a string.
		NeedPatientBanner: extraBool(tok, "need_patient_banner"),
		SmartStyleURL:     extraString(tok, "smart_style_url"),
		IDToken:           extraString(tok, "id_token"),
	}
	if tok.ExpiresIn > 0 {
		t.Expiry = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if fc := tok.Extra("fhirContext"); fc != nil {
		if raw, err := json.Marshal(fc); err == nil {
			t.FHIRContext = raw
		}
	}

	// Both default scope lists include openid, so the launch kind does not matter here.
	requested := requestedScopes(iss, EHRLaunch)
	if t.IDToken == "" {
		if slices.Contains(strings.Fields(requested), "openid") {
			return nil, errorf(KindBadServer, publicIDToken, "scope included openid but no id_token came back")
		}
		return t, nil
	}
	claims, err := c.validateIDToken(ctx, d, iss.ClientID, t.IDToken, nonce)
	if err != nil {
		return nil, err
	}
	t.FHIRUser = claims.FHIRUser
	if t.FHIRUser == "" {
		t.FHIRUser = claims.Profile
	}
	return t, nil
}

// clientAssertion signs the private_key_jwt assertion (RFC 7523) with RS384.
func (c *Client) clientAssertion(key *keys.Key, clientID, tokenURL string) (string, error) {
	signer, err := jose.NewSigner(key.SigningKey(), (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", errorf(KindBadServer, publicBadServer, "client assertion signer: %v", err)
	}
	// A unique jti lets the server refuse a replayed assertion.
	jti, err := randomString(16)
	if err != nil {
		return "", err
	}
	now := c.now()
	claims := jwt.Claims{
		Issuer:    clientID,
		Subject:   clientID,
		Audience:  jwt.Audience{tokenURL},
		ID:        jti,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", errorf(KindBadServer, publicBadServer, "client assertion: %v", err)
	}
	return s, nil
}

// tokenError maps an exchange failure to a kind without copying the response
// body, which could echo the code or a token, into the error.
func tokenError(err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		cause := &tokenEndpointError{Status: status, Code: re.ErrorCode}
		if status >= 500 {
			return &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: cause}
		}
		return &Error{Kind: KindRejected, Public: publicRejected, Err: cause}
	}
	// Transport failures come wrapped in *url.Error, which names only the endpoint.
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: err}
	}
	// A 2xx answer we cannot use: missing access_token or unparsable JSON.
	return &Error{Kind: KindBadServer, Public: publicBadServer, Err: errors.New("token endpoint: unusable response")}
}

// tokenEndpointError describes a token endpoint refusal by status and OAuth error code only.
type tokenEndpointError struct {
	Status int
	Code   string
}

// Error names the status and the OAuth error code.
func (e *tokenEndpointError) Error() string {
	s := fmt.Sprintf("token endpoint: status %d", e.Status)
	if e.Code != "" {
		s += ", error " + sanitizeCode(e.Code)
	}
	return s
}

// sanitizeCode keeps an OAuth error code printable and short for logs.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '?'
	}, s)
}

// headerTransport adds Epic-Client-ID to every request it carries.
type headerTransport struct {
	base     http.RoundTripper
	clientID string
}

// RoundTrip clones the request, sets the header and sends it with the base transport.
func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.clientID == "" {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set(EpicClientIDHeader, t.clientID)
	return base.RoundTrip(r)
}

func extraString(tok *oauth2.Token, key string) string {
	s, _ := tok.Extra(key).(string)
	return s
}

func extraBool(tok *oauth2.Token, key string) bool {
	switch v := tok.Extra(key).(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "true")
	default:
		return false
	}
}
