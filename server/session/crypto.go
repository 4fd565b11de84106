package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// sealVersion is the first byte of every ciphertext, so the format can change later.
const sealVersion = 1

// keySize is the AES-256 key size.
const keySize = 32

// errOpen means a ciphertext did not decrypt: wrong key, wrong key name or tampered.
var errOpen = errors.New("session: ciphertext does not open")

// seal encrypts plaintext with AES-256-GCM under key, bound to ad (additional
// data): version byte, random 96-bit nonce, then ciphertext and tag.
func seal(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:1+aead.NonceSize()], plaintext, ad), nil
}

// open reverses seal; any mismatch of key, additional data or bytes is errOpen.
func open(key, box, ad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(box) < 1+n+aead.Overhead() || box[0] != sealVersion {
		return nil, errOpen
	}
	pt, err := aead.Open(nil, box[1:1+n], box[1+n:], ad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, errors.New("session: encryption key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Info strings keep the keys derived from one session token independent of each other.
const (
	infoSessionKey = "smartlabs scs session blob v1"
)

// tokenKey derives the key that encrypts a session blob from the raw session
// token. The token lives only in the browser's cookie, so the store alone can never decrypt.
func tokenKey(token string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(token), nil, infoSessionKey, keySize)
}

// tokenID is the store key of a session: SHA-256 of the raw token, so the
// store never sees a token it could replay as a cookie.
func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newDataKey returns 32 random bytes: a browser's key for its launch records.
func newDataKey() []byte {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return k
}
