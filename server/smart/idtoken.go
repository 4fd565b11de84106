package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idTokenAlgs is the id_token algorithm allow-list. Asymmetric only: "none"
// would accept forgeries, and HS* would let anyone holding the public key sign.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384}

// idClaims are the id_token claims we check or record.
type idClaims struct {
	jwt.Claims
	Nonce           string `json:"nonce"`
	AuthorizedParty string `json:"azp"`
	FHIRUser        string `json:"fhirUser"`
	Profile         string `json:"profile"`
}

// oidcConfig is the part of an openid-configuration we use.
type oidcConfig struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// validateIDToken verifies raw's signature against the issuer's JWKS and
// checks iss, aud, exp and nonce.
func (c *Client) validateIDToken(ctx context.Context, d *Discovery, clientID, raw, nonce string) (*idClaims, error) {
	tok, err := jwt.ParseSigned(raw, idTokenAlgs)
	if err != nil {
		return nil, errorf(KindBadServer, publicIDToken, "id_token: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, errorf(KindBadServer, publicIDToken, "id_token: %d signatures, want 1", len(tok.Headers))
	}
	h := tok.Headers[0]
	issuer, jwksURI, err := c.idTokenKeys(ctx, d, clientID)
	if err != nil {
		return nil, err
	}
	set, err := c.fetchJWKS(ctx, jwksURI, clientID, false)
	if err != nil {
		return nil, err
	}
	candidates := selectKeys(set, h)
	if len(candidates) == 0 {
		// An unknown kid usually means the server rotated its keys: refetch once.
		// Refetching is safe from abuse because id_tokens come only from a configured issuer over TLS.
		if set, err = c.fetchJWKS(ctx, jwksURI, clientID, true); err != nil {
			return nil, err
		}
		candidates = selectKeys(set, h)
	}
	if len(candidates) == 0 {
		return nil, errorf(KindBadServer, publicIDToken, "id_token: no key in the issuer's JWKS matches kid %q", h.KeyID)
	}
	// Without a kid the key must be unambiguous (OpenID Connect Core 10.1): trying
	// every key would let one signature stand for any key the issuer publishes.
	if h.KeyID == "" && len(candidates) > 1 {
		return nil, errorf(KindBadServer, publicIDToken, "id_token has no kid and %d keys in the issuer's JWKS fit it", len(candidates))
	}
	var claims idClaims
	verr := errors.New("no key tried")
	for _, k := range candidates {
		if verr = tok.Claims(k.Key, &claims); verr == nil {
			break
		}
	}
	if verr != nil {
		return nil, errorf(KindBadServer, publicIDToken, "id_token signature: %v", verr)
	}

	if claims.Issuer != issuer {
		return nil, errorf(KindIssuerMismatch, publicIssuer, "id_token iss does not match the issuer")
	}
	if !claims.Audience.Contains(clientID) {
		return nil, errorf(KindRejected, publicRejected, "id_token aud does not contain our client id")
	}
	// azp names the party the token was issued to: when present it must be us, whatever
	// aud holds, and with several audiences it is required, so a token issued to
	// another client is never accepted (OpenID Connect Core 3.1.3.7).
	if claims.AuthorizedParty != "" && claims.AuthorizedParty != clientID {
		return nil, errorf(KindRejected, publicRejected, "id_token azp names another client")
	}
	if len(claims.Audience) > 1 && claims.AuthorizedParty == "" {
		return nil, errorf(KindRejected, publicRejected, "id_token has several audiences and no azp")
	}
	if claims.Expiry == nil {
		return nil, errorf(KindRejected, publicRejected, "id_token has no exp")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: c.now()}, c.skew); err != nil {
		return nil, errorf(KindRejected, publicRejected, "id_token time claims: %v", err)
	}
	// The nonce ties the id_token to this browser's request; compare in constant time.
	if nonce == "" || subtle.ConstantTimeCompare([]byte(claims.Nonce), []byte(nonce)) != 1 {
		return nil, errorf(KindRejected, publicRejected, "id_token nonce does not match the request")
	}
	return &claims, nil
}

// idTokenKeys returns the issuer an id_token must name and where its keys are,
// from discovery or, when discovery lacks them, from an openid-configuration.
func (c *Client) idTokenKeys(ctx context.Context, d *Discovery, clientID string) (issuer, jwksURI string, err error) {
	issuer, jwksURI = d.Issuer, d.JWKSURI
	if issuer != "" && jwksURI != "" {
		return issuer, jwksURI, nil
	}
	const wk = "/.well-known/openid-configuration"
	var candidates []string
	if issuer != "" {
		candidates = []string{strings.TrimSuffix(issuer, "/") + wk}
	} else {
		// Without an issuer, look beside the FHIR base and beside the authorize endpoint
		// (Epic's OAuth issuer is the authorize endpoint's parent, "…/oauth2").
		if d.fhirBase != "" {
			candidates = append(candidates, d.fhirBase+wk)
		}
		if u, perr := url.Parse(d.AuthorizationEndpoint); perr == nil && u.Host != "" {
			u.Path, u.RawPath, u.RawQuery, u.Fragment = strings.TrimSuffix(path.Dir(u.Path), "/")+wk, "", "", ""
			candidates = append(candidates, u.String())
		}
	}
	lastErr := error(errorf(KindBadServer, publicIDToken, "no openid-configuration location"))
	for _, loc := range candidates {
		doc, ferr := c.oidc.get(ctx, loc, c.now(), c.ttl, false, func(ctx context.Context) (*oidcConfig, error) {
			return c.fetchOIDC(ctx, loc, clientID)
		})
		if ferr != nil {
			lastErr = ferr
			continue
		}
		if issuer == "" {
			issuer = doc.Issuer
		} else if doc.Issuer != issuer {
			return "", "", errorf(KindIssuerMismatch, publicIssuer, "openid-configuration issuer differs from discovery")
		}
		if jwksURI == "" {
			jwksURI = doc.JWKSURI
		}
		if issuer == "" || jwksURI == "" {
			return "", "", errorf(KindBadServer, publicIDToken, "openid-configuration lacks issuer or jwks_uri")
		}
		if err := d.policy.check(jwksURI); err != nil {
			return "", "", errorf(KindBadServer, publicIDToken, "jwks_uri: %v", err)
		}
		if err := d.policy.check(issuer); err != nil {
			return "", "", errorf(KindBadServer, publicIDToken, "issuer: %v", err)
		}
		return issuer, jwksURI, nil
	}
	return "", "", lastErr
}

func (c *Client) fetchOIDC(ctx context.Context, loc, clientID string) (*oidcConfig, error) {
	body, status, err := c.get(ctx, loc, "application/json", clientID)
	if err != nil {
		return nil, err
	}
	if err := statusError("openid-configuration", status); err != nil {
		return nil, err
	}
	var doc oidcConfig
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errorf(KindBadServer, publicIDToken, "openid-configuration: %v", err)
	}
	return &doc, nil
}

// fetchJWKS returns the key set at jwksURI, cached per URL; fresh forces a refetch.
func (c *Client) fetchJWKS(ctx context.Context, jwksURI, clientID string, fresh bool) (*jose.JSONWebKeySet, error) {
	return c.jwks.get(ctx, jwksURI, c.now(), c.ttl, fresh, func(ctx context.Context) (*jose.JSONWebKeySet, error) {
		body, status, err := c.get(ctx, jwksURI, "application/json", clientID)
		if err != nil {
			return nil, err
		}
		if err := statusError("jwks", status); err != nil {
			return nil, err
		}
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, errorf(KindBadServer, publicIDToken, "jwks: %v", err)
		}
		// Keys of types we cannot parse are skipped rather than failing the whole set.
		set := &jose.JSONWebKeySet{}
		for _, raw := range doc.Keys {
			var k jose.JSONWebKey
			if json.Unmarshal(raw, &k) == nil {
				set.Keys = append(set.Keys, k)
			}
		}
		return set, nil
	})
}

// selectKeys returns the public signing keys in set that fit header h: its
// kid when it has one, and always its algorithm's key type.
func selectKeys(set *jose.JSONWebKeySet, h jose.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		switch {
		case h.KeyID != "" && k.KeyID != h.KeyID,
			k.Use != "" && k.Use != "sig",
			k.Algorithm != "" && k.Algorithm != h.Algorithm,
			// Only public asymmetric keys: a symmetric or private entry is never trusted.
			!k.IsPublic(),
			!keyFitsAlg(k, h.Algorithm):
			continue
		}
		out = append(out, k)
	}
	return out
}

// keyFitsAlg reports whether k's key type can verify alg (RS* needs RSA, ES* ECDSA).
func keyFitsAlg(k jose.JSONWebKey, alg string) bool {
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	}
	return false
}

// statusError maps a non-200 status of a metadata fetch to an Error.
func statusError(what string, status int) error {
	switch {
	case status == http.StatusOK:
		return nil
	case status >= 500:
		return errorf(KindUnreachable, publicUnreachable, "%s: status %d", what, status)
	default:
		return errorf(KindBadServer, publicIDToken, "%s: status %d", what, status)
	}
}
