package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"smartlabs/server/config"
	"smartlabs/server/servertest"
)

// TestIssuerRemovedFromConfig: a replica rolled out without an issuer, while
// that issuer's launches live on in Redis, ends those launches on every
// route with a plain 4xx page and asks the removed EHR nothing; it keeps serving.
func TestIssuerRemovedFromConfig(t *testing.T) {
	rs := servertest.StartRedis(t)
	h := newHarness(t, harnessOptions{RedisURL: rs.URL})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	path := resp.Request.URL.Path

	rep := h.ReplicaWith(func(c *config.Config) {
		c.Issuers = []config.Issuer{{Name: "Another EHR", ISS: "https://ehr.example.org/fhir/R4", ClientID: "other", ClientSecret: "other-secret"}}
	})
	before := len(h.Sim.Requests())
	const title = "smartlabs is no longer set up for this EHR"

	for _, tc := range []struct {
		name, method, path string
		htmx               bool
	}{
		{"labs page", http.MethodGet, path, false},
		{"all results", http.MethodGet, path + "?view=all&period=30d", false},
		{"drill-down", http.MethodGet, path + "/a/2345-7", false},
		{"theme", http.MethodGet, path + "/theme.css", false},
		{"refresh", http.MethodGet, path + "/labs", true},
		{"filter fragment", http.MethodGet, path + "?abnormal=1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, rep.URL+tc.path, nil)
			if tc.htmx {
				req.Header.Set("HX-Request", "true")
				req.Header.Set(csrfHeader, csrfValue)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			r, err := b.noRedirect().c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode < 400 || r.StatusCode > 499 {
				t.Fatalf("status %d, want a 4xx", r.StatusCode)
			}
			if tc.htmx {
				// The whole view is replaced by the full page, which shows the reason.
				if got := r.Header.Get("HX-Redirect"); got != path {
					t.Fatalf("HX-Redirect = %q, want %q", got, path)
				}
				return
			}
			if !strings.Contains(string(body), title) || !strings.Contains(string(body), "reopen it from the patient") {
				t.Errorf("page lacks the plain reason:\n%s", body)
			}
		})
	}
	if got := len(h.Sim.Requests()) - before; got != 0 {
		t.Errorf("the replica without the issuer sent it %d requests, want 0", got)
	}
	// Signing out still works, and the replica keeps serving.
	req, _ := http.NewRequest(http.MethodPost, rep.URL+path+"/logout", nil)
	req.Header.Set(csrfHeader, csrfValue)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	r, err := b.noRedirect().c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("logout: status %d, want 200", r.StatusCode)
	}
	r, err = http.Get(rep.URL + "/healthz")
	if err != nil {
		t.Fatalf("the replica stopped serving: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", r.StatusCode)
	}
}
