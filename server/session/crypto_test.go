package session

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
)

func TestSealOpen(t *testing.T) {
	k1, k2 := newDataKey(), newDataKey()
	box, err := seal(k1, []byte("secret record"), []byte("launch:A"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), box...)
	flipped[len(flipped)-1] ^= 1
	badVersion := append([]byte(nil), box...)
	badVersion[0] = 9
	for _, tt := range []struct {
		name    string
		key     []byte
		box, ad []byte
		wantErr bool
	}{
		{"right key and name", k1, box, []byte("launch:A"), false},
		{"other key", k2, box, []byte("launch:A"), true},
		{"other key name", k1, box, []byte("launch:B"), true},
		{"tampered byte", k1, flipped, []byte("launch:A"), true},
		{"unknown version", k1, badVersion, []byte("launch:A"), true},
		{"truncated", k1, box[:10], []byte("launch:A"), true},
		{"empty", k1, nil, []byte("launch:A"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := open(tt.key, tt.box, tt.ad)
			if (err != nil) != tt.wantErr {
				t.Fatalf("open err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != "secret record" {
				t.Fatalf("open = %q", got)
			}
		})
	}
	again, _ := seal(k1, []byte("secret record"), []byte("launch:A"))
	if bytes.Equal(box, again) {
		t.Error("two seals of one plaintext are equal: nonce reused")
	}
}

// TestEncryptedStore checks what the inner store sees and that every
// mismatch reads as "not found", never as an error.
func TestEncryptedStore(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	s := NewEncryptedStore(inner, nil, 0, 0)
	exp := time.Now().Add(time.Hour)
	tokA, tokB := RandomID()+RandomID(), RandomID()+RandomID()
	blob := []byte("browser-id and data key")
	if err := s.CommitCtx(ctx, tokA, blob, exp); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitCtx(ctx, tokB, []byte("other session"), exp); err != nil {
		t.Fatal(err)
	}
	all, err := inner.All()
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range all {
		if id == tokA || id == tokB || strings.Contains(id, tokA[:16]) || strings.Contains(id, tokB[:16]) {
			t.Errorf("inner store key %q holds a raw token", id)
		}
		if bytes.Contains(v, []byte("browser-id")) || bytes.Contains(v, []byte("other session")) {
			t.Errorf("inner store value under %q holds plaintext", id)
		}
	}
	if got, ok, err := s.FindCtx(ctx, tokA); err != nil || !ok || !bytes.Equal(got, blob) {
		t.Fatalf("Find(own token) = %q, %v, %v", got, ok, err)
	}

	boxA, _, _ := inner.Find(tokenID(tokA))
	tampered := append([]byte(nil), boxA...)
	tampered[len(tampered)/2] ^= 0x40
	for _, tt := range []struct {
		name  string
		setup func()
		token string
	}{
		{"unknown token", func() {}, RandomID()},
		{"raw hash as token", func() {}, tokenID(tokA)},
		{"tampered blob", func() { inner.Commit(tokenID(tokA), tampered, exp) }, tokA},
		{"blob moved under another session", func() { inner.Commit(tokenID(tokB), boxA, exp) }, tokB},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			got, ok, err := s.FindCtx(ctx, tt.token)
			if err != nil || ok || got != nil {
				t.Fatalf("Find = %q, %v, %v; want not found", got, ok, err)
			}
		})
	}
	if err := s.DeleteCtx(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := inner.Find(tokenID(tokA)); ok {
		t.Error("Delete left the inner record")
	}
}

// TestLaunchRecordsEncrypted: a launch record is ciphertext in the KV; a
// tampered record or one moved under another launch's key is not found.
func TestLaunchRecordsEncrypted(t *testing.T) {
	m := mustManager(t)
	kv := m.kv.(*MemoryKV)
	ctx := mustSession(t, m)
	browser := m.EnsureBrowserID(ctx)
	now := time.Now()
	for _, l := range []*Launch{
		{ID: "LA", Browser: browser, Patient: "patient-A-123", AccessToken: "access-token-A-secret", Created: now},
		{ID: "LB", Browser: browser, Patient: "patient-B-456", AccessToken: "access-token-B-secret", Created: now},
	} {
		if err := m.SaveLaunch(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	bg := context.Background()
	for _, k := range kv.Keys() {
		v, _, _ := kv.Get(bg, k)
		for _, secret := range []string{"patient-A", "patient-B", "access-token", browser} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("KV %q holds %q in clear", k, secret)
			}
		}
	}
	if l, err := m.LoadLaunch(ctx, "LA"); err != nil || l.Patient != "patient-A-123" {
		t.Fatalf("LoadLaunch(LA) = %+v, %v", l, err)
	}

	boxA, _, _ := kv.Get(bg, "launch:LA")
	boxB, _, _ := kv.Get(bg, "launch:LB")
	tampered := append([]byte(nil), boxA...)
	tampered[len(tampered)-3] ^= 1
	for _, tt := range []struct {
		name string
		id   string
		put  map[string][]byte
	}{
		{"tampered ciphertext", "LA", map[string][]byte{"launch:LA": tampered}},
		{"record moved under another key", "LA", map[string][]byte{"launch:LA": boxB}},
		{"garbage", "LA", map[string][]byte{"launch:LA": []byte("{}")}},
		{"absent", "LC", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.put {
				kv.Set(bg, k, v, time.Hour)
			}
			_, err := m.LoadLaunch(ctx, tt.id)
			if !errors.Is(err, ErrNoLaunch) {
				t.Fatalf("LoadLaunch err = %v, want ErrNoLaunch", err)
			}
		})
	}
	// Another browser's session holds another data key: not found there either.
	other := mustSession(t, m)
	m.EnsureBrowserID(other)
	if _, err := m.LoadLaunch(other, "LB"); !errors.Is(err, ErrNoLaunch) {
		t.Fatalf("other browser: err = %v, want ErrNoLaunch", err)
	}
	if err := m.DeleteLaunch(other, "LB"); !errors.Is(err, ErrNoLaunch) {
		t.Fatalf("DeleteLaunch by another browser: err = %v, want ErrNoLaunch", err)
	}
	if _, ok, _ := kv.Get(bg, "launch:LB"); !ok {
		t.Fatal("another browser deleted the launch")
	}
	if err := m.DeleteLaunch(ctx, "LB"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := kv.Get(bg, "launch:LB"); ok {
		t.Fatal("DeleteLaunch left the record")
	}
}

// TestPendingEncrypted: the pending record is ciphertext; another browser
// consumes it but learns only the issuer.
func TestPendingEncrypted(t *testing.T) {
	m := mustManager(t)
	kv := m.kv.(*MemoryKV)
	ctx := mustSession(t, m)
	p := &Pending{LaunchID: "L1", Browser: m.EnsureBrowserID(ctx), ISS: "https://ehr.example/fhir", CodeVerifier: "verifier-secret-value", Nonce: "nonce-secret"}
	for _, tt := range []struct {
		name        string
		ctx         func() context.Context
		wantBrowser string
	}{
		{"own browser", func() context.Context { return ctx }, p.Browser},
		{"another browser", func() context.Context { c := mustSession(t, m); m.EnsureBrowserID(c); return c }, ""},
		{"no session data", func() context.Context { return mustSession(t, m) }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.SavePending(ctx, "state-xyz", p); err != nil {
				t.Fatal(err)
			}
			for _, k := range kv.Keys() {
				v, _, _ := kv.Get(context.Background(), k)
				for _, secret := range []string{"state-xyz", "verifier-secret", "nonce-secret", p.Browser} {
					if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
						t.Errorf("KV %q holds %q in clear", k, secret)
					}
				}
			}
			got, ok, err := m.TakePending(tt.ctx(), "state-xyz")
			if err != nil || !ok {
				t.Fatalf("TakePending = %v, %v", ok, err)
			}
			if got.Browser != tt.wantBrowser || got.ISS != p.ISS {
				t.Errorf("got browser %q iss %q, want %q %q", got.Browser, got.ISS, tt.wantBrowser, p.ISS)
			}
			if tt.wantBrowser == "" && (got.CodeVerifier != "" || got.LaunchID != "") {
				t.Errorf("another browser read the pending record: %+v", got)
			}
			if _, ok, _ := m.TakePending(ctx, "state-xyz"); ok {
				t.Error("state usable twice")
			}
		})
	}
}

// TestLogoutShredsLaunches: after Logout the old cookie finds nothing.
func TestLogoutShredsLaunches(t *testing.T) {
	m := mustManager(t)
	serve := func(c *http.Cookie, fn func(r *http.Request)) *http.Cookie {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if c != nil {
			req.AddCookie(c)
		}
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn(r) })).ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			return cs[0]
		}
		return c
	}
	cookie := serve(nil, func(r *http.Request) {
		b := m.EnsureBrowserID(r.Context())
		if err := m.SaveLaunch(r.Context(), &Launch{ID: "L1", Browser: b, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	})
	serve(cookie, func(r *http.Request) {
		if err := m.Logout(r.Context()); err != nil {
			t.Fatal(err)
		}
	})
	serve(cookie, func(r *http.Request) {
		if _, err := m.LoadLaunch(r.Context(), "L1"); !errors.Is(err, ErrNoLaunch) {
			t.Errorf("old cookie after logout: err = %v, want ErrNoLaunch", err)
		}
		if m.BrowserID(r.Context()) != "" {
			t.Error("old cookie still names a browser")
		}
	})
}
