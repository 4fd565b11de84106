package keys

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func mustWriteNew(t *testing.T, dir string) Files {
	t.Helper()
	f, err := WriteNew(dir, 2048)
	if err != nil {
		t.Fatalf("WriteNew: %v", err)
	}
	return f
}

func mustGenerate(t *testing.T) *Key {
	t.Helper()
	k, err := Generate(2048)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return k
}

func TestGenerateRejectsSmallKeys(t *testing.T) {
	if _, err := Generate(1024); err == nil {
		t.Fatal("Generate(1024) succeeded, want error")
	}
}

func TestKeyIDStableAcrossLoad(t *testing.T) {
	dir := t.TempDir()
	f := mustWriteNew(t, dir)
	a, err := Load(f.PrivateKey)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	b, err := Load(f.PrivateKey)
	if err != nil {
		t.Fatalf("Load again: %v", err)
	}
	if a.KeyID() != f.KeyID || b.KeyID() != f.KeyID {
		t.Errorf("kids differ: written %q, loads %q and %q", f.KeyID, a.KeyID(), b.KeyID())
	}
	// The kid is a base64url SHA-256: 43 characters, no padding.
	if len(f.KeyID) != 43 || strings.ContainsAny(f.KeyID, "+/=") {
		t.Errorf("kid %q is not an unpadded base64url SHA-256", f.KeyID)
	}
	// It must equal the RFC 7638 thumbprint computed independently.
	pub := jose.JSONWebKey{Key: a.Signer().Public()}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(tp); got != a.KeyID() {
		t.Errorf("KeyID = %q, thumbprint = %q", a.KeyID(), got)
	}
}

func TestLoadFormats(t *testing.T) {
	big, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // Deliberately weak to test rejection.
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k *rsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	pkcs1 := func(k *rsa.PrivateKey) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr bool
	}{
		{"pkcs1", pkcs1(big), false},
		{"pkcs8", pkcs8(big), false},
		{"pkcs1 small", pkcs1(small), true},
		{"pkcs8 small", pkcs8(small), true},
		{"not pem", []byte("hello"), true},
		{"wrong block", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.pem")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := Load(p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && k.Signer().Public().(*rsa.PublicKey).N.Cmp(big.N) != 0 {
				t.Error("loaded key differs from the written one")
			}
		})
	}
}

func TestJWKSPublicOnly(t *testing.T) {
	k1, k2 := mustGenerate(t), mustGenerate(t)
	raw := JWKS(k1, k2)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(doc.Keys))
	}
	for i, m := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := m[private]; ok {
				t.Errorf("key %d has private member %q", i, private)
			}
		}
		want := map[string]any{"kty": "RSA", "use": "sig", "alg": "RS384", "kid": []*Key{k1, k2}[i].KeyID()}
		got := map[string]any{"kty": m["kty"], "use": m["use"], "alg": m["alg"], "kid": m["kid"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key %d (-want +got):\n%s", i, diff)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if !set.Keys[0].IsPublic() {
		t.Error("parsed JWK is not a public key")
	}
}

func TestWriteNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	f := mustWriteNew(t, dir)

	modes := map[string]os.FileMode{
		f.PrivateKey:   0o600,
		f.PublicKeyB64: 0o644,
		f.PublicKeyPEM: 0o644,
		f.JWKS:         0o644,
	}
	for p, want := range modes {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", filepath.Base(p), got, want)
		}
	}

	// publickey.b64 is one line of standard base64 holding a DER certificate of our key.
	b64, err := os.ReadFile(f.PublicKeyB64)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(string(b64), "\n")
	if strings.Contains(line, "\n") {
		t.Error("publickey.b64 spans several lines")
	}
	der, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatalf("publickey.b64 is not std base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate does not parse: %v", err)
	}
	k, err := Load(f.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Signer().Public().(*rsa.PublicKey).Equal(cert.PublicKey) {
		t.Error("certificate public key does not match the private key")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("certificate is not self-signed by the key: %v", err)
	}

	pemData, err := os.ReadFile(f.PublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" || string(block.Bytes) != string(der) {
		t.Error("publickey.pem is not the same certificate as publickey.b64")
	}

	jwks, err := os.ReadFile(f.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != k.KeyID() {
		t.Errorf("jwks.json keys = %+v, want one with kid %q", set.Keys, k.KeyID())
	}
}

func TestWriteNewRefusesOverwrite(t *testing.T) {
	for _, name := range []string{PrivateKeyFile, PublicKeyB64File, PublicKeyPEMFile, JWKSFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			existing := filepath.Join(dir, name)
			if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := WriteNew(dir, 2048); err == nil {
				t.Fatal("WriteNew overwrote an existing file")
			}
			got, err := os.ReadFile(existing)
			if err != nil || string(got) != "keep me" {
				t.Errorf("existing file changed: %q, %v", got, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("WriteNew left %d files behind, want only the existing one", len(entries))
			}
		})
	}
}
