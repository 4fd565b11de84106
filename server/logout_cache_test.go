package server_test

import (
	"net/http"
	"strings"
	"testing"

	"smartlabs/server"
)

// TestLogoutForgetsCachedResults: logging out drops the launch's cached
// results (PHI in the server's memory) at once, while a logout attempt by
// another browser leaves that launch's cache alone.
func TestLogoutForgetsCachedResults(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv, ok := h.Handler.(*server.Server)
	if !ok {
		t.Fatalf("harness handler is %T, want *server.Server", h.Handler)
	}
	alice, mallory := newBrowser(t), newBrowser(t)
	resp, _ := mustLaunch(t, h, alice, h.Patient("Lin"))
	labsURL := resp.Request.URL.String()
	id := strings.TrimPrefix(resp.Request.URL.Path, "/l/")
	if !server.CachedLaunch(srv, id) {
		t.Fatal("a launch that was just viewed has no cached results")
	}

	logout := func(b *browser) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, labsURL+"/logout", nil)
		req.Header.Set(csrfHeader, csrfValue)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		r, err := b.noRedirect().c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	// Another browser knows the launch id but not the cookie: nothing is dropped.
	if got := logout(mallory); got != http.StatusNotFound {
		t.Fatalf("logout from another browser: %d, want 404", got)
	}
	if !server.CachedLaunch(srv, id) {
		t.Fatal("another browser's logout attempt dropped the launch's cached results")
	}
	if got := logout(alice); got != http.StatusOK {
		t.Fatalf("logout: %d, want 200", got)
	}
	if server.CachedLaunch(srv, id) {
		t.Error("the logged-out launch's results are still cached")
	}
}
