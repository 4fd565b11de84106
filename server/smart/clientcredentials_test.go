package smart

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestClientCredentials(t *testing.T) {
	key := mustClientKey(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const secretToken = "system-access-token-value"
	var tokenURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(code string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
		}
		if err := r.ParseForm(); err != nil {
			fail("invalid_request")
			return
		}
		f := r.PostForm
		if f.Get("grant_type") != "client_credentials" || f.Get("client_assertion_type") != clientAssertionType ||
			r.Header.Get("Authorization") != "" || r.Header.Get(EpicClientIDHeader) != "backend-1" {
			fail("invalid_request")
			return
		}
		tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS384})
		if err != nil || tok.Headers[0].KeyID != key.KeyID() {
			fail("invalid_client")
			return
		}
		var c jwt.Claims
		if err := tok.Claims(key.PublicJWK().Key, &c); err != nil ||
			c.Issuer != "backend-1" || c.Subject != "backend-1" || len(c.Audience) != 1 || c.Audience[0] != tokenURL ||
			c.ID == "" || c.Expiry.Time().After(now.Add(5*time.Minute)) {
			fail("invalid_client")
			return
		}
		if f.Get("scope") == "system/Unknown.read" {
			fail("invalid_scope")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": secretToken, "token_type": "Bearer", "expires_in": 300, "scope": f.Get("scope"),
		})
	}))
	defer srv.Close()
	tokenURL = srv.URL + "/oauth2/token"
	c := NewClient(Options{Now: func() time.Time { return now }})

	tests := []struct {
		name      string
		scope     string
		wantErr   bool
		wantScope string
	}{
		{"granted", "system/Observation.read", false, "system/Observation.read"},
		{"refused", "system/Unknown.read", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := c.ClientCredentials(context.Background(), tokenURL, "backend-1", key, tt.scope)
			if tt.wantErr {
				se := mustSmartError(t, err, KindRejected)
				if strings.Contains(se.Error(), secretToken) {
					t.Error("error carries the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Scope != tt.wantScope || st.AccessToken != secretToken || !st.Expiry.Equal(now.Add(300*time.Second)) {
				t.Errorf("token: scope %q, expiry %v", st.Scope, st.Expiry)
			}
			for _, s := range []string{fmt.Sprint(st), fmt.Sprintf("%+v", st), fmt.Sprintf("%#v", st), fmt.Sprintf("%v", *st)} {
				if strings.Contains(s, secretToken) {
					t.Errorf("printing the token shows it: %s", s)
				}
			}
		})
	}
	if _, err := c.ClientCredentials(context.Background(), "http://ehr.example/token", "backend-1", key, "system/x"); err == nil {
		t.Error("a plain-http token URL off loopback was accepted")
	}
	if _, err := c.ClientCredentials(context.Background(), tokenURL, "backend-1", nil, "system/x"); err == nil {
		t.Error("no key was accepted")
	}
}
