package smart

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"smartlabs/server/config"
)

// endpointPolicy says where an issuer's discovery may send us: the hosts its
// OAuth endpoints may be on, and whether plain http is acceptable.
type endpointPolicy struct {
	// issHost is the configured iss's host as "host:port"; empty fails every check.
	issHost string
	// loopback is set when the configured iss is on this machine.
	loopback bool
	// allowed are the issuer's allowed_hosts, as configured.
	allowed []string
}

func newEndpointPolicy(iss config.Issuer) endpointPolicy {
	u, err := url.Parse(iss.ISS)
	if err != nil || u.Host == "" {
		return endpointPolicy{}
	}
	return endpointPolicy{
		issHost:  hostPort(u.Hostname(), u.Port(), u.Scheme),
		loopback: isLoopback(u.Hostname()),
		allowed:  iss.AllowedHosts,
	}
}

// CheckEndpoint reports whether raw may be one of iss's OAuth endpoints (issuer,
// authorization, token, JWKS): an absolute URL without credentials on the host
// of iss or on one of its allowed_hosts, over https, or over http only when
// both iss and raw are on this machine.
func CheckEndpoint(iss config.Issuer, raw string) error {
	return newEndpointPolicy(iss).check(raw)
}

// check applies the policy to raw. A discovery document is only as trustworthy
// as the server that serves it: pointing the token endpoint at another host, or
// at a plain-http service on this machine, would hand it the code and the
// client's credentials.
func (p endpointPolicy) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.User != nil || u.Opaque != "" {
		return errors.New("not an absolute URL without credentials")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https":
	case "http":
		// Codes and tokens must never travel in clear text across a network.
		if !p.loopback || !isLoopback(u.Hostname()) {
			return errors.New("http is allowed only when the issuer and the endpoint are both loopback hosts")
		}
	default:
		return fmt.Errorf("scheme %q is not https", u.Scheme)
	}
	if p.issHost == "" {
		return errors.New("no configured issuer to compare with")
	}
	host := hostPort(u.Hostname(), u.Port(), scheme)
	if host == p.issHost {
		return nil
	}
	for _, a := range p.allowed {
		if allowedHostPort(a, scheme) == host {
			return nil
		}
	}
	return fmt.Errorf("host %s is neither the issuer's host nor in its allowed_hosts", u.Host)
}

// hostPort is host and port in one comparable form: host lower-cased without a
// trailing dot, the scheme's default port filled in.
func hostPort(host, port, scheme string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if port == "" {
		port = "443"
		if strings.EqualFold(scheme, "http") {
			port = "80"
		}
	}
	return net.JoinHostPort(host, port)
}

// allowedHostPort is an allowed_hosts entry ("host" or "host:port") in
// hostPort's form; without a port it stands for the default port of scheme.
func allowedHostPort(entry, scheme string) string {
	if h, p, err := net.SplitHostPort(entry); err == nil {
		return hostPort(h, p, scheme)
	}
	return hostPort(strings.Trim(entry, "[]"), "", scheme)
}

// checkURL requires an absolute https URL, or http on a loopback host: the
// rule for URLs the operator configured, which need no host policy.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.User != nil {
		return errors.New("not an absolute URL without credentials")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("http is allowed only for loopback hosts")
	default:
		return fmt.Errorf("scheme %q is not https", u.Scheme)
	}
}

func isLoopback(host string) bool {
	return config.IsLoopback(host)
}
