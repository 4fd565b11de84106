package smart

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"smartlabs/server/keys"
)

// SystemToken is a backend-services (client_credentials) access token. Its
// String and GoString never show the token, so printing it is safe.
type SystemToken struct {
	// AccessToken is the bearer token; never log or print it.
	AccessToken string
	// TokenType is usually "Bearer".
	TokenType string
	// Scope is the granted scope.
	Scope string
	// Expiry is when the token expires; zero when expires_in was absent.
	Expiry time.Time
}

// String describes the token without the token itself.
func (t SystemToken) String() string {
	return fmt.Sprintf("system token (scope %q, expires %s)", t.Scope, t.Expiry.Format(time.RFC3339))
}

// GoString describes the token without the token itself.
func (t SystemToken) GoString() string { return t.String() }

// ClientCredentials obtains a system-level token at tokenURL with the
// client_credentials grant, authenticating with a JWT client assertion signed
// by key (SMART Backend Services, as Epic's Backend Systems apps do).
func (c *Client) ClientCredentials(ctx context.Context, tokenURL, clientID string, key *keys.Key, scope string) (*SystemToken, error) {
	if key == nil {
		return nil, fmt.Errorf("smart: client_credentials needs a private key")
	}
	// The token URL comes from the operator's config or the doctor's discovery check.
	if err := checkURL(tokenURL); err != nil {
		return nil, errorf(KindBadServer, publicBadServer, "token_url: %v", err)
	}
	assertion, err := c.clientAssertion(key, clientID, tokenURL)
	if err != nil {
		return nil, err
	}
	cfg := clientcredentials.Config{
		ClientID: clientID,
		TokenURL: tokenURL,
		Scopes:   strings.Fields(scope),
		EndpointParams: map[string][]string{
			"client_assertion_type": {clientAssertionType},
			"client_assertion":      {assertion},
		},
		// In params, with no secret: only client_id is added, and no retry in
		// another style can re-send the single-use assertion.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	hc := *c.http
	hc.Transport = headerTransport{base: c.http.Transport, clientID: clientID}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &hc)
	tok, err := cfg.Token(ctx)
	if err != nil {
		return nil, tokenError(err)
	}
	st := &SystemToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Scope: extraString(tok, "scope")}
	// x/oauth2's clientcredentials drops expires_in; it is read from the raw
	// response so the expiry follows our clock, as in Exchange.
	if secs := extraSeconds(tok, "expires_in"); secs > 0 {
		st.Expiry = c.now().Add(time.Duration(secs) * time.Second)
	}
	return st, nil
}

// extraSeconds reads a number of seconds sent as a JSON number or string.
func extraSeconds(tok *oauth2.Token, key string) int64 {
	switch v := tok.Extra(key).(type) {
	case float64:
		return int64(v)
	case string:
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n
	}
	return 0
}
