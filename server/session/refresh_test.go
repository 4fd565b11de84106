package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"smartlabs/server/servertest"
	"smartlabs/server/session"
)

// The session timeouts of the tests below, and touch, the refresh interval
// the README states for them: a twentieth of the idle timeout, at most a minute.
const (
	refreshIdle = 15 * time.Minute
	refreshLife = 8 * time.Hour
	touch       = 45 * time.Second
)

// clock is a clock that moves only when the test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore is an scs store that counts the sessions saved in it.
type countingStore struct {
	inner scs.Store
	mu    sync.Mutex
	saves int
}

var (
	_ scs.Store    = (*countingStore)(nil)
	_ scs.CtxStore = (*countingStore)(nil)
)

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

func (s *countingStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if c, ok := s.inner.(scs.CtxStore); ok {
		return c.FindCtx(ctx, token)
	}
	return s.inner.Find(token)
}

func (s *countingStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	s.saves++
	s.mu.Unlock()
	if c, ok := s.inner.(scs.CtxStore); ok {
		return c.CommitCtx(ctx, token, b, expiry)
	}
	return s.inner.Commit(token, b, expiry)
}

func (s *countingStore) DeleteCtx(ctx context.Context, token string) error {
	if c, ok := s.inner.(scs.CtxStore); ok {
		return c.DeleteCtx(ctx, token)
	}
	return s.inner.Delete(token)
}

func (s *countingStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *countingStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// refreshStore is a session store under test: its saves counted, and for
// Redis the SET commands the server processed, which must agree.
type refreshStore struct {
	name   string
	inner  *countingStore
	redisN func() int // SETs Redis processed; nil for memory
}

func refreshStores(t *testing.T) []func() refreshStore {
	return []func() refreshStore{
		func() refreshStore {
			return refreshStore{name: "memory", inner: &countingStore{inner: memstore.NewWithCleanupInterval(0)}}
		},
		func() refreshStore {
			rs := servertest.StartRedis(t)
			c := rs.Client(t)
			store, _ := session.NewRedisStores(c)
			return refreshStore{name: "redis", inner: &countingStore{inner: store}, redisN: func() int {
				return redisCalls(t, c.Info(context.Background(), "commandstats").Val(), "set")
			}}
		},
	}
}

// redisCalls reads the calls of cmd from INFO commandstats.
func redisCalls(t *testing.T, info, cmd string) int {
	t.Helper()
	for _, line := range strings.Split(info, "\r\n") {
		stats, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(stats, "calls="), ",")
		n, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("INFO commandstats: %q", line)
		}
		return n
	}
	return 0
}

// refreshBrowser is one browser's requests through a Manager's middleware.
type refreshBrowser struct {
	t      *testing.T
	m      *session.Manager
	cookie *http.Cookie
}

// visit serves one request with the browser's cookie, running also in the
// handler when it is not nil, and keeps the cookie it is given; it returns
// the browser id the request saw ("" when the session had ended).
func (b *refreshBrowser) visit(also func(ctx context.Context)) string {
	b.t.Helper()
	var id string
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	b.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id = b.m.BrowserID(r.Context())
		if also != nil {
			also(r.Context())
		}
	})).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.t.Fatalf("visit: status %d", rec.Code)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == session.CookieName {
			b.cookie = c
		}
	}
	return id
}

func newRefreshBrowser(t *testing.T, store scs.Store, clk *clock) *refreshBrowser {
	t.Helper()
	kv := session.NewMemoryKV()
	t.Cleanup(kv.Close)
	m := session.NewManager(session.Options{IdleTimeout: refreshIdle, Lifetime: refreshLife, ScsStore: store, KV: kv, Now: clk.now})
	return &refreshBrowser{t: t, m: m}
}

// TestUnchangedSessionSavedOncePerTouch: a request that changes nothing in
// its session saves it only when its idle deadline was last moved touch ago
// or more; a changed session or a renewed token is saved at once. With Redis
// an unsaved request is one round trip fewer. The session holds two values,
// which scs encodes in random order, so equal sessions are often unequal bytes.
func TestUnchangedSessionSavedOncePerTouch(t *testing.T) {
	for _, newStore := range refreshStores(t) {
		store := newStore()
		t.Run(store.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)}
			b := newRefreshBrowser(t, store.inner, clk)
			want := 0
			check := func(what string) {
				t.Helper()
				if got := store.inner.count(); got != want {
					t.Fatalf("%s: %d saves in all, want %d", what, got, want)
				}
				if store.redisN != nil {
					if got := store.redisN(); got != want {
						t.Fatalf("%s: Redis processed %d SETs, want %d", what, got, want)
					}
				}
			}
			id := ""
			b.visit(func(ctx context.Context) { id = b.m.EnsureBrowserID(ctx) })
			want++
			check("a new session")

			for i := range 10 {
				if i > 0 {
					clk.add(touch / 9)
				}
				if got := b.visit(nil); got != id {
					t.Fatalf("visit %d: browser %q, want %q", i, got, id)
				}
			}
			check("ten unchanged visits within touch")

			clk.add(time.Second) // now past touch since the save
			b.visit(nil)
			want++
			check("an unchanged visit past touch")
			b.visit(nil)
			check("the visit after it")

			b.visit(func(ctx context.Context) { b.m.SCS.Put(ctx, "theme", "dark") })
			want++
			check("a visit that changes the session")
			b.visit(func(ctx context.Context) { b.m.SCS.Put(ctx, "theme", "dark") })
			check("a visit that puts the same value again")

			b.visit(func(ctx context.Context) {
				if err := b.m.Login(ctx); err != nil {
					t.Fatal(err)
				}
			})
			want++
			check("a sign-in, which renews the token")
			if got := b.visit(nil); got != id {
				t.Fatalf("after sign-in: browser %q, want %q", got, id)
			}
			check("the visit after sign-in")
		})
	}
}

// TestIdleExpiryWithTouch: with saves skipped, a session still ends on the
// clock once left idle for the idle timeout, and at worst idle−touch after
// a request that was not saved; requests every idle−touch−1s, each following
// one that was not saved, keep it alive across several idle periods.
func TestIdleExpiryWithTouch(t *testing.T) {
	for _, newStore := range refreshStores(t) {
		store := newStore()
		t.Run(store.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)}
			b := newRefreshBrowser(t, store.inner, clk)
			id := ""
			b.visit(func(ctx context.Context) { id = b.m.EnsureBrowserID(ctx) })
			for i := range 4 {
				clk.add(touch)
				if got := b.visit(nil); got != id { // not saved
					t.Fatalf("period %d, %v after a save: browser %q, want %q", i, touch, got, id)
				}
				clk.add(refreshIdle - touch - time.Second)
				if got := b.visit(nil); got != id { // saved
					t.Fatalf("period %d, %v after a visit: browser %q, want %q", i, refreshIdle-touch-time.Second, got, id)
				}
			}
			clk.add(touch)
			b.visit(nil) // not saved
			clk.add(refreshIdle - touch)
			if got := b.visit(nil); got != "" {
				t.Fatalf("%v after an unsaved visit, %v after a save: browser %q, want none", refreshIdle-touch, refreshIdle, got)
			}

			b.visit(func(ctx context.Context) { id = b.m.EnsureBrowserID(ctx) })
			clk.add(refreshIdle)
			if got := b.visit(nil); got != "" {
				t.Fatalf("after %v idle: browser %q, want none", refreshIdle, got)
			}
		})
	}
}

// TestSkippedSaveKeepsTheBrowsersCookie: a request (a long poll) loads the
// session; meanwhile another tab of the same browser signs in, which renews
// the token and sets the new cookie. The first request, ending with nothing
// to save, must not hand the browser its old token again: that token is
// gone, and the cookie would take the new one's place, ending both tabs.
func TestSkippedSaveKeepsTheBrowsersCookie(t *testing.T) {
	for _, newStore := range refreshStores(t) {
		store := newStore()
		t.Run(store.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, time.December, 2, 9, 0, 0, 0, time.UTC)}
			b := newRefreshBrowser(t, store.inner, clk)
			b.visit(func(ctx context.Context) { b.m.EnsureBrowserID(ctx) })
			old := b.cookie
			b.visit(nil) // saved within touch: the next unchanged request is not

			loaded, release := make(chan struct{}), make(chan struct{})
			poll := httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				req := httptest.NewRequest("GET", "/", nil)
				req.AddCookie(old)
				b.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b.m.BrowserID(r.Context())
					close(loaded)
					<-release
					_, _ = w.Write([]byte("update"))
				})).ServeHTTP(poll, req)
			}()
			<-loaded
			b.visit(func(ctx context.Context) {
				if err := b.m.Login(ctx); err != nil {
					t.Error(err)
				}
			})
			if b.cookie.Value == old.Value {
				t.Fatal("the sign-in did not renew the token")
			}
			close(release)
			<-done
			for _, c := range poll.Result().Cookies() {
				if c.Name == session.CookieName && c.Value == old.Value {
					t.Fatal("the request that saved nothing set the old, renewed token again")
				}
			}
			if b.visit(nil) == "" {
				t.Error("after both requests the browser's session is gone")
			}
		})
	}
}
