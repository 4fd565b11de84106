package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

func TestWriteNewES384(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ec")
	f, err := WriteNewAlg(dir, "ES384", 0)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Load(f.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm() != jose.ES384 || k.KeyID() != f.KeyID {
		t.Fatalf("loaded alg %s kid %s, want ES384 %s", k.Algorithm(), k.KeyID(), f.KeyID)
	}
	if st, err := os.Stat(f.PrivateKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st, err)
	}
	// The certificate and the JWKS carry the same key, published for ES384.
	for _, p := range []string{f.PublicKeyPEM, f.JWKS} {
		ps, err := LoadPublic(p)
		if err != nil {
			t.Fatalf("LoadPublic(%s): %v", filepath.Base(p), err)
		}
		if len(ps) != 1 || ps[0].KeyID() != k.KeyID() || ps[0].Algorithm() != "ES384" {
			t.Errorf("%s: got %d keys, first %+v", filepath.Base(p), len(ps), ps[0].JWK())
		}
	}
	// An assertion signed by the key verifies against the published JWK.
	signer, err := jose.NewSigner(k.SigningKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "x"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES384})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID != k.KeyID() {
		t.Errorf("kid header = %q", tok.Headers[0].KeyID)
	}
	var c jwt.Claims
	if err := tok.Claims(k.PublicJWK().Key, &c); err != nil || c.Subject != "x" {
		t.Errorf("verify: %v %q", err, c.Subject)
	}
}

func TestGenerateAlgRejects(t *testing.T) {
	for _, alg := range []string{"RS256", "HS256", "none", "ES256"} {
		if _, err := GenerateAlg(alg, 2048); err == nil {
			t.Errorf("GenerateAlg(%q) succeeded", alg)
		}
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(p256)
	if _, err := Parse(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("a P-256 key was accepted for ES384")
	}
}

func TestLoadPublicForms(t *testing.T) {
	dir := t.TempDir()
	f := mustWriteNew(t, filepath.Join(dir, "rsa"))
	k, err := Load(f.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(k.Signer().Public())
	privPEM, _ := os.ReadFile(f.PrivateKey)
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: k.Signer(), KeyID: "x"})
	oneJWK, _ := json.Marshal(k.PublicJWK())
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"jwks.json", mustRead(t, f.JWKS), ""},
		{"single jwk", oneJWK, ""},
		{"certificate", mustRead(t, f.PublicKeyPEM), ""},
		{"public key pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), ""},
		{"private pem", privPEM, "not a certificate or public key"},
		{"private jwk", privJWK, "private key"},
		{"garbage", []byte("hello"), "no JWKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := ParsePublic(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, p := range ps {
				got = append(got, p.KeyID()+" "+p.Algorithm())
			}
			if diff := cmp.Diff([]string{k.KeyID() + " RS384"}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJWKSOfRotation(t *testing.T) {
	current, next := mustGenerate(t), mustGenerate(t)
	// The current key appears twice (as a signing key and listed again): published once.
	raw := JWKSOf(current.Public(), next.Public(), current.Public(), nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
		if !k.IsPublic() {
			t.Error("private key published")
		}
	}
	if diff := cmp.Diff([]string{current.KeyID(), next.KeyID()}, kids); diff != "" {
		t.Errorf("kids (-want +got):\n%s", diff)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
