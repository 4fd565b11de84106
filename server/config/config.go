// Package config loads and validates the smartlabs YAML configuration.
package config

import (
	"time"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address the app binds, e.g. 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is how browsers reach the app; redirect_uri = PublicURL + "/callback".
	PublicURL string `yaml:"public_url"`
	// FrameAncestors lists the origins allowed to frame the app (CSP frame-ancestors).
	FrameAncestors []string `yaml:"frame_ancestors"`
	// AuditLog is the audit log path; "-" or empty means stderr.
	AuditLog string `yaml:"audit_log"`
	// TimeZone is the IANA zone lab times are shown in; empty means the server's.
	TimeZone string `yaml:"time_zone"`
	// Session configures the session store and lifetimes.
	Session Session `yaml:"session"`
	// FHIR tunes outbound FHIR and OAuth requests.
	FHIR FHIR `yaml:"fhir"`
	// Issuers are the only FHIR servers the app will talk to.
	Issuers []Issuer `yaml:"issuers"`
	// TrustedProxies are the CIDRs (or single IPs) of reverse proxies whose
	// X-Forwarded-For is believed; empty means the socket peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsListen is the address Prometheus /metrics is served on; empty turns metrics off.
	MetricsListen string `yaml:"metrics_listen"`
	// BackendServices are separate backend-services registrations checked by `smartlabs doctor --backend`.
	BackendServices []BackendService `yaml:"backend_services"`
}

// Session configures where sessions live and how long they last.
type Session struct {
	Store       string        `yaml:"store"`     // memory | redis
	RedisURL    Secret        `yaml:"redis_url"` // may carry a password
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	Lifetime    time.Duration `yaml:"lifetime"`
}

// FHIR tunes outbound requests to issuers.
type FHIR struct {
	// RequestTimeout bounds one HTTP request to an issuer.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ViewTimeout bounds all requests made to build one labs view.
	ViewTimeout time.Duration `yaml:"view_timeout"`
	// PageSize is the _count asked for on Observation searches.
	PageSize int `yaml:"page_size"`
	// DiscoveryTTL is how long a discovery document is cached per issuer.
	DiscoveryTTL time.Duration `yaml:"discovery_ttl"`
}

// Issuer is one FHIR server (one EHR organisation and environment) the app may launch from.
type Issuer struct {
	// Name is shown to users and operators.
	Name string `yaml:"name"`
	// ISS is the FHIR base URL the EHR sends as the iss launch parameter.
	ISS string `yaml:"iss"`
	// ClientID is the app's client id at this issuer.
	ClientID string `yaml:"client_id"`
	// ClientSecret selects client_secret_basic authentication.
	ClientSecret Secret `yaml:"client_secret"`
	// PrivateKeyFile selects private_key_jwt authentication (RS384) with this PEM key.
	PrivateKeyFile string `yaml:"private_key_file"`
	// Scopes overrides the default scope list when not empty.
	Scopes string `yaml:"scopes"`
	// AuthorizePost sends the authorization request as a form POST when the
	// server advertises "authorize-post" (Epic's recommendation for EHR launch).
	AuthorizePost bool `yaml:"authorize_post"`
	// FrameAncestors, when set, replaces the top-level list for this issuer's launches.
	FrameAncestors []string `yaml:"frame_ancestors"`
	// RedirectPath, when set, is this issuer's own callback path ("/callback/NAME").
	RedirectPath string `yaml:"redirect_path"`
	// AllowedHosts are hosts ("host" or "host:port") besides the iss's own that
	// this issuer's discovery may name for its OAuth endpoints (issuer,
	// authorize, token, JWKS), for an EHR whose authorization server has a host
	// of its own.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// ExtraPublicKeys are public key files (jwks.json or certificate PEM) published
	// in the JWKS beside the private key's, for key rotation.
	ExtraPublicKeys []string `yaml:"extra_public_keys"`
	// MaxParallel bounds one launch's requests to this issuer in flight at
	// once, and so the windows of a sliced search fetched side by side;
	// 1 turns slicing off. 0 means DefaultMaxParallel.
	MaxParallel int `yaml:"max_parallel"`
	// MaxInFlight bounds the requests to this issuer in flight at once from
	// this process, across all launches. 0 means DefaultMaxInFlight.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Secret is a string that never prints: dumping a config shows "REDACTED".
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText hides the value from JSON, YAML and log encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Value returns the secret itself, for the one place that must send it.
func (s Secret) Value() string { return string(s) }
