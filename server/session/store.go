package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// EncryptedStore wraps an scs store (memstore, goredisstore) so that it never
// holds anything a dump could use. It does what scs's HashTokenInStore would
// do, and more: the inner store is keyed by SHA-256 of the raw session token,
// and each session blob is encrypted with AES-256-GCM under a key derived
// (HKDF-SHA256) from that raw token, which only the browser's cookie holds.
// Modelled on oauth2-proxy's Redis session tickets. It deliberately offers
// no iteration (scs's Iterate): without the cookies no session can be read.
//
// It also ends sessions, on its own clock: scs and the inner stores expire
// sessions on real time only, so their expiry could not be tested or
// reasoned about with an injected clock. Each blob carries the session's
// absolute deadline (set when its token is first saved) and its idle
// deadline (set at every save); a session past either is not found.
//
// A request that changes nothing need not save: see touchEvery.
type EncryptedStore struct {
	inner scs.Store
	now   func() time.Time
	idle  time.Duration
	life  time.Duration
}

var (
	_ scs.Store    = (*EncryptedStore)(nil)
	_ scs.CtxStore = (*EncryptedStore)(nil)
)

// storeGrace is how much longer than our own deadline the inner store keeps a
// session. Its TTL only frees memory: it runs on real time, and must never end
// a session before our clock does, whether that clock runs with real time,
// ahead of it, or stands still in a test.
const storeGrace = time.Minute

// touchEvery is how stale a session's idle deadline may grow before a request
// that changes nothing saves it again. scs saves every session it loads, only
// to move that deadline, and with Redis that save is a round trip on every
// request; an unchanged session whose deadline was moved less than
// touchEvery ago is not saved. So a session ends between idle−touchEvery and
// idle after its last request, never later: a twentieth of the idle timeout,
// at most a minute (45 s of the default 15 min), small beside the timeout and
// still one save a minute at most for a browser that polls.
func touchEvery(idle time.Duration) time.Duration {
	return min(idle/20, time.Minute)
}

// NewEncryptedStore wraps inner; inner sees only hashed keys and ciphertext.
// Sessions end idle after their last save and life after their first one,
// both read on now (nil means time.Now); 0 turns either off.
func NewEncryptedStore(inner scs.Store, now func() time.Time, idle, life time.Duration) *EncryptedStore {
	if e, ok := inner.(*EncryptedStore); ok {
		inner = e.inner // never encrypt twice
	}
	if now == nil {
		now = time.Now
	}
	return &EncryptedStore{inner: inner, now: now, idle: idle, life: life}
}

// Inner returns the wrapped store.
func (s *EncryptedStore) Inner() scs.Store { return s.inner }

// deadlines are when a session ends; a zero time is no deadline.
type deadlines struct {
	absolute, idle time.Time
}

// deadlinesVersion starts every session plaintext; a blob without it (saved
// before sessions carried deadlines) is not found, so its browser signs in again.
const deadlinesVersion = 1

const deadlinesSize = 1 + 8 + 8

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func fromUnixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

// wrap prefixes the scs blob b with the deadlines.
func (d deadlines) wrap(b []byte) []byte {
	out := make([]byte, deadlinesSize, deadlinesSize+len(b))
	out[0] = deadlinesVersion
	binary.BigEndian.PutUint64(out[1:], unixNano(d.absolute))
	binary.BigEndian.PutUint64(out[9:], unixNano(d.idle))
	return append(out, b...)
}

// unwrap reverses wrap.
func unwrap(p []byte) (deadlines, []byte, bool) {
	if len(p) < deadlinesSize || p[0] != deadlinesVersion {
		return deadlines{}, nil, false
	}
	d := deadlines{
		absolute: fromUnixNano(binary.BigEndian.Uint64(p[1:])),
		idle:     fromUnixNano(binary.BigEndian.Uint64(p[9:])),
	}
	return d, p[deadlinesSize:], true
}

// ended reports whether now is at or past either deadline.
func (d deadlines) ended(now time.Time) bool {
	return !d.absolute.IsZero() && !now.Before(d.absolute) || !d.idle.IsZero() && !now.Before(d.idle)
}

// first is the earlier deadline; zero when there is none.
func (d deadlines) first() time.Time {
	switch {
	case d.absolute.IsZero():
		return d.idle
	case d.idle.IsZero() || d.absolute.Before(d.idle):
		return d.absolute
	}
	return d.idle
}

// loadedKey marks the request's record of the session it loaded.
type loadedKey struct{}

// loaded is the session a request loaded (or last saved): its token,
// deadlines and scs blob, so saving it at the end of the request keeps its
// absolute deadline without reading the store again, or is skipped when
// nothing changed. Manager.Middleware puts one in every request's context.
type loaded struct {
	mu        sync.Mutex
	token     string
	deadlines deadlines
	data      []byte
	// skipped is set when the request's last save was skipped (fresh): the
	// store holds nothing new, so the response must not set the cookie
	// (Manager.Middleware), which could hand back a token renewed meanwhile.
	skipped bool
}

// saveSkipped reports whether the request's last save was skipped.
func saveSkipped(ctx context.Context) bool {
	l, ok := ctx.Value(loadedKey{}).(*loaded)
	if !ok {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.skipped
}

// setSkipped records whether the request's last save was skipped.
func setSkipped(ctx context.Context, skipped bool) {
	if l, ok := ctx.Value(loadedKey{}).(*loaded); ok {
		l.mu.Lock()
		l.skipped = skipped
		l.mu.Unlock()
	}
}

func withLoaded(ctx context.Context) context.Context {
	return context.WithValue(ctx, loadedKey{}, &loaded{})
}

// remember records that the store holds b with deadlines d under token, as
// the request last read or wrote it; a request outside Manager.Middleware
// records nothing.
func remember(ctx context.Context, token string, d deadlines, b []byte) {
	if l, ok := ctx.Value(loadedKey{}).(*loaded); ok {
		l.mu.Lock()
		l.token, l.deadlines, l.data = token, d, b
		l.mu.Unlock()
	}
}

// forget records that the store no longer holds token.
func forget(ctx context.Context, token string) {
	if l, ok := ctx.Value(loadedKey{}).(*loaded); ok {
		l.mu.Lock()
		if l.token == token {
			l.token, l.deadlines, l.data = "", deadlines{}, nil
		}
		l.mu.Unlock()
	}
}

// FindCtx implements scs.CtxStore. A blob that does not decrypt under this
// token is "not found", as scs asks for tampered data; so is a session past
// one of its deadlines, which is deleted.
func (s *EncryptedStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	d, b, found, err := s.find(ctx, token)
	if err != nil || !found {
		return nil, false, err
	}
	if d.ended(s.now()) {
		// The session is over for good; deleting it only tidies up early what
		// the inner store's TTL would, so a failure here is not the user's problem.
		_ = s.DeleteCtx(ctx, token)
		return nil, false, nil
	}
	remember(ctx, token, d, b)
	return b, true, nil
}

// find reads and decrypts the session of token, whatever its deadlines.
func (s *EncryptedStore) find(ctx context.Context, token string) (deadlines, []byte, bool, error) {
	id := tokenID(token)
	var box []byte
	var found bool
	var err error
	if c, ok := s.inner.(scs.CtxStore); ok {
		box, found, err = c.FindCtx(ctx, id)
	} else {
		box, found, err = s.inner.Find(id)
	}
	if err != nil {
		return deadlines{}, nil, false, errors.Join(ErrStore, err)
	}
	if !found {
		return deadlines{}, nil, false, nil
	}
	key, err := tokenKey(token)
	if err != nil {
		return deadlines{}, nil, false, err
	}
	p, err := open(key, box, []byte(id))
	if err != nil {
		return deadlines{}, nil, false, nil
	}
	d, b, ok := unwrap(p)
	return d, b, ok, nil
}

// absolute is the absolute deadline of the session saved under token: the one
// it was loaded with, or for a token new in this request (a new session, a
// renewed token) life from now.
func (s *EncryptedStore) absolute(ctx context.Context, token string, now time.Time) (time.Time, error) {
	if s.life <= 0 {
		return time.Time{}, nil
	}
	if l, ok := ctx.Value(loadedKey{}).(*loaded); ok {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.token == token && !l.deadlines.absolute.IsZero() {
			return l.deadlines.absolute, nil
		}
		return now.Add(s.life), nil
	}
	// Saved outside Manager.Middleware: the store says whether the session is new.
	d, _, found, err := s.find(ctx, token)
	if err != nil {
		return time.Time{}, err
	}
	if found && !d.absolute.IsZero() {
		return d.absolute, nil
	}
	return now.Add(s.life), nil
}

// fresh reports whether saving b under token at now may be skipped: this
// request loaded that session, b holds the same session, and its stored idle
// deadline is at most touchEvery behind the one a save would set. A new
// session, a renewed token or changed data is always saved.
func (s *EncryptedStore) fresh(ctx context.Context, token string, b []byte, now time.Time) bool {
	if s.idle <= 0 {
		return false
	}
	l, ok := ctx.Value(loadedKey{}).(*loaded)
	if !ok {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != token || l.deadlines.idle.IsZero() ||
		l.deadlines.idle.Before(now.Add(s.idle-touchEvery(s.idle))) {
		return false
	}
	return sameSession(l.data, b)
}

// sameSession reports whether the scs blobs a and b hold the same deadline
// and values. scs's gob encoding writes a map in Go's random iteration
// order, so an unchanged session of two values or more is often saved as
// other bytes: unequal bytes are decoded and compared. A blob that does not
// decode is never the same, so it is saved.
func sameSession(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var codec scs.GobCodec
	da, va, err := codec.Decode(a)
	if err != nil {
		return false
	}
	db, vb, err := codec.Decode(b)
	if err != nil {
		return false
	}
	return da.Equal(db) && reflect.DeepEqual(va, vb)
}

// CommitCtx implements scs.CtxStore. scs's expiry, read on real time, is
// used only when the store keeps no deadline of its own. An unchanged
// session whose idle deadline was moved less than touchEvery ago is not
// saved again (fresh).
func (s *EncryptedStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	now := s.now()
	skip := s.fresh(ctx, token, b, now)
	setSkipped(ctx, skip)
	if skip {
		return nil
	}
	id := tokenID(token)
	key, err := tokenKey(token)
	if err != nil {
		return err
	}
	var d deadlines
	if d.absolute, err = s.absolute(ctx, token, now); err != nil {
		return err
	}
	if s.idle > 0 {
		d.idle = now.Add(s.idle)
	}
	if first := d.first(); !first.IsZero() {
		// The inner store's TTL runs on real time: give it the time our clock
		// leaves, plus storeGrace, never a time read on our clock.
		expiry = time.Now().Add(max(first.Sub(now), 0) + storeGrace)
	}
	// The hashed id is the additional data: a blob copied under another session's id does not open.
	box, err := seal(key, d.wrap(b), []byte(id))
	if err != nil {
		return err
	}
	if c, ok := s.inner.(scs.CtxStore); ok {
		err = c.CommitCtx(ctx, id, box, expiry)
	} else {
		err = s.inner.Commit(id, box, expiry)
	}
	if err != nil {
		return errors.Join(ErrStore, err)
	}
	// A second save in this request is compared with this one, not with the
	// session as loaded: going back to the loaded values must be saved too.
	remember(ctx, token, d, b)
	return nil
}

// DeleteCtx implements scs.CtxStore.
func (s *EncryptedStore) DeleteCtx(ctx context.Context, token string) error {
	id := tokenID(token)
	var err error
	if c, ok := s.inner.(scs.CtxStore); ok {
		err = c.DeleteCtx(ctx, id)
	} else {
		err = s.inner.Delete(id)
	}
	if err != nil {
		return errors.Join(ErrStore, err)
	}
	forget(ctx, token)
	return nil
}

// Find implements scs.Store.
func (s *EncryptedStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s *EncryptedStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s *EncryptedStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}
