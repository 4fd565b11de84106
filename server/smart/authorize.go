package smart

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"

	"smartlabs/server/config"
)

// LaunchKind is how the app was started.
type LaunchKind int

const (
	// EHRLaunch is a launch from inside the EHR, with a launch token.
	EHRLaunch LaunchKind = iota
	// StandaloneLaunch is a launch from outside the EHR; the user picks the patient.
	StandaloneLaunch
)

// DefaultScopes returns the scopes asked for when the issuer has no override.
// online_access asks for a refresh token that lives as long as the user's EHR
// session, so a chart left open for hours keeps working without a new launch.
// DiagnosticReport gives the panels their reports; the app works without it
// (an EHR may grant it or not, see Grants).
func DefaultScopes(kind LaunchKind) string {
	const rest = " openid fhirUser online_access patient/Patient.read patient/Observation.read patient/DiagnosticReport.read"
	if kind == StandaloneLaunch {
		return "launch/patient" + rest
	}
	return "launch" + rest
}

// requestedScopes is the scope string an authorization request for iss carries.
func requestedScopes(iss config.Issuer, kind LaunchKind) string {
	if iss.Scopes != "" {
		return iss.Scopes
	}
	return DefaultScopes(kind)
}

// AuthRequest is one authorization request; the caller keeps State,
// CodeVerifier and Nonce server-side and sends the browser to URL (GET) or
// auto-submits Form to URL (POST).
type AuthRequest struct {
	// State binds the callback to this request (22 characters).
	State string
	// CodeVerifier is the PKCE verifier for the code exchange.
	CodeVerifier string
	// Nonce must come back in the id_token.
	Nonce string
	// Method is "GET" or "POST".
	Method string
	// URL is the full authorize URL for GET, the endpoint for POST.
	URL string
	// Form holds the fields to auto-submit for POST; nil for GET.
	Form url.Values
}

// NewAuthRequest builds the authorization request for iss. A non-empty
// launchToken makes it an EHR launch; otherwise it is a standalone launch.
func NewAuthRequest(d *Discovery, iss config.Issuer, redirectURI, launchToken string) (*AuthRequest, error) {
	kind := StandaloneLaunch
	if launchToken != "" {
		kind = EHRLaunch
	}
	// 128 bits is unguessable; we keep state short because Epic's launch tokens
	// are long and an over-long authorize URL fails at Epic.
	state, err := randomString(16)
	if err != nil {
		return nil, err
	}
	nonce, err := randomString(16)
	if err != nil {
		return nil, err
	}
	// 32 random bytes give a 43-character verifier, the RFC 7636 minimum length.
	verifier, err := randomString(32)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(verifier))

	v := url.Values{}
	v.Set("response_type", "code")
	v.Set("client_id", iss.ClientID)
	v.Set("redirect_uri", redirectURI)
	v.Set("scope", requestedScopes(iss, kind))
	if launchToken != "" {
		v.Set("launch", launchToken)
	}
	v.Set("state", state)
	// aud names the FHIR server so a token is never minted for another resource server.
	v.Set("aud", iss.ISS)
	v.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	v.Set("code_challenge_method", "S256")
	v.Set("nonce", nonce)

	ar := &AuthRequest{State: state, CodeVerifier: verifier, Nonce: nonce}
	if iss.AuthorizePost && d.Has("authorize-post") {
		ar.Method = http.MethodPost
		ar.URL = d.AuthorizationEndpoint
		ar.Form = v
		return ar, nil
	}
	u, err := url.Parse(d.AuthorizationEndpoint)
	if err != nil {
		return nil, errorf(KindBadServer, publicBadServer, "authorization_endpoint: %v", err)
	}
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	ar.Method = http.MethodGet
	ar.URL = u.String()
	return ar, nil
}

// randomString returns n bytes from crypto/rand, base64url without padding.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("smart: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CheckResponseIssuer applies RFC 9207: an iss parameter on the authorization
// response must name the issuer the request went to, and is required when the
// server says it sends one. This defends against authorization-server mix-up.
// When discovery came from the CapabilityStatement it named no issuer; then the
// configured FHIR base stands for it, the only identity that server has shown us.
func CheckResponseIssuer(d *Discovery, issParam string) error {
	if issParam != "" {
		if d.Issuer != "" {
			// RFC 9207 compares exactly: no normalisation of the discovered issuer.
			if issParam != d.Issuer {
				return errorf(KindIssuerMismatch, publicIssuer, "authorization response iss does not match the discovered issuer")
			}
			return nil
		}
		if !sameFHIRBase(issParam, d.fhirBase) {
			return errorf(KindIssuerMismatch, publicIssuer, "authorization response iss does not match the FHIR base (discovery named no issuer)")
		}
		return nil
	}
	if d.ResponseISSRequired {
		return errorf(KindIssuerMismatch, publicIssuer, "authorization response lacks the iss parameter the server promised")
	}
	return nil
}

// sameFHIRBase reports whether iss names the FHIR base base, compared as
// configured issuers are (scheme and host case-insensitive, one trailing slash).
func sameFHIRBase(iss, base string) bool {
	u, err := url.Parse(iss)
	if err != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return false
	}
	n := config.NormalizeISS(iss)
	return n != "" && n == config.NormalizeISS(base)
}
