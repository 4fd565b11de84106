package smart

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"smartlabs/server/config"
	"smartlabs/server/keys"
)

func TestRefreshClientAuth(t *testing.T) {
	const secret = "s3cr+t/with=signs&more %"
	key := mustClientKey(t)
	tests := []struct {
		name string
		// auth sets the issuer's client authentication and returns the key to use.
		auth func(*config.Issuer) *keys.Key
		// check inspects the token request and returns a problem, or "".
		check func(f *fakeEHR, r *http.Request) string
	}{
		{
			name: "client_secret_basic",
			auth: func(is *config.Issuer) *keys.Key { is.ClientSecret = secret; return nil },
			check: func(_ *fakeEHR, r *http.Request) string {
				u, p, ok := r.BasicAuth()
				u, _ = url.QueryUnescape(u)
				p, _ = url.QueryUnescape(p)
				switch {
				case !ok || u != testClientID || p != secret:
					return "Basic credentials missing or wrong"
				case r.PostForm.Has("client_assertion") || r.PostForm.Has("client_secret"):
					return "credentials also in the body"
				}
				return ""
			},
		},
		{
			name: "private_key_jwt",
			auth: func(*config.Issuer) *keys.Key { return key },
			check: func(f *fakeEHR, r *http.Request) string {
				if _, _, ok := r.BasicAuth(); ok {
					return "Authorization header sent with private_key_jwt"
				}
				if r.PostForm.Get("client_assertion_type") != clientAssertionType {
					return "client_assertion_type missing"
				}
				tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS384})
				if err != nil {
					return "assertion not RS384"
				}
				var cl jwt.Claims
				if err := tok.Claims(key.PublicJWK().Key, &cl); err != nil {
					return "assertion signature"
				}
				if err := cl.ValidateWithLeeway(jwt.Expected{Issuer: testClientID, Subject: testClientID,
					AnyAudience: jwt.Audience{f.tokenURL()}, Time: t0}, 0); err != nil || cl.ID == "" {
					return "assertion claims"
				}
				return ""
			},
		},
		{
			name: "public client",
			auth: func(*config.Issuer) *keys.Key { return nil },
			check: func(_ *fakeEHR, r *http.Request) string {
				if _, _, ok := r.BasicAuth(); ok || r.PostForm.Get("client_id") != testClientID {
					return "public client must send only client_id"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			var problem string
			f.handle("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				problem = tt.check(f, r)
				if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "rt-1" {
					problem = "grant_type or refresh_token wrong"
				}
				if r.Header.Get(EpicClientIDHeader) != testClientID {
					problem = "no Epic-Client-ID header"
				}
				if problem != "" {
					tokenResponder(http.StatusUnauthorized, map[string]any{"error": "invalid_client"})(w, r)
					return
				}
				tokenResponder(http.StatusOK, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600})(w, r)
			})
			iss := f.issuer()
			k := tt.auth(&iss)
			tok, err := mustClient(t, &clock{t: t0}).Refresh(context.Background(), f.discovery(), iss, k, "rt-1")
			if problem != "" {
				t.Fatalf("token endpoint saw: %s", problem)
			}
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken != "at-2" || !tok.Expiry.Equal(t0.Add(time.Hour)) {
				t.Errorf("tokens = %q expiring %v", tok.AccessToken, tok.Expiry)
			}
			if f.count("/oauth2/token") != 1 {
				t.Errorf("token requests = %d, want 1 (auth style never auto-detected)", f.count("/oauth2/token"))
			}
		})
	}
}

func TestRefreshResponses(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      *Tokens
		wantKind  ErrorKind
		wantEnded bool
	}{
		{name: "rotated", status: 200,
			body: `{"access_token":"at-2","token_type":"bearer","expires_in":"3600","refresh_token":"rt-2","scope":"launch openid","patient":"p1"}`,
			want: &Tokens{AccessToken: "at-2", TokenType: "bearer", RefreshToken: "rt-2", Scope: "launch openid", Patient: "p1", Expiry: t0.Add(time.Hour)}},
		{name: "not rotated", status: 200, body: `{"access_token":"at-2","expires_in":60}`,
			want: &Tokens{AccessToken: "at-2", Expiry: t0.Add(time.Minute)}},
		{name: "no expiry", status: 200, body: `{"access_token":"at-2","expires_in":null}`,
			want: &Tokens{AccessToken: "at-2"}},
		{name: "no access token", status: 200, body: `{"token_type":"Bearer"}`, wantKind: KindBadServer},
		{name: "not JSON", status: 200, body: `<html>ok</html>`, wantKind: KindBadServer},
		{name: "invalid_grant", status: 400, body: `{"error":"invalid_grant","error_description":"rt-1 revoked"}`, wantKind: KindRejected, wantEnded: true},
		{name: "invalid_client", status: 401, body: `{"error":"invalid_client"}`, wantKind: KindRejected},
		{name: "server error", status: 503, body: `{"error":"temporarily_unavailable"}`, wantKind: KindUnreachable},
		{name: "huge", status: 200, body: `{"access_token":"` + strings.Repeat("a", maxBody) + `"}`, wantKind: KindBadServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.handle("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			iss := f.issuer()
			iss.ClientSecret = "x"
			tok, err := mustClient(t, &clock{t: t0}).Refresh(context.Background(), f.discovery(), iss, nil, "rt-1")
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if diff := cmp.Diff(tt.want, tok); diff != "" {
					t.Errorf("tokens (-want +got):\n%s", diff)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) || se.Kind != tt.wantKind {
				t.Fatalf("err = %v, want kind %v", err, tt.wantKind)
			}
			if IsGrantEnded(err) != tt.wantEnded {
				t.Errorf("IsGrantEnded = %v, want %v", IsGrantEnded(err), tt.wantEnded)
			}
			if strings.Contains(err.Error(), "rt-1") {
				t.Errorf("error text holds the refresh token: %v", err)
			}
		})
	}
}

func TestRefreshWithoutTokenEndsGrant(t *testing.T) {
	f := newFakeEHR(t)
	iss := f.issuer()
	iss.ClientSecret = "x"
	_, err := mustClient(t, &clock{t: t0}).Refresh(context.Background(), f.discovery(), iss, nil, "")
	if !IsGrantEnded(err) {
		t.Errorf("err = %v, want grant ended", err)
	}
	if n := f.count("/oauth2/token"); n != 0 {
		t.Errorf("token requests = %d, want 0", n)
	}
}
