package config

import (
	"fmt"
	"net"
	"strings"
)

// TrustedProxyNets returns trusted_proxies as networks; a single IP becomes a
// one-address network. Invalid entries are skipped (Validate reports them).
func (c *Config) TrustedProxyNets() []*net.IPNet {
	out := make([]*net.IPNet, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if n, err := parseProxy(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func parseProxy(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", s)
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// validateTrustedProxies checks every trusted_proxies entry. Trusting every
// address would let any client choose its own IP, so /0 is refused.
func (c *Config) validateTrustedProxies() []string {
	var p []string
	for i, s := range c.TrustedProxies {
		n, err := parseProxy(s)
		if err != nil {
			p = append(p, fmt.Sprintf("trusted_proxies[%d]: %v", i, err))
			continue
		}
		if ones, _ := n.Mask.Size(); ones == 0 {
			p = append(p, fmt.Sprintf("trusted_proxies[%d]: %q trusts every address; list your proxies' networks", i, s))
		}
	}
	return p
}
