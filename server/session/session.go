package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// refuse it unless it is Secure, has Path=/ and no Domain, so no sibling
// host can plant or overwrite it.
const CookieName = "__Host-smartlabs"

// Keys of the scs session values. The session blob is encrypted (EncryptedStore),
// so the data key is as safe there as the cookie that unlocks it.
const (
	browserKey = "browser"
	dataKeyKey = "dk"
)

// Options configures a Manager.
type Options struct {
	IdleTimeout time.Duration
	Lifetime    time.Duration
	// ScsStore stores scs sessions (memstore or goredisstore).
	ScsStore scs.Store
	// KV stores launch records; it may be the same backend as ScsStore.
	KV KV
	// ErrorFunc renders a store failure (our 503 page).
	ErrorFunc func(http.ResponseWriter, *http.Request, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SavedLaunch, when set, is called with a copy of every launch record after
	// it is saved. Tests use it: the store itself holds only ciphertext.
	SavedLaunch func(Launch)
}

// Manager binds browsers to launches.
type Manager struct {
	SCS   *scs.SessionManager
	kv    KV
	now   func() time.Time
	life  time.Duration
	saved func(Launch)
}

// NewManager configures scs with every field set explicitly: its defaults
// (Lax, not Partitioned, persistent, unhashed tokens) are wrong inside an EHR frame.
// It wraps o.ScsStore in an EncryptedStore itself, so no caller can forget to;
// that store ends sessions on o.Now, idle and absolute expiry alike.
func NewManager(o Options) *Manager {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sm := scs.New()
	sm.Store = NewEncryptedStore(o.ScsStore, now, o.IdleTimeout, o.Lifetime)
	// scs reads these on real time; the store above decides when a session
	// ends. IdleTimeout still matters to scs: it makes scs save the session on
	// every request, which moves the store's idle deadline (the store skips
	// the saves that would move it less than touchEvery).
	sm.IdleTimeout = o.IdleTimeout
	sm.Lifetime = o.Lifetime
	// HashTokenInStore's intent (the store only ever sees a hash of the cookie
	// value, so a dump cannot be replayed as cookies) is kept by EncryptedStore,
	// which hashes the token itself: it needs the raw token to derive the blob's key.
	sm.HashTokenInStore = false
	sm.Cookie.Name = CookieName
	sm.Cookie.Domain = ""
	sm.Cookie.Path = "/"
	sm.Cookie.HttpOnly = true
	// The app runs in a cross-site EHR iframe: only SameSite=None cookies are sent there,
	// and only Partitioned ones survive third-party cookie blocking.
	sm.Cookie.SameSite = http.SameSiteNoneMode
	sm.Cookie.Partitioned = true
	sm.Cookie.Secure = true
	// A session cookie (no Max-Age) ends with the browser; the server-side lifetimes still apply.
	sm.Cookie.Persist = false
	if o.ErrorFunc != nil {
		sm.ErrorFunc = o.ErrorFunc
	}
	return &Manager{SCS: sm, kv: o.KV, now: now, life: o.Lifetime, saved: o.SavedLaunch}
}

// KV returns the launch-record store.
func (m *Manager) KV() KV { return m.kv }

// Middleware loads and saves the scs session around next. The request
// remembers the session it loaded, so saving it keeps its absolute deadline.
// When the store skipped the save (nothing changed, touchEvery), the
// response sets no session cookie: the browser keeps the one it has, which
// another tab's sign-in may have renewed while this request ran (a long
// poll); scs would otherwise hand back the token it loaded, now gone.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	h := m.SCS.LoadAndSave(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := withLoaded(r.Context())
		cw := &cookieGuard{ResponseWriter: w, ctx: ctx}
		h.ServeHTTP(cw, r.WithContext(ctx))
		cw.check() // a response without a body: its header is sent after this
	})
}

// cookieGuard drops the session's Set-Cookie from a response whose save the
// store skipped, just before the header is sent.
type cookieGuard struct {
	http.ResponseWriter
	ctx     context.Context
	checked bool
}

func (g *cookieGuard) check() {
	if g.checked {
		return
	}
	g.checked = true
	if !saveSkipped(g.ctx) {
		return
	}
	h := g.ResponseWriter.Header()
	kept := h["Set-Cookie"][:0]
	for _, c := range h["Set-Cookie"] {
		if !strings.HasPrefix(c, CookieName+"=") {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
}

func (g *cookieGuard) WriteHeader(code int) {
	g.check()
	g.ResponseWriter.WriteHeader(code)
}

func (g *cookieGuard) Write(b []byte) (int, error) {
	g.check()
	return g.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer below (Flush).
func (g *cookieGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// HasCookie reports whether the request carried our session cookie at all.
func HasCookie(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	return err == nil && c.Value != ""
}

// BrowserID returns this browser's id, or "" when the session has none yet.
func (m *Manager) BrowserID(ctx context.Context) string {
	return m.SCS.GetString(ctx, browserKey)
}

// EnsureBrowserID returns this browser's id, creating one (and so the cookie)
// if needed, together with the browser's data key for its launch records.
func (m *Manager) EnsureBrowserID(ctx context.Context) string {
	if id := m.BrowserID(ctx); id != "" {
		m.dataKey(ctx, true)
		return id
	}
	id := RandomID()
	m.SCS.Put(ctx, dataKeyKey, newDataKey())
	m.SCS.Put(ctx, browserKey, id)
	return id
}

// dataKey returns this browser's key for its launch records and pending
// authorizations, creating it when create is set; nil when there is none.
// It lives only inside the encrypted session blob, so the records are
// readable only with the browser's cookie; RenewToken keeps session values,
// so the key survives the token renewal at login.
func (m *Manager) dataKey(ctx context.Context, create bool) []byte {
	if k := m.SCS.GetBytes(ctx, dataKeyKey); len(k) == keySize {
		return k
	}
	if !create {
		return nil
	}
	k := newDataKey()
	m.SCS.Put(ctx, dataKeyKey, k)
	return k
}

// Logout destroys the server-side session. The browser id and data key go
// with it, so the old cookie names nothing and every launch record of this
// browser becomes unreadable at once, even before its TTL deletes it.
func (m *Manager) Logout(ctx context.Context) error {
	if err := m.SCS.Destroy(ctx); err != nil {
		return errors.Join(ErrStore, err)
	}
	return nil
}

// Login renews the session token after a successful sign-in (session fixation
// defence) while keeping the browser id the launches are bound to.
func (m *Manager) Login(ctx context.Context) error {
	if err := m.SCS.RenewToken(ctx); err != nil {
		return errors.Join(ErrStore, err)
	}
	return nil
}

// RandomID returns 128 random bits, base64url without padding (22 characters).
func RandomID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashKey derives a store key from a secret value, so the store never holds the value itself.
func hashKey(prefix, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return prefix + hex.EncodeToString(sum[:])
}

// Pending is an authorization request waiting for its callback.
type Pending struct {
	LaunchID     string    `json:"launch_id"`
	Browser      string    `json:"browser"`
	ISS          string    `json:"iss"` // the configured issuer's iss
	EHRLaunch    bool      `json:"ehr_launch"`
	CodeVerifier string    `json:"code_verifier"`
	Nonce        string    `json:"nonce"`
	Created      time.Time `json:"created"`
}

// PendingTTL bounds how long a user may spend at the authorization server.
const PendingTTL = 10 * time.Minute

// pendingEnvelope is a pending authorization as stored. Only the issuer is
// in clear (a configured URL, not a secret): it lets the callback offer a
// "reopen" link to a browser that lost its cookie and so cannot decrypt Box.
type pendingEnvelope struct {
	ISS string `json:"iss"`
	Box []byte `json:"box"`
}

// pendingAD binds a pending record's ciphertext to its key name and clear issuer.
func pendingAD(key, iss string) []byte { return []byte("pending\x00" + key + "\x00" + iss) }

// SavePending stores p under a hash of state, encrypted under this browser's data key.
func (m *Manager) SavePending(ctx context.Context, state string, p *Pending) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := hashKey("auth:", state)
	box, err := seal(m.dataKey(ctx, true), b, pendingAD(key, p.ISS))
	if err != nil {
		return err
	}
	env, err := json.Marshal(pendingEnvelope{ISS: p.ISS, Box: box})
	if err != nil {
		return err
	}
	return m.kv.Set(ctx, key, env, PendingTTL)
}

// TakePending consumes the pending request for state: a state works once.
// When the record exists but this session cannot decrypt it (another browser,
// or a browser that lost its cookie), it is still consumed and the result
// holds only ISS: its empty Browser matches no browser, so the caller refuses it.
func (m *Manager) TakePending(ctx context.Context, state string) (*Pending, bool, error) {
	if state == "" {
		return nil, false, nil
	}
	key := hashKey("auth:", state)
	b, ok, err := m.kv.Take(ctx, key)
	if err != nil || !ok {
		return nil, false, err
	}
	var env pendingEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, false, nil
	}
	dk := m.dataKey(ctx, false)
	if dk == nil {
		return &Pending{ISS: env.ISS}, true, nil
	}
	pt, err := open(dk, env.Box, pendingAD(key, env.ISS))
	if err != nil {
		return &Pending{ISS: env.ISS}, true, nil
	}
	var p Pending
	if err := json.Unmarshal(pt, &p); err != nil {
		return nil, false, fmt.Errorf("pending record: %w", err)
	}
	// The KV's TTL runs on real time; the record's age is judged on our clock.
	if !p.Created.IsZero() && !m.now().Before(p.Created.Add(PendingTTL)) {
		return nil, false, nil
	}
	return &p, true, nil
}

// Launch is everything the server knows about one launch. It never leaves the server.
type Launch struct {
	ID                string          `json:"id"`
	Browser           string          `json:"browser"`
	ISS               string          `json:"iss"`
	EHRLaunch         bool            `json:"ehr_launch"`
	AccessToken       string          `json:"access_token"`
	RefreshToken      string          `json:"refresh_token,omitempty"`
	IDToken           string          `json:"id_token,omitempty"`
	Scope             string          `json:"scope"`
	Expiry            time.Time       `json:"expiry"`
	Patient           string          `json:"patient"`
	Encounter         string          `json:"encounter,omitempty"`
	NeedPatientBanner bool            `json:"need_patient_banner"`
	SmartStyleURL     string          `json:"smart_style_url,omitempty"`
	FHIRContext       json.RawMessage `json:"fhir_context,omitempty"`
	FHIRUser          string          `json:"fhir_user,omitempty"`
	Created           time.Time       `json:"created"`
}

// ErrNoLaunch means the launch does not exist for this browser.
var ErrNoLaunch = errors.New("launch not found for this browser")

// launchKey is the store key of launch id.
func launchKey(id string) string { return "launch:" + id }

// launchAD binds a launch record's ciphertext to its key name, so a record
// moved under another launch's key does not decrypt.
func launchAD(key string) []byte { return []byte("launch\x00" + key) }

// SaveLaunch stores l under its own key for the session lifetime, encrypted
// under this browser's data key: the store never holds a token or patient id in clear.
func (m *Manager) SaveLaunch(ctx context.Context, l *Launch) error {
	if l.ID == "" {
		return ErrNoLaunch
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	ttl := m.life - m.now().Sub(l.Created)
	if ttl <= 0 {
		return ErrNoLaunch
	}
	key := launchKey(l.ID)
	box, err := seal(m.dataKey(ctx, true), b, launchAD(key))
	if err != nil {
		return err
	}
	if err := m.kv.Set(ctx, key, box, ttl); err != nil {
		return err
	}
	if m.saved != nil {
		m.saved(*l)
	}
	return nil
}

// DeleteLaunch removes launch id when it belongs to this browser (logout,
// expiry). A launch of another browser is left alone and reported as ErrNoLaunch,
// so knowing a launch id is not enough to end someone else's view.
func (m *Manager) DeleteLaunch(ctx context.Context, id string) error {
	if _, err := m.LoadLaunch(ctx, id); err != nil {
		return err
	}
	return m.kv.Delete(ctx, launchKey(id))
}

// LoadLaunch returns launch id if it belongs to this browser. A launch id
// alone is worthless: without the session cookie that names its browser, it is not found.
func (m *Manager) LoadLaunch(ctx context.Context, id string) (*Launch, error) {
	browser := m.BrowserID(ctx)
	if browser == "" || id == "" {
		return nil, ErrNoLaunch
	}
	dk := m.dataKey(ctx, false)
	if dk == nil {
		return nil, ErrNoLaunch
	}
	key := launchKey(id)
	box, ok, err := m.kv.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoLaunch
	}
	// A record that does not decrypt under this browser's key is not its record:
	// not found, never a server error.
	b, err := open(dk, box, launchAD(key))
	if err != nil {
		return nil, ErrNoLaunch
	}
	var l Launch
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("launch record: %w", err)
	}
	// Defence in depth: the decrypted record must also name this browser.
	if !ConstantTimeEqual(l.Browser, browser) {
		return nil, ErrNoLaunch
	}
	// The KV's TTL runs on real time; the session lifetime is judged on our clock.
	if m.life > 0 && !m.now().Before(l.Created.Add(m.life)) {
		return nil, ErrNoLaunch
	}
	return &l, nil
}
