package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/google/go-cmp/cmp"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/keys"
)

// switchable serves whichever app is current, as a rolling restart does.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

func (s *switchable) use(h http.Handler) { s.h.Store(&h) }

// mustSimAt starts a simulator on loopback with clients.
func mustSimAt(t *testing.T, clients []ehrsim.Client, sw ehrsim.Switches) *ehrsim.Sim {
	t.Helper()
	sim, err := ehrsim.New(ehrsim.Options{Clients: clients, Switches: sw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	return sim
}

func mustKeyFiles(t *testing.T, alg string) keys.Files {
	t.Helper()
	f, err := keys.WriteNewAlg(filepath.Join(t.TempDir(), alg), alg, keys.MinBits)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustApp(t *testing.T, cfg *config.Config) *app {
	t.Helper()
	a, err := newApp(cfg, os.Getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// smallestPatient is the simulator patient with the fewest (but some) results.
func smallestPatient(t *testing.T, sim *ehrsim.Sim) string {
	t.Helper()
	best := ehrsim.PatientInfo{}
	for _, p := range sim.Patients() {
		if p.ResultCount > 0 && (best.ID == "" || p.ResultCount < best.ResultCount) {
			best = p
		}
	}
	return best.ID
}

// launchResult is what a browser ended on after an EHR launch.
type launchResult struct {
	status  int
	path    string
	csp     string
	visited []string
}

// ehrLaunch runs an EHR launch of clientID at sim in a fresh cookie-keeping
// browser and follows it to the labs view.
func ehrLaunch(t *testing.T, appURL string, sim *ehrsim.Sim, clientID string) launchResult {
	t.Helper()
	tok, err := sim.NewLaunch(smallestPatient(t, sim), clientID)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	var res launchResult
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		res.visited = append(res.visited, r.URL.Path)
		return nil
	}}
	resp, err := c.Get(appURL + "/launch?iss=" + url.QueryEscape(sim.ISS()) + "&launch=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.status, res.path, res.csp = resp.StatusCode, resp.Request.URL.Path, resp.Header.Get("Content-Security-Policy")
	return res
}

// tokenRequests lists how each token request at sim authenticated.
func tokenRequests(sim *ehrsim.Sim) []string {
	var out []string
	for _, r := range sim.Requests() {
		if r.Path == "/oauth2/token" {
			out = append(out, r.ClientID+" "+r.ClientAuth+" "+r.KeyID+" "+r.Grant)
		}
	}
	return out
}

func frameAncestors(csp string) string {
	m := regexp.MustCompile(`frame-ancestors ([^;]+)`).FindStringSubmatch(csp)
	if m == nil {
		return ""
	}
	return m[1]
}

func jwksKIDs(t *testing.T, appURL string) ([]string, string) {
	t.Helper()
	resp, err := http.Get(appURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("private key published")
		}
		kids = append(kids, k.KID)
	}
	return kids, resp.Header.Get("Cache-Control")
}

func scrape(t *testing.T, a *app) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// TestSeveralIssuers runs launches from two organisations, each with its own
// simulator, client id, authentication method, redirect URI and frame
// ancestors; rotates org B's key with both keys published; and reads the
// metrics those launches left.
func TestSeveralIssuers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://localhost:" + portOf(ln)
	front := &switchable{}
	front.use(http.NotFoundHandler())
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: front}}
	hs.Start()
	t.Cleanup(hs.Close)

	oldKey, newKey := mustKeyFiles(t, "RS384"), mustKeyFiles(t, "ES384")
	simA := mustSimAt(t, []ehrsim.Client{{ID: "org-a-prod", Secret: "a-secret+/=", RedirectURIs: []string{appURL + "/callback/org-a"}}}, ehrsim.Switches{})
	simB := mustSimAt(t, []ehrsim.Client{{ID: "org-b-prod", JWKSURL: appURL + "/.well-known/jwks.json", RedirectURIs: []string{appURL + "/callback"}}}, ehrsim.Switches{})

	newCfg := func(privateKey string, extra ...string) *config.Config {
		cfg := &config.Config{
			Listen: ln.Addr().String(), PublicURL: appURL, AuditLog: "-",
			FrameAncestors: []string{simB.ISS()[:strings.Index(simB.ISS(), "/fhir")]},
			MetricsListen:  "127.0.0.1:0",
			Issuers: []config.Issuer{
				{Name: "Org A", ISS: simA.ISS(), ClientID: "org-a-prod", ClientSecret: "a-secret+/=",
					RedirectPath: "/callback/org-a", FrameAncestors: []string{"http://127.0.0.1:1"}},
				{Name: "Org B", ISS: simB.ISS(), ClientID: "org-b-prod", PrivateKeyFile: privateKey, ExtraPublicKeys: extra},
			},
		}
		if err := config.Finish(cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// Step 1 of a rotation: the new key is published, the old one still signs.
	app1 := mustApp(t, newCfg(oldKey.PrivateKey, newKey.JWKS))
	front.use(app1.handler)

	a := ehrLaunch(t, appURL, simA, "org-a-prod")
	b := ehrLaunch(t, appURL, simB, "org-b-prod")
	for name, r := range map[string]launchResult{"A": a, "B": b} {
		if r.status != http.StatusOK || !strings.HasPrefix(r.path, "/l/") {
			t.Fatalf("launch %s ended at %s with %d (visited %v)", name, r.path, r.status, r.visited)
		}
	}
	if !contains(a.visited, "/callback/org-a") || contains(b.visited, "/callback/org-a") {
		t.Errorf("callbacks: A visited %v, B visited %v", a.visited, b.visited)
	}
	// Each labs view may be framed by its own organisation's EHR only.
	if got := frameAncestors(a.csp); got != "http://127.0.0.1:1" {
		t.Errorf("org A frame-ancestors = %q", got)
	}
	if got, want := frameAncestors(b.csp), newCfg(oldKey.PrivateKey).FrameAncestors[0]; got != want {
		t.Errorf("org B frame-ancestors = %q, want the top-level %q", got, want)
	}
	if diff := cmp.Diff([]string{"org-a-prod client_secret_basic  authorization_code"}, tokenRequests(simA)); diff != "" {
		t.Errorf("org A token requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"org-b-prod private_key_jwt " + oldKey.KeyID + " authorization_code"}, tokenRequests(simB)); diff != "" {
		t.Errorf("org B token requests (-want +got):\n%s", diff)
	}
	kids, cc := jwksKIDs(t, appURL)
	if diff := cmp.Diff([]string{oldKey.KeyID, newKey.KeyID}, kids); diff != "" || cc != "public, max-age=3600" {
		t.Errorf("JWKS kids (-want +got):\n%s\nCache-Control %q", diff, cc)
	}

	// An answer for org B arriving on org A's redirect path is refused (mix-up defence).
	if code := wrongCallbackPath(t, appURL, simB, "org-b-prod", "/callback/org-a"); code != http.StatusBadRequest {
		t.Errorf("org B's answer on org A's redirect path = %d, want 400", code)
	}

	// The metrics of those launches, labelled by configured issuer name only.
	m := scrape(t, app1)
	for _, want := range []string{
		`smartlabs_launches_total{issuer="Org A",outcome="ok",stage="launch"} 1`,
		`smartlabs_launches_total{issuer="Org A",outcome="ok",stage="callback"} 1`,
		`smartlabs_launches_total{issuer="Org B",outcome="ok",stage="callback"} 1`,
		`smartlabs_token_requests_total{grant="authorization_code",issuer="Org A",outcome="ok"} 1`,
		`smartlabs_token_requests_total{grant="authorization_code",issuer="Org B",outcome="ok"} 1`,
		`smartlabs_lab_results_count{issuer="Org A"}`,
		`smartlabs_fhir_request_duration_seconds_count{issuer="Org B",status="2xx"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := metricValue(t, m, `smartlabs_fhir_request_duration_seconds_count{issuer="Org A",status="2xx"}`); n < 2 {
		t.Errorf("org A FHIR requests = %v, want at least the Patient read and one search page", n)
	}
	for _, p := range append(simA.Patients(), simB.Patients()...) {
		if strings.Contains(m, `"`+p.ID+`"`) || strings.Contains(m, strings.TrimPrefix(a.path, "/l/")) {
			t.Fatalf("metrics carry a patient or launch id")
		}
	}

	// Step 2: sign with the new key (ES384), the old one still published.
	// While replicas of both configs run, the EHR accepts both kids.
	app2 := mustApp(t, newCfg(newKey.PrivateKey, oldKey.JWKS))
	front.use(app2.handler)
	if r := ehrLaunch(t, appURL, simB, "org-b-prod"); r.status != http.StatusOK {
		t.Fatalf("launch with the new key: %d at %s", r.status, r.path)
	}
	front.use(app1.handler)
	if r := ehrLaunch(t, appURL, simB, "org-b-prod"); r.status != http.StatusOK {
		t.Fatalf("launch with the old key while both are published: %d at %s", r.status, r.path)
	}
	want := []string{
		"org-b-prod private_key_jwt " + oldKey.KeyID + " authorization_code",
		"org-b-prod private_key_jwt " + newKey.KeyID + " authorization_code",
		"org-b-prod private_key_jwt " + oldKey.KeyID + " authorization_code",
	}
	if diff := cmp.Diff(want, tokenRequests(simB)); diff != "" {
		t.Errorf("org B token requests across the rotation (-want +got):\n%s", diff)
	}

	// Step 3: the old key is retired: only the new one is published.
	front.use(mustApp(t, newCfg(newKey.PrivateKey)).handler)
	if kids, _ := jwksKIDs(t, appURL); !cmp.Equal(kids, []string{newKey.KeyID}) {
		t.Errorf("after retirement JWKS kids = %v, want only %s", kids, newKey.KeyID)
	}

	// A launch from an unknown EHR is counted as refused, under "other".
	front.use(app1.handler)
	resp, err := http.Get(appURL + "/launch?iss=" + url.QueryEscape("https://evil.example/fhir"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if m := scrape(t, app1); !strings.Contains(m, `smartlabs_launches_total{issuer="other",outcome="refused",stage="launch"} 1`) {
		t.Errorf("unknown issuer launch not counted: %d", resp.StatusCode)
	}
}

// wrongCallbackPath starts a launch of clientID at sim, lets the simulator
// answer, and delivers that answer to path instead of the registered one.
func wrongCallbackPath(t *testing.T, appURL string, sim *ehrsim.Sim, clientID, path string) int {
	t.Helper()
	tok, err := sim.NewLaunch(smallestPatient(t, sim), clientID)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(appURL + "/launch?iss=" + url.QueryEscape(sim.ISS()) + "&launch=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("simulator answered %d without a code (Location %q)", resp.StatusCode, resp.Header.Get("Location"))
	}
	loc.Path = path
	resp, err = c.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// metricValue returns the value of the sample line starting with series.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctor(t *testing.T) {
	key := mustKeyFiles(t, "RS384")
	jwks, err := os.ReadFile(key.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	clients := []ehrsim.Client{
		{ID: "app", Secret: "s", RedirectURIs: []string{"http://localhost:8080/callback"}},
		{ID: "app-jwt", JWKS: jwks, RedirectURIs: []string{"http://localhost:8080/callback"}},
		{ID: "backend", Backend: true, JWKS: jwks},
	}
	healthy := mustSimAt(t, clients, ehrsim.Switches{})
	broken := mustSimAt(t, clients, ehrsim.Switches{NoS256: true})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	cfgFile := func(issuers string) string {
		return writeFile(t, "smartlabs.yaml", `
listen: 127.0.0.1:0
public_url: http://localhost:8080
issuers:
`+issuers+`
backend_services:
  - name: reporting
    iss: `+healthy.ISS()+`
    client_id: backend
    private_key_file: `+key.PrivateKey+`
    scopes: system/Observation.read
`)
	}
	healthyIssuers := `  - {name: Org A, iss: "` + healthy.ISS() + `", client_id: app, client_secret: s}
  - {name: Org A jwt, iss: "` + healthy.ISS() + `/", client_id: app-jwt, private_key_file: "` + key.PrivateKey + `"}`
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		wantRows []string
	}{
		{"healthy", []string{"--config", cfgFile(healthyIssuers[:strings.Index(healthyIssuers, "\n")])}, false,
			[]string{"Org A  ", "PKCE S256", "PASS", "all checks passed"}},
		{"no S256", []string{"--config", cfgFile(`  - {name: Broken, iss: "` + broken.ISS() + `", client_id: app, client_secret: s}`)}, true,
			[]string{"Broken", "FAIL", "lacks S256"}},
		{"unreachable", []string{"--config", cfgFile(`  - {name: Gone, iss: "` + closed.URL + `/fhir", client_id: app, client_secret: s}`)}, true,
			[]string{"Gone", "unreachable", "SKIP"}},
		{"backend", []string{"--config", cfgFile(`  - {name: Org A, iss: "` + healthy.ISS() + `", client_id: app, client_secret: s}`), "--backend", "reporting"}, false,
			[]string{"not the clinician app's", "system token", `granted scope "system/Observation.read"`}},
		{"unknown backend", []string{"--config", cfgFile(`  - {name: Org A, iss: "` + healthy.ISS() + `", client_id: app, client_secret: s}`), "--backend", "nope"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"doctor", "--timeout", "3s"}, tt.args...), os.Getenv, &out, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tt.wantErr, out.String())
			}
			for _, w := range tt.wantRows {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestServeMetricsListener(t *testing.T) {
	cfg := writeFile(t, "smartlabs.yaml", `
listen: 127.0.0.1:0
public_url: http://localhost:8080
metrics_listen: 127.0.0.1:0
issuers:
  - iss: https://ehr.example.org/fhir/R4
    client_id: abc
    client_secret: s
`)
	stdout, _, stop := start(t, "serve", "--config", cfg)
	addr := waitFor(t, stdout, regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))
	metricsURL := waitFor(t, stdout, regexp.MustCompile(`metrics on (http://127\.0\.0\.1:\d+/metrics)`))
	code, body := get(t, metricsURL)
	if code != 200 || !strings.Contains(body, "smartlabs_build_info{") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics = %d %.200q", code, body)
	}
	// The app's own listener does not serve them.
	if code, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("app /metrics = %d, want 404", code)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || !regexp.MustCompile(`^ok smartlabs \S+ go1\.\d+\S* revision \S+`).MatchString(body) {
		t.Errorf("healthz = %d %q", code, body)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
}

func TestKeysNewES384AndVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "org-b-prod-2")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "new", "--out", dir, "--alg", "ES384"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Load(filepath.Join(dir, keys.PrivateKeyFile))
	if err != nil || k.Algorithm() != "ES384" || !strings.Contains(out.String(), "kid "+k.KeyID()) {
		t.Fatalf("ES384 key: %v, output %q", err, out.String())
	}
	if err := run(context.Background(), []string{"keys", "new", "--out", t.TempDir(), "--alg", "HS256"}, os.Getenv, io.Discard, io.Discard); err == nil {
		t.Error("keys new --alg HS256 succeeded")
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, os.Getenv, &out, io.Discard); err != nil ||
		!regexp.MustCompile(`^smartlabs \S+ go1\.\d+\S* revision \S+`).MatchString(out.String()) {
		t.Errorf("version = %q, %v", out.String(), err)
	}
}
