package metrics

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"smartlabs/server/config"
)

// issuerMatch is what tells a request to one issuer from another.
type issuerMatch struct {
	name     string
	prefix   string // normalized FHIR base plus "/"
	host     string // lower-cased host[:port] of the FHIR base
	clientID string
}

func newIssuerMatch(is config.Issuer) issuerMatch {
	n := config.NormalizeISS(is.ISS)
	host := ""
	if u, err := url.Parse(n); err == nil {
		host = u.Host
	}
	return issuerMatch{name: is.Name, prefix: n + "/", host: host, clientID: is.ClientID}
}

// issuerOf names the issuer a request goes to: the one whose FHIR base the
// URL is under; else the one on the same host (its OAuth endpoints), told
// apart by the Epic-Client-ID header when several share the host.
func (m *Metrics) issuerOf(req *http.Request) (name string, underBase bool) {
	u := config.NormalizeISS(req.URL.Scheme + "://" + req.URL.Host + req.URL.EscapedPath())
	best := -1
	for i, is := range m.issuers {
		if strings.HasPrefix(u+"/", is.prefix) && (best < 0 || len(is.prefix) > len(m.issuers[best].prefix)) {
			best = i
		}
	}
	if best >= 0 {
		return m.issuers[best].name, true
	}
	host := strings.ToLower(req.URL.Host)
	clientID := req.Header.Get("Epic-Client-ID")
	var sameHost []issuerMatch
	for _, is := range m.issuers {
		if is.host == host {
			sameHost = append(sameHost, is)
		}
	}
	for _, is := range sameHost {
		if clientID != "" && is.clientID == clientID {
			return is.name, false
		}
	}
	if len(sameHost) == 1 {
		return sameHost[0].name, false
	}
	return OtherIssuer, false
}

// Transport wraps base so that every request it carries is measured: token
// endpoint requests (told by their grant_type) count in
// smartlabs_token_requests_total, requests under an issuer's FHIR base in
// smartlabs_fhir_request_duration_seconds. Nothing of the request or
// response other than the status reaches the metrics.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if m == nil {
		return base
	}
	return &transport{m: m, base: base}
}

type transport struct {
	m    *Metrics
	base http.RoundTripper
}

// RoundTrip sends req with the base transport and records it.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	issuer, underBase := t.m.issuerOf(req)
	grant := grantOf(req)
	fhir := grant == "" && underBase && !strings.Contains(req.URL.Path, "/.well-known/")
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	switch {
	case grant != "":
		t.m.TokenRequest(issuer, grant, OutcomeOf(status))
	case fhir && err != nil:
		t.m.ObserveFHIR(issuer, 0, time.Since(start))
	case fhir:
		// The latency includes reading the body: a large Bundle is most of the wait.
		resp.Body = &timedBody{ReadCloser: resp.Body, done: func() {
			t.m.ObserveFHIR(issuer, status, time.Since(start))
		}}
	}
	return resp, err
}

// grantOf returns the grant_type of a token request, or "" for any other request.
// It reads a copy of the body (GetBody), never the body the request is sent with.
func grantOf(req *http.Request) string {
	if req.Method != http.MethodPost || req.GetBody == nil {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return ""
	}
	body, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 64<<10))
	if err != nil {
		return ""
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return ""
	}
	g := v.Get("grant_type")
	if g == "" {
		return ""
	}
	return oneOf(g, GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials)
}

// timedBody calls done once, when the body is read to its end or closed.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

// Read reads from the body and records the request at its end.
func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

// Close closes the body and records the request if Read has not.
func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}
