package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzLaunchParams: whatever arrives at /launch and /callback, the answer is
// never a 5xx, and nothing reaches an EHR for an iss that is not configured.
func FuzzLaunchParams(f *testing.F) {
	f.Add("/launch", "https://evil.example/fhir", "tok", "", "")
	f.Add("/launch", "%zz", "", "", "")
	f.Add("/callback", "", "", "state", "code")
	f.Add("/callback", "", "", "", "")
	f.Add("/l/AAAAAAAAAAAAAAAAAAAAAA", "", "", "", "")
	h := newHarness(f, harnessOptions{})
	f.Fuzz(func(t *testing.T, path, iss, launch, state, code string) {
		u, err := url.Parse(h.AppURL)
		if err != nil {
			t.Fatal(err)
		}
		q := url.Values{}
		for k, v := range map[string]string{"iss": iss, "launch": launch, "state": state, "code": code} {
			if v != "" {
				q.Set(k, v)
			}
		}
		u.Path = path
		u.RawQuery = q.Encode()
		if u.Path == "" || u.Path[0] != '/' {
			u.Path = "/" + u.Path
		}
		req := httptest.NewRequest(http.MethodGet, u.String(), nil)
		req.AddCookie(&http.Cookie{Name: "__Host-smartlabs", Value: "fuzz"})
		rec := httptest.NewRecorder()
		h.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d", u, rec.Code)
		}
		if h.Cfg.Lookup(iss) == nil && len(h.Sim.Requests()) != 0 {
			t.Fatalf("%s: unknown iss caused simulator requests", u)
		}
		h.Sim.ResetRequests()
	})
}
