package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/rs/zerolog"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/keys"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is the app wired to the project's EHR simulator, both on loopback:
// the app reached as localhost, the simulator as 127.0.0.1.
type harness struct {
	t       testing.TB
	handler http.Handler
	sim     *ehrsim.Sim
	simURL  string
	appURL  string
	cfg     *config.Config
	kv      *session.MemoryKV
	logs    *syncBuffer
	audit   *syncBuffer
}

type harnessOptions struct {
	jwt      bool
	switches ehrsim.Switches
	mutate   func(*config.Config)
}

const clientID = "smartlabs-test"

// clientSecret has characters that x/oauth2 must form-escape in Basic credentials.
const clientSecret = "s3cr3t+/=value"

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, audit: &syncBuffer{}}

	appLn := mustListen(t)
	simLn := mustListen(t)
	h.appURL = "http://localhost:" + port(appLn)
	h.simURL = "http://127.0.0.1:" + port(simLn)

	h.cfg = &config.Config{
		Listen:         appLn.Addr().String(),
		PublicURL:      h.appURL,
		FrameAncestors: []string{h.simURL},
		TimeZone:       "America/Chicago",
		FHIR:           config.FHIR{PageSize: 50, RequestTimeout: 5 * time.Second, ViewTimeout: 20 * time.Second},
	}
	client := ehrsim.Client{ID: clientID, RedirectURIs: []string{h.cfg.RedirectURI()}}
	issuer := config.Issuer{Name: "Simulator", ClientID: clientID}
	ks := map[string]*keys.Key{}
	if opts.jwt {
		dir := t.TempDir()
		f, err := keys.WriteNew(dir, keys.MinBits)
		if err != nil {
			t.Fatal(err)
		}
		issuer.PrivateKeyFile = f.PrivateKey
		client.JWKSURL = h.appURL + "/.well-known/jwks.json"
	} else {
		issuer.ClientSecret = clientSecret
		client.Secret = clientSecret
	}
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: h.simURL, AppLaunchURL: h.appURL + "/launch",
		Clients: []ehrsim.Client{client}, Switches: opts.switches,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.sim = sim
	issuer.ISS = sim.ISS()
	h.cfg.Issuers = []config.Issuer{issuer}
	if opts.mutate != nil {
		opts.mutate(h.cfg)
	}
	if err := config.Finish(h.cfg); err != nil {
		t.Fatal(err)
	}
	for _, is := range h.cfg.Issuers {
		if is.PrivateKeyFile != "" {
			k, err := keys.Load(is.PrivateKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			ks[is.ISS] = k
		}
	}

	h.kv = session.NewMemoryKV()
	t.Cleanup(h.kv.Close)
	ms := memstore.New()
	t.Cleanup(ms.StopCleanup)
	var srv *server.Server
	sessions := session.NewManager(session.Options{
		IdleTimeout: 15 * time.Minute, Lifetime: 8 * time.Hour, ScsStore: ms, KV: h.kv,
		ErrorFunc: func(w http.ResponseWriter, r *http.Request, err error) { srv.StoreError(w, r, err) },
	})
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	srv = server.New(server.Deps{
		Config:     h.cfg,
		Logger:     zerolog.New(h.logs),
		Audit:      server.NewAudit(zerolog.New(h.audit)),
		Sessions:   sessions,
		SMART:      smart.NewClient(smart.Options{HTTPClient: hc}),
		HTTPClient: hc,
		Keys:       ks,
		Version:    "test",
	})
	h.handler = srv
	serve(t, appLn, srv)
	serve(t, simLn, sim)
	return h
}

func mustListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func serve(t testing.TB, ln net.Listener, h http.Handler) {
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	hs.Start()
	t.Cleanup(hs.Close)
}

// patient returns the simulator patient whose name contains name.
func (h *harness) patient(name string) ehrsim.PatientInfo {
	h.t.Helper()
	for _, p := range h.sim.Patients() {
		if strings.Contains(p.Name, name) {
			return p
		}
	}
	h.t.Fatalf("no simulator patient named %q", name)
	return ehrsim.PatientInfo{}
}

// launchURL mints an EHR launch for the patient, as the chart page does.
func (h *harness) launchURL(patientID string) string {
	h.t.Helper()
	tok, err := h.sim.NewLaunch(patientID, clientID)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.appURL + "/launch?iss=" + url.QueryEscape(h.sim.ISS()) + "&launch=" + url.QueryEscape(tok)
}

// countSimRequests counts simulator requests whose path starts with prefix.
func (h *harness) countSimRequests(prefix string) int {
	n := 0
	for _, r := range h.sim.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// launchRecords returns every launch record in the store.
func (h *harness) launchRecords() []map[string]any {
	var out []map[string]any
	for _, k := range h.kv.Keys() {
		if !strings.HasPrefix(k, "launch:") {
			continue
		}
		b, _, _ := h.kv.Get(context.Background(), k)
		var m map[string]any
		if err := jsonUnmarshal(b, &m); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// exchange is one HTTP exchange the test browser saw.
type exchange struct {
	URL     string
	Status  int
	Header  http.Header
	Body    string
	Request http.Header
}

// browser is a cookie-keeping HTTP client that records every exchange,
// redirects included, so tests can assert what reached "the browser".
type browser struct {
	t       *testing.T
	c       *http.Client
	mu      sync.Mutex
	seen    []exchange
	headers http.Header
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, headers: http.Header{}}
	b.c = &http.Client{Jar: jar, Transport: recorder{b}, Timeout: 30 * time.Second}
	return b
}

// withoutCookies is a browser that drops every cookie, as one that blocks
// third-party cookies in an EHR frame does.
func newCookielessBrowser(t *testing.T) *browser {
	b := newBrowser(t)
	b.c.Jar = nil
	return b
}

type recorder struct{ b *browser }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	for k, v := range r.b.headers {
		req.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.b.mu.Lock()
	r.b.seen = append(r.b.seen, exchange{URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: string(body), Request: req.Header.Clone()})
	r.b.mu.Unlock()
	return resp, nil
}

// get follows redirects and returns the final response and its document.
func (b *browser) get(u string) (*http.Response, *goquery.Document, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, doc, string(body)
}

// noRedirect returns a copy of b that stops at the first response.
func (b *browser) noRedirect() *browser {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: b.t, c: &c, headers: b.headers}
}

func (b *browser) exchanges() []exchange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]exchange(nil), b.seen...)
}

func text(doc *goquery.Document, testid string) string {
	return strings.TrimSpace(doc.Find(`[data-testid="` + testid + `"]`).First().Text())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
