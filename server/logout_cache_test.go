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
	srv := appServer(t, h)
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

// TestLogoutForgetsEveryLaunchOfTheBrowser: signing out in one tab drops the
// cached results of every launch of that browser (another patient in another
// tab included, since destroying the session makes all of them unreadable),
// and none of another browser's.
func TestLogoutForgetsEveryLaunchOfTheBrowser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv := appServer(t, h)
	alice, bob := newBrowser(t), newBrowser(t)
	lin, _ := mustLaunch(t, h, alice, h.Patient("Lin"))
	okafor, _ := mustLaunch(t, h, alice, h.Patient("Okafor"))
	other, _ := mustLaunch(t, h, bob, h.Patient("Lin"))
	idOf := func(r *http.Response) string { return strings.TrimPrefix(r.Request.URL.Path, "/l/") }
	for _, r := range []*http.Response{lin, okafor, other} {
		if !server.CachedLaunch(srv, idOf(r)) {
			t.Fatalf("launch %s was viewed but has no cached results", r.Request.URL.Path)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, lin.Request.URL.String()+"/logout", nil)
	req.Header.Set(csrfHeader, csrfValue)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	r, err := alice.noRedirect().c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d, want 200", r.StatusCode)
	}
	if server.CachedLaunch(srv, idOf(lin)) || server.CachedLaunch(srv, idOf(okafor)) {
		t.Error("a launch of the signed-out browser still has cached results")
	}
	if !server.CachedLaunch(srv, idOf(other)) {
		t.Error("another browser's launch lost its cached results")
	}
	if st, _, _ := bob.noRedirect().get(other.Request.URL.String()); st.StatusCode != http.StatusOK {
		t.Errorf("another browser's launch answers %d after the sign-out", st.StatusCode)
	}
}
