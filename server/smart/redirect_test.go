package smart

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestNoRedirectsFollowed: a token or JWKS endpoint that redirects is not
// followed, whatever HTTP client the caller passes (mustClient's would follow):
// a 307 from the token endpoint would re-send the code and the client secret
// to a host discovery never named.
func TestNoRedirectsFollowed(t *testing.T) {
	const nonce = "n-redirect"
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "should never be reached", http.StatusTeapot)
	}))
	t.Cleanup(other.Close)
	redirect := func(status int, to string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL+to, status) }
	}

	t.Run("token endpoint", func(t *testing.T) {
		f := newFakeEHR(t)
		f.handle("/oauth2/token", redirect(http.StatusTemporaryRedirect, "/token"))
		iss := f.issuer()
		iss.ClientSecret = "the-client-secret"
		_, err := mustClient(t, &clock{t: t0}).Exchange(context.Background(), f.discovery(), iss, nil, testRedirect, testCode, testVerifier, nonce)
		mustSmartError(t, err, KindRejected)
		if n := elsewhere.Swap(0); n != 0 {
			t.Errorf("the redirect was followed: %d request(s) reached the other server", n)
		}
	})
	t.Run("JWKS", func(t *testing.T) {
		f := newFakeEHR(t)
		f.handle("/oauth2/jwks", redirect(http.StatusFound, "/jwks"))
		idt := mustSign(t, jose.RS256, mustRSA(t, 0), "k1", idTokenClaims(f, nonce))
		_, err := exchangeIDToken(t, mustClient(t, &clock{t: t0}), f, f.discovery(), idt, nonce)
		mustSmartError(t, err, KindBadServer)
		if n := elsewhere.Swap(0); n != 0 {
			t.Errorf("the redirect was followed: %d request(s) reached the other server", n)
		}
	})
}
