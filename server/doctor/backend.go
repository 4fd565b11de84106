package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/smart"
)

// ErrNoBackend is returned for a backend-services name the config does not hold.
var ErrNoBackend = errors.New("doctor: no such backend_services entry")

// CheckBackend obtains a system-level token for the backend-services entry
// name with the client_credentials grant and a JWT client assertion. It
// proves that registration and its key work, and nothing about the clinician
// app's registration: that is a separate app at the EHR. The token itself is
// never returned or shown.
func CheckBackend(ctx context.Context, cfg *config.Config, name string, opts Options) ([]Row, error) {
	b := cfg.Backend(name)
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrNoBackend, name)
	}
	opts = opts.withDefaults()
	var rows []Row
	add := func(check string, st Status, format string, args ...any) {
		rows = append(rows, Row{Subject: b.Name, Check: check, Status: st, Detail: fmt.Sprintf(format, args...)})
	}
	add("scope of this check", Info, "the backend-services registration %q only, not the clinician app's", b.Name)
	add("client", Info, "client_id %s, private_key_jwt", b.ClientID)

	key := checkKeyFile(b.PrivateKeyFile, add)

	tokenURL := b.TokenURL
	if tokenURL == "" {
		discoveryURL := strings.TrimSuffix(b.ISS, "/") + "/.well-known/smart-configuration"
		var sc smartConfiguration
		status, err := getJSON(ctx, opts, discoveryURL, b.ClientID, &sc)
		switch {
		case err != nil:
			add("discovery", Fail, "%s: %v", discoveryURL, err)
		case status != http.StatusOK || sc.TokenEndpoint == "":
			add("discovery", Fail, "%s answered %d without a token_endpoint", discoveryURL, status)
		default:
			// The signed assertion goes only where the app itself would send one.
			if err := smart.CheckEndpoint(config.Issuer{ISS: b.ISS}, sc.TokenEndpoint); err != nil {
				add("discovery", Fail, "token_endpoint %s: %v (set token_url if that is the EHR's)", sc.TokenEndpoint, err)
				break
			}
			tokenURL = sc.TokenEndpoint
			add("discovery", Pass, "token endpoint %s", tokenURL)
			if len(sc.GrantTypes) > 0 && !slices.Contains(sc.GrantTypes, "client_credentials") {
				add("grant client_credentials", Fail, "grant_types_supported %v lacks client_credentials", sc.GrantTypes)
			}
		}
	}
	if key == nil || tokenURL == "" {
		add("system token", Skip, "no key or no token endpoint")
		return rows, nil
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	sc := smart.NewClient(smart.Options{HTTPClient: opts.HTTPClient, Now: opts.Now})
	tok, err := sc.ClientCredentials(ctx, tokenURL, b.ClientID, key, b.Scopes)
	if err != nil {
		var se *smart.Error
		if errors.As(err, &se) && se.Err != nil {
			// The cause names the status and OAuth error code, never a token.
			err = se.Err
		}
		add("system token", Fail, "%s: %v", tokenURL, err)
		return rows, nil
	}
	expiry := "no expires_in"
	if !tok.Expiry.IsZero() {
		expiry = "expires in " + tok.Expiry.Sub(opts.Now()).Round(time.Second).String()
	}
	add("system token", Pass, "granted scope %q, %s", tok.Scope, expiry)
	return rows, nil
}
