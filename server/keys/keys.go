// Package keys manages the keys smartlabs signs private_key_jwt client
// assertions with (RSA for RS384, the default; ECDSA P-384 for ES384), and
// publishes their public halves, with retired or upcoming public keys, as a JWKS.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MinBits is the smallest RSA modulus accepted; Epic and NIST both require 2048.
const MinBits = 2048

// Algorithm is the JWS algorithm RSA client assertions are signed with (Epic's choice).
const Algorithm = jose.RS384

// AlgorithmEC is the JWS algorithm of ECDSA P-384 keys, the option to RS384.
const AlgorithmEC = jose.ES384

// File names written by WriteNew.
const (
	PrivateKeyFile   = "privatekey.pem"
	PublicKeyB64File = "publickey.b64"
	PublicKeyPEMFile = "publickey.pem"
	JWKSFile         = "jwks.json"
)

// Key is a private signing key (RSA or ECDSA P-384) with its stable key id.
type Key struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
	// perm is the key file's mode and verdict; zero for a key not loaded from a file.
	perm FilePerm
}

// Generate creates a new RSA key of the given size (at least MinBits).
func Generate(bits int) (*Key, error) {
	if bits < MinBits {
		return nil, fmt.Errorf("keys: RSA key of %d bits is too small (minimum %d)", bits, MinBits)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return fromRSA(priv)
}

// GenerateES384 creates a new ECDSA P-384 key for ES384.
func GenerateES384() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return fromEC(priv)
}

// GenerateAlg creates a key for alg: "RS384" (RSA of bits) or "ES384".
func GenerateAlg(alg string, bits int) (*Key, error) {
	switch jose.SignatureAlgorithm(alg) {
	case Algorithm, "":
		return Generate(bits)
	case AlgorithmEC:
		return GenerateES384()
	}
	return nil, fmt.Errorf("keys: algorithm %q is not supported (RS384 or ES384)", alg)
}

// Load reads a private key from a PEM file: RSA in PKCS#1 or PKCS#8, or
// ECDSA P-384 in SEC 1 or PKCS#8. A file other users may read, or anyone but
// its owner may write, is refused (see JudgePerm); the key's FilePerm carries
// the warning for a group-readable one.
func Load(pemPath string) (*Key, error) {
	f, err := os.Open(pemPath)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	// The mode is read from the open file, so it is the mode of what is read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	perm := JudgePerm(st.Mode())
	if perm.Problem != "" {
		return nil, fmt.Errorf("keys: %s is mode %s, %s; run chmod 600 %s", pemPath, perm, perm.Problem, pemPath)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k, err := Parse(data)
	if err != nil {
		return nil, err
	}
	k.perm = perm
	return k, nil
}

// maxKeyFile bounds how much of a key file is read; a PEM private key is a few KB.
const maxKeyFile = 1 << 20

// FilePerm is a private key file's permission bits and the verdict on them.
type FilePerm struct {
	// Mode is the file's permission bits.
	Mode fs.FileMode
	// Problem says why the mode is refused; empty when it is accepted.
	Problem string
	// Warning says why an accepted mode is still a risk; empty for 0600 and 0400.
	Warning string
}

// String is the mode in octal as chmod takes it, e.g. "0640".
func (p FilePerm) String() string { return fmt.Sprintf("%04o", uint32(p.Mode)) }

// JudgePerm applies the rule for private key files. Other users must not read
// it: whoever has the key can sign in as the app at the EHR. Nobody but the
// owner may write it: a replaced key would lock the app out or be one an
// attacker holds. Group read is accepted with a warning, because Kubernetes
// mounts secrets 0440 with an fsGroup. On Windows the bits mean nothing and
// every mode is accepted.
func JudgePerm(mode fs.FileMode) FilePerm {
	p := FilePerm{Mode: mode.Perm()}
	if runtime.GOOS == "windows" {
		return p
	}
	var problems []string
	if p.Mode&0o004 != 0 {
		problems = append(problems, "readable by every user")
	}
	if p.Mode&0o002 != 0 {
		problems = append(problems, "writable by every user")
	}
	if p.Mode&0o020 != 0 {
		problems = append(problems, "writable by its group")
	}
	switch {
	case len(problems) > 0:
		p.Problem = strings.Join(problems, " and ")
	case p.Mode&0o040 != 0:
		p.Warning = "readable by its group"
	}
	return p
}

// StatPerm returns the mode of the file at path and the verdict on it.
func StatPerm(path string) (FilePerm, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FilePerm{}, fmt.Errorf("keys: %w", err)
	}
	return JudgePerm(st.Mode()), nil
}

// FilePerm returns the mode of the file the key was loaded from, with its
// warning; the zero FilePerm for a key that was not loaded from a file.
func (k *Key) FilePerm() FilePerm { return k.perm }

// Parse decodes a private key from PEM bytes (see Load for the forms).
func Parse(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("keys: no PEM block found")
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: SEC 1: %w", err)
		}
		return fromEC(k)
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: PKCS#1: %w", err)
		}
		priv = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: PKCS#8: %w", err)
		}
		switch pk := k.(type) {
		case *rsa.PrivateKey:
			priv = pk
		case *ecdsa.PrivateKey:
			return fromEC(pk)
		default:
			return nil, fmt.Errorf("keys: PKCS#8 key is %T, want RSA or ECDSA P-384", k)
		}
	default:
		return nil, fmt.Errorf("keys: unsupported PEM block %q (want RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", block.Type)
	}
	// Small keys are refused because RS384 with fewer than 2048 bits is forgeable in practice.
	if bits := priv.N.BitLen(); bits < MinBits {
		return nil, fmt.Errorf("keys: RSA key of %d bits is too small (minimum %d)", bits, MinBits)
	}
	return fromRSA(priv)
}

func fromRSA(priv *rsa.PrivateKey) (*Key, error) {
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("keys: invalid RSA key: %w", err)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, alg: Algorithm, kid: kid}, nil
}

func fromEC(priv *ecdsa.PrivateKey) (*Key, error) {
	// Only P-384 is accepted: ES384 is defined on that curve alone (RFC 7518 §3.4).
	if priv.Curve != elliptic.P384() {
		return nil, fmt.Errorf("keys: ECDSA key on %s, want P-384 for ES384", priv.Curve.Params().Name)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, alg: AlgorithmEC, kid: kid}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key.
// It is the kid, so it is the same after every restart and on every replica
// without being stored anywhere.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyID returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
func (k *Key) KeyID() string { return k.kid }

// Algorithm returns the JWS algorithm the key signs with (RS384 or ES384).
func (k *Key) Algorithm() jose.SignatureAlgorithm { return k.alg }

// Signer returns the private key as a crypto.Signer.
func (k *Key) Signer() crypto.Signer { return k.priv }

// PublicJWK returns the public key as a JWK with use "sig", its alg and the kid.
func (k *Key) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{
		Key:       k.priv.Public(),
		KeyID:     k.kid,
		Algorithm: string(k.alg),
		Use:       "sig",
	}
}

// Public returns the key's public half, as published in the JWKS.
func (k *Key) Public() *PublicKey { return &PublicKey{jwk: k.PublicJWK()} }

// SigningKey returns the key ready for a go-jose signer, carrying the kid header.
func (k *Key) SigningKey() jose.SigningKey {
	return jose.SigningKey{
		Algorithm: k.alg,
		Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"},
	}
}

// JWKS returns the JSON Web Key Set {"keys":[...]} holding the public keys only.
func JWKS(keys ...*Key) []byte {
	ps := make([]*PublicKey, 0, len(keys))
	for _, k := range keys {
		if k != nil {
			ps = append(ps, k.Public())
		}
	}
	return JWKSOf(ps...)
}

// Certificate returns a self-signed X.509 certificate (DER) for the public key.
// Epic's app registration takes the public key in this form.
func (k *Key) Certificate(now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("keys: serial: %w", err)
	}
	// SubjectKeyId is the SHA-256 of the public key so the certificate names its key.
	spki, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: public key: %w", err)
	}
	ski := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smartlabs " + k.kid},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		return nil, fmt.Errorf("keys: certificate: %w", err)
	}
	return der, nil
}

// Files lists the paths WriteNew created.
type Files struct {
	// PrivateKey is the PKCS#8 PEM private key (mode 0600).
	PrivateKey string
	// PublicKeyB64 is the self-signed certificate, DER in standard base64 on one line.
	PublicKeyB64 string
	// PublicKeyPEM is the same certificate in PEM.
	PublicKeyPEM string
	// JWKS is the public JWK Set.
	JWKS string
	// KeyID is the kid of the new key.
	KeyID string
}

// Paths returns every file path in the order they are written.
func (f Files) Paths() []string {
	return []string{f.PrivateKey, f.PublicKeyB64, f.PublicKeyPEM, f.JWKS}
}

// WriteNew generates an RSA key of bits and writes it with its public forms into dir.
// It refuses to overwrite any existing file and leaves nothing behind on failure.
func WriteNew(dir string, bits int) (Files, error) {
	return WriteNewAlg(dir, string(Algorithm), bits)
}

// WriteNewAlg is WriteNew for a key of alg: RS384 (RSA of bits) or ES384.
func WriteNewAlg(dir, alg string, bits int) (Files, error) {
	files := Files{
		PrivateKey:   filepath.Join(dir, PrivateKeyFile),
		PublicKeyB64: filepath.Join(dir, PublicKeyB64File),
		PublicKeyPEM: filepath.Join(dir, PublicKeyPEMFile),
		JWKS:         filepath.Join(dir, JWKSFile),
	}
	// Overwriting a key that is registered with an EHR would silently break sign-in.
	for _, p := range files.Paths() {
		if _, err := os.Lstat(p); err == nil {
			return Files{}, fmt.Errorf("keys: %s already exists; refusing to overwrite", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Files{}, fmt.Errorf("keys: %w", err)
		}
	}
	k, err := GenerateAlg(alg, bits)
	if err != nil {
		return Files{}, err
	}
	files.KeyID = k.KeyID()
	der8, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return Files{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	cert, err := k.Certificate(time.Now())
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("keys: %w", err)
	}
	contents := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{files.PrivateKey, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der8})},
		{files.PublicKeyB64, 0o644, []byte(base64.StdEncoding.EncodeToString(cert) + "\n")},
		{files.PublicKeyPEM, 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})},
		{files.JWKS, 0o644, append(JWKS(k), '\n')},
	}
	var written []string
	for _, c := range contents {
		if err := writeExclusive(c.path, c.mode, c.data); err != nil {
			for _, p := range written {
				_ = os.Remove(p)
			}
			return Files{}, err
		}
		written = append(written, c.path)
	}
	return files, nil
}

// writeExclusive creates path with mode, failing if it exists (O_EXCL closes the
// race between the existence check and the write).
func writeExclusive(path string, mode os.FileMode, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	// The umask may have narrowed the mode; Chmod makes it exact (never wider for the key).
	if err := f.Chmod(mode); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("keys: close %s: %w", path, err)
	}
	return nil
}
