package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
)

// affinityCookie is the sticky-session cookie the test proxy sets, as Caddy's
// lb_policy cookie or an ingress controller's session affinity does.
const affinityCookie = "lb"

// stickyProxy is the TLS-terminating load balancer in front of the replicas
// in tests: it sends a browser to the replica named by its affinity cookie,
// picks one in turn for a browser without one, and when a replica refuses
// the connection (stopped, crashed) tries the next and moves the cookie
// there. It connects to replicas from its own address, sets
// X-Forwarded-For to the client's socket address and drops any the client
// sent, as an edge proxy must.
type stickyProxy struct {
	backends []*upstream
	base     *http.Transport
	rp       *httputil.ReverseProxy

	mu     sync.Mutex
	next   int
	served map[string]int
}

type upstream struct{ name, addr string }

// route is one request's choice of replicas, best first, and where it landed.
type route struct {
	order  []*upstream
	cookie string
	chosen *upstream
}

type routeKey struct{}

// newStickyProxy balances over backends, dialling them from localIP.
func newStickyProxy(localIP net.IP, backends ...*upstream) *stickyProxy {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: localIP}}
	p := &stickyProxy{
		backends: backends,
		base:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16},
		served:   map[string]int{},
	}
	p.rp = &httputil.ReverseProxy{
		// Rewrite (unlike Director) starts from a request without the
		// client's forwarding headers; SetXForwarded adds the real peer.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replica"
			pr.Out.Host = pr.In.Host
		},
		Transport:      p,
		ModifyResponse: p.stick,
	}
	return p
}

// ServeHTTP orders the replicas for this request and proxies it.
func (p *stickyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := &route{}
	if c, err := r.Cookie(affinityCookie); err == nil {
		rt.cookie = c.Value
	}
	p.mu.Lock()
	first := -1
	for i, b := range p.backends {
		if b.name == rt.cookie {
			first = i
		}
	}
	if first < 0 {
		first = p.next % len(p.backends)
		p.next++
	}
	p.mu.Unlock()
	for i := range p.backends {
		rt.order = append(rt.order, p.backends[(first+i)%len(p.backends)])
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)))
}

// RoundTrip sends the request to the first replica that accepts the
// connection. Only a refused dial moves on: nothing was sent, so even a
// POST is safe to send elsewhere.
func (p *stickyProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := req.Context().Value(routeKey{}).(*route)
	var err error
	for _, b := range rt.order {
		out := req.Clone(req.Context())
		out.URL.Host = b.addr
		var resp *http.Response
		resp, err = p.base.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			continue
		}
		if err == nil {
			rt.chosen = b
			p.mu.Lock()
			p.served[b.name]++
			p.mu.Unlock()
		}
		return resp, err
	}
	return nil, err
}

// stick sets the affinity cookie when the request landed elsewhere than it names.
func (p *stickyProxy) stick(resp *http.Response) error {
	rt := resp.Request.Context().Value(routeKey{}).(*route)
	if rt.chosen != nil && rt.chosen.name != rt.cookie {
		c := &http.Cookie{Name: affinityCookie, Value: rt.chosen.name, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode}
		resp.Header.Add("Set-Cookie", c.String())
	}
	return nil
}

// servedBy returns how many requests each replica has answered.
func (p *stickyProxy) servedBy() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.served))
	for k, v := range p.served {
		out[k] = v
	}
	return out
}
