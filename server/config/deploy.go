package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
)

// DefaultRedirectPath is the callback path of every issuer without its own redirect_path.
const DefaultRedirectPath = "/callback"

// BackendService is a separate "backend services" app registration (Epic
// audience Backend Systems, system/ scopes). It is not the clinician app's
// registration: `smartlabs doctor --backend NAME` checks it on its own.
type BackendService struct {
	// Name identifies the entry on the command line.
	Name string `yaml:"name"`
	// TokenURL is the token endpoint; when empty it is discovered from ISS.
	TokenURL string `yaml:"token_url"`
	// ISS is a FHIR base URL whose smart-configuration names the token endpoint.
	ISS string `yaml:"iss"`
	// ClientID is the backend app's client id.
	ClientID string `yaml:"client_id"`
	// PrivateKeyFile is the key the client assertion is signed with.
	PrivateKeyFile string `yaml:"private_key_file"`
	// Scopes are the system scopes asked for, e.g. "system/Observation.read".
	Scopes string `yaml:"scopes"`
}

// redirectPathRe admits "/callback/" plus one plain segment: such a path can
// never shadow another route of the app.
var redirectPathRe = regexp.MustCompile(`^/callback/[A-Za-z0-9._-]{1,64}$`)

// RedirectPathOf is the callback path of is.
func RedirectPathOf(is *Issuer) string {
	if is == nil || is.RedirectPath == "" {
		return DefaultRedirectPath
	}
	return is.RedirectPath
}

// RedirectURIFor is the OAuth redirect_uri used with is: public_url plus its redirect path.
func (c *Config) RedirectURIFor(is *Issuer) string {
	return strings.TrimSuffix(c.PublicURL, "/") + RedirectPathOf(is)
}

// RedirectPaths lists every callback path the app must serve, the default first.
func (c *Config) RedirectPaths() []string {
	out := []string{DefaultRedirectPath}
	for i := range c.Issuers {
		if p := RedirectPathOf(&c.Issuers[i]); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// FrameAncestorsFor is the CSP frame-ancestors list for a request of is: its
// own list when set, else the top-level list. A nil is gets the top-level list.
func (c *Config) FrameAncestorsFor(is *Issuer) []string {
	if is != nil && len(is.FrameAncestors) > 0 {
		return is.FrameAncestors
	}
	return c.FrameAncestors
}

// JWKSURL is where the app publishes its public keys: public_url + /.well-known/jwks.json.
func (c *Config) JWKSURL() string {
	return strings.TrimSuffix(c.PublicURL, "/") + "/.well-known/jwks.json"
}

// Backend finds the backend-services entry called name, or nil.
func (c *Config) Backend(name string) *BackendService {
	for i := range c.BackendServices {
		if c.BackendServices[i].Name == name {
			return &c.BackendServices[i]
		}
	}
	return nil
}

// validateDeployment checks the keys for several organisations, metrics and
// backend services, returning one problem per line.
func (c *Config) validateDeployment() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("metrics_listen: %q is not host:port", c.MetricsListen)
		} else if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			add("metrics_listen: must differ from listen (metrics are not served to browsers)")
		}
	}
	for i, is := range c.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		for j, fa := range is.FrameAncestors {
			if err := checkFrameAncestor(fa); err != nil {
				add("%s.frame_ancestors[%d]: %v", key, j, err)
			}
		}
		if is.RedirectPath != "" && !redirectPathRe.MatchString(is.RedirectPath) {
			add("%s.redirect_path: %q must look like /callback/NAME (letters, digits, . _ -)", key, is.RedirectPath)
		}
		for j, f := range is.ExtraPublicKeys {
			if strings.TrimSpace(f) == "" {
				add("%s.extra_public_keys[%d]: empty file name", key, j)
			}
		}
		if len(is.ExtraPublicKeys) > 0 && is.PrivateKeyFile == "" {
			add("%s.extra_public_keys: only for issuers that use private_key_file", key)
		}
	}
	names := map[string]int{}
	for i, b := range c.BackendServices {
		key := fmt.Sprintf("backend_services[%d]", i)
		if b.Name == "" {
			add("%s.name: required", key)
		} else if j, dup := names[b.Name]; dup {
			add("%s.name: same name as backend_services[%d]", key, j)
		} else {
			names[b.Name] = i
		}
		switch {
		case b.TokenURL == "" && b.ISS == "":
			add("%s: set token_url or iss", key)
		case b.TokenURL != "" && b.ISS != "":
			add("%s: set token_url or iss, not both", key)
		case b.TokenURL != "":
			if err := checkBaseURL(b.TokenURL); err != nil {
				add("%s.token_url: %v", key, err)
			}
		default:
			if err := checkBaseURL(b.ISS); err != nil {
				add("%s.iss: %v", key, err)
			}
		}
		if b.ClientID == "" {
			add("%s.client_id: required", key)
		}
		// Backend services authenticate only with a JWT assertion (SMART Backend Services).
		if b.PrivateKeyFile == "" {
			add("%s.private_key_file: required", key)
		}
		if b.Scopes == "" {
			add("%s.scopes: required (e.g. system/Observation.read)", key)
		} else if strings.ContainsAny(b.Scopes, "\r\n\t") {
			add("%s.scopes: separate scopes with single spaces", key)
		}
	}
	return p
}
