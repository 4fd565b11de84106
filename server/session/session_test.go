package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
)

func mustManager(t *testing.T) *Manager {
	t.Helper()
	kv := NewMemoryKV()
	t.Cleanup(kv.Close)
	return NewManager(Options{IdleTimeout: 15 * time.Minute, Lifetime: 8 * time.Hour, ScsStore: memstore.New(), KV: kv})
}

// mustSession returns a context holding a fresh, empty scs session, as the middleware makes.
func mustSession(t *testing.T, m *Manager) context.Context {
	t.Helper()
	ctx, err := m.SCS.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestCookieAttributes(t *testing.T) {
	m := mustManager(t)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.EnsureBrowserID(r.Context())
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	sc := rec.Header().Get("Set-Cookie")
	for _, want := range []string{CookieName + "=", "Path=/", "HttpOnly", "Secure", "SameSite=None", "Partitioned"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	for _, bad := range []string{"Domain=", "Max-Age", "Expires"} {
		if strings.Contains(sc, bad) {
			t.Errorf("Set-Cookie %q has %q", sc, bad)
		}
	}
}

func TestPendingSingleUse(t *testing.T) {
	m := mustManager(t)
	ctx := mustSession(t, m)
	p := &Pending{LaunchID: "L1", Browser: m.EnsureBrowserID(ctx), CodeVerifier: "v"}
	if err := m.SavePending(ctx, "state-1", p); err != nil {
		t.Fatal(err)
	}
	for _, k := range m.kv.(*MemoryKV).Keys() {
		if strings.Contains(k, "state-1") {
			t.Fatalf("store key %q holds the raw state", k)
		}
	}
	got, ok, err := m.TakePending(ctx, "state-1")
	if err != nil || !ok || got.LaunchID != "L1" {
		t.Fatalf("first take = %+v, %v, %v", got, ok, err)
	}
	if _, ok, _ := m.TakePending(ctx, "state-1"); ok {
		t.Fatal("second take of the same state succeeded")
	}
	if _, ok, _ := m.TakePending(ctx, ""); ok {
		t.Fatal("empty state matched")
	}
}

// TestLaunchBoundToBrowser loads a launch through the scs middleware, as the server does.
func TestLaunchBoundToBrowser(t *testing.T) {
	m := mustManager(t)
	var cookie *http.Cookie
	var browser string
	serve := func(c *http.Cookie, fn func(r *http.Request)) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if c != nil {
			req.AddCookie(c)
		}
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn(r) })).ServeHTTP(rec, req)
		return rec
	}
	rec := serve(nil, func(r *http.Request) {
		browser = m.EnsureBrowserID(r.Context())
		l := &Launch{ID: "L1", Browser: browser, Patient: "p1", AccessToken: "at", Created: time.Now()}
		if err := m.SaveLaunch(r.Context(), l); err != nil {
			t.Fatal(err)
		}
	})
	cookie = rec.Result().Cookies()[0]

	serve(cookie, func(r *http.Request) {
		l, err := m.LoadLaunch(r.Context(), "L1")
		if err != nil || l.Patient != "p1" {
			t.Errorf("own browser: %+v, %v", l, err)
		}
	})
	serve(nil, func(r *http.Request) {
		m.EnsureBrowserID(r.Context())
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != ErrNoLaunch {
			t.Errorf("other browser: err = %v, want ErrNoLaunch", err)
		}
	})
	serve(nil, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != ErrNoLaunch {
			t.Errorf("no session: err = %v, want ErrNoLaunch", err)
		}
	})

	// Renewing the token at login keeps the browser binding.
	rec = serve(cookie, func(r *http.Request) {
		if err := m.Login(r.Context()); err != nil {
			t.Fatal(err)
		}
	})
	renewed := rec.Result().Cookies()[0]
	if renewed.Value == cookie.Value {
		t.Fatal("Login did not renew the session token")
	}
	serve(renewed, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != nil {
			t.Errorf("after renewal: %v", err)
		}
	})
	serve(cookie, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != ErrNoLaunch {
			t.Errorf("old token after renewal: err = %v, want ErrNoLaunch", err)
		}
	})
}

func TestMemoryKVExpiry(t *testing.T) {
	kv := NewMemoryKV()
	defer kv.Close()
	now := time.Unix(1000, 0)
	kv.now = func() time.Time { return now }
	ctx := context.Background()
	kv.Set(ctx, "k", []byte("v"), time.Minute)
	if _, ok, _ := kv.Get(ctx, "k"); !ok {
		t.Fatal("fresh key missing")
	}
	now = now.Add(2 * time.Minute)
	if _, ok, _ := kv.Get(ctx, "k"); ok {
		t.Fatal("expired key returned")
	}
	if ok, _ := kv.SetNX(ctx, "k", []byte("w"), time.Minute); !ok {
		t.Fatal("SetNX over an expired key refused")
	}
}

func TestConstantTimeEqual(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"a", "a", true}, {"a", "b", false}, {"", "", false}, {"a", "", false}, {"ab", "a", false}} {
		if got := ConstantTimeEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("ConstantTimeEqual(%q,%q) = %v", tt.a, tt.b, got)
		}
	}
}
