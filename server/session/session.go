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
	"time"

	"github.com/alexedwards/scs/v2"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// refuse it unless it is Secure, has Path=/ and no Domain, so no sibling
// host can plant or overwrite it.
const CookieName = "__Host-smartlabs"

const browserKey = "browser"

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
}

// Manager binds browsers to launches.
type Manager struct {
	SCS  *scs.SessionManager
	kv   KV
	now  func() time.Time
	life time.Duration
}

// NewManager configures scs with every field set explicitly: its defaults
// (Lax, not Partitioned, persistent, unhashed tokens) are wrong inside an EHR frame.
func NewManager(o Options) *Manager {
	sm := scs.New()
	sm.Store = o.ScsStore
	sm.IdleTimeout = o.IdleTimeout
	sm.Lifetime = o.Lifetime
	// The store only ever sees a hash of the cookie value, so a store dump cannot be replayed as cookies.
	sm.HashTokenInStore = true
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
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Manager{SCS: sm, kv: o.KV, now: now, life: o.Lifetime}
}

// KV returns the launch-record store.
func (m *Manager) KV() KV { return m.kv }

// Middleware loads and saves the scs session around next.
func (m *Manager) Middleware(next http.Handler) http.Handler { return m.SCS.LoadAndSave(next) }

// HasCookie reports whether the request carried our session cookie at all.
func HasCookie(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	return err == nil && c.Value != ""
}

// BrowserID returns this browser's id, or "" when the session has none yet.
func (m *Manager) BrowserID(ctx context.Context) string {
	return m.SCS.GetString(ctx, browserKey)
}

// EnsureBrowserID returns this browser's id, creating one (and so the cookie) if needed.
func (m *Manager) EnsureBrowserID(ctx context.Context) string {
	if id := m.BrowserID(ctx); id != "" {
		return id
	}
	id := RandomID()
	m.SCS.Put(ctx, browserKey, id)
	return id
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

// SavePending stores p under a hash of state.
func (m *Manager) SavePending(ctx context.Context, state string, p *Pending) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return m.kv.Set(ctx, hashKey("auth:", state), b, PendingTTL)
}

// TakePending consumes the pending request for state: a state works once.
func (m *Manager) TakePending(ctx context.Context, state string) (*Pending, bool, error) {
	b, ok, err := m.kv.Take(ctx, hashKey("auth:", state))
	if err != nil || !ok {
		return nil, false, err
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, false, fmt.Errorf("pending record: %w", err)
	}
	return &p, true, nil
}

// MarkLaunchTokenUsed records that an EHR launch token was sent to the
// authorization server and reports false when it had been already: Epic's
// launch tokens are single use, so a reload must not replay one.
func (m *Manager) MarkLaunchTokenUsed(ctx context.Context, iss, launchToken string) (bool, error) {
	return m.kv.SetNX(ctx, hashKey("launchtok:", iss+"\n"+launchToken), []byte{1}, 24*time.Hour)
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

// SaveLaunch stores l under its own key for the session lifetime.
func (m *Manager) SaveLaunch(ctx context.Context, l *Launch) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	ttl := m.life - m.now().Sub(l.Created)
	if ttl <= 0 {
		return ErrNoLaunch
	}
	return m.kv.Set(ctx, "launch:"+l.ID, b, ttl)
}

// LoadLaunch returns launch id if it belongs to this browser. A launch id
// alone is worthless: without the session cookie that names its browser, it is not found.
func (m *Manager) LoadLaunch(ctx context.Context, id string) (*Launch, error) {
	browser := m.BrowserID(ctx)
	if browser == "" || id == "" {
		return nil, ErrNoLaunch
	}
	b, ok, err := m.kv.Get(ctx, "launch:"+id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoLaunch
	}
	var l Launch
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("launch record: %w", err)
	}
	if !ConstantTimeEqual(l.Browser, browser) {
		return nil, ErrNoLaunch
	}
	return &l, nil
}
