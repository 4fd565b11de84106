package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// exchangeIDToken runs a code exchange whose token response carries idt.
func exchangeIDToken(t *testing.T, c *Client, f *fakeEHR, d *Discovery, idt, nonce string) (*Tokens, error) {
	t.Helper()
	f.handle("/oauth2/token", tokenResponder(http.StatusOK, map[string]any{
		"access_token": "at", "token_type": "Bearer", "id_token": idt, "patient": "p1",
	}))
	return c.Exchange(context.Background(), d, f.issuer(), nil, testRedirect, testCode, testVerifier, nonce)
}

// unsignedJWT builds an alg "none" token.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": "k1"})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func TestIDTokenValidation(t *testing.T) {
	const nonce = "nonce-abc"
	type tokenFn func(t *testing.T, f *fakeEHR) string
	signed := func(keyIdx int, kid string, mutate func(f *fakeEHR, m map[string]any)) tokenFn {
		return func(t *testing.T, f *fakeEHR) string {
			m := idTokenClaims(f, nonce)
			if mutate != nil {
				mutate(f, m)
			}
			return mustSign(t, jose.RS256, mustRSA(t, keyIdx), kid, m)
		}
	}
	tests := []struct {
		name        string
		token       tokenFn
		rotate      bool // JWKS gains key 2 ("k2") after the cache is primed
		jwkNoAlg    bool // the published key has no "alg" member
		want        ErrorKind
		wantUser    string // relative to the fake's iss when set
		wantFetches int    // JWKS fetches including the priming one
	}{
		{name: "good", token: signed(0, "k1", nil), wantUser: "/Practitioner/p1", wantFetches: 1},
		{name: "profile when no fhirUser", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			delete(m, "fhirUser")
			m["profile"] = f.iss() + "/Practitioner/p2"
		}), wantUser: "/Practitioner/p2", wantFetches: 1},
		{name: "RS384 allowed", jwkNoAlg: true, token: func(t *testing.T, f *fakeEHR) string {
			return mustSign(t, jose.RS384, mustRSA(t, 0), "k1", idTokenClaims(f, nonce))
		}, wantUser: "/Practitioner/p1", wantFetches: 1},
		{name: "alg differs from the JWK's alg", token: func(t *testing.T, f *fakeEHR) string {
			return mustSign(t, jose.RS384, mustRSA(t, 0), "k1", idTokenClaims(f, nonce))
		}, want: KindBadServer, wantFetches: 2},
		{name: "wrong nonce", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) { m["nonce"] = "other" }), want: KindRejected, wantFetches: 1},
		{name: "missing nonce", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) { delete(m, "nonce") }), want: KindRejected, wantFetches: 1},
		{name: "wrong aud", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) { m["aud"] = "someone-else" }), want: KindRejected, wantFetches: 1},
		{name: "aud list with azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["aud"] = []string{"someone-else", testClientID}
			m["azp"] = testClientID
		}), wantUser: "/Practitioner/p1", wantFetches: 1},
		{name: "aud list without azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["aud"] = []string{"someone-else", testClientID}
		}), want: KindRejected, wantFetches: 1},
		{name: "single aud with our azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["azp"] = testClientID
		}), wantUser: "/Practitioner/p1", wantFetches: 1},
		{name: "single aud with another client's azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["azp"] = "someone-else"
		}), want: KindRejected, wantFetches: 1},
		{name: "aud list naming us with another client's azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["aud"] = []string{"someone-else", testClientID}
			m["azp"] = "someone-else"
		}), want: KindRejected, wantFetches: 1},
		{name: "aud string list of one with another client's azp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["aud"] = []string{testClientID}
			m["azp"] = "someone-else"
		}), want: KindRejected, wantFetches: 1},
		{name: "wrong iss (FHIR base)", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) { m["iss"] = f.iss() }), want: KindIssuerMismatch, wantFetches: 1},
		{name: "expired beyond skew", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["iat"] = t0.Add(-time.Hour).Unix()
			m["exp"] = t0.Add(-3 * time.Minute).Unix()
		}), want: KindRejected, wantFetches: 1},
		{name: "expired within skew", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["iat"] = t0.Add(-time.Hour).Unix()
			m["exp"] = t0.Add(-time.Minute).Unix()
		}), wantUser: "/Practitioner/p1", wantFetches: 1},
		{name: "no exp", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) { delete(m, "exp") }), want: KindRejected, wantFetches: 1},
		{name: "issued in the future", token: signed(0, "k1", func(f *fakeEHR, m map[string]any) {
			m["iat"] = t0.Add(10 * time.Minute).Unix()
			m["exp"] = t0.Add(20 * time.Minute).Unix()
		}), want: KindRejected, wantFetches: 1},
		{name: "alg none", token: func(t *testing.T, f *fakeEHR) string {
			return unsignedJWT(t, idTokenClaims(f, nonce))
		}, want: KindBadServer, wantFetches: 1},
		{name: "HS256 keyed with the public key", token: func(t *testing.T, f *fakeEHR) string {
			der, err := x509.MarshalPKIXPublicKey(&mustRSA(t, 0).PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			return mustSign(t, jose.HS256, pub, "k1", idTokenClaims(f, nonce))
		}, want: KindBadServer, wantFetches: 1},
		{name: "signed by another key under a known kid", token: signed(1, "k1", nil), want: KindBadServer, wantFetches: 1},
		{name: "unknown kid then rotated JWKS", token: signed(1, "k2", nil), rotate: true, wantUser: "/Practitioner/p1", wantFetches: 2},
		{name: "unknown kid never published", token: signed(1, "k9", nil), want: KindBadServer, wantFetches: 2},
		{name: "garbage", token: func(t *testing.T, f *fakeEHR) string { return "not.a.jwt" }, want: KindBadServer, wantFetches: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			jwk := publicJWK(mustRSA(t, 0), "k1")
			if tt.jwkNoAlg {
				jwk.Algorithm = ""
			}
			f.setJWKS(jwk)
			c := mustClient(t, &clock{t: t0})
			d := f.discovery()
			// Prime the JWKS cache with a good sign-in, as a running server would have.
			if _, err := exchangeIDToken(t, c, f, d, signed(0, "k1", nil)(t, f), nonce); err != nil {
				t.Fatalf("priming exchange: %v", err)
			}
			if tt.rotate {
				f.setJWKS(jwk, publicJWK(mustRSA(t, 1), "k2"))
			}
			tok, err := exchangeIDToken(t, c, f, d, tt.token(t, f), nonce)
			if tt.want != 0 {
				mustSmartError(t, err, tt.want)
				if tok != nil {
					t.Error("tokens returned with an error")
				}
			} else {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if want := f.iss() + tt.wantUser; tok.FHIRUser != want {
					t.Errorf("FHIRUser = %q, want %q", tok.FHIRUser, want)
				}
			}
			if got := f.count("/oauth2/jwks"); got != tt.wantFetches {
				t.Errorf("JWKS fetched %d times, want %d", got, tt.wantFetches)
			}
		})
	}
}

func TestIDTokenKeysViaOpenIDConfiguration(t *testing.T) {
	const nonce = "n-oidc"
	tests := []struct {
		name      string
		discovery func(f *fakeEHR) *Discovery
		oidcPath  string // where the fake serves openid-configuration
		oidcIss   func(f *fakeEHR) string
		want      ErrorKind
	}{
		{
			name: "issuer without jwks_uri",
			discovery: func(f *fakeEHR) *Discovery {
				d := f.discovery()
				d.JWKSURI = ""
				return d
			},
			oidcPath: "/oauth2/.well-known/openid-configuration",
			oidcIss:  (*fakeEHR).oauthIssuer,
		},
		{
			name: "metadata discovery: issuer beside the authorize endpoint",
			discovery: func(f *fakeEHR) *Discovery {
				d := f.discovery()
				d.Issuer, d.JWKSURI = "", ""
				return d
			},
			oidcPath: "/oauth2/.well-known/openid-configuration",
			oidcIss:  (*fakeEHR).oauthIssuer,
		},
		{
			name: "openid-configuration names another issuer",
			discovery: func(f *fakeEHR) *Discovery {
				d := f.discovery()
				d.JWKSURI = ""
				return d
			},
			oidcPath: "/oauth2/.well-known/openid-configuration",
			oidcIss:  func(f *fakeEHR) string { return "https://evil.example.org/oauth2" },
			want:     KindIssuerMismatch,
		},
		{
			name: "no openid-configuration anywhere",
			discovery: func(f *fakeEHR) *Discovery {
				d := f.discovery()
				d.Issuer, d.JWKSURI = "", ""
				return d
			},
			want: KindBadServer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.setJWKS(publicJWK(mustRSA(t, 0), "k1"))
			if tt.oidcPath != "" {
				f.handle(tt.oidcPath, func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, map[string]any{"issuer": tt.oidcIss(f), "jwks_uri": f.srv.URL + "/oauth2/jwks"})
				})
			}
			c := mustClient(t, &clock{t: t0})
			idt := mustSign(t, jose.RS256, mustRSA(t, 0), "k1", idTokenClaims(f, nonce))
			tok, err := exchangeIDToken(t, c, f, tt.discovery(f), idt, nonce)
			if tt.want != 0 {
				mustSmartError(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.FHIRUser != f.iss()+"/Practitioner/p1" {
				t.Errorf("FHIRUser = %q", tok.FHIRUser)
			}
			if got := f.header(tt.oidcPath).Get("Epic-Client-ID"); got != testClientID {
				t.Errorf("openid-configuration Epic-Client-ID = %q", got)
			}
			// A second sign-in uses the cached openid-configuration and JWKS.
			if _, err := exchangeIDToken(t, c, f, tt.discovery(f), idt, nonce); err != nil {
				t.Fatalf("second Exchange: %v", err)
			}
			if n, j := f.count(tt.oidcPath), f.count("/oauth2/jwks"); n != 1 || j != 1 {
				t.Errorf("fetches: openid-configuration %d, jwks %d; want 1 and 1", n, j)
			}
		})
	}
}

// TestIDTokenWithoutKid: testers' launchers (smart-launcher-v2) sign id_tokens
// without a kid. One key that fits is unambiguous; several are not.
func TestIDTokenWithoutKid(t *testing.T) {
	const nonce = "n-nokid"
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	noKid := func(j jose.JSONWebKey) jose.JSONWebKey { j.KeyID = ""; return j }
	noAlg := func(j jose.JSONWebKey) jose.JSONWebKey { j.Algorithm = ""; return j }
	tests := []struct {
		name string
		jwks func(t *testing.T) []jose.JSONWebKey
		want ErrorKind
	}{
		{"one key with a kid", func(t *testing.T) []jose.JSONWebKey {
			return []jose.JSONWebKey{publicJWK(mustRSA(t, 0), "k1")}
		}, 0},
		{"one key without kid or alg", func(t *testing.T) []jose.JSONWebKey {
			return []jose.JSONWebKey{noAlg(noKid(publicJWK(mustRSA(t, 0), "")))}
		}, 0},
		{"one RSA key beside an EC key", func(t *testing.T) []jose.JSONWebKey {
			return []jose.JSONWebKey{{Key: &ecKey.PublicKey, KeyID: "ec", Use: "sig"}, noAlg(publicJWK(mustRSA(t, 0), "k1"))}
		}, 0},
		{"one signing key beside an encryption key", func(t *testing.T) []jose.JSONWebKey {
			enc := publicJWK(mustRSA(t, 1), "enc")
			enc.Use = "enc"
			return []jose.JSONWebKey{enc, publicJWK(mustRSA(t, 0), "k1")}
		}, 0},
		{"two keys that fit", func(t *testing.T) []jose.JSONWebKey {
			return []jose.JSONWebKey{publicJWK(mustRSA(t, 1), "k2"), publicJWK(mustRSA(t, 0), "k1")}
		}, KindBadServer},
		{"only another key", func(t *testing.T) []jose.JSONWebKey {
			return []jose.JSONWebKey{publicJWK(mustRSA(t, 1), "k2")}
		}, KindBadServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.setJWKS(tt.jwks(t)...)
			c := mustClient(t, &clock{t: t0})
			idt := mustSign(t, jose.RS256, mustRSA(t, 0), "", idTokenClaims(f, nonce))
			tok, err := exchangeIDToken(t, c, f, f.discovery(), idt, nonce)
			if tt.want != 0 {
				mustSmartError(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.FHIRUser != f.iss()+"/Practitioner/p1" {
				t.Errorf("FHIRUser = %q", tok.FHIRUser)
			}
		})
	}
}
