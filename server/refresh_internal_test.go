package server

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
	"github.com/rs/zerolog"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// replicaClock is an adjustable clock shared by the replicas and the simulator.
type replicaClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *replicaClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *replicaClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustListenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestRefreshOncePerLaunchAcrossReplicas: 20 fetches of one launch with an
// expired token, spread over two replicas sharing the session store, make
// exactly one token request, and every fetch uses the refreshed token.
func TestRefreshOncePerLaunchAcrossReplicas(t *testing.T) {
	clk := &replicaClock{t: time.Date(2026, time.December, 2, 15, 4, 5, 0, time.UTC)}
	appLn, simLn := mustListenLoopback(t), mustListenLoopback(t)
	_, appPort, _ := net.SplitHostPort(appLn.Addr().String())
	_, simPort, _ := net.SplitHostPort(simLn.Addr().String())
	appURL, simURL := "http://localhost:"+appPort, "http://127.0.0.1:"+simPort

	cfg := &config.Config{Listen: appLn.Addr().String(), PublicURL: appURL,
		FHIR: config.FHIR{PageSize: 50, RequestTimeout: 5 * time.Second, ViewTimeout: 20 * time.Second}}
	sim, err := ehrsim.New(ehrsim.Options{BaseURL: simURL, AppLaunchURL: appURL + "/launch", Now: clk.now,
		Clients: []ehrsim.Client{{ID: "app", Secret: "secret", RedirectURIs: []string{cfg.RedirectURI()}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuers = []config.Issuer{{Name: "Sim", ISS: sim.ISS(), ClientID: "app", ClientSecret: "secret"}}
	if err := config.Finish(cfg); err != nil {
		t.Fatal(err)
	}
	kv := session.NewMemoryKV()
	t.Cleanup(kv.Close)
	store := memstore.New()
	t.Cleanup(store.StopCleanup)
	replica := func() *Server {
		var srv *Server
		m := session.NewManager(session.Options{IdleTimeout: cfg.Session.IdleTimeout, Lifetime: cfg.Session.Lifetime,
			ScsStore: store, KV: kv, Now: clk.now,
			ErrorFunc: func(w http.ResponseWriter, r *http.Request, err error) { srv.StoreError(w, r, err) }})
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		srv = New(Deps{Config: cfg, Logger: zerolog.Nop(), Sessions: m, HTTPClient: hc, Now: clk.now,
			SMART: smart.NewClient(smart.Options{HTTPClient: hc, Now: clk.now})})
		return srv
	}
	a, b := replica(), replica()
	for ln, h := range map[net.Listener]http.Handler{appLn: a, simLn: sim} {
		hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
		hs.Start()
		t.Cleanup(hs.Close)
	}

	// One launch through replica a, as a browser does it.
	var patient string
	for _, p := range sim.Patients() {
		if strings.Contains(p.Name, "Lin") {
			patient = p.ID
		}
	}
	launchTok, err := sim.NewLaunch(patient, "app")
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Get(appURL + "/launch?iss=" + url.QueryEscape(sim.ISS()) + "&launch=" + url.QueryEscape(launchTok))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := strings.TrimPrefix(resp.Request.URL.Path, "/l/")
	if resp.StatusCode != http.StatusOK || !launchIDRe.MatchString(id) {
		t.Fatalf("launch ended with %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	var cookie string
	for _, c := range jar.Cookies(resp.Request.URL) {
		if c.Name == session.CookieName {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no session cookie in the jar")
	}
	// Each replica loads the browser's session from the shared store, as on a request.
	ctxs := map[*Server]context.Context{}
	for _, srv := range []*Server{a, b} {
		ctx, err := srv.sessions.SCS.Load(context.Background(), cookie)
		if err != nil {
			t.Fatal(err)
		}
		ctxs[srv] = ctx
	}
	stale, err := a.sessions.LoadLaunch(ctxs[a], id)
	if err != nil {
		t.Fatal(err)
	}
	tokenRequests := func() int {
		n := 0
		for _, r := range sim.Requests() {
			if r.Path == "/oauth2/token" {
				n++
			}
		}
		return n
	}
	before := tokenRequests()
	clk.add(2 * time.Hour)

	const n = 20
	errs := make([]error, n)
	results := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		srv := []*Server{a, b}[i%2]
		l := *stale
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := srv.fetchLaunchData(ctxs[srv], &l, nil)
			errs[i] = err
			if err == nil && d.Labs != nil && d.Labs.Err == nil && d.PatientErr == nil {
				results[i] = len(d.Labs.Observations)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] == 0 {
			t.Errorf("fetch %d: err %v, %d observations", i, errs[i], results[i])
		}
	}
	if got := tokenRequests() - before; got != 1 {
		t.Errorf("token requests for %d concurrent fetches on 2 replicas = %d, want exactly 1", n, got)
	}
	fresh, err := b.sessions.LoadLaunch(ctxs[b], id)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == stale.AccessToken || fresh.RefreshToken == stale.RefreshToken || !fresh.Expiry.After(clk.now()) {
		t.Error("the refreshed tokens (new access token, rotated refresh token, future expiry) were not saved")
	}
	if _, ok, _ := kv.Get(context.Background(), "lock:refresh:"+id); ok {
		t.Error("refresh lock left behind")
	}
}
