package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"smartlabs/server/session"
)

// fakeKV is a session.KV whose every method is a function field.
type fakeKV struct {
	GetFn    func(ctx context.Context, key string) ([]byte, bool, error)
	SetFn    func(ctx context.Context, key string, val []byte, ttl time.Duration) error
	SetNXFn  func(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	TakeFn   func(ctx context.Context, key string) ([]byte, bool, error)
	DeleteFn func(ctx context.Context, key string) error
	PingFn   func(ctx context.Context) error
}

var _ session.KV = (*fakeKV)(nil)

func (f *fakeKV) Get(ctx context.Context, key string) ([]byte, bool, error) { return f.GetFn(ctx, key) }
func (f *fakeKV) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return f.SetFn(ctx, key, val, ttl)
}
func (f *fakeKV) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return f.SetNXFn(ctx, key, val, ttl)
}
func (f *fakeKV) Take(ctx context.Context, key string) ([]byte, bool, error) {
	return f.TakeFn(ctx, key)
}
func (f *fakeKV) Delete(ctx context.Context, key string) error { return f.DeleteFn(ctx, key) }
func (f *fakeKV) Ping(ctx context.Context) error               { return f.PingFn(ctx) }

// fakeStore is an scs.Store whose every method is a function field.
type fakeStore struct {
	FindFn   func(token string) ([]byte, bool, error)
	CommitFn func(token string, b []byte, expiry time.Time) error
	DeleteFn func(token string) error
}

var _ scs.Store = (*fakeStore)(nil)

func (f *fakeStore) Find(token string) ([]byte, bool, error) { return f.FindFn(token) }
func (f *fakeStore) Commit(token string, b []byte, expiry time.Time) error {
	return f.CommitFn(token, b, expiry)
}
func (f *fakeStore) Delete(token string) error { return f.DeleteFn(token) }

// errRedisDown stands in for a dropped Redis connection.
var errRedisDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// failingStores wraps the real stores so that, while down is set, the chosen parts fail.
func failingStores(down *atomic.Bool, failScs, failKV bool) func(scs.Store, session.KV) (scs.Store, session.KV) {
	return func(st scs.Store, kv session.KV) (scs.Store, session.KV) {
		fs := &fakeStore{
			FindFn: func(tok string) ([]byte, bool, error) {
				if failScs && down.Load() {
					return nil, false, errRedisDown
				}
				return st.Find(tok)
			},
			CommitFn: func(tok string, b []byte, exp time.Time) error {
				if failScs && down.Load() {
					return errRedisDown
				}
				return st.Commit(tok, b, exp)
			},
			DeleteFn: func(tok string) error {
				if failScs && down.Load() {
					return errRedisDown
				}
				return st.Delete(tok)
			},
		}
		fail := func() error {
			if failKV && down.Load() {
				return errors.Join(session.ErrStore, errRedisDown)
			}
			return nil
		}
		fk := &fakeKV{
			GetFn: func(ctx context.Context, k string) ([]byte, bool, error) {
				if err := fail(); err != nil {
					return nil, false, err
				}
				return kv.Get(ctx, k)
			},
			SetFn: func(ctx context.Context, k string, v []byte, ttl time.Duration) error {
				if err := fail(); err != nil {
					return err
				}
				return kv.Set(ctx, k, v, ttl)
			},
			SetNXFn: func(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
				if err := fail(); err != nil {
					return false, err
				}
				return kv.SetNX(ctx, k, v, ttl)
			},
			TakeFn: func(ctx context.Context, k string) ([]byte, bool, error) {
				if err := fail(); err != nil {
					return nil, false, err
				}
				return kv.Take(ctx, k)
			},
			DeleteFn: func(ctx context.Context, k string) error {
				if err := fail(); err != nil {
					return err
				}
				return kv.Delete(ctx, k)
			},
			PingFn: func(ctx context.Context) error {
				if err := fail(); err != nil {
					return err
				}
				return kv.Ping(ctx)
			},
		}
		return fs, fk
	}
}

// TestStoreDownMidSession: when the session store fails after a launch, every
// request gets the plain 503 page (never a panic or a 500), /healthz stays
// 200, and the view works again once the store is back.
func TestStoreDownMidSession(t *testing.T) {
	tests := []struct {
		name           string
		failScs        bool
		failKV         bool
		wantReadyzDown bool
	}{
		{name: "scs store down", failScs: true},
		{name: "launch records down", failKV: true, wantReadyzDown: true},
		{name: "both down", failScs: true, failKV: true, wantReadyzDown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var down atomic.Bool
			h := newHarness(t, harnessOptions{WrapStores: failingStores(&down, tt.failScs, tt.failKV)})
			b := newBrowser(t)
			resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
			labsURL := resp.Request.URL.String()
			down.Store(true)

			for _, u := range []string{labsURL, h.LaunchURL(h.Patient("Lin").ID)} {
				r, doc, _ := b.noRedirect().get(u)
				if r.StatusCode != http.StatusServiceUnavailable || text(doc, "error-title") != "smartlabs is briefly unavailable" {
					t.Errorf("GET %s: status %d, title %q; want 503 briefly unavailable", u[:strings.Index(u+"?", "?")], r.StatusCode, text(doc, "error-title"))
				}
			}
			if r, body := htmxGet(t, b, labsURL+"/labs"); r.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "<html") {
				t.Errorf("HTMX fragment: status %d, want a 503 fragment", r.StatusCode)
			}
			if r, _, _ := b.get(h.AppURL + "/healthz"); r.StatusCode != http.StatusOK {
				t.Errorf("/healthz = %d, want 200", r.StatusCode)
			}
			if r, _, _ := b.get(h.AppURL + "/readyz"); (r.StatusCode == http.StatusServiceUnavailable) != tt.wantReadyzDown {
				t.Errorf("/readyz = %d, want down = %v", r.StatusCode, tt.wantReadyzDown)
			}
			if strings.Contains(h.Logs.String(), "panic") {
				t.Error("the log shows a panic")
			}

			down.Store(false)
			if r, _, _ := b.get(labsURL); r.StatusCode != http.StatusOK {
				t.Errorf("after the store came back: status %d, want 200", r.StatusCode)
			}
		})
	}
}
