// Package servertest wires the smartlabs server to the project's EHR
// simulator on loopback for tests: the app reached as localhost, the
// simulator as 127.0.0.1, so the app is cross-site to the EHR as in Epic.
// Only tests import it.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/rs/zerolog"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/keys"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

// SyncBuffer is a log sink safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Epoch is where test clocks start: a fixed instant, so that no test result
// depends on the day the tests run.
var Epoch = time.Date(2026, time.December, 2, 15, 4, 5, 0, time.UTC)

// Clock is a test clock that starts at a given instant and runs on with real
// time; a test moves it forward with Add. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	base   time.Time // the clock's reading at start
	start  time.Time // the real time it started, with its monotonic reading
	offset time.Duration
}

// NewClock returns a clock reading at, running from now on.
func NewClock(at time.Time) *Clock { return &Clock{base: at, start: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.start) + c.offset)
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Env is the app wired to the project's EHR simulator, both on loopback:
// the app reached as localhost, the simulator as 127.0.0.1.
type Env struct {
	t testing.TB
	// Handler is the app itself, for tests that call it without a network.
	Handler http.Handler
	Sim     *ehrsim.Sim
	SimURL  string
	AppURL  string
	Cfg     *config.Config
	// KV is the memory store's KV; nil when Options.RedisURL is set.
	KV *session.MemoryKV
	// Store is the launch-record KV of either kind.
	Store session.KV
	// ScsStore is the scs store as wrapped by the session Manager: what it
	// holds is what a dump of the store shows (hashed keys, ciphertext).
	ScsStore scs.Store
	// Logs is the application log, Audit the audit log.
	Logs  *SyncBuffer
	Audit *SyncBuffer
	// Clock is the clock of the app and the simulator when Options.Now is
	// nil: it starts at Epoch. Nil when the test brought its own.
	Clock *Clock

	keys  map[string]*keys.Key
	deps  func(*server.Deps)
	redis string
	now   func() time.Time
	mu    sync.Mutex
	// saved is the last saved version of each launch record; tokens every token ever saved.
	saved  map[string]session.Launch
	tokens []string
}

// Options change how New wires the app and the simulator.
type Options struct {
	// JWT makes the app use private_key_jwt instead of a client secret.
	JWT bool
	// Switches are the simulator's initial switches.
	Switches ehrsim.Switches
	// Mutate changes the config before it is finished and validated.
	Mutate func(*config.Config)
	// RedisURL, when set, keeps sessions in that Redis (see StartRedis), wired
	// as `session.store: redis` wires them.
	RedisURL string
	// Now is the clock of the app and, unless SimNow is set, of the simulator;
	// nil means a Clock that starts at Epoch (Env.Clock).
	Now func() time.Time
	// SimNow is the simulator's own clock, so a test can make the EHR's time run ahead of the app's.
	SimNow func() time.Time
	// WrapStores, when set, wraps the scs store and the KV the app uses, so a
	// test can make the store fail mid-session.
	WrapStores func(scs.Store, session.KV) (scs.Store, session.KV)
	// Deps, when set, changes what the app is wired from before server.New:
	// metrics to read, a transport that fails on cue, smaller bounds.
	// HTTPClient is shared with the SMART client, so its Transport carries
	// discovery, token and FHIR requests alike.
	Deps func(*server.Deps)
	// WrapApp, when set, wraps the app's handler as a proxy in front of it
	// would: a test can cut or refuse the browser's requests.
	WrapApp func(http.Handler) http.Handler
}

// ClientID is the app's client id at the simulator.
const ClientID = "smartlabs-test"

// ClientSecret has characters that x/oauth2 must form-escape in Basic credentials.
const ClientSecret = "s3cr3t+/=value"

// New starts the app and the simulator; both stop when the test ends.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	h := &Env{t: t, Logs: &SyncBuffer{}, Audit: &SyncBuffer{}, redis: opts.RedisURL, saved: map[string]session.Launch{}, now: opts.Now, deps: opts.Deps}
	if h.now == nil {
		h.Clock = NewClock(Epoch)
		h.now = h.Clock.Now
	}
	simNow := opts.SimNow
	if simNow == nil {
		simNow = h.now
	}

	appLn := Listen(t)
	simLn := Listen(t)
	h.AppURL = "http://localhost:" + Port(appLn)
	h.SimURL = "http://127.0.0.1:" + Port(simLn)

	h.Cfg = &config.Config{
		Listen:         appLn.Addr().String(),
		PublicURL:      h.AppURL,
		FrameAncestors: []string{h.SimURL},
		TimeZone:       "America/Chicago",
		FHIR:           config.FHIR{PageSize: 50, RequestTimeout: 5 * time.Second, ViewTimeout: 20 * time.Second},
	}
	client := ehrsim.Client{ID: ClientID, RedirectURIs: []string{h.Cfg.RedirectURI()}}
	issuer := config.Issuer{Name: "Simulator", ClientID: ClientID}
	ks := map[string]*keys.Key{}
	if opts.JWT {
		dir := t.TempDir()
		f, err := keys.WriteNew(dir, keys.MinBits)
		if err != nil {
			t.Fatal(err)
		}
		issuer.PrivateKeyFile = f.PrivateKey
		client.JWKSURL = h.AppURL + "/.well-known/jwks.json"
	} else {
		issuer.ClientSecret = ClientSecret
		client.Secret = ClientSecret
	}
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL: h.SimURL, AppLaunchURL: h.AppURL + "/launch",
		Clients: []ehrsim.Client{client}, Switches: opts.Switches, Now: simNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Sim = sim
	issuer.ISS = sim.ISS()
	h.Cfg.Issuers = []config.Issuer{issuer}
	if opts.RedisURL != "" {
		h.Cfg.Session.Store = "redis"
		h.Cfg.Session.RedisURL = config.Secret(opts.RedisURL)
	}
	if opts.Mutate != nil {
		opts.Mutate(h.Cfg)
	}
	if err := config.Finish(h.Cfg); err != nil {
		t.Fatal(err)
	}
	for _, is := range h.Cfg.Issuers {
		if is.PrivateKeyFile != "" {
			k, err := keys.Load(is.PrivateKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			ks[is.ISS] = k
		}
	}

	h.keys = ks
	var store scs.Store
	if opts.RedisURL != "" {
		store, h.Store = h.redisStores()
	} else {
		h.KV = session.NewMemoryKV()
		t.Cleanup(h.KV.Close)
		store, h.Store = memstore.New(), h.KV
	}
	appStore, appKV := store, h.Store
	if opts.WrapStores != nil {
		appStore, appKV = opts.WrapStores(store, h.Store)
	}
	srv := h.newServer(h.Cfg, appStore, appKV)
	h.Handler = srv
	var app http.Handler = srv
	if opts.WrapApp != nil {
		app = opts.WrapApp(srv)
	}
	Serve(t, appLn, app)
	Serve(t, simLn, sim)
	return h
}

// redisStores connects a new client to the Env's Redis, as one replica does.
func (h *Env) redisStores() (scs.Store, session.KV) {
	h.t.Helper()
	rc, err := session.NewRedisClient(h.redis)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { rc.Close() })
	return session.NewRedisStores(rc)
}

// newServer wires one app instance with cfg on the given stores.
func (h *Env) newServer(cfg *config.Config, store scs.Store, kv session.KV) *server.Server {
	var srv *server.Server
	sessions := session.NewManager(session.Options{
		IdleTimeout: cfg.Session.IdleTimeout, Lifetime: cfg.Session.Lifetime, ScsStore: store, KV: kv, Now: h.now,
		ErrorFunc:   func(w http.ResponseWriter, r *http.Request, err error) { srv.StoreError(w, r, err) },
		SavedLaunch: h.recordLaunch,
	})
	if h.ScsStore == nil {
		h.ScsStore = store
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	d := server.Deps{
		Config:     cfg,
		Logger:     zerolog.New(h.Logs),
		Audit:      server.NewAudit(zerolog.New(h.Audit)),
		Sessions:   sessions,
		HTTPClient: hc,
		Keys:       h.keys,
		Version:    "test",
		Now:        h.now,
	}
	if h.deps != nil {
		h.deps(&d)
	}
	if d.SMART == nil {
		// Built after Deps, from the client it left: the SMART client copies
		// its HTTP client, so a transport swapped in by Deps must be in place first.
		d.SMART = smart.NewClient(smart.Options{HTTPClient: d.HTTPClient, Now: h.now})
	}
	srv = server.New(d)
	return srv
}

// Replica is a second app instance sharing the Env's Redis and simulator,
// as a replica behind a load balancer: same config and public URL, its own
// port, its own Redis client.
type Replica struct {
	// URL reaches this instance; cookies for localhost reach it too, since
	// browsers do not tell ports apart for cookies.
	URL     string
	Handler http.Handler
}

// Replica starts another app instance; it needs Options.RedisURL.
func (h *Env) Replica() *Replica {
	h.t.Helper()
	return h.ReplicaWith(nil)
}

// ReplicaWith starts another app instance whose config is the Env's changed
// by mutate, as a replica rolled out with a new config while sessions live
// on in Redis (an issuer removed, say); it needs Options.RedisURL.
func (h *Env) ReplicaWith(mutate func(*config.Config)) *Replica {
	h.t.Helper()
	cfg := h.Cfg
	if mutate != nil {
		c := *h.Cfg
		c.Issuers = append([]config.Issuer(nil), h.Cfg.Issuers...)
		mutate(&c)
		if err := config.Finish(&c); err != nil {
			h.t.Fatal(err)
		}
		cfg = &c
	}
	if h.redis == "" {
		h.t.Fatal("servertest: Replica needs Options.RedisURL: memory stores are not shared")
	}
	store, kv := h.redisStores()
	srv := h.newServer(cfg, store, kv)
	ln := Listen(h.t)
	Serve(h.t, ln, srv)
	return &Replica{URL: "http://localhost:" + Port(ln), Handler: srv}
}

func (h *Env) recordLaunch(l session.Launch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saved[l.ID] = l
	for _, s := range []string{l.AccessToken, l.RefreshToken, l.IDToken} {
		if s != "" {
			h.tokens = append(h.tokens, s)
		}
	}
}

// Listen opens a listener on a free loopback port.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Port is the listener's port number as text.
func Port(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// Serve serves h on ln until the test ends.
func Serve(t testing.TB, ln net.Listener, h http.Handler) {
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	hs.Start()
	t.Cleanup(hs.Close)
}

// Patient returns the simulator patient whose name contains name.
func (h *Env) Patient(name string) ehrsim.PatientInfo {
	h.t.Helper()
	for _, p := range h.Sim.Patients() {
		if strings.Contains(p.Name, name) {
			return p
		}
	}
	h.t.Fatalf("no simulator patient named %q", name)
	return ehrsim.PatientInfo{}
}

// LaunchURL mints an EHR launch for the patient, as the chart page does.
func (h *Env) LaunchURL(patientID string) string {
	h.t.Helper()
	tok, err := h.Sim.NewLaunch(patientID, ClientID)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.AppURL + "/launch?iss=" + url.QueryEscape(h.Sim.ISS()) + "&launch=" + url.QueryEscape(tok)
}

// CountSimRequests counts simulator requests whose path starts with prefix.
func (h *Env) CountSimRequests(prefix string) int {
	n := 0
	for _, r := range h.Sim.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// LaunchRecords returns every launch record still in the store, as last
// saved. The store holds them encrypted, so they are taken from the session
// Manager's SavedLaunch hook and checked for presence in the store.
func (h *Env) LaunchRecords() []map[string]any {
	h.mu.Lock()
	saved := make([]session.Launch, 0, len(h.saved))
	for _, l := range h.saved {
		saved = append(saved, l)
	}
	h.mu.Unlock()
	var out []map[string]any
	for _, l := range saved {
		if _, ok, err := h.Store.Get(context.Background(), "launch:"+l.ID); err != nil || !ok {
			continue
		}
		b, err := json.Marshal(l)
		if err != nil {
			h.t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// Secrets returns every token the server has saved for its launches
// (refreshed and deleted ones too); a test fails when there are none, since
// a scan for them would then prove nothing.
func (h *Env) Secrets() []string {
	h.t.Helper()
	h.mu.Lock()
	out := append([]string(nil), h.tokens...)
	h.mu.Unlock()
	if len(out) == 0 {
		h.t.Fatal("no tokens stored: no launch completed")
	}
	return out
}

// Probe is the part of a secret searched for in output: long tokens by a
// distinctive 24-character slice, so a truncated copy is found too.
func Probe(s string) string {
	if len(s) > 40 {
		return s[len(s)/2 : len(s)/2+24]
	}
	return s
}
