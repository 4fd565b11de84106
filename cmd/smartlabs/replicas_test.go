package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server/ehrsim"
	"smartlabs/server/servertest"
)

// Addresses on the loopback network (Linux answers on all of 127.0.0.0/8):
// the proxy connects to the replicas from its own, and each clinician's
// browser connects to the proxy from its own.
var (
	proxyIP      = net.IPv4(127, 0, 0, 10)
	clinicianIPs = []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3), net.IPv4(127, 0, 0, 4)}
)

// perIPCeiling is the sign-in limit per client IP and replica (README, "Limits").
const perIPCeiling = 600

// TestReplicasBehindTLSProxy is the production layout on loopback: two
// `smartlabs serve` instances (run, from one config file), sharing a real
// redis-server (noeviction), behind a TLS reverse proxy with
// cookie affinity, talking to the EHR simulator over HTTPS signed by a
// private CA that the app trusts through SSL_CERT_FILE. It shows that
//   - a launch through the proxy completes and stays on one replica, whose
//     result cache answers every view after one EHR fetch;
//   - when that replica stops, the other takes the launch over from Redis and
//     fetches the results again, once;
//   - trusted_proxies names the proxy, so each clinician's own IP (from
//     X-Forwarded-For) meets the per-IP limit, not the proxy's.
func TestReplicasBehindTLSProxy(t *testing.T) {
	dir := t.TempDir()
	caPEM, certPEM, keyPEM, err := newCAAndLeaf([]string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	// The EHR simulator over HTTPS, counting the Observation searches it starts
	// (a next-page request continues a search: it carries sessionID).
	simLn, proxyLn := servertest.Listen(t), servertest.Listen(t)
	simURL := "https://127.0.0.1:" + servertest.Port(simLn)
	appURL := "https://localhost:" + servertest.Port(proxyLn)
	const clientID, clientSecret = "smartlabs-prod", "s3cr3t+/=value"
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: simURL, AppLaunchURL: appURL + "/launch",
		Clients: []ehrsim.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{appURL + "/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var searches atomic.Int64
	serveTLS(t, simLn, serverCert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fhir/R4/Observation" && r.URL.Query().Get("sessionID") == "" {
			searches.Add(1)
		}
		sim.ServeHTTP(w, r)
	}))

	rs := servertest.StartRedis(t)
	rc := rs.Client(t)
	ctx := context.Background()
	// Sessions, used states and launch tokens must never be evicted: a full
	// Redis must refuse writes (the app answers 503) rather than forget them.
	if err := rc.ConfigSet(ctx, "maxmemory", "64mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if p, _ := rc.ConfigGet(ctx, "maxmemory-policy").Result(); p["maxmemory-policy"] != "noeviction" {
		t.Fatalf("maxmemory-policy = %v", p)
	}

	cfgFile := filepath.Join(dir, "smartlabs.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
listen: 127.0.0.1:0
public_url: `+appURL+`
frame_ancestors: ["`+simURL+`"]
audit_log: "-"
trusted_proxies: ["`+proxyIP.String()+`"]
session:
  store: redis
  redis_url: ${SMARTLABS_REDIS_URL}
issuers:
  - name: EHR simulator
    iss: `+sim.ISS()+`
    client_id: `+clientID+`
    client_secret: ${SMARTLABS_CLIENT_SECRET}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := envWith(map[string]string{
		"SSL_CERT_FILE":           caFile,
		"SMARTLABS_REDIS_URL":     rs.URL,
		"SMARTLABS_CLIENT_SECRET": clientSecret,
	})
	type replica struct {
		up     *upstream
		stderr *syncBuffer
		stop   func() error
	}
	replicas := map[string]*replica{}
	var ups []*upstream
	for _, name := range []string{"a", "b"} {
		stdout, stderr, stop := startEnv(t, getenv, "serve", "--config", cfgFile)
		addr := waitFor(t, stdout, regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))
		r := &replica{up: &upstream{name: name, addr: addr}, stderr: stderr, stop: stop}
		replicas[name] = r
		ups = append(ups, r.up)
	}
	proxy := newStickyProxy(proxyIP, ups...)
	serveTLS(t, proxyLn, serverCert, proxy)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	b := newClinician(t, pool, clinicianIPs[0], true)

	// A launch through the proxy completes on one replica.
	patient := smallestPatient(t, sim)
	var name string
	for _, p := range sim.Patients() {
		if p.ID == patient {
			name = p.Name
		}
	}
	tok, err := sim.NewLaunch(patient, clientID)
	if err != nil {
		t.Fatal(err)
	}
	view, _ := b.mustLabs(appURL+"/launch?iss="+url.QueryEscape(sim.ISS())+"&launch="+url.QueryEscape(tok), name)
	if !strings.HasPrefix(view, appURL+"/l/") {
		t.Fatalf("launch ended at %s, want the labs view", view)
	}
	b.mustShowPatient(view, name)
	home := b.affinity(appURL)
	served := proxy.servedBy()
	if len(served) != 1 || served[home] < 3 {
		t.Fatalf("requests per replica = %v: /launch, /callback and the view must all reach one replica", served)
	}

	// More views of the launch, including filters, come from that replica's
	// result cache: the EHR saw one search.
	for _, q := range []string{"?view=all", "?abnormal=1", ""} {
		b.mustLabs(view+q, name)
	}
	if n := searches.Load(); n != 1 {
		t.Errorf("Observation searches after one launch and several views = %d, want 1", n)
	}
	served = proxy.servedBy()
	if len(served) != 1 {
		t.Errorf("requests per replica = %v, want all on %s", served, home)
	}

	// The launch's replica goes away; the other one takes the launch over
	// from Redis and fetches the results again, once.
	if err := replicas[home].stop(); err != nil {
		t.Fatalf("stopping replica %s: %v", home, err)
	}
	other := "a"
	if home == "a" {
		other = "b"
	}
	b.mustShowPatient(view, name)
	for _, q := range []string{"?view=all", ""} {
		b.mustLabs(view+q, name)
	}
	if got := b.affinity(appURL); got != other {
		t.Errorf("affinity cookie = %q after failover, want %q", got, other)
	}
	if n := searches.Load(); n != 2 {
		t.Errorf("Observation searches after failover and several views = %d, want 2", n)
	}
	if now := proxy.servedBy(); now[home] != served[home] || now[other] == 0 {
		t.Errorf("requests per replica = %v (before the stop %v), want the views after it on %s", now, served, other)
	}

	// Two clinicians at different IPs behind the same proxy, on the same
	// replica: each has its own per-IP count.
	first, second := newClinician(t, pool, clinicianIPs[1], false), newClinician(t, pool, clinicianIPs[2], false)
	launch := appURL + "/launch?iss=" + url.QueryEscape(sim.ISS())
	for i := range perIPCeiling {
		if code := first.status(launch, other); code != http.StatusSeeOther {
			t.Fatalf("request %d from %s = %d, want 303 (the cookie check)", i+1, clinicianIPs[1], code)
		}
	}
	if code := first.status(launch, other); code != http.StatusTooManyRequests {
		t.Errorf("request %d from %s = %d, want 429", perIPCeiling+1, clinicianIPs[1], code)
	}
	if code := second.status(launch, other); code != http.StatusSeeOther {
		t.Errorf("first request from %s = %d, want 303: the limit counted the proxy, not the clinician", clinicianIPs[2], code)
	}

	if logs := replicas[other].stderr.String(); strings.Contains(logs, `"level":"error"`) {
		t.Errorf("errors logged on %s: %s", other, logs)
	}
}

// serveTLS serves h over TLS on ln with cert until the test ends.
func serveTLS(t *testing.T, ln net.Listener, cert tls.Certificate, h http.Handler) {
	t.Helper()
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
}

// clinician is one browser at its own IP address that trusts the private CA.
type clinician struct {
	t *testing.T
	c *http.Client
}

// newClinician makes a browser connecting from ip; with a cookie jar it
// keeps cookies and follows redirects as a browser does, without one it
// sends each request alone.
func newClinician(t *testing.T, roots *x509.CertPool, ip net.IP, jar bool) *clinician {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		// localhost is the proxy on 127.0.0.1, whatever /etc/hosts says of ::1.
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			if host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, "tcp4", addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if jar {
		c.Jar, _ = cookiejar.New(nil)
	} else {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &clinician{t: t, c: c}
}

// mustLabs follows u to a labs view and returns its URL and the patient
// banner's name ("" while the patient's details are still on their way).
// Any other patient's name fails the test.
func (b *clinician) mustLabs(u, name string) (string, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	got := strings.TrimSpace(doc.Find(`[data-testid="banner-name"]`).Text())
	pending := doc.Find(`[data-testid="banner-pending"]`).Length() == 1
	if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="labs"]`).Length() != 1 || (got != name && !(got == "" && pending)) {
		b.t.Fatalf("GET %s: %d at %s, patient %q (want %q): %s", u, resp.StatusCode, resp.Request.URL,
			got, name, strings.TrimSpace(doc.Find(`[data-testid="error-message"]`).Text()))
	}
	return resp.Request.URL.String(), got
}

// mustShowPatient reloads the view until its banner names the patient; the
// details arrive beside the results, so an early view may not have them yet.
func (b *clinician) mustShowPatient(view, name string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, got := b.mustLabs(view, name); got == name {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed the patient's banner", view)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// affinity is the replica the proxy's cookie pins this browser to.
func (b *clinician) affinity(appURL string) string {
	u, _ := url.Parse(appURL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == affinityCookie {
			return c.Value
		}
	}
	b.t.Fatal("no affinity cookie")
	return ""
}

// status sends one GET pinned to replica and returns the status code.
func (b *clinician) status(u, replica string) int {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.AddCookie(&http.Cookie{Name: affinityCookie, Value: replica})
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
