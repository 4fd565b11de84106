package session

import (
	"context"
	"errors"
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
type EncryptedStore struct {
	inner scs.Store
}

var (
	_ scs.Store    = (*EncryptedStore)(nil)
	_ scs.CtxStore = (*EncryptedStore)(nil)
)

// NewEncryptedStore wraps inner; inner sees only hashed keys and ciphertext.
func NewEncryptedStore(inner scs.Store) *EncryptedStore {
	if e, ok := inner.(*EncryptedStore); ok {
		return e
	}
	return &EncryptedStore{inner: inner}
}

// Inner returns the wrapped store.
func (s *EncryptedStore) Inner() scs.Store { return s.inner }

// FindCtx implements scs.CtxStore. A blob that does not decrypt under this
// token is "not found", as scs asks for tampered data.
func (s *EncryptedStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
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
		return nil, false, errors.Join(ErrStore, err)
	}
	if !found {
		return nil, false, nil
	}
	key, err := tokenKey(token)
	if err != nil {
		return nil, false, err
	}
	b, err := open(key, box, []byte(id))
	if err != nil {
		return nil, false, nil
	}
	return b, true, nil
}

// CommitCtx implements scs.CtxStore.
func (s *EncryptedStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	id := tokenID(token)
	key, err := tokenKey(token)
	if err != nil {
		return err
	}
	// The hashed id is the additional data: a blob copied under another session's id does not open.
	box, err := seal(key, b, []byte(id))
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
