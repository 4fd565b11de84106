package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/alexedwards/scs/v2"
	"github.com/google/go-cmp/cmp"

	"smartlabs/server/servertest"
	"smartlabs/server/session"
)

// browser is a cookie-keeping client that remembers every cookie value it was sent.
type browser struct {
	t       *testing.T
	c       *http.Client
	mu      sync.Mutex
	cookies []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: cookieRecorder{b}}
	return b
}

type cookieRecorder struct{ b *browser }

func (r cookieRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.b.mu.Lock()
		for _, c := range resp.Cookies() {
			r.b.cookies = append(r.b.cookies, c.Value)
		}
		r.b.mu.Unlock()
	}
	return resp, err
}

type page struct {
	status int
	url    *url.URL
	doc    *goquery.Document
}

// isLabs reports whether p is a labs view (page or fragment) without an error.
func (p page) isLabs() bool {
	return p.status == http.StatusOK && p.doc.Find(`[data-testid="labs"]`).Length() == 1 &&
		p.doc.Find(`[data-testid="error-message"]`).Length() == 0
}

func (p page) text(testid string) string {
	return strings.TrimSpace(p.doc.Find(`[data-testid="` + testid + `"]`).First().Text())
}

// get follows redirects, unless stopAtCallback, in which case it returns the
// redirect to /callback without following it (the test decides which replica gets it).
func (b *browser) get(u string, header http.Header, stopAtCallback bool) page {
	b.t.Helper()
	c := *b.c
	var cb *url.URL
	if stopAtCallback {
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/callback" {
				cb = req.URL
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, url: resp.Request.URL, doc: doc}
	if stopAtCallback {
		if cb == nil {
			b.t.Fatalf("launch never reached /callback: %d at %s: %s", p.status, p.url, p.text("error-message"))
		}
		p.url = cb
	}
	return p
}

func (b *browser) cookieValues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.cookies...)
}

// onHost returns u with its scheme and host replaced by base's: the load
// balancer sending the request to another replica.
func onHost(t *testing.T, u *url.URL, base string) string {
	t.Helper()
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	v := *u
	v.Scheme, v.Host = bu.Scheme, bu.Host
	return v.String()
}

// htmx are the headers of htmx's requests from our page, anti-forgery header included.
var htmx = http.Header{"Hx-Request": {"true"}, "X-Smartlabs-Csrf": {"1"}, "Sec-Fetch-Site": {"same-origin"}}

// dump returns every key and value of both session stores, as an attacker
// holding a copy of the memory or Redis store would see them.
func dump(t *testing.T, env *servertest.Env, rs *servertest.Redis) map[string][]byte {
	t.Helper()
	if rs != nil {
		return rs.Dump(t)
	}
	out := map[string][]byte{}
	for _, k := range env.KV.Keys() {
		v, _, _ := env.KV.Get(context.Background(), k)
		out["kv:"+k] = v
	}
	all, err := env.ScsStore.(scs.IterableStore).All()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range all {
		out["scs:"+k] = v
	}
	return out
}

func assertNothingInDump(t *testing.T, d map[string][]byte, forbidden map[string]string) {
	t.Helper()
	for what, s := range forbidden {
		if s == "" {
			t.Fatalf("nothing to look for as %s: the test would prove nothing", what)
		}
		for k, v := range d {
			if strings.Contains(k, s) || bytes.Contains(v, []byte(s)) {
				t.Errorf("store key %q (or its value) holds the %s", k, what)
			}
		}
	}
}

// TestStoreDumpRevealsNothing runs a full launch on each store and checks
// that a dump of every key and value holds no token, patient id, state,
// nonce, launch token or session cookie value.
func TestStoreDumpRevealsNothing(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var rs *servertest.Redis
			opts := servertest.Options{}
			if store == "redis" {
				rs = servertest.StartRedis(t)
				opts.RedisURL = rs.URL
			}
			env := servertest.New(t, opts)
			p := env.Patient("Lin")
			b := newBrowser(t)
			launch := env.LaunchURL(p.ID)
			cb := b.get(launch, nil, true).url

			// Mid-flight, the pending authorization is in the store: only its issuer is in clear.
			mid := dump(t, env, rs)
			pending := 0
			for k, v := range mid {
				if !strings.Contains(k, "auth:") {
					continue
				}
				pending++
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(v, &fields); err != nil {
					t.Fatalf("pending record: %v", err)
				}
				keys := make([]string, 0, len(fields))
				for f := range fields {
					keys = append(keys, f)
				}
				sort.Strings(keys)
				if diff := cmp.Diff([]string{"box", "iss"}, keys); diff != "" {
					t.Errorf("pending record fields (-want +got):\n%s", diff)
				}
			}
			if pending != 1 {
				t.Fatalf("pending records in store = %d, want 1", pending)
			}
			state := cb.Query().Get("state")
			lu, _ := url.Parse(launch)
			assertNothingInDump(t, mid, map[string]string{
				"state": state, "launch token": lu.Query().Get("launch"), "patient id": p.ID,
			})

			view := b.get(cb.String(), nil, false)
			if !view.isLabs() {
				t.Fatalf("callback: %d at %s: %s", view.status, view.url, view.text("error-message"))
			}
			if frag := b.get(view.url.String()+"/labs", htmx, false); !frag.isLabs() {
				t.Fatalf("labs fragment: %d: %s", frag.status, frag.text("error-message"))
			}

			d := dump(t, env, rs)
			launches, sessions := 0, 0
			for k := range d {
				if strings.Contains(k, "launch:") {
					launches++
				}
				if strings.Contains(k, "scs:") {
					sessions++
				}
			}
			if launches != 1 || sessions == 0 {
				t.Fatalf("dump has %d launch records and %d sessions, want 1 and some: %v", launches, sessions, keysOf(d))
			}
			forbidden := map[string]string{
				"state": state, "launch token": lu.Query().Get("launch"),
				"patient id": p.ID, "patient name": p.Family, "practitioner": "Practitioner/",
				// scs's gob blob names its keys: seen in a dump, the session data is in clear.
				"clear session data": "browser",
			}
			for i, s := range env.Secrets() {
				forbidden[fmt.Sprintf("token %d", i)] = servertest.Probe(s)
			}
			cookies := b.cookieValues()
			if len(cookies) < 2 {
				t.Fatalf("saw %d session cookies, want the first and the renewed one", len(cookies))
			}
			for i, c := range cookies {
				forbidden[fmt.Sprintf("session cookie %d", i)] = c
			}
			assertNothingInDump(t, d, forbidden)
		})
	}
}

func keysOf(d map[string][]byte) []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReplicasShareRedis: a launch begun on one instance completes on another
// and its view works on both; a state is consumed once across instances.
func TestReplicasShareRedis(t *testing.T) {
	rs := servertest.StartRedis(t)
	env := servertest.New(t, servertest.Options{RedisURL: rs.URL})
	rep := env.Replica()
	p := env.Patient("Lin")
	b := newBrowser(t)

	cb := b.get(env.LaunchURL(p.ID), nil, true).url
	view := b.get(onHost(t, cb, rep.URL), nil, false)
	if view.status != http.StatusOK || !strings.HasPrefix(view.url.String(), rep.URL+"/l/") {
		t.Fatalf("callback on replica 2: %d at %s: %s", view.status, view.url, view.text("error-message"))
	}
	for _, base := range []string{env.AppURL, rep.URL} {
		if full := b.get(onHost(t, view.url, base), nil, false); !full.isLabs() {
			t.Errorf("labs page on %s: %d: %s", base, full.status, full.text("error-message"))
		}
		if frag := b.get(onHost(t, view.url, base)+"/labs", htmx, false); !frag.isLabs() {
			t.Errorf("labs fragment on %s: %d: %s", base, frag.status, frag.text("error-message"))
		}
	}
	// Another browser holding the launch URL gets nothing on either replica.
	for _, base := range []string{env.AppURL, rep.URL} {
		if r := newBrowser(t).get(onHost(t, view.url, base), nil, false); r.status != http.StatusNotFound {
			t.Errorf("launch URL in another browser on %s: %d, want 404", base, r.status)
		}
	}

	// One callback URL sent to both replicas at once: exactly one completes.
	cb2 := b.get(env.LaunchURL(p.ID), nil, true).url
	var wg sync.WaitGroup
	results := make([]page, 2)
	for i, base := range []string{env.AppURL, rep.URL} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = b.get(onHost(t, cb2, base), nil, false)
		}()
	}
	wg.Wait()
	var statuses []int
	for _, r := range results {
		statuses = append(statuses, r.status)
	}
	sort.Ints(statuses)
	if diff := cmp.Diff([]int{http.StatusOK, http.StatusBadRequest}, statuses); diff != "" {
		t.Errorf("statuses of one state on two replicas (-want +got):\n%s", diff)
	}
	if n := len(env.LaunchRecords()); n != 2 {
		t.Errorf("launch records = %d, want 2", n)
	}
}

// TestRedisDown: /readyz and every session route answer 503 while Redis is
// down mid-session, /healthz stays 200, and nothing panics.
func TestRedisDown(t *testing.T) {
	rs := servertest.StartRedis(t)
	env := servertest.New(t, servertest.Options{RedisURL: rs.URL})
	p := env.Patient("Lin")
	b := newBrowser(t)
	cb := b.get(env.LaunchURL(p.ID), nil, true).url
	view := b.get(cb.String(), nil, false)
	if view.status != http.StatusOK {
		t.Fatalf("launch: %d: %s", view.status, view.text("error-message"))
	}
	if r := b.get(env.AppURL+"/readyz", nil, false); r.status != http.StatusOK {
		t.Fatalf("readyz with Redis up: %d", r.status)
	}
	rs.Stop()

	for _, tt := range []struct {
		name       string
		url        string
		header     http.Header
		wantStatus int
		wantText   string
	}{
		{"readyz", env.AppURL + "/readyz", nil, http.StatusServiceUnavailable, "unreachable"},
		{"healthz", env.AppURL + "/healthz", nil, http.StatusOK, "ok"},
		{"labs page", view.url.String(), nil, http.StatusServiceUnavailable, "briefly unavailable"},
		{"labs fragment", view.url.String() + "/labs", htmx, http.StatusServiceUnavailable, "session store"},
		{"new launch", env.LaunchURL(p.ID), nil, http.StatusServiceUnavailable, "briefly unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := b.get(tt.url, tt.header, false)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tt.wantStatus)
			}
			if got := r.doc.Text(); !strings.Contains(got, tt.wantText) {
				t.Errorf("body lacks %q: %.300s", tt.wantText, got)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answer took %v with Redis down", d)
			}
		})
	}
	if logs := env.Logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("log shows a panic: %.500s", logs)
	}
}

// TestRedisKV checks the KV contract against a real Redis: TTLs, SetNX and
// Take (GETDEL) consuming a value exactly once under concurrency.
func TestRedisKV(t *testing.T) {
	rs := servertest.StartRedis(t)
	rc, err := session.NewRedisClient(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, kv := session.NewRedisStores(rc)
	ctx := context.Background()
	if err := kv.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := kv.Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("Get = %q, %v, %v", v, ok, err)
	}
	if ok, err := kv.SetNX(ctx, "k", []byte("w"), time.Hour); err != nil || ok {
		t.Fatalf("SetNX over a live key = %v, %v", ok, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	took := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := kv.Take(ctx, "k"); err == nil && ok {
				mu.Lock()
				took++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if took != 1 {
		t.Fatalf("20 concurrent Takes consumed the value %d times, want 1", took)
	}
	// The TTL reaches Redis, which expires the key on its own; the one test
	// that waits for real-time expiry is server.TestIdleTimeoutRealTime.
	if err := kv.Set(ctx, "short", []byte("v"), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if ttl, err := rc.PTTL(ctx, session.RedisKVPrefix+"short").Result(); err != nil || ttl <= 0 || ttl > 90*time.Second {
		t.Errorf("Redis TTL of a 90 s key = %v, %v", ttl, err)
	}
	rs.Stop()
	for name, err := range map[string]error{
		"Ping": kv.Ping(ctx),
		"Set":  kv.Set(ctx, "k", []byte("v"), time.Hour),
	} {
		if !errors.Is(err, session.ErrStore) {
			t.Errorf("%s with Redis down: err = %v, want ErrStore", name, err)
		}
	}
	if _, _, err := kv.Get(ctx, "k"); !errors.Is(err, session.ErrStore) {
		t.Errorf("Get with Redis down: err = %v, want ErrStore", err)
	}
}
