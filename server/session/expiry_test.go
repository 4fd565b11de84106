package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
)

// fakeClock is a clock that moves only when the test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// spyStore is an scs store that records the expiry of every commit.
type spyStore struct {
	*memstore.MemStore
	mu      sync.Mutex
	expires []time.Time
}

func (s *spyStore) Commit(token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	s.expires = append(s.expires, expiry)
	s.mu.Unlock()
	return s.MemStore.Commit(token, b, expiry)
}

func (s *spyStore) lastExpiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires[len(s.expires)-1]
}

var _ scs.Store = (*spyStore)(nil)

// clockedBrowser is one browser's requests through a Manager's middleware.
type clockedBrowser struct {
	t      *testing.T
	m      *Manager
	cookie *http.Cookie
}

// visit serves one request with the browser's cookie and keeps the cookie it
// is given; it returns the browser id the request saw, creating one when asked.
func (b *clockedBrowser) visit(ensure bool, also func(r *http.Request)) string {
	b.t.Helper()
	var id string
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	b.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ensure {
			id = b.m.EnsureBrowserID(r.Context())
		} else {
			id = b.m.BrowserID(r.Context())
		}
		if also != nil {
			also(r)
		}
	})).ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			b.cookie = c
		}
	}
	return id
}

// TestSessionExpiryOnTheClock: idle and absolute expiry are read on the
// Manager's clock, not on real time: the clock alone decides, to the second.
func TestSessionExpiryOnTheClock(t *testing.T) {
	const idle, life = 15 * time.Minute, time.Hour
	newManager := func(clk *fakeClock) (*Manager, *spyStore) {
		kv := NewMemoryKV()
		t.Cleanup(kv.Close)
		inner := &spyStore{MemStore: memstore.NewWithCleanupInterval(0)}
		return NewManager(Options{IdleTimeout: idle, Lifetime: life, ScsStore: inner, KV: kv, Now: clk.now}), inner
	}
	start := time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)

	t.Run("idle", func(t *testing.T) {
		clk := &fakeClock{t: start}
		m, inner := newManager(clk)
		b := &clockedBrowser{t: t, m: m}
		id := b.visit(true, nil)
		// Visits closer together than the idle timeout keep it open past that timeout.
		for i := range 4 {
			clk.add(idle - time.Second)
			if got := b.visit(false, nil); got != id {
				t.Fatalf("visit %d, %v after the last: browser %q, want %q", i, idle-time.Second, got, id)
			}
		}
		clk.add(idle)
		if got := b.visit(false, nil); got != "" {
			t.Fatalf("after %v idle: browser %q, want none", idle, got)
		}
		if all, _ := inner.All(); len(all) != 0 {
			t.Errorf("the ended session is still in the store: %d records", len(all))
		}
	})

	t.Run("absolute", func(t *testing.T) {
		clk := &fakeClock{t: start}
		m, _ := newManager(clk)
		b := &clockedBrowser{t: t, m: m}
		id := b.visit(true, nil)
		for elapsed := 10 * time.Minute; elapsed < life; elapsed += 10 * time.Minute {
			clk.add(10 * time.Minute)
			if got := b.visit(false, nil); got != id {
				t.Fatalf("%v after it began: browser %q, want %q", elapsed, got, id)
			}
		}
		clk.add(life - 50*time.Minute - time.Second)
		if got := b.visit(false, nil); got != id {
			t.Fatalf("a second before its lifetime: browser %q, want %q", got, id)
		}
		clk.add(time.Second)
		if got := b.visit(false, nil); got != "" {
			t.Fatalf("at its lifetime, though active: browser %q, want none", got)
		}
	})

	t.Run("login renews the lifetime", func(t *testing.T) {
		clk := &fakeClock{t: start}
		m, _ := newManager(clk)
		b := &clockedBrowser{t: t, m: m}
		id := b.visit(true, nil)
		for range 5 {
			clk.add(10 * time.Minute)
			b.visit(false, nil)
		}
		b.visit(false, func(r *http.Request) {
			if err := m.Login(r.Context()); err != nil {
				t.Fatal(err)
			}
		})
		// Past the hour since the session began, up to a second before the hour since sign-in.
		for _, step := range []time.Duration{10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10*time.Minute - time.Second} {
			clk.add(step)
			if got := b.visit(false, nil); got != id {
				t.Fatalf("%v after sign-in: browser %q, want %q", clk.now().Sub(start)-50*time.Minute, got, id)
			}
		}
		clk.add(time.Second)
		if got := b.visit(false, nil); got != "" {
			t.Fatalf("%v after sign-in: browser %q, want none", life, got)
		}
	})

	t.Run("saved outside the middleware", func(t *testing.T) {
		clk := &fakeClock{t: start}
		s := NewEncryptedStore(memstore.NewWithCleanupInterval(0), clk.now, idle, life)
		ctx := context.Background()
		tok := RandomID() + RandomID()
		if err := s.CommitCtx(ctx, tok, []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		clk.add(50 * time.Minute)
		if err := s.CommitCtx(ctx, tok, []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		clk.add(10*time.Minute - time.Second)
		if _, ok, err := s.FindCtx(ctx, tok); !ok || err != nil {
			t.Fatalf("before its lifetime: found %v, %v", ok, err)
		}
		clk.add(time.Second)
		if _, ok, err := s.FindCtx(ctx, tok); ok || err != nil {
			t.Fatalf("at its lifetime, saved again since: found %v, %v; want not found", ok, err)
		}
	})
}

// TestStoreTTLOutlastsTheClock: the inner store's TTL runs on real time; it
// is the time our clock leaves plus a grace period, whether the clock reads
// far behind real time, far ahead of it, or stands still near its deadline.
func TestStoreTTLOutlastsTheClock(t *testing.T) {
	const idle, life = 15 * time.Minute, time.Hour
	for _, at := range []time.Time{
		time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Now(),
		time.Date(2090, time.January, 1, 0, 0, 0, 0, time.UTC),
	} {
		clk := &fakeClock{t: at}
		kv := NewMemoryKV()
		t.Cleanup(kv.Close)
		inner := &spyStore{MemStore: memstore.NewWithCleanupInterval(0)}
		m := NewManager(Options{IdleTimeout: idle, Lifetime: life, ScsStore: inner, KV: kv, Now: clk.now})
		b := &clockedBrowser{t: t, m: m}
		check := func(left time.Duration) {
			t.Helper()
			before := time.Now()
			b.visit(true, nil)
			got := inner.lastExpiry().Sub(before)
			// The visit itself may take real time; a minute of slack covers any load.
			if got < left+storeGrace || got > left+storeGrace+time.Minute {
				t.Errorf("clock at %v: the store keeps the session %v, want %v plus %v", clk.now(), got, left, storeGrace)
			}
		}
		check(idle)
		for range 4 {
			clk.add(11 * time.Minute)
			check(idle)
		}
		clk.add(11 * time.Minute)
		check(5 * time.Minute) // the absolute deadline comes first
	}
}

// TestRecordsExpireOnTheClock: launch records and pending sign-ins end on
// the Manager's clock, though the KV's own TTLs run on real time. A launch
// record ends a lifetime after it was made, even when a later sign-in in the
// same browser renewed the session.
func TestRecordsExpireOnTheClock(t *testing.T) {
	const life = time.Hour
	clk := &fakeClock{t: time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)}
	kv := NewMemoryKV()
	t.Cleanup(kv.Close)
	m := NewManager(Options{IdleTimeout: 30 * time.Minute, Lifetime: life, ScsStore: memstore.New(), KV: kv, Now: clk.now})
	b := &clockedBrowser{t: t, m: m}
	browser := b.visit(true, func(r *http.Request) {
		l := &Launch{ID: "L1", Browser: m.BrowserID(r.Context()), Created: clk.now()}
		if err := m.SaveLaunch(r.Context(), l); err != nil {
			t.Fatal(err)
		}
		for _, state := range []string{"s1", "s2"} {
			if err := m.SavePending(r.Context(), state, &Pending{LaunchID: "L1", Browser: l.Browser, Created: clk.now()}); err != nil {
				t.Fatal(err)
			}
		}
	})

	clk.add(PendingTTL - time.Second)
	b.visit(false, func(r *http.Request) {
		if _, ok, err := m.TakePending(r.Context(), "s1"); !ok || err != nil {
			t.Errorf("pending sign-in a second before its TTL: %v, %v", ok, err)
		}
	})
	clk.add(time.Second)
	b.visit(false, func(r *http.Request) {
		if p, ok, err := m.TakePending(r.Context(), "s2"); ok || err != nil {
			t.Errorf("pending sign-in at its TTL: %+v, %v, %v; want none", p, ok, err)
		}
	})

	clk.add(10 * time.Minute)
	b.visit(false, func(r *http.Request) { // another sign-in renews the session
		if err := m.Login(r.Context()); err != nil {
			t.Fatal(err)
		}
	})
	clk.add(20 * time.Minute)
	b.visit(false, nil)
	clk.add(20*time.Minute - time.Second)
	b.visit(false, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != nil {
			t.Errorf("launch a second before its lifetime: %v", err)
		}
	})
	clk.add(time.Second)
	got := b.visit(false, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); err != ErrNoLaunch {
			t.Errorf("launch at its lifetime: err = %v, want ErrNoLaunch", err)
		}
	})
	if got != browser {
		t.Fatalf("the session ended too (browser %q, want %q): the test proves nothing about the record", got, browser)
	}
}

// TestSaveTwiceInARequest: a request that saves its session twice, the
// second time back to the values it loaded, leaves those values in the
// store: the second save is compared with the first, not with the load.
func TestSaveTwiceInARequest(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)}
	s := NewEncryptedStore(memstore.NewWithCleanupInterval(0), clk.now, 15*time.Minute, time.Hour)
	tok := RandomID() + RandomID()
	if err := s.CommitCtx(context.Background(), tok, []byte("loaded"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ctx := withLoaded(context.Background())
	if _, ok, err := s.FindCtx(ctx, tok); !ok || err != nil {
		t.Fatalf("find: %v, %v", ok, err)
	}
	for _, b := range []string{"changed", "loaded"} {
		if err := s.CommitCtx(ctx, tok, []byte(b), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok, err := s.FindCtx(context.Background(), tok); string(b) != "loaded" || !ok || err != nil {
		t.Errorf("after saving changed, then loaded: %q, %v, %v; want %q", b, ok, err, "loaded")
	}
}
