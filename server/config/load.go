package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied to keys the file leaves out.
const (
	DefaultIdleTimeout    = 15 * time.Minute
	DefaultLifetime       = 8 * time.Hour
	DefaultRequestTimeout = 15 * time.Second
	DefaultViewTimeout    = 60 * time.Second
	DefaultPageSize       = 100
	DefaultDiscoveryTTL   = time.Hour
	DefaultMaxParallel    = 4
	DefaultMaxInFlight    = 8
)

// ValidationError lists every problem found in a config file, each naming its key.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// LoadFile reads, expands and validates the config file at path.
// getenv resolves ${NAME} references; pass os.Getenv in production.
func LoadFile(path string, getenv func(string) string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(b, getenv)
}

// Parse expands ${NAME} references in scalar values, decodes strictly
// (unknown keys are errors), applies defaults and validates.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ValidationError{Problems: []string{"yaml: " + err.Error()}}
	}
	if root.Kind == 0 {
		return nil, &ValidationError{Problems: []string{"the config file is empty"}}
	}
	var problems []string
	expand(&root, "", getenv, &problems)
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	// Re-encode the expanded tree so the strict decoder can reject unknown keys.
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, &ValidationError{Problems: yamlProblems(err)}
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} in every scalar with the environment value, recording
// unset names with the key path they appear under.
func expand(n *yaml.Node, path string, getenv func(string) string, problems *[]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expand(c, path, getenv, problems)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			expand(n.Content[i+1], p, getenv, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(c, fmt.Sprintf("%s[%d]", path, i), getenv, problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v := getenv(name)
			if v == "" {
				*problems = append(*problems, fmt.Sprintf("%s: environment variable %s is not set", path, name))
			}
			return v
		})
		// An expanded value is always a string, never YAML syntax.
		n.Tag = "!!str"
		n.Style = yaml.DoubleQuotedStyle
	}
}

// yamlProblems turns decoder errors into one problem per line.
func yamlProblems(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			out = append(out, "yaml: "+e)
		}
		return out
	}
	return []string{"yaml: " + err.Error()}
}

func (c *Config) applyDefaults() {
	if c.Session.Store == "" {
		c.Session.Store = "memory"
	}
	if c.Session.IdleTimeout == 0 {
		c.Session.IdleTimeout = DefaultIdleTimeout
	}
	if c.Session.Lifetime == 0 {
		c.Session.Lifetime = DefaultLifetime
	}
	if c.FHIR.RequestTimeout == 0 {
		c.FHIR.RequestTimeout = DefaultRequestTimeout
	}
	if c.FHIR.ViewTimeout == 0 {
		c.FHIR.ViewTimeout = DefaultViewTimeout
	}
	if c.FHIR.PageSize == 0 {
		c.FHIR.PageSize = DefaultPageSize
	}
	if c.FHIR.DiscoveryTTL == 0 {
		c.FHIR.DiscoveryTTL = DefaultDiscoveryTTL
	}
	for i := range c.Issuers {
		if c.Issuers[i].Name == "" {
			if u, err := url.Parse(c.Issuers[i].ISS); err == nil {
				c.Issuers[i].Name = u.Host
			}
		}
		if c.Issuers[i].MaxParallel == 0 {
			c.Issuers[i].MaxParallel = DefaultMaxParallel
		}
		if c.Issuers[i].MaxInFlight == 0 {
			c.Issuers[i].MaxInFlight = DefaultMaxInFlight
		}
	}
}

// Validate collects every problem in the config and reports them together.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Listen == "" {
		add("listen: required (e.g. 127.0.0.1:8080)")
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if c.PublicURL == "" {
		add("public_url: required (e.g. https://smartlabs.example.org)")
	} else if err := checkBaseURL(c.PublicURL); err != nil {
		add("public_url: %v", err)
	}
	for i, fa := range c.FrameAncestors {
		if err := checkFrameAncestor(fa); err != nil {
			add("frame_ancestors[%d]: %v", i, err)
		}
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			add("time_zone: unknown time zone %q", c.TimeZone)
		}
	}
	switch c.Session.Store {
	case "memory":
	case "redis":
		if c.Session.RedisURL == "" {
			add("session.redis_url: required when session.store is redis")
		} else if u, err := url.Parse(c.Session.RedisURL.Value()); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			add("session.redis_url: must be a redis:// or rediss:// URL")
		}
	default:
		add("session.store: must be memory or redis, not %q", c.Session.Store)
	}
	if c.Session.IdleTimeout < 0 {
		add("session.idle_timeout: must be positive")
	}
	if c.Session.Lifetime < 0 {
		add("session.lifetime: must be positive")
	}
	if c.Session.IdleTimeout > c.Session.Lifetime {
		add("session.idle_timeout: must not exceed session.lifetime")
	}
	if c.FHIR.PageSize < 1 || c.FHIR.PageSize > 1000 {
		add("fhir.page_size: must be between 1 and 1000")
	}
	if c.FHIR.RequestTimeout < 0 || c.FHIR.ViewTimeout < 0 || c.FHIR.DiscoveryTTL < 0 {
		add("fhir: timeouts and TTLs must be positive")
	}

	if len(c.Issuers) == 0 {
		add("issuers: at least one issuer is required")
	}
	seen := map[string]int{}
	for i, is := range c.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if is.ISS == "" {
			add("%s.iss: required", key)
		} else if err := checkBaseURL(is.ISS); err != nil {
			add("%s.iss: %v", key, err)
		} else {
			n := NormalizeISS(is.ISS)
			if j, dup := seen[n]; dup {
				add("%s.iss: same issuer as issuers[%d]", key, j)
			}
			seen[n] = i
		}
		if is.ClientID == "" {
			add("%s.client_id: required", key)
		}
		switch {
		case is.ClientSecret != "" && is.PrivateKeyFile != "":
			add("%s: set client_secret or private_key_file, not both", key)
		case is.ClientSecret == "" && is.PrivateKeyFile == "":
			add("%s: set client_secret (client_secret_basic) or private_key_file (private_key_jwt)", key)
		}
		if strings.ContainsAny(is.Scopes, "\r\n\t") {
			add("%s.scopes: separate scopes with single spaces", key)
		}
		if is.MaxParallel < 0 || is.MaxParallel > maxParallelLimit {
			add("%s.max_parallel: must be between 1 and %d", key, maxParallelLimit)
		}
		if is.MaxInFlight < 0 || is.MaxInFlight > maxInFlightLimit {
			add("%s.max_in_flight: must be between 1 and %d", key, maxInFlightLimit)
		}
		for j, h := range is.AllowedHosts {
			if err := checkAllowedHost(h); err != nil {
				add("%s.allowed_hosts[%d]: %v", key, j, err)
			}
		}
	}
	p = append(p, c.validateDeployment()...)
	p = append(p, c.validateTrustedProxies()...)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// Upper bounds of the concurrency keys: beyond them an EHR would see a burst
// no app should send.
const (
	maxParallelLimit = 32
	maxInFlightLimit = 256
)

// checkBaseURL accepts an absolute https URL, or http for loopback hosts only.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a query, fragment or credentials", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// Plain http would expose codes and tokens on the wire; it is only
		// acceptable when the traffic never leaves this machine.
		if !IsLoopback(u.Hostname()) {
			return fmt.Errorf("%q must use https (http is allowed for loopback hosts only)", raw)
		}
	default:
		return fmt.Errorf("%q must use https", raw)
	}
	return nil
}

var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$`)

// checkAllowedHost accepts a host name or IP address with an optional port,
// and nothing else: no scheme, path or wildcard, so an entry admits exactly one host.
func checkAllowedHost(s string) error {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has a bad port", s)
		}
	}
	if net.ParseIP(host) == nil && !hostNameRe.MatchString(host) {
		return fmt.Errorf("%q is not a host name like auth.example.org or auth.example.org:8443 (no scheme, path or wildcard)", s)
	}
	return nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var frameAncestorRe = regexp.MustCompile(`^(https?)://(\*\.)?[A-Za-z0-9.-]+(:[0-9]+)?$`)

// checkFrameAncestor accepts a CSP host-source with a scheme, so that no
// config value can inject other CSP directives.
func checkFrameAncestor(s string) error {
	if s == "'self'" {
		return nil
	}
	if !frameAncestorRe.MatchString(s) {
		return fmt.Errorf("%q is not an origin like https://*.example.org", s)
	}
	return nil
}

// NormalizeISS is the form issuers are compared in: scheme and host lower-cased,
// the path kept exactly, one trailing slash dropped.
func NormalizeISS(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + p
}

// Lookup finds the configured issuer for an iss launch parameter, or nil.
func (c *Config) Lookup(iss string) *Issuer {
	if iss == "" {
		return nil
	}
	n := NormalizeISS(iss)
	if n == "" {
		return nil
	}
	u, _ := url.Parse(iss)
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil
	}
	for i := range c.Issuers {
		if NormalizeISS(c.Issuers[i].ISS) == n {
			return &c.Issuers[i]
		}
	}
	return nil
}

// RedirectURI is the OAuth redirect_uri registered with every issuer.
func (c *Config) RedirectURI() string {
	return strings.TrimSuffix(c.PublicURL, "/") + "/callback"
}

// Finish applies defaults to a config built in code (the demo) and validates it.
func Finish(c *Config) error {
	c.applyDefaults()
	return c.Validate()
}
