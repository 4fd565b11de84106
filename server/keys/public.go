package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// PublicKey is a public key published in the JWKS. During a rotation it may
// have no private half on this server: the next key, published before use, or
// the retired key, published until its assertions can no longer be in flight.
type PublicKey struct {
	jwk jose.JSONWebKey
}

// KeyID returns the key's kid (its RFC 7638 thumbprint).
func (p *PublicKey) KeyID() string { return p.jwk.KeyID }

// Algorithm returns the JWS algorithm the key is published for.
func (p *PublicKey) Algorithm() string { return p.jwk.Algorithm }

// JWK returns the public JWK.
func (p *PublicKey) JWK() jose.JSONWebKey { return p.jwk }

// LoadPublic reads the public keys in a file: a JWKS or a single JWK (as
// `smartlabs keys new` writes jwks.json), or a PEM certificate or public key
// (publickey.pem). Every key gets its thumbprint as kid.
func LoadPublic(path string) ([]*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	ps, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return ps, nil
}

// ParsePublic decodes the public keys in data (see LoadPublic for the forms).
func ParsePublic(data []byte) ([]*PublicKey, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		return parsePublicJSON([]byte(trimmed))
	}
	var out []*PublicKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate: %w", err)
			}
			pub = cert.PublicKey
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: %w", err)
			}
			pub = k
		default:
			// A private key here would be published by mistake; refuse rather than strip it.
			return nil, fmt.Errorf("PEM block %q is not a certificate or public key", block.Type)
		}
		p, err := newPublic(pub, "")
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no JWKS, JWK or PEM public key found")
	}
	return out, nil
}

func parsePublicJSON(data []byte) ([]*PublicKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil || len(set.Keys) == 0 {
		var one jose.JSONWebKey
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("not a JWKS or JWK: %w", err)
		}
		set.Keys = []jose.JSONWebKey{one}
	}
	out := make([]*PublicKey, 0, len(set.Keys))
	for i, k := range set.Keys {
		// Private members in a file meant for publication mean the wrong file was named.
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %d is a private key; name the public jwks.json instead", i)
		}
		p, err := newPublic(k.Key, k.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// newPublic checks a public key and gives it its thumbprint as kid and the
// algorithm its type implies.
func newPublic(pub any, alg string) (*PublicKey, error) {
	want := ""
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinBits {
			return nil, fmt.Errorf("RSA key of %d bits is too small (minimum %d)", k.N.BitLen(), MinBits)
		}
		want = string(Algorithm)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("ECDSA key on %s, want P-384", k.Curve.Params().Name)
		}
		want = string(AlgorithmEC)
	default:
		return nil, fmt.Errorf("key type %T is not RSA or ECDSA", pub)
	}
	if alg != "" && alg != want {
		return nil, fmt.Errorf("alg %q does not fit the key (want %s)", alg, want)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &PublicKey{jwk: jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: want, Use: "sig"}}, nil
}

// JWKSOf returns the JSON Web Key Set of ps, each kid once, in the given order.
func JWKSOf(ps ...*PublicKey) []byte {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(ps))}
	seen := map[string]bool{}
	for _, p := range ps {
		if p == nil || seen[p.KeyID()] {
			continue
		}
		seen[p.KeyID()] = true
		set.Keys = append(set.Keys, p.jwk)
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Marshalling RSA and ECDSA public keys cannot fail; an empty set is the safe answer.
		return []byte(`{"keys":[]}`)
	}
	return b
}
