package smart

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/keys"
)

// ErrGrantEnded means the token endpoint refused the refresh token
// (invalid_grant): it expired, was revoked or was already rotated. The
// launch cannot continue; the user must open the app again from the EHR.
var ErrGrantEnded = errors.New("smart: refresh token no longer valid")

// Refresh trades refreshToken for a new access token at d's token endpoint.
//
// It is our own request rather than x/oauth2's TokenSource: that one cannot
// send a client_assertion and does not tell the caller that it refreshed.
// The client authentication is the one Exchange uses, set explicitly (never
// auto-detected, which would re-send the single-use refresh token in a second
// style). The returned Tokens carry the new refresh token when the server
// rotated it and an empty one when it did not; the id_token, if any, is not
// returned, because it is not validated here.
func (c *Client) Refresh(ctx context.Context, d *Discovery, iss config.Issuer, key *keys.Key, refreshToken string) (*Tokens, error) {
	if refreshToken == "" {
		return nil, &Error{Kind: KindRejected, Public: publicRejected, Err: ErrGrantEnded}
	}
	if iss.ClientSecret != "" && key != nil {
		return nil, errors.New("smart: issuer has both a client secret and a private key")
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	switch {
	case iss.ClientSecret != "":
		// client_secret_basic: the credentials go in the header, set below.
	case key != nil:
		assertion, err := c.clientAssertion(key, iss.ClientID, d.TokenEndpoint)
		if err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", iss.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, errorf(KindBadServer, publicBadServer, "token endpoint URL: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if iss.ClientID != "" {
		req.Header.Set(EpicClientIDHeader, iss.ClientID)
	}
	if iss.ClientSecret != "" {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(iss.ClientID), url.QueryEscape(iss.ClientSecret.Value()))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: err}
	}
	if len(body) > maxBody {
		return nil, errorf(KindBadServer, publicBadServer, "token endpoint: response larger than %d bytes", maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, refreshError(resp.StatusCode, body)
	}
	return c.parseTokenResponse(body)
}

// refreshError classifies a refused refresh by status and OAuth error code,
// never copying the body, which could echo the refresh token.
func refreshError(status int, body []byte) *Error {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	cause := &tokenEndpointError{Status: status, Code: e.Error}
	switch {
	case status >= 500:
		return &Error{Kind: KindUnreachable, Public: publicUnreachable, Err: cause}
	case e.Error == "invalid_grant":
		return &Error{Kind: KindRejected, Public: publicRejected, Err: errors.Join(ErrGrantEnded, cause)}
	default:
		return &Error{Kind: KindRejected, Public: publicRejected, Err: cause}
	}
}

// parseTokenResponse reads a token response as leniently as x/oauth2 does:
// expires_in may be a number or a numeric string, and the content type is not
// trusted to say JSON.
func (c *Client) parseTokenResponse(body []byte) (*Tokens, error) {
	var raw struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		Scope        string          `json:"scope"`
		Patient      string          `json:"patient"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errorf(KindBadServer, publicBadServer, "token endpoint: response is not JSON")
	}
	if raw.AccessToken == "" {
		return nil, errorf(KindBadServer, publicBadServer, "token endpoint: no access_token in refresh response")
	}
	t := &Tokens{
		AccessToken:  raw.AccessToken,
		RefreshToken: raw.RefreshToken,
		TokenType:    raw.TokenType,
		Scope:        raw.Scope,
		Patient:      raw.Patient,
	}
	if secs := expiresIn(raw.ExpiresIn); secs > 0 {
		t.Expiry = c.now().Add(time.Duration(secs) * time.Second)
	}
	return t, nil
}

// expiresIn reads expires_in sent as 3600 or "3600"; anything else is 0 (unknown).
func expiresIn(raw json.RawMessage) int64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	// Bound absurd values so the expiry arithmetic cannot overflow.
	return min(n, int64(365*24*time.Hour/time.Second))
}

// IsGrantEnded reports whether err means the launch's grant is over: the
// token endpoint refused the refresh token, or there was none.
func IsGrantEnded(err error) bool { return errors.Is(err, ErrGrantEnded) }
